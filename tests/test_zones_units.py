"""Zone keys (file 0600, rotation, clear errors) and work-unit planning (one zone per unit, only the
credentials of the site whose range holds an address, nothing readable without the zone's key)."""

from __future__ import annotations

import os
import stat

import pytest
from sqlalchemy import select

from cctv_monitor.cli import cli
from cctv_monitor.models import Site
from cctv_monitor.zones import ZoneKeyError, create_zone_key, load_keys, seal, unseal
from tests.scan_helpers import add_project


def test_zone_key_create_rotate_retire(runner, tmp_path):
    keys = tmp_path / "keys"
    result = runner.invoke(cli, args=["zone-key", "create", "maesai", "--key-dir", str(keys)])
    assert result.exit_code == 0, result.output
    path = keys / "maesai.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    old_token = seal(load_keys(keys, "maesai"), {"p": "Demo#2567"})
    assert "Demo#2567" not in old_token

    again = runner.invoke(cli, args=["zone-key", "create", "maesai", "--key-dir", str(keys)])
    assert again.exit_code == 2 and "exists already" in again.output and "Traceback" not in again.output

    assert runner.invoke(cli, args=["zone-key", "rotate", "maesai", "--key-dir", str(keys)]).exit_code == 0
    assert len(path.read_text().split()) == 2
    assert unseal(load_keys(keys, "maesai"), old_token, "maesai") == {"p": "Demo#2567"}  # in flight: still opens
    new_token = seal(load_keys(keys, "maesai"), {"p": "x"})

    assert runner.invoke(cli, args=["zone-key", "retire", "maesai", "--key-dir", str(keys)]).exit_code == 0
    assert len(path.read_text().split()) == 1
    assert unseal(load_keys(keys, "maesai"), new_token, "maesai") == {"p": "x"}
    with pytest.raises(ZoneKeyError, match="does not open with this worker's key file"):
        unseal(load_keys(keys, "maesai"), old_token, "maesai")


@pytest.mark.parametrize("args, message", [
    (["zone-key", "create", "Mae Sai"], "invalid zone name"),
    (["zone-key", "rotate", "nokey"], "no zone key file"),
])
def test_zone_key_errors_are_clear(runner, tmp_path, args, message):
    result = runner.invoke(cli, args=[*args, "--key-dir", str(tmp_path)])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_key_file_readable_by_others_is_refused(tmp_path):
    path = create_zone_key(tmp_path, "z1")
    os.chmod(path, 0o644)
    with pytest.raises(ZoneKeyError, match="chmod 600"):
        load_keys(tmp_path, "z1")


def test_zone_worker_needs_key_dir_and_broker(runner, tmp_path, monkeypatch):
    monkeypatch.delenv("CCTV_ZONE_KEY_DIR", raising=False)
    monkeypatch.delenv("CCTV_BROKER_URL", raising=False)
    no_dir = runner.invoke(cli, args=["zone-worker", "--zone", "z1"])
    assert no_dir.exit_code == 2 and "--key-dir" in no_dir.output
    create_zone_key(tmp_path, "z1")
    no_broker = runner.invoke(cli, args=["zone-worker", "--zone", "z1", "--key-dir", str(tmp_path)])
    assert no_broker.exit_code == 2 and "CCTV_BROKER_URL" in no_broker.output
    no_key = runner.invoke(cli, args=["zone-worker", "--zone", "z2", "--key-dir", str(tmp_path), "--broker", "amqp://x//"])
    assert no_key.exit_code == 2 and "zone-key create z2" in no_key.output


def test_units_carry_only_their_sites_credentials(app, session, tmp_path):
    from cctv_monitor.crypto import encrypt_credentials
    from cctv_monitor.dispatch import plan_units
    from cctv_monitor.scan.scope import resolve_scope

    add_project(session, code="P-A", agency_code="ag-a", ranges=("127.31.1.0/29",), ports=[8000], site_code="a",
                credentials=encrypt_credentials(app, [("admin", "PassA#1")]))
    add_project(session, code="P-B", agency_code="ag-b", ranges=("127.31.2.0/29",), ports=[8000], site_code="b",
                credentials=encrypt_credentials(app, [("admin", "PassB#2")]))
    session.scalar(select(Site).where(Site.code == "a")).zone = "north"
    session.scalar(select(Site).where(Site.code == "b")).zone = "south"
    session.commit()
    with app.app_context():
        scope = resolve_scope(session, "range", "127.31.1.0/29,127.31.2.0/29,127.31.3.0/30", default_ports=[8000])
        units = plan_units(app, session, scope, unit_size=4)
    by_zone: dict[str, list] = {}
    for unit in units:
        by_zone.setdefault(unit.zone, []).append(unit)
        assert len(unit.entries) <= 4
    assert sorted(by_zone) == ["central", "north", "south"]
    assert sum(len(u.entries) for u in by_zone["north"]) == 6  # 127.31.1.1-6
    for unit in by_zone["north"]:
        assert {c[1] for c in unit.creds} == {"PassA#1"}
        assert all(e["c"] == [0] and e["h"].startswith("127.31.1.") for e in unit.entries)
    for unit in by_zone["south"]:
        assert {c[1] for c in unit.creds} == {"PassB#2"}
    for unit in by_zone["central"]:  # in no site's range: no site's password goes there
        assert unit.creds == [] and all(e["c"] == [] for e in unit.entries)
    keys_dir = tmp_path / "zk"
    create_zone_key(keys_dir, "north")
    token = by_zone["north"][0].sealed(load_keys(keys_dir, "north"))
    assert "PassA#1" not in token and "admin" not in token
    assert unseal(load_keys(keys_dir, "north"), token, "north")["creds"][0][1] == "PassA#1"


def test_project_file_sites_carry_their_zone(app, runner, session, tmp_path):
    from tests.scan_helpers import REPO

    assert runner.invoke(cli, args=["import-profiles", str(REPO / "config" / "profiles")]).exit_code == 0
    folder = tmp_path / "projects"
    folder.mkdir()
    body = """code: Z-1
title_th: โครงการทดสอบโซน
agency: {code: maesai-mun, name_th: เทศบาลตำบลแม่สาย, province: เชียงราย, district: แม่สาย}
spec_profile: fixed_outdoor
approved_count: 1
sites:
  - {code: far, name_th: ด่าน, address_ranges: [127.32.1.0/29], zone: %s}
  - {code: near, name_th: ศาลากลาง, address_ranges: [127.32.2.0/29]}
"""
    (folder / "z1.yaml").write_text(body % "Mae Sai!", encoding="utf-8")
    bad = runner.invoke(cli, args=["import-projects", str(folder)])
    assert bad.exit_code != 0 and "invalid zone name" in bad.output
    (folder / "z1.yaml").write_text(body % "maesai-border", encoding="utf-8")
    good = runner.invoke(cli, args=["import-projects", str(folder)])
    assert good.exit_code == 0, good.output
    zones = dict(session.execute(select(Site.code, Site.zone)).all())
    assert zones == {"far": "maesai-border", "near": "central"}


def test_ingest_batch_counts_its_unit_in_the_same_transaction_and_closes_the_run(app, session):
    """The ingest worker's task without the broker: a unit's batch is recorded and the unit counted done in
    one transaction; a redelivered batch of a counted unit stores nothing; a device its zone had left
    "not reached" is no longer stale once reached; the batch that counts the last unit closes the run."""
    from datetime import timedelta
    from uuid import uuid4

    from cctv_monitor.db import get_db
    from cctv_monitor.ingest import Ingest
    from cctv_monitor.models import Device, Observation, ScanRun, ScanUnit, utcnow
    from cctv_monitor.scan.runs import hand_off, open_run
    from cctv_monitor.scanning import import_observations
    from tests.scan_helpers import make_obs

    hosts = ["127.31.5.1", "127.31.5.2", "127.31.5.3"]
    add_project(session, code="P-I", agency_code="ag-i", ranges=("127.31.5.0/29",), ports=[8000], site_code="i")
    import_observations(app, "project", "P-I", [make_obs(h) for h in hosts], deliver_alerts=False)
    stale = session.scalar(select(Device).where(Device.address == "127.31.5.3:8000"))
    stale.not_reached_run_id = 1
    session.commit()
    factory = get_db(app).sessionmaker
    ref = open_run(factory, target="range:127.31.5.0/29", source="worker", owner="zones:test", client_run_id="units")
    hand_off(ref.id)
    run = session.get(ScanRun, ref.id)
    run.distributed, run.deadline = True, utcnow() + timedelta(hours=1)
    units = [ScanUnit(scan_run_id=ref.id, zone="central", seq=i, state="queued", addresses=a, attempts=0,
                      observations=0) for i, a in enumerate([hosts[:2], hosts[2:]])]
    session.add_all(units)
    session.commit()
    first, second = ([{**make_obs(h).to_dict(), "observation_id": uuid4().hex} for h in part]
                     for part in (hosts[:2], hosts[2:]))
    worker = Ingest(app)
    try:
        _feed_two_units(worker, session, ref, units, first, second, stale)
    finally:
        worker.release()
    stored = session.scalars(select(Observation.address).where(Observation.scan_run_id == ref.id)).all()
    assert sorted(stored) == [f"{h}:8000" for h in hosts]


def _feed_two_units(worker, session, ref, units, first, second, stale) -> None:
    from cctv_monitor.models import Device, ScanRun

    assert worker.batch(ref.id, units[0].id, first) == 2
    session.expire_all()
    assert units[0].state == "done" and units[0].observations == 2 and units[1].state == "queued"
    assert session.get(ScanRun, ref.id).state == "running"
    assert worker.batch(ref.id, units[0].id, first) == 0  # redelivered after it was counted
    assert worker.batch(ref.id, units[1].id, second) == 1
    session.expire_all()
    assert units[1].state == "done" and session.get(ScanRun, ref.id).state != "running"
    assert session.get(Device, stale.id).not_reached_run_id is None


def test_ingest_batch_survives_the_database_dropping_its_kept_connections(app, session, db_url):
    """The ingest worker keeps connections between batches (the units' reader, the run's indexes); when the
    server drops them (a restart: here pg_terminate_backend), the next batch is recorded all the same."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: terminates the server's backends of the kept connections")
    from datetime import timedelta
    from uuid import uuid4

    from sqlalchemy import text

    from cctv_monitor.db import get_db
    from cctv_monitor.ingest import Ingest
    from cctv_monitor.models import ScanRun, ScanUnit, utcnow
    from cctv_monitor.scan.runs import hand_off, open_run
    from tests.scan_helpers import make_obs

    hosts = ["127.31.6.1", "127.31.6.2", "127.31.6.3"]
    add_project(session, code="P-K", agency_code="ag-k", ranges=("127.31.6.0/29",), ports=[8000], site_code="k")
    ref = open_run(get_db(app).sessionmaker, target="range:127.31.6.0/29", source="worker", owner="zones:test",
                   client_run_id="kept")
    hand_off(ref.id)
    run = session.get(ScanRun, ref.id)
    run.distributed, run.deadline = True, utcnow() + timedelta(hours=1)
    units = [ScanUnit(scan_run_id=ref.id, zone="central", seq=i, state="queued", addresses=[h], attempts=0,
                      observations=0) for i, h in enumerate(hosts)]
    session.add_all(units)
    session.commit()
    worker = Ingest(app)
    try:
        assert worker.batch(ref.id, units[0].id, [{**make_obs(hosts[0]).to_dict(), "observation_id": uuid4().hex}]) == 1
        kept = [worker._checks, worker.cache._runs[ref.id].session]
        pids = [s.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar() for s in kept]
        for s in kept:
            s.rollback() if s is worker._checks else s.commit()
        with get_db(app).engine.connect() as conn:
            for pid in pids:
                conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        for unit, host in zip(units[1:], hosts[1:]):
            assert worker.batch(ref.id, unit.id, [{**make_obs(host).to_dict(), "observation_id": uuid4().hex}]) == 1
    finally:
        worker.release()
    session.expire_all()
    assert [u.state for u in session.scalars(select(ScanUnit).where(ScanUnit.scan_run_id == ref.id)
                                             .order_by(ScanUnit.seq))] == ["done", "done", "done"]
    assert session.get(ScanRun, ref.id).state != "running"
