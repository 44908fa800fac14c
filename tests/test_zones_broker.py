"""Zones on the real RabbitMQ without namespaces (no camera traffic): ``cctv-monitor worker`` with
``CCTV_BROKER_URL`` runs a zone worker for zone ``central`` beside it (key made on first start) and ends it
when it stops. (Failed units, ``scan`` waiting and the ping cache: tests/test_zones_distributed.py.)
"""

from __future__ import annotations

import os
import re
import signal

import pytest

from tests.zone_lab import CLI, Lab, rabbit_reachable, wait_for

pytestmark = [pytest.mark.postgres]
if not (os.environ.get("CCTV_TEST_AMQP_UNIX") or rabbit_reachable()):
    pytestmark.append(pytest.mark.skip(reason="RabbitMQ on 127.0.0.1:5672 is not reachable here and "
                                              "CCTV_TEST_AMQP_UNIX names no bridge to it"))


@pytest.fixture
def broker(tmp_path):
    """(lab, broker URL): a relay to the machine's RabbitMQ, ended after the test."""
    box = Lab(tmp_path / "lab")
    box.folder.mkdir()
    try:
        box.open_broker()
        yield box, box.broker_url
    finally:
        box.close()


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
