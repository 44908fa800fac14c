"""The ingest boundary on SQLite and PostgreSQL: idempotent by observation id, partial vs complete runs,
run leases, field files (``probe --save`` -> ``cctv-monitor ingest``) and ``POST /api/v1/observations``."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cctv_monitor.cli import cli
from cctv_monitor.db import get_db
from cctv_monitor.models import Device, Observation, ScanRun, utcnow
from cctv_monitor.scan.errors import LeaseLostError, RunClosedError
from cctv_monitor.scan.ingest import ingest
from cctv_monitor.scan.runs import close_run, open_run, reap_expired
from cctv_monitor.scanning import import_observations
from probes.fieldfile import read, with_id, write
from scan_helpers import add_project, mac_of, make_obs

CODE = "CR-MS-2568-001"
SITE = f"{CODE}/market"
HOSTS = ["127.0.1.11", "127.0.1.12", "127.0.1.13"]
ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "cctv-monitor")


@pytest.fixture
def project(session):
    return add_project(session, macs=tuple(mac_of(h) for h in HOSTS))


def _statuses(session) -> dict[str, str]:
    session.expire_all()
    return {d.address: d.status for d in session.scalars(select(Device))}


def _obs(host: str, tag: str):
    return make_obs(host).with_updates(observation_id=f"{tag}-{host}")


def test_same_file_ingested_twice_prints_0_new(app, session, project, runner, tmp_path):
    path = tmp_path / "field.jsonl"
    write(path, [_obs(h, "laptop1") for h in HOSTS], tool_version="test")
    first = runner.invoke(cli, args=["ingest", str(path), "--target", SITE, "--complete"])
    assert first.exit_code == 0, first.output
    assert first.output.startswith("3 new, 0 already stored") and "covers the whole target" in first.output
    again = runner.invoke(cli, args=["ingest", str(path), "--target", SITE, "--complete"])
    assert again.exit_code == 0, again.output
    assert again.output.startswith("0 new, 3 already stored") and "covers its devices" in again.output
    assert session.scalar(select(func.count(Observation.id))) == 3  # nothing recorded twice
    assert set(_statuses(session).values()) == {"compliant"}


def test_ingest_command_errors_are_clear(app, project, runner, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"address": "127.0.1.11:8000", "status": "ok"}\nnot json\n', encoding="utf-8")
    result = runner.invoke(cli, args=["ingest", str(bad)])
    assert result.exit_code == 2 and "line 2: not JSON" in result.output and "Traceback" not in result.output
    result = runner.invoke(cli, args=["ingest", str(bad), "--complete"])
    assert result.exit_code == 2 and "--complete needs --target" in result.output
    good = tmp_path / "good.jsonl"
    write(good, [_obs(HOSTS[0], "x")], tool_version="test")
    result = runner.invoke(cli, args=["ingest", str(good), "--target", "NOPE/market"])
    assert result.exit_code == 2 and "NOPE" in result.output
    result = runner.invoke(cli, args=["ingest", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2 and "cannot be read" in result.output


def test_partial_file_leaves_other_devices_as_they_were(app, session, project, runner, tmp_path):
    import_observations(app, "project", CODE, [make_obs(h) for h in HOSTS], deliver_alerts=False)
    assert set(_statuses(session).values()) == {"compliant"}
    alerts_before = session.execute(select(func.count()).select_from(ScanRun)).scalar()
    path = tmp_path / "one.jsonl"
    write(path, [make_obs(HOSTS[0], width=1280, height=720)], tool_version="test")
    for args in (["ingest", str(path)], ["ingest", str(path), "--target", SITE]):
        result = runner.invoke(cli, args=args)
        assert result.exit_code == 0 and "covers its devices" in result.output, result.output
    statuses = _statuses(session)
    assert statuses[f"{HOSTS[1]}:8000"] == statuses[f"{HOSTS[2]}:8000"] == "compliant"  # not marked missing
    assert statuses[f"{HOSTS[0]}:8000"] == "non_compliant"  # the camera in the file was re-evaluated
    assert session.execute(select(func.count()).select_from(ScanRun)).scalar() == alerts_before + 2
    # the same camera alone, but complete for its target: the others were not seen
    complete = tmp_path / "complete.jsonl"
    write(complete, [make_obs(HOSTS[0])], tool_version="test")
    result = runner.invoke(cli, args=["ingest", str(complete), "--target", SITE, "--complete"])
    assert result.exit_code == 0 and "covers the whole target" in result.output, result.output
    statuses = _statuses(session)
    assert statuses[f"{HOSTS[1]}:8000"] == statuses[f"{HOSTS[2]}:8000"] == "offline"


def test_overlapping_batches_and_any_order(app, session, project):
    factory = get_db(app).sessionmaker
    run = open_run(factory, target=f"site:{SITE}", source="worker", owner="zone-a:1:test",
                   client_run_id="zone-a-run-1")
    a, b, c = (_obs(h, "zone-a-run-1") for h in HOSTS)
    first = ingest(factory, run, [b, a])
    second = ingest(factory, run, [c, b, c])  # overlaps the first batch, and repeats itself
    assert (first.new, first.skipped) == (2, 0)
    assert (second.new, second.skipped) == (1, 2)
    # a retry of the same sender's run resumes the open run (its lease is taken over)
    again = open_run(factory, target=f"site:{SITE}", source="worker", owner="zone-a:2:test",
                     client_run_id="zone-a-run-1")
    assert again.id == run.id
    assert ingest(factory, again, [a, b, c]).new == 0
    summary = close_run(factory, again, complete=True)
    assert summary.state == "completed" and summary.coverage == "target" and summary.new == 3
    assert summary.counts == {"compliant": 3}
    assert close_run(factory, again, complete=True) == summary  # closing twice changes nothing
    with pytest.raises(RunClosedError, match="is completed"):
        ingest(factory, run, [_obs(HOSTS[0], "late")])
    assert session.scalar(select(func.count(Observation.id))) == 3
    assert len(_statuses(session)) == 3  # one device per camera, whatever the batches


def test_cache_keeps_indexes_between_batches_until_someone_else_writes(app, session, project):
    """The ingest worker's cache: batches of one run reuse the loaded indexes (no device table reload), and a
    device made by another writer in between is seen by the next batch (no duplicate)."""
    from sqlalchemy import event

    from cctv_monitor.scan.ingest import IngestCache

    factory = get_db(app).sessionmaker
    cache = IngestCache()
    run = open_run(factory, target=f"site:{SITE}", source="worker", owner="zones:1:test")
    loads: list[str] = []

    def count(conn, cursor, statement, *args):  # noqa: ANN001 - SQLAlchemy's event signature
        if statement.lstrip().startswith("SELECT device.id"):
            loads.append(statement)

    engine = get_db(app).engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert ingest(factory, run, [_obs(HOSTS[0], "b1")], cache=cache).new == 1
        first_loads = len(loads)
        assert first_loads >= 1
        assert ingest(factory, run, [_obs(HOSTS[1], "b2")], cache=cache).new == 1
        assert len(loads) == first_loads  # the indexes were kept
        # Another writer records the third camera in a run of its own meanwhile.
        other = open_run(factory, target=None, source="api", owner="elsewhere:1:test", client_run_id="other")
        assert ingest(factory, other, [_obs(HOSTS[2], "other")]).new == 1
        close_run(factory, other, complete=False)
        loaded_before = len(loads)
        assert ingest(factory, run, [_obs(HOSTS[2], "b3")], cache=cache).new == 1
        assert len(loads) > loaded_before  # the stamp changed: loaded afresh
    finally:
        event.remove(engine, "before_cursor_execute", count)
        cache.clear()
    assert close_run(factory, run, complete=True).counts == {"compliant": 3}
    assert session.scalar(select(func.count(Device.id))) == 3  # the third camera is one device, not two
    assert session.scalar(select(func.count(Observation.id))) == 4


def test_run_closed_after_its_owner_died(app, session, project):
    """A worker that opened a run and was killed: its lease expires, whoever looks next marks it interrupted."""
    factory = get_db(app).sessionmaker
    code = (f"from cctv_monitor import create_app\n"
            f"from cctv_monitor.db import get_db\n"
            f"from cctv_monitor.scan.runs import open_run\n"
            f"from cctv_monitor.scan.ingest import ingest\n"
            f"from scan_helpers import make_obs\n"
            f"import os, signal, sys\n"
            f"app = create_app({{'DATABASE_URL': sys.argv[1], 'SECRET_KEY': 'test-secret'}})\n"
            f"f = get_db(app).sessionmaker\n"
            f"run = open_run(f, target='site:{SITE}', source='worker', owner='zone-b:' + str(os.getpid()))\n"
            f"ingest(f, run, [make_obs('{HOSTS[0]}').with_updates(observation_id='b-1')])\n"
            f"print(run.id, flush=True)\n"
            f"os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", code, app.config["DATABASE_URL"]], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={"PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == -9, proc.stderr
    run_id = int(proc.stdout.split()[0])
    session.expire_all()
    dead = session.get(ScanRun, run_id)
    assert dead.state == "running" and dead.lease_expires is not None and dead.pid is None
    assert reap_expired(factory) == 0  # the lease has not run out yet: the owner may be on another machine
    assert reap_expired(factory, now=utcnow() + timedelta(seconds=3600)) == 1
    session.expire_all()
    dead = session.get(ScanRun, run_id)
    assert dead.state == "interrupted" and "lease of zone-b:" in dead.error and "1 of 1 cameras" in dead.error
    assert _statuses(session) == {f"{HOSTS[0]}:8000": "compliant"}  # what it recorded stays
    # the target is free again, and the dead owner's handle can no longer write
    from cctv_monitor.scan.runs import RunRef

    ghost = RunRef(run_id, f"site:{SITE}", "worker", dead.lease_owner)
    with pytest.raises(LeaseLostError, match="lease expired"):
        ingest(factory, ghost, [_obs(HOSTS[1], "ghost")])
    fresh = open_run(factory, target=f"site:{SITE}", source="worker", owner="zone-b:new")
    assert close_run(factory, fresh, complete=False).coverage == "devices"


def test_probe_save_file_ingested_into_another_database(demo_fleet, app, session, runner, tmp_path):
    """A field laptop saves what it probed (no database there); the server ingests the file later."""
    cam = demo_fleet["wp-school-01"]
    path = tmp_path / "laptop.jsonl"
    cmd = [CLI, "probe", f"{cam.host}:{cam.port}", "--user", "admin", "--save", str(path)]
    for _ in range(2):  # two probes of the same camera: two observations, two ids
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT,
                              env={"CCTV_ONVIF_PASSWORD": "Demo#2567", "PATH": "/usr/bin:/bin",
                                   "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 2 and lines[0]["observation_id"] != lines[1]["observation_id"]
    assert all(line["schema_version"] >= 2 and line["tool_version"].startswith("cctv-monitor") for line in lines)
    assert "Demo#2567" not in path.read_text(encoding="utf-8")
    assert [o.status.value for o in read(path)] == ["ok", "ok"]
    first = runner.invoke(cli, args=["ingest", str(path)])
    assert first.exit_code == 0 and first.output.startswith("2 new"), first.output
    assert runner.invoke(cli, args=["ingest", str(path)]).output.startswith("0 new")
    session.expire_all()
    [device] = session.scalars(select(Device)).all()
    assert device.address == f"{cam.host}:{cam.port}" and device.status == "unregistered"
    assert session.scalar(select(func.count(Observation.id))) == 2


def test_older_schema_lines_are_read(tmp_path):
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps({"address": "127.0.1.11:8000", "status": "unreachable", "schema_version": 1,
                                "some_future_field": 1}) + "\n", encoding="utf-8")
    [obs] = read(path)
    assert obs.observation_id is None and obs.status.value == "unreachable"
    assert with_id(obs).observation_id


def _api_user(app, username: str, role: str, agency_code: str | None) -> dict[str, str]:
    from cctv_monitor.accounts import issue_token, save_user
    from cctv_monitor.models import Agency, User

    with get_db(app).session_scope() as session:
        agency = session.scalar(select(Agency).where(Agency.code == agency_code)) if agency_code else None
        save_user(session, username, password="pw-" + username + "-2567", role=role,
                  agency_id=agency.id if agency else None)
        session.flush()
        token = issue_token(session.scalar(select(User).where(User.username == username)))
    return {"Authorization": f"Bearer {token}"}


def test_api_batch_twice_and_agency_rules(app, session, project, client):
    admin = _api_user(app, "admin1", "admin", None)
    body = {"run": "laptop-7", "target": SITE, "complete": True,
            "observations": [_obs(h, "api").to_dict() for h in HOSTS]}
    first = client.post("/api/v1/observations", json=body, headers=admin)
    assert first.status_code == 200, first.get_data(as_text=True)
    assert first.get_json()["new"] == 3 and first.get_json()["coverage"] == "target"
    again = client.post("/api/v1/observations", json=body, headers=admin)
    assert again.status_code == 200 and (again.get_json()["new"], again.get_json()["skipped"]) == (0, 3)
    assert session.scalar(select(func.count(Observation.id))) == 3

    # a technician of another agency: neither that target nor addresses inside its ranges
    add_project(session, code="WP-2568-002", agency_code="wiang-mun", ranges=("127.0.2.0/24",), site_code="school")
    tech = _api_user(app, "tech-wiang", "technician", "wiang-mun")
    refused = client.post("/api/v1/observations", json=body, headers=tech)
    assert refused.status_code == 403 and "target" in refused.get_json()["detail"]
    sneaky = {"run": "t-1", "observations": [_obs(HOSTS[0], "sneak").to_dict()]}
    refused = client.post("/api/v1/observations", json=sneaky, headers=tech)
    assert refused.status_code == 403 and "observations[0].address" in refused.get_json()["detail"]
    own = {"run": "t-2", "target": "WP-2568-002/school",
           "observations": [_obs("127.0.2.5", "tech").to_dict()]}
    accepted = client.post("/api/v1/observations", json=own, headers=tech)
    assert accepted.status_code == 200 and accepted.get_json()["new"] == 1, accepted.get_data(as_text=True)
    assert accepted.get_json()["closed"] is False  # a target without complete: more batches may follow
    # without a token: 401; bad fields are named
    assert client.post("/api/v1/observations", json=body).status_code == 401
    for bad, field in (({"observations": []}, "run"), ({"run": "x", "observations": "no"}, "observations"),
                       ({"run": "x", "complete": "yes", "observations": []}, "complete"),
                       ({"run": "x", "complete": True, "observations": []}, "complete"),
                       ({"run": "x", "observations": [{"address": "127.0.1.11:80", "status": "ok"}]},
                        "observations[0].observation_id"),
                       ({"run": "x", "observations": [{"address": "127.0.1.11:80", "status": "weird",
                                                       "observation_id": "w"}]}, "observations[0]")):
        response = client.post("/api/v1/observations", json=bad, headers=admin)
        assert response.status_code == 400 and response.get_json()["detail"].startswith(field), \
            (bad, response.get_json())
    app.config["API_OBSERVATIONS_MAX_ITEMS"] = 2
    too_many = client.post("/api/v1/observations", json=body, headers=admin)
    assert too_many.status_code == 413 and "observations" in too_many.get_json()["detail"]
    app.config["API_OBSERVATIONS_MAX_BYTES"] = 100
    too_big = client.post("/api/v1/observations", json=body, headers=admin)
    assert too_big.status_code == 413 and "body" in too_big.get_json()["detail"]
    doc = client.get("/api/v1/openapi.json", headers=admin).get_json()
    assert "post" in doc["paths"]["/observations"]


def test_update_rows_writes_scalars_exactly_and_refuses_json(app, session):
    """``update_rows`` (the batch's one UPDATE per table): datetimes to the microsecond in UTC, None and
    integers as given, each row by its id, other rows untouched; a JSON column is refused by name."""
    from datetime import datetime, timezone

    from cctv_monitor.scan.ids import update_rows

    devices = [Device(address=f"127.0.9.{i}:80", macs=[]) for i in range(3)]
    session.add_all(devices)
    session.commit()
    ids = [d.id for d in devices]
    seen = datetime(2026, 12, 1, 7, 30, 15, 123456, tzinfo=timezone.utc)
    with get_db(app).engine.begin() as conn:
        update_rows(conn, Device.__table__, ("last_seen", "last_ok", "last_observation_id"),
                    [(ids[0], seen, None, 41), (ids[1], seen + timedelta(seconds=1), seen, None)])
        with pytest.raises(TypeError, match="device.macs is JSON"):
            update_rows(conn, Device.__table__, ("macs",), [(ids[0], ["aa"])])
    session.expire_all()
    got = {d.id: (d.last_seen, d.last_ok, d.last_observation_id) for d in session.scalars(select(Device))}
    assert got == {ids[0]: (seen, None, 41), ids[1]: (seen + timedelta(seconds=1), seen, None),
                   ids[2]: (None, None, None)}
