"""Zones on Celery + RabbitMQ (root): three zones in three namespaces, each with its own fleet and zone worker;
the central side (this process, the ingest worker, PostgreSQL) cannot reach the cameras.

One sequence of runs over the same province (each step needs the devices the one before recorded):
every camera recorded once; a zone worker killed with SIGKILL mid-unit (redelivered, nothing doubled);
a zone's bridge cut for 30 s while its worker runs (nothing lost); a zone without a worker (the run
closes at its deadline, that zone's devices "not reached", their status kept).
"""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest
from sqlalchemy import func, select

from cctv_monitor.models import Device, Observation, ScanRun, ScanUnit, Site
from cctv_monitor.accounts import save_user
from tests.dashboard_helpers import login
from tests.scan_helpers import add_project
from tests.zone_lab import lab, purge_queues, rabbit_reachable, wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.postgres]
if os.geteuid() != 0:
    pytestmark.append(pytest.mark.skip(reason="needs root to create network namespaces (ip netns)"))
elif not (os.environ.get("CCTV_TEST_AMQP_UNIX") or rabbit_reachable()):
    pytestmark.append(pytest.mark.skip(reason="RabbitMQ on 127.0.0.1:5672 is not reachable here and "
                                              "CCTV_TEST_AMQP_UNIX names no bridge to it"))

CAMERAS = 4
DELAY_MS = 120  # each request of a probe waits this long: a unit is in flight long enough to be interrupted


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


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_three_zones_kill_partition_and_deadline(db_url, tmp_path):
    from cctv_monitor import create_app
    from cctv_monitor.crypto import encrypt_credentials
    from cctv_monitor.db import get_db
    from cctv_monitor.dispatch import dispatch_scan

    instance = tmp_path / "instance"
    with lab(tmp_path) as box:
        broker = box.open_broker()
        zones = [box.add_zone(i, CAMERAS, delay_ms=DELAY_MS) for i in (1, 2, 3)]
        app = create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "test-secret",
                          "INSTANCE_PATH": str(instance), "BROKER_URL": broker, "ZONE_KEY_DIR": str(box.key_dir),
                          "INGEST_QUEUE": box.ingest_queue, "ONVIF_PORTS": [8000], "ZONE_UNIT_SIZE": 2,
                          "PROBE_TIMEOUT_S": 4.0, "RUN_DEADLINE_S": 600})
        try:
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

                env = {"CCTV_DATABASE_URL": db_url, "CCTV_SECRET_KEY": "test-secret",
                       "CCTV_INSTANCE_PATH": str(instance)}
                box.ingest_worker(env)
                workers = {z["zone"]: box.zone_worker(z) for z in zones}

                # 1. One scan of all three zones: every camera recorded exactly once.
                first = dispatch_scan(app, "range", everything)
                run = _wait_closed(session, first, 120, box)
                seen = _observed(session, first)
                assert run.state == "completed" and run.error is None, run.error
                assert sorted(seen) == sorted(cameras), (seen, box.log(f"worker-{zones[0]['zone']}"))
                states = set(session.scalars(select(ScanUnit.state).where(ScanUnit.scan_run_id == first)))
                assert states == {"done"}
                assert session.scalar(select(func.count()).select_from(Device)) == len(cameras)

                # 2. SIGKILL of zone 1's worker in the middle of a unit: redelivered, nothing doubled.
                z1 = zones[0]["zone"]
                second = dispatch_scan(app, "range", everything)
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

                # 3. Zone 2's bridge cut for 30 s while its worker is in a unit, then restored: nothing lost.
                z2 = zones[1]["zone"]
                third = dispatch_scan(app, "range", everything)
                wait_for(lambda: _unit_running(session, third, z2), 60, "a unit of zone 2 running")
                box.cut(z2)
                time.sleep(30)
                assert _run(session, third).state == "running"  # zone 2's units cannot have been counted
                box.cut(z2, restore=True)
                run = _wait_closed(session, third, 180, box)
                seen = _observed(session, third)
                assert run.state == "completed" and run.error is None, run.error
                assert sorted(seen) == sorted(cameras)

                # 4. Zone 3 without a worker: the run closes at its deadline, zone 3's devices not reached.
                z3 = zones[2]
                box.stop(workers.pop(z3["zone"]))
                before = {d.address: d.status for d in session.scalars(select(Device))}
                app.config["RUN_DEADLINE_S"] = 15
                started = time.monotonic()
                fourth = dispatch_scan(app, "range", everything)
                run = _wait_closed(session, fourth, 90, box)
                assert time.monotonic() - started >= 14  # closed by the deadline, not before
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
        finally:
            app.extensions["cctv_db"].dispose()
            if box.broker_url:
                purge_queues(box.broker_url, [box.ingest_queue, *(f"probe.{z['zone']}" for z in zones)])
    assert not [n for n in os.popen("ip netns list").read().split() if n.startswith(box.tag)]
