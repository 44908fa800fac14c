"""A work unit that outlasts the AMQP heartbeat timeout runs once (root: the zone is a namespace).

Celery's solo pool runs a task on the thread that also sends the connection's heartbeats: a unit longer than
two heartbeat intervals made the broker drop the zone worker's connection and hand the unit out again, and
again (celery/celery#3430). Here the heartbeat is 2 s and a unit takes about 10 s.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from cctv_monitor.models import Observation, ScanRun, ScanUnit, Site
from tests.scan_helpers import add_project
from tests.zone_lab import lab, namespace_marks, purge_queues

pytestmark = namespace_marks()

HEARTBEAT_S = 2
DELAY_MS = 1500  # per request: a probe of six requests takes about 9 s, over four heartbeat intervals


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_unit_longer_than_two_heartbeats_is_done_once(db_url, tmp_path):
    from cctv_monitor import create_app
    from cctv_monitor.cli import cli
    from cctv_monitor.crypto import encrypt_credentials
    from cctv_monitor.db import get_db
    from cctv_monitor.zones import queue_for

    instance = tmp_path / "instance"
    with lab(tmp_path) as box:
        broker = box.open_broker()
        zone = box.add_zone(5, 2, delay_ms=DELAY_MS)
        app = create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "test-secret",
                          "INSTANCE_PATH": str(instance), "BROKER_URL": broker, "ZONE_KEY_DIR": str(box.key_dir),
                          "INGEST_QUEUE": box.ingest_queue, "ONVIF_PORTS": [8000], "ZONE_UNIT_SIZE": 2,
                          "PROBE_TIMEOUT_S": 4.0, "RUN_DEADLINE_S": 60})
        try:
            box.ingest_worker({"CCTV_DATABASE_URL": db_url, "CCTV_SECRET_KEY": "test-secret",
                               "CCTV_INSTANCE_PATH": str(instance)})
            box.zone_worker(zone, env={"CCTV_BROKER_HEARTBEAT_S": str(HEARTBEAT_S)})
            with get_db(app).sessionmaker() as session:
                token = encrypt_credentials(app, [(zone["username"], zone["password"])])
                add_project(session, code="P-HB", agency_code="ag-hb", approved=2, ranges=("127.16.5.0/29",),
                            ports=[8000], credentials=token, site_code="hb", macs=tuple(zone["macs"]))
                session.scalar(select(Site).where(Site.code == "hb")).zone = zone["zone"]
                session.commit()
                done = app.test_cli_runner().invoke(cli, args=["scan", "--range", "127.16.5.0/29"])
                assert done.exit_code == 0, (done.output, box.log("ingest"))
                run_id = int(re.search(r"Scan run #(\d+)", done.output).group(1))
                session.expire_all()
                run = session.get(ScanRun, run_id)
                units = session.execute(select(ScanUnit.state, ScanUnit.attempts)
                                        .where(ScanUnit.scan_run_id == run_id)).all()
                worker_log = box.log(f"worker-{zone['zone']}")
                assert run.state == "completed" and run.error is None, (run.state, run.error, units, worker_log)
                assert units and {tuple(u) for u in units} == {("done", 1)}, (units, worker_log)  # each once
                observed = session.execute(select(Observation.address, Observation.data)
                                           .where(Observation.scan_run_id == run_id)).all()
                assert sorted(a for a, _ in observed) == sorted(f"{h}:8000" for h in zone["hosts"])
                # the unit really outlasted two heartbeat intervals
                assert max(float(d.get("duration_s") or 0) for _, d in observed) > 2 * HEARTBEAT_S
                assert "Connection to broker lost" not in worker_log
        finally:
            purge_queues(broker, [box.ingest_queue, queue_for(zone["zone"])])
