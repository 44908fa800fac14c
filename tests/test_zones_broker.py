"""Zones on the real RabbitMQ without namespaces (no camera traffic): what the three-zone test does not cover.

- a unit the zone worker cannot finish is retried a bounded number of times, then recorded as failed on
  its unit and on the run, which closes; the scans page and ``GET /api/v1/scans`` show it;
- the scans page's ``inspect ping`` answer is kept for 30 s (a worker gone meanwhile still shows), then
  asked again;
- ``cctv-monitor worker`` with ``CCTV_BROKER_URL`` runs a zone worker for zone ``central`` and ends it.

Workers run in threads of this process (Celery's embedded test worker), except the ``worker`` command.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest
from sqlalchemy import select

from cctv_monitor.models import ScanRun, ScanUnit
from tests.zone_lab import CLI, Lab, purge_queues, rabbit_reachable, wait_for

pytestmark = [pytest.mark.postgres]
if not (os.environ.get("CCTV_TEST_AMQP_UNIX") or rabbit_reachable()):
    pytestmark.append(pytest.mark.skip(reason="RabbitMQ on 127.0.0.1:5672 is not reachable here and "
                                              "CCTV_TEST_AMQP_UNIX names no bridge to it"))


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """(lab, broker URL): a relay to the machine's RabbitMQ, shared by this module's tests."""
    box = Lab(tmp_path_factory.mktemp("broker"))
    try:
        box.open_broker()
        yield box, box.broker_url
    finally:
        box.close()


def _app(db_url, tmp_path, box: Lab, broker_url: str):
    from cctv_monitor import create_app

    return create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "test-secret",
                       "INSTANCE_PATH": str(tmp_path / "instance"), "BROKER_URL": broker_url,
                       "ZONE_KEY_DIR": str(box.key_dir), "INGEST_QUEUE": box.ingest_queue})


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_failed_unit_is_recorded_and_ping_is_cached(db_url, tmp_path, broker):
    from celery.contrib.testing.worker import start_worker

    from cctv_monitor.accounts import save_user
    from cctv_monitor.db import get_db
    from cctv_monitor.dispatch import celery_for
    from cctv_monitor.ingest import build_ingest_app
    from cctv_monitor.queueing import PROBE_UNIT
    from cctv_monitor.scan.runs import default_owner, hand_off, open_run
    from cctv_monitor.zone_status import zone_workers
    from cctv_monitor.zone_worker import MAX_UNIT_RETRIES
    from cctv_monitor.zones import create_zone_key, load_keys, queue_for, seal
    from tests.dashboard_helpers import login

    box, broker_url = broker
    zone = f"{box.tag}-bad"
    create_zone_key(box.key_dir, zone)
    app = _app(db_url, tmp_path, box, broker_url)
    node = f"zone-{zone}@test"
    try:
        factory = get_db(app).sessionmaker
        # A run across zones with one unit the worker cannot probe (an address with no port: it raises).
        ref = open_run(factory, target="range:127.0.254.0/30", source="worker", owner=f"zones:{default_owner()}")
        hand_off(ref.id)
        with factory() as session:
            run = session.get(ScanRun, ref.id)
            run.distributed = True
            unit = ScanUnit(scan_run_id=ref.id, zone=zone, seq=0, state="queued", addresses=["127.0.0.1"],
                            attempts=0, observations=0)
            session.add(unit)
            session.commit()
            unit_id = unit.id
        token = seal(load_keys(box.key_dir, zone), {"targets": [{"h": "127.0.0.1", "p": [], "s": False}],
                                                     "creds": []})
        celery_for(broker_url).send_task(PROBE_UNIT, args=[ref.id, unit_id, zone, token,
                                                           {"ingest_queue": box.ingest_queue}],
                                         queue=queue_for(zone))
        ingest_app = build_ingest_app(app)
        worker = box.start([CLI, "zone-worker", "--zone", zone, "--key-dir", str(box.key_dir), "--name", node],
                           log="zone-worker", env={"CCTV_BROKER_URL": broker_url, "CCTV_DATABASE_URL": ""})
        with start_worker(ingest_app, perform_ping_check=False, hostname=f"ingest-{box.tag}@test",
                          queues=[box.ingest_queue], shutdown_timeout=20):
            with factory() as session:
                def closed():
                    session.expire_all()
                    return session.get(ScanRun, ref.id).state != "running"
                try:
                    wait_for(closed, 30, "the run to close after the failed unit")
                except AssertionError:
                    unit = session.get(ScanUnit, unit_id)
                    raise AssertionError(f"run still open; unit {unit.state}, {unit.attempts} attempt(s), "
                                         f"{unit.error}\n{box.log('zone-worker')}") from None
                unit = session.get(ScanUnit, unit_id)
                run = session.get(ScanRun, ref.id)
                assert unit.state == "failed" and unit.attempts == MAX_UNIT_RETRIES + 1, (unit.state, unit.attempts)
                assert unit.error.startswith(f"after {MAX_UNIT_RETRIES + 1} attempts: IndexError"), unit.error
                assert run.state == "completed" and f"unit(s) failed in zones {zone}" in run.error, run.error
            # The worker answers Celery's ping; the answer is kept for the next page loads.
            assert zone_workers(broker_url, max_age_s=0)[zone] == [node]
            box.stop(worker)
        # The worker is gone: the kept answer still names it (30 s), a fresh ask does not.
        assert zone_workers(broker_url)[zone] == [node]
        assert zone not in (zone_workers(broker_url, max_age_s=0) or {})

        with factory() as session:
            save_user(session, "boss", password="Zone#Pass2567", role="admin", language="en")
            session.commit()
        client = app.test_client()
        login(client, "boss", "Zone#Pass2567")
        item = next(i for i in client.get("/api/v1/scans").get_json()["items"] if i["id"] == ref.id)
        assert item["units"]["failed"] == 1 and f"failed in zones {zone}" in item["error"]
        page = client.get("/scans").get_data(as_text=True)
        units_row = page.split(f'id="units-{ref.id}"', 1)[1].split("</div>", 1)[0]
        assert "failed 1" in units_row, units_row
        assert f"unit(s) failed in zones {zone}" in page
    finally:
        app.extensions["cctv_db"].dispose()
        purge_queues(broker_url, [box.ingest_queue, queue_for(zone)])


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_worker_runs_the_central_zone_worker(db_url, tmp_path, broker):
    from cctv_monitor.zone_status import zone_workers

    box, broker_url = broker
    key_dir = tmp_path / "keys"
    env = {"CCTV_DATABASE_URL": db_url, "CCTV_SECRET_KEY": "test-secret", "CCTV_INSTANCE_PATH": str(tmp_path / "i"),
           "CCTV_BROKER_URL": broker_url, "CCTV_ZONE_KEY_DIR": str(key_dir), "CCTV_INGEST_QUEUE": box.ingest_queue}
    proc = box.start([CLI, "worker"], log="worker-command", env=env)
    try:
        log = box.folder / "worker-command.log"
        found = wait_for(lambda: re.search(rb"Zone worker for zone 'central': pid (\d+)", log.read_bytes()), 30,
                         "the central zone worker to start")
        child = int(found.group(1))
        assert (key_dir / "central.key").exists()  # made for the server's own zone
        wait_for(lambda: "central" in (zone_workers(broker_url, max_age_s=0) or {}), 30,
                 "the central zone worker to answer ping")
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(60)
        assert proc.returncode == 0, box.log("worker-command")
        assert not os.path.exists(f"/proc/{child}") or _zombie(child), "the zone worker outlived `worker`"
    finally:
        box.stop(proc)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
