"""Zones on Celery + RabbitMQ (root): three zones in three namespaces, each with its own fleet and zone worker;
the central side (this process, the ingest worker, PostgreSQL) cannot reach the cameras.

One sequence of runs over the same province (each step needs the devices the one before recorded, and
they share one setup, the slow part): every camera recorded once (``scan`` waits for the run and prints
its units); a zone worker killed with SIGKILL mid-unit (redelivered, nothing doubled); a zone's bridge cut
while its worker runs (nothing lost); a unit that fails inside the worker (retried twice, then recorded
failed on the run); a zone without a worker (the run closes at its deadline, that zone's devices "not
reached", their status kept); the scans page and API, and the 30 s cache of the workers' ping answers.

The cut lasts ``CCTV_TEST_PARTITION_S`` seconds, 30 by default as in the issue (the suite too: the worker
must outlast a half-minute outage with its reconnection backoff): the cut drops every connection of the
zone, so the unit in hand can neither be acknowledged nor published until the bridge is back, and the
broker must hand it out again.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time

import pytest
from sqlalchemy import func, select

from cctv_monitor.models import Device, Observation, ScanRun, ScanUnit, Site
from cctv_monitor.accounts import save_user
from tests.dashboard_helpers import login
from tests.scan_helpers import add_project
from tests.zone_lab import Lab, lab, namespace_marks, purge_queues, wait_for

pytestmark = namespace_marks()

CAMERAS = 4
DELAY_MS = 120  # each request of a probe waits this long: a unit is in flight long enough to be interrupted
PARTITION_S = float(os.environ.get("CCTV_TEST_PARTITION_S") or 30)
DEADLINE_S = 10  # step 4: the reachable zones are done well before; the offline one expires


def _run(session, run_id: int) -> ScanRun:
    session.expire_all()
    return session.get(ScanRun, run_id)


def _wait_closed(session, run_id: int, timeout: float, box) -> ScanRun:  # noqa: ANN001
    def closed():
        run = _run(session, run_id)
        return run if run.state != "running" else None
    try:
        return wait_for(closed, timeout, f"run {run_id} to close")
    except AssertionError:
        units = session.execute(select(ScanUnit.zone, ScanUnit.state, ScanUnit.attempts, ScanUnit.error)
                                .where(ScanUnit.scan_run_id == run_id)).all()
        raise AssertionError(f"run {run_id} still open; units {units}\ningest: {box.log('ingest')}")


def _observed(session, run_id: int) -> list[str]:
    return list(session.scalars(select(Observation.address).where(Observation.scan_run_id == run_id)))


def _unit_running(session, run_id: int, zone: str) -> bool:
    session.expire_all()
    return bool(session.scalar(select(func.count()).select_from(ScanUnit).where(
        ScanUnit.scan_run_id == run_id, ScanUnit.zone == zone, ScanUnit.state == "running")))


def _unit_that_fails(app, box: Lab, zone: str) -> tuple[int, int]:  # noqa: ANN001
    """A distributed run with one unit the zone worker raises on (sent like dispatch sends units)."""
    from cctv_monitor.db import get_db
    from cctv_monitor.dispatch import celery_for
    from cctv_monitor.queueing import PROBE_UNIT
    from cctv_monitor.scan.runs import default_owner, hand_off, open_run
    from cctv_monitor.zones import load_keys, queue_for, seal

    factory = get_db(app).sessionmaker
    ref = open_run(factory, target="range:127.16.9.0/30", source="worker", owner=f"zones:{default_owner()}")
    hand_off(ref.id)
    with factory() as session:
        session.get(ScanRun, ref.id).distributed = True
        unit = ScanUnit(scan_run_id=ref.id, zone=zone, seq=0, state="queued", addresses=["127.16.9.1"],
                        attempts=0, observations=0)
        session.add(unit)
        session.commit()
        unit_id = unit.id
    token = seal(load_keys(box.key_dir, zone), {"targets": [{"h": "127.16.9.1", "p": [], "s": False}], "creds": []})
    celery_for(app.config["BROKER_URL"]).send_task(
        PROBE_UNIT, args=[ref.id, unit_id, zone, token, {"ingest_queue": box.ingest_queue, "retry_delay_s": 0.2}],
        queue=queue_for(zone))
    return ref.id, unit_id


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_three_zones_kill_partition_and_deadline(db_url, tmp_path):
    from cctv_monitor import create_app
    from cctv_monitor.crypto import encrypt_credentials
    from cctv_monitor.db import get_db
    from cctv_monitor.cli import cli
    from cctv_monitor.dispatch import dispatch_scan
    from cctv_monitor.zone_status import zone_workers
    from cctv_monitor.zone_worker import MAX_UNIT_RETRIES

    instance = tmp_path / "instance"
    with lab(tmp_path) as box:
        broker = box.open_broker()
        zones = [box.add_zone(i, CAMERAS, delay_ms=DELAY_MS, wait=False) for i in (1, 2, 3)]  # start together
        app = create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "test-secret",
                          "INSTANCE_PATH": str(instance), "BROKER_URL": broker, "ZONE_KEY_DIR": str(box.key_dir),
                          "INGEST_QUEUE": box.ingest_queue, "ONVIF_PORTS": [8000], "ZONE_UNIT_SIZE": 2,
                          "PROBE_TIMEOUT_S": 4.0, "RUN_DEADLINE_S": 600})
        try:
            env = {"CCTV_DATABASE_URL": db_url, "CCTV_SECRET_KEY": "test-secret", "CCTV_INSTANCE_PATH": str(instance)}
            box.ingest_worker(env)  # starts while the fleets come up
            box.wait_ready(zones)
            workers = {z["zone"]: box.zone_worker(z) for z in zones}
            runner = app.test_cli_runner()
            with get_db(app).sessionmaker() as session:
                for i, zone in enumerate(zones, 1):
                    token = encrypt_credentials(app, [(zone["username"], zone["password"])])
                    add_project(session, code=f"P-Z{i}", agency_code=f"ag-z{i}", approved=CAMERAS,
                                ranges=(f"127.16.{i}.0/29",), ports=[8000], credentials=token, site_code=f"s{i}",
                                macs=tuple(zone["macs"]))
                    session.scalar(select(Site).where(Site.code == f"s{i}")).zone = zone["zone"]
                session.commit()
                everything = ",".join(f"127.16.{i}.0/29" for i in (1, 2, 3))
                cameras = {f"{h}:8000" for z in zones for h in z["hosts"]}

                # The central namespace cannot reach any camera; the zone workers will.
                for address in cameras:
                    with pytest.raises(OSError):
                        socket.create_connection((address.split(":")[0], 8000), 1).close()

                # 1. One scan of all three zones: every camera recorded exactly once. `scan` waits for the
                # run to close, printing its units as they finish.
                done = runner.invoke(cli, args=["scan", "--range", everything, "--progress"])
                assert done.exit_code == 0, (done.output, box.log("ingest"))
                first = int(re.search(r"Scan run #(\d+) of range .*: completed", done.output).group(1))
                assert re.search(rf"run #{first}: 9 of 9 units finished \(done 9\)", done.output), done.output
                run = _wait_closed(session, first, 5, box)
                seen = _observed(session, first)
                assert run.state == "completed" and run.error is None, run.error
                assert sorted(seen) == sorted(cameras), (seen, box.log(f"worker-{zones[0]['zone']}"))
                states = set(session.scalars(select(ScanUnit.state).where(ScanUnit.scan_run_id == first)))
                assert states == {"done"}
                assert session.scalar(select(func.count()).select_from(Device)) == len(cameras)

                # 2. SIGKILL of zone 1's worker in the middle of a unit: redelivered, nothing doubled.
                z1 = zones[0]["zone"]
                sent = runner.invoke(cli, args=["scan", "--range", everything, "--no-wait"])
                assert sent.exit_code == 0 and "sent to the zone workers" in sent.output, sent.output
                second = int(re.search(r"Scan run #(\d+)", sent.output).group(1))
                wait_for(lambda: _unit_running(session, second, z1), 60, "a unit of zone 1 running")
                box.stop(workers[z1], signal.SIGKILL)
                workers[z1] = box.zone_worker(zones[0])
                run = _wait_closed(session, second, 120, box)
                seen = _observed(session, second)
                assert run.state == "completed" and run.error is None, run.error
                assert sorted(seen) == sorted(cameras)  # all there, none twice
                attempts = session.scalars(select(ScanUnit.attempts).where(ScanUnit.scan_run_id == second,
                                                                           ScanUnit.zone == z1)).all()
                assert max(attempts) >= 2, attempts  # the interrupted unit ran again

                # 3. Zone 2's bridge cut while its worker is in a unit, then restored: nothing lost.
                z2 = zones[1]["zone"]
                third = dispatch_scan(app, "range", everything)
                wait_for(lambda: _unit_running(session, third, z2), 60, "a unit of zone 2 running")
                box.cut(z2)
                time.sleep(PARTITION_S)
                assert _run(session, third).state == "running"  # zone 2's units cannot have been counted
                box.cut(z2, restore=True)
                run = _wait_closed(session, third, 180, box)
                seen = _observed(session, third)
                assert run.state == "completed" and run.error is None, run.error
                assert sorted(seen) == sorted(cameras)

                # 3b. A unit the worker cannot probe (an address without a port: it raises inside the
                # worker) is retried twice, then recorded failed on its unit and on the run, which closes.
                failed_run, failed_unit = _unit_that_fails(app, box, zones[0]["zone"])
                run = _wait_closed(session, failed_run, 30, box)
                unit = session.get(ScanUnit, failed_unit)
                assert unit.state == "failed" and unit.attempts == MAX_UNIT_RETRIES + 1, (unit.state, unit.attempts)
                assert unit.error.startswith(f"after {MAX_UNIT_RETRIES + 1} attempts: IndexError"), unit.error
                assert run.state == "completed" and f"unit(s) failed in zones {z1}" in run.error, run.error

                # 4. Zone 3 without a worker: the run closes at its deadline, zone 3's devices not reached.
                z3 = zones[2]
                box.stop(workers.pop(z3["zone"]))
                before = {d.address: d.status for d in session.scalars(select(Device))}
                app.config["RUN_DEADLINE_S"] = DEADLINE_S
                started = time.monotonic()
                fourth = dispatch_scan(app, "range", everything)
                run = _wait_closed(session, fourth, 90, box)
                assert time.monotonic() - started >= DEADLINE_S - 1  # closed by the deadline, not before
                assert run.state == "completed" and "not reached" in (run.error or ""), run.error
                zone3 = {f"{h}:8000" for h in z3["hosts"]}
                assert sorted(_observed(session, fourth)) == sorted(cameras - zone3)
                units = dict(session.execute(select(ScanUnit.zone, ScanUnit.state)
                                             .where(ScanUnit.scan_run_id == fourth)).all())
                assert units[z3["zone"]] == "expired"
                session.expire_all()
                for device in session.scalars(select(Device)):
                    if device.address in zone3:
                        assert device.not_reached_run_id == fourth
                        assert device.status == before[device.address]  # last status kept, shown as stale
                    else:
                        assert device.not_reached_run_id is None

                # 5. The scans page: units per state of each run, and the workers that answer per zone.
                save_user(session, "boss", password="Zone#Pass2567", role="admin", language="en")
                session.commit()
                client = app.test_client()
                login(client, "boss", "Zone#Pass2567")
                page = client.get("/scans").get_data(as_text=True)
                units_row = page.split(f'id="units-{fourth}"', 1)[1].split("</div>", 1)[0]
                assert "expired 3" in units_row and "done 6" in units_row, units_row  # /29: 6 hosts, 2 per unit
                zone_table = page.split('id="zone-table"', 1)[1].split("</table>", 1)[0]
                for zone in zones[:2]:
                    assert f"zone-{zone['zone']}@lab" in zone_table
                row3 = zone_table.split(f"<td>{z3['zone']}</td>", 1)[1].split("</tr>", 1)[0]
                assert "no worker answered" in row3
                failed_row = page.split(f'id="units-{failed_run}"', 1)[1].split("</div>", 1)[0]
                assert "failed 1" in failed_row and f"unit(s) failed in zones {z1}" in page, failed_row
                item = next(i for i in client.get("/api/v1/scans").get_json()["items"] if i["id"] == failed_run)
                assert item["units"]["failed"] == 1 and f"failed in zones {z1}" in item["error"], item

                # 6. The workers' ping answer is kept 30 s: a worker gone since still shows, a fresh ask not.
                box.stop(workers[z1], signal.SIGKILL)
                assert f"zone-{z1}@lab" in (zone_workers(broker) or {}).get(z1, [])
                assert z1 not in (zone_workers(broker, max_age_s=0) or {})
        finally:
            app.extensions["cctv_db"].dispose()
            if box.broker_url:
                purge_queues(box.broker_url, [box.ingest_queue, *(f"probe.{z['zone']}" for z in zones)])
    assert not [n for n in os.popen("ip netns list").read().split() if n.startswith(box.tag)]
