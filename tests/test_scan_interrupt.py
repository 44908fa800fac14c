"""A scan process killed with SIGKILL mid-run leaves a consistent database; the next scan succeeds.

``cctv-monitor scan`` runs as a subprocess against a slow simulated fleet (every ONVIF reply delayed),
is killed once a few cameras are committed, then the database is checked and a second scan is run.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from sqlalchemy import func, select

from cctv_monitor.models import Device, Observation, ScanRun
from cctv_monitor.scanning import run_scan
from scan_helpers import add_project

REPO = Path(__file__).resolve().parent.parent
BASE = yaml.safe_load((REPO / "config" / "fleets" / "demo.yaml").read_text())["cameras"][0]
RANGE = "127.81.0.0/27"

pytestmark = pytest.mark.slow


def slow_fleet(n: int = 8, delay_s: float = 0.25) -> dict:
    cams = []
    for i in range(n):
        cam = copy.deepcopy(BASE)
        cam.update(name=f"slow-{i}", host=f"127.81.0.{i + 1}", macs=[f"c0:56:e3:81:00:{i + 1:02x}"],
                   serial=f"SLOWCAM{i:06d}", quirks=[{"name": "slow", "delay_s": delay_s}])
        cam.pop("expect", None)
        cams.append(cam)
    defaults = yaml.safe_load((REPO / "config" / "fleets" / "demo.yaml").read_text())["defaults"]
    return {"fleet": "slow", "defaults": defaults, "cameras": cams}


@contextmanager
def scan_process(app, port: int) -> Iterator[subprocess.Popen]:
    """``cctv-monitor scan`` of RANGE as a child process; killed (if still alive) and its pipes closed on exit."""
    env = dict(os.environ, CCTV_DATABASE_URL=app.config["DATABASE_URL"], CCTV_INSTANCE_PATH=app.instance_path,
               CCTV_PROBE_CONCURRENCY="2", CCTV_PROBE_TIMEOUT_S="10")
    code = (f"import sys\nfrom cctv_monitor import config\nconfig.Config.ONVIF_PORTS = [{port}]\n"
            "from cctv_monitor.cli import main\nsys.argv = ['cctv-monitor', 'scan', '--range', sys.argv[1], "
            "'--no-progress']\nmain()\n")
    proc = subprocess.Popen([sys.executable, "-c", code, RANGE], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.fixture
def site(app, session):
    """A project whose site covers the range and holds the cameras' credentials (encrypted)."""
    from cctv_monitor.crypto import encrypt_credentials

    return add_project(session, ranges=(RANGE,), credentials=encrypt_credentials(app, [("admin", "Demo#2567")]))


def test_sigkill_mid_scan_leaves_database_consistent(app, session, site):
    from cctv_monitor.simulator.testing import running_fleet

    with running_fleet(slow_fleet()) as fleet:
        port = fleet.cameras[0].port
        with scan_process(app, port) as proc:
            deadline = time.monotonic() + 120
            done = 0
            while time.monotonic() < deadline and proc.poll() is None:
                session.expire_all()
                run = session.scalar(select(ScanRun))
                done = run.done if run is not None else 0
                if done >= 3:
                    break
                time.sleep(0.1)
            assert proc.poll() is None, proc.communicate()
            assert done >= 3, "the scan never recorded three cameras"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)

        session.expire_all()
        run = session.scalar(select(ScanRun))
        assert run.state == "running" and run.pid == proc.pid  # as the killed process left it
        observations = session.scalars(select(Observation)).all()
        devices = {d.id: d for d in session.scalars(select(Device))}
        # consistent: every committed camera has its device, its observation and its counter together
        assert len(observations) == run.done < 8
        assert {o.device_id for o in observations} == set(devices)
        assert all(devices[o.device_id].last_observation_id == o.id for o in observations)
        assert all(d.status == "unregistered" and d.last_seen is not None for d in devices.values()), \
        [(d.address, d.status, d.last_seen) for d in devices.values()]

        # the next scan marks the dead run interrupted and completes
        app.config["ONVIF_PORTS"] = [port]
        app.config["PROBE_TIMEOUT_S"] = 10.0
        second = run_scan(app, "range", RANGE)
    session.expire_all()
    first = session.get(ScanRun, run.id)
    assert first.state == "interrupted" and "ended without finishing" in first.error
    assert session.get(ScanRun, second).state == "completed"
    assert session.scalar(select(func.count()).select_from(Device)) == 8  # no duplicates after the rescan
    assert session.get(ScanRun, second).done == 8


def test_sigterm_marks_run_interrupted(app, session, site):
    from cctv_monitor.simulator.testing import running_fleet

    with running_fleet(slow_fleet(4, delay_s=0.5)) as fleet:
        with scan_process(app, fleet.cameras[0].port) as proc:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                session.expire_all()
                run = session.scalar(select(ScanRun))
                if run is not None and run.state == "running" and run.total:
                    break
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    session.expire_all()
    run = session.scalar(select(ScanRun))
    assert run.state == "interrupted" and run.finished is not None and "interrupted" in run.error


# -- SIGKILL at random moments ---------------------------------------------------------------------------

KILLS = 20


def _dangling_references(session) -> list[str]:
    """Every foreign key of every table, checked by query (PostgreSQL enforces them; the test proves it)."""
    from sqlalchemy import and_, exists

    from cctv_monitor.models import Base

    problems = []
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            parent, child = fk.column, fk.parent
            orphan = select(func.count()).select_from(table).where(
                child.is_not(None), ~exists().where(and_(parent == child)))
            n = session.scalar(orphan)
            if n:
                problems.append(f"{n} row(s) of {table.name}.{child.name} point to no {parent.table.name}")
    return problems


def _check_consistent(app, session) -> None:
    """Integrity check of the engine, foreign keys, and no camera half-recorded."""
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
    session.expire_all()
    try:
        assert _dangling_references(session) == []
        for run in session.scalars(select(ScanRun)):
            stored = session.scalar(select(func.count()).select_from(Observation)
                                    .where(Observation.scan_run_id == run.id))
            # a camera's observation and the run's counter are committed together, or neither
            assert stored == run.done, (run.id, run.state, stored, run.done)
        latest = dict(session.execute(select(Observation.device_id, func.max(Observation.id))
                                      .group_by(Observation.device_id)).all())
        for device in session.scalars(select(Device)):
            assert device.last_observation_id == latest.get(device.id), device.address
            if device.last_observation_id is not None:
                assert device.last_seen is not None and device.status != "unknown", device.address
        for obs in session.scalars(select(Observation)):
            assert obs.device_id is not None and obs.probe_status and obs.data, obs.id
            assert obs.data.get("address") == obs.address, obs.id
    finally:
        session.rollback()  # hold no read transaction while the next scan writes


def _run_count(session) -> int:
    try:
        return session.scalar(select(func.count()).select_from(ScanRun))
    finally:
        session.rollback()


def _last_run_state(session) -> str | None:
    try:
        return session.scalar(select(ScanRun.state).order_by(ScanRun.id.desc()).limit(1))
    finally:
        session.rollback()


def test_sigkill_at_twenty_random_moments_never_corrupts_and_the_next_scan_succeeds(app, session, site):
    """kill -9 of a scan process at 20 random moments (sweep, probing, recording, finishing; a few in its
    start-up): after each the database passes its integrity check and holds no half-recorded camera; the
    next start marks the dead run interrupted; the scan after the last kill completes."""
    import random

    from cctv_monitor.simulator.testing import running_fleet

    seed = int(os.environ.get("CCTV_KILL_SEED", random.randrange(1_000_000)))
    rng = random.Random(seed)
    cameras = 6
    with running_fleet(slow_fleet(cameras, delay_s=0.05)) as fleet:
        port = fleet.cameras[0].port
        # one whole scan process first: when its run row appears (start-up done), when the run is closed and
        # when the process exits
        started = time.monotonic()
        row_at = closed_at = None
        with scan_process(app, port) as proc:
            while proc.poll() is None:
                if row_at is None and _run_count(session):
                    row_at = time.monotonic() - started
                if row_at is not None and closed_at is None and _last_run_state(session) not in ("running", "pending"):
                    closed_at = time.monotonic() - started
                time.sleep(0.05)
            _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        lifetime = time.monotonic() - started
        row_at = row_at if row_at is not None else lifetime / 2
        closed_at = closed_at if closed_at is not None else lifetime
        # most moments while the run is live (sweep, probing, recording), where the database is written; a few
        # before the run row exists and a few while the process ends (on a loaded machine that tail is long)
        moments = [round(rng.uniform(row_at * 0.8, closed_at) if i % 5 else rng.uniform(row_at * 0.8, lifetime), 2)
                   for i in range(KILLS)]
        killed_mid_run: list[int] = []
        for moment in moments:
            before = _run_count(session)
            with scan_process(app, port) as proc:
                time.sleep(moment)
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(30)
            assert proc.returncode in (0, -signal.SIGKILL), f"seed {seed}, kill at {moment} s"
            _check_consistent(app, session)
            if _run_count(session) > before:
                run = session.scalars(select(ScanRun).order_by(ScanRun.id.desc())).first()
                if run.state in ("running", "pending"):
                    killed_mid_run.append(run.id)  # left as the killed process left it
                session.rollback()
        app.config["ONVIF_PORTS"] = [port]
        app.config["PROBE_TIMEOUT_S"] = 10.0
        final = run_scan(app, "range", RANGE)
    _check_consistent(app, session)
    runs = {r.id: r for r in session.scalars(select(ScanRun))}
    assert runs[final].state == "completed" and runs[final].done == cameras
    # many kills hit a live run (the moments are calibrated on one scan; a loaded machine shifts them)
    assert len(killed_mid_run) >= KILLS // 4, (seed, moments, lifetime, row_at)
    for run_id in killed_mid_run:
        assert runs[run_id].state == "interrupted" and "ended without finishing" in runs[run_id].error
    assert not [r.id for r in runs.values() if r.state in ("running", "pending")]
    assert session.scalar(select(func.count()).select_from(Device)) == cameras  # no duplicate devices
