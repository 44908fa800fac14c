"""Scheduled scans: config -> ScanSchedule rows -> APScheduler SQLAlchemy job store; one holder; jobs record runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from cctv_monitor.models import ScanRun, ScanSchedule
from cctv_monitor.scheduler import (
    JOB_PREFIX,
    REAP_JOB,
    ScheduleConfigError,
    SchedulerLock,
    init_scheduler,
    schedules_from_config,
    scheduled_scan,
    shutdown_scheduler,
    sync_schedules,
)
from scan_helpers import add_project

# A range with no camera in it: a real, fast scan (nothing listens on 127.0.250.0/30 port 8000).
EMPTY_RANGE = "127.0.250.0/30"


@pytest.fixture
def sched_app(app, session):
    """The app with a project and a scheduler started; stopped afterwards."""
    add_project(session, code="CR-MS-2568-001", ranges=("127.0.250.0/30",), ports=[8000])
    app.config["ONVIF_PORTS"] = [8000]
    yield app
    shutdown_scheduler(app)


def test_schedules_from_config_validates_and_upserts(app, session):
    add_project(session, code="CR-MS-2568-001")
    rows = schedules_from_config(session, [{"site": "market", "cron": "0 */2 * * *"},
                                           {"agency": "maesai-mun", "interval_minutes": 60, "streams": True}])
    assert [(r.target_kind, r.target_value, r.cron, r.interval_minutes, r.with_streams) for r in rows] == [
        ("site", "market", "0 */2 * * *", None, False), ("agency", "maesai-mun", None, 60, True)]
    schedules_from_config(session, [{"site": "market", "interval_minutes": 15}])  # update, not duplicate
    market = session.scalar(select(ScanSchedule).where(ScanSchedule.target_kind == "site"))
    assert (market.interval_minutes, market.cron) == (15, None)
    assert len(session.scalars(select(ScanSchedule)).all()) == 2
    bad = [
        ([{"site": "market"}], "exactly one of cron or interval_minutes"),
        ([{"site": "market", "cron": "61 * * * *"}], "cron '61 * * * *'"),
        ([{"site": "market", "agency": "maesai-mun", "cron": "0 * * * *"}], "exactly one of site"),
        ([{"site": "nowhere", "cron": "0 * * * *"}], "schedules[0].site: no site with code"),
        ([{"range": "10.0.0.0/8x", "interval_minutes": 5}], "invalid address range"),
        ([{"site": "market", "interval_minutes": 0}], "interval_minutes 0"),
        ([{"site": "market", "cron": "0 * * * *", "every": 1}], "schedules[0].every: unknown field"),
        ([{"range": ",".join(f"127.70.{i}.0/24" for i in range(30)), "cron": "0 * * * *"}],
         "schedules[0].range: at most 255 characters, got 439"),
    ]
    for entries, message in bad:
        with pytest.raises(ScheduleConfigError) as info:
            schedules_from_config(session, entries)
        assert message in str(info.value)


def test_jobs_persisted_synced_and_run(sched_app, session):
    app = sched_app
    schedules_from_config(session, [{"range": EMPTY_RANGE, "interval_minutes": 30},
                                     {"site": "market", "cron": "30 2 * * *"}])
    scheduler = init_scheduler(app, force=True)
    assert scheduler is not None
    jobs = {job.id: job for job in scheduler.get_jobs() if job.id != REAP_JOB}
    assert len(jobs) == 2 and all(j.startswith(JOB_PREFIX) for j in jobs)
    # the job store is a table in the same database (the two schedules and the lease reaper)
    stored = session.execute(text("SELECT count(*) FROM apscheduler_jobs")).scalar()
    assert stored == 3
    site_job = next(j for j in jobs.values() if "site market" in j.name)
    assert site_job.next_run_time.hour == 2 and site_job.next_run_time.minute == 30  # Thai time
    # the dashboard disables one and edits the other: sync follows
    rows = session.scalars(select(ScanSchedule).order_by(ScanSchedule.id)).all()
    rows[1].enabled = False
    session.commit()
    assert sync_schedules(app) == 1
    assert sorted(j.id for j in scheduler.get_jobs()) == sorted([f"{JOB_PREFIX}{rows[0].id}", REAP_JOB])
    # run the range job now, through the scheduler's own thread
    scheduler.modify_job(f"{JOB_PREFIX}{rows[0].id}", next_run_time=datetime.now(timezone.utc))
    deadline = time.monotonic() + 30
    run = None
    while time.monotonic() < deadline:
        session.expire_all()
        run = session.scalar(select(ScanRun).where(ScanRun.trigger == "schedule"))
        if run is not None and run.state in ("completed", "failed"):
            break
        time.sleep(0.2)
    assert run is not None and run.state == "completed", run and run.error
    assert run.target_kind == "range" and run.target_value == EMPTY_RANGE
    # The job records its run after the scan returned (alerts delivered first): wait for that too.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        session.expire_all()
        if session.get(ScanSchedule, rows[0].id).last_run_id is not None:
            break
        time.sleep(0.2)
    assert session.get(ScanSchedule, rows[0].id).last_run_id == run.id


def test_job_never_raises_and_records_skips(sched_app, session):
    app = sched_app
    (row,) = schedules_from_config(session, [{"range": EMPTY_RANGE, "interval_minutes": 30}])
    assert init_scheduler(app, force=True) is not None
    # a live run of the same target elsewhere: the job records a skipped run instead of a second scan
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket

        session.add(ScanRun(target_kind="range", target_value=EMPTY_RANGE, state="running", pid=holder.pid,
                            host=socket.gethostname()))
        session.commit()
        run_id = scheduled_scan(row.id)
    finally:
        holder.kill()
        holder.wait()
    skipped = session.get(ScanRun, run_id)
    assert skipped.state == "failed" and skipped.error.startswith("skipped: a scan of range")
    # the target's site is gone: recorded as a failed run, nothing raised
    (site_row,) = schedules_from_config(session, [{"site": "market", "interval_minutes": 30}])
    from cctv_monitor.models import Site

    session.delete(session.scalar(select(Site)))
    session.commit()
    failed = session.get(ScanRun, scheduled_scan(site_row.id))
    assert failed.state == "failed" and "no site with code 'market'" in failed.error
    assert scheduled_scan(99999) is None  # a deleted schedule: nothing to do, no exception


def test_scheduler_reaps_expired_leases_periodically(app, session):
    """A run whose owner died on another machine is marked interrupted by the scheduler, not only at start."""
    app.config["SCAN_LEASE_S"] = 2.0  # reaped every second
    assert init_scheduler(app, force=True) is not None
    try:
        past = datetime.now(timezone.utc) - timedelta(seconds=5)
        run = ScanRun(target_kind="range", target_value="127.0.251.0/30", state="running", source="api",
                      lease_owner="elsewhere:1:dead", lease_expires=past, started=past, total=3, done=1)
        alive = ScanRun(target_kind="range", target_value="127.0.252.0/30", state="running", source="api",
                        lease_owner="elsewhere:2:alive", lease_expires=past + timedelta(hours=1), started=past)
        session.add_all([run, alive])
        session.commit()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            session.expire_all()
            if session.get(ScanRun, run.id).state != "running":
                break
            time.sleep(0.2)
        reaped = session.get(ScanRun, run.id)
        assert reaped.state == "interrupted" and "lease of elsewhere:1:dead expired" in reaped.error
        assert session.get(ScanRun, alive.id).state == "running"  # a live lease is left alone
    finally:
        shutdown_scheduler(app)


def test_single_holder_lock(app):
    first, second = SchedulerLock(app), SchedulerLock(app)
    assert first.acquire()
    try:
        assert not second.acquire()
        assert init_scheduler(app, force=True) is None  # serve/worker would run without scheduler
    finally:
        first.release()
    assert second.acquire()
    second.release()


def test_lock_released_when_holder_process_is_killed(app, tmp_path):
    """A worker killed with SIGKILL leaves no stale lock: the next one gets it."""
    env = dict(os.environ, CCTV_DATABASE_URL=app.config["DATABASE_URL"], CCTV_INSTANCE_PATH=app.instance_path)
    code = ("import sys,time\nfrom cctv_monitor import create_app\nfrom cctv_monitor.scheduler import SchedulerLock\n"
            "app=create_app()\nlock=SchedulerLock(app)\nprint(lock.acquire(), flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "True"
        assert not SchedulerLock(app).acquire()
    finally:
        proc.kill()
        proc.wait()
    lock = SchedulerLock(app)
    deadline = time.monotonic() + 10
    while not lock.acquire() and time.monotonic() < deadline:
        time.sleep(0.2)  # PostgreSQL notices the dropped connection within moments
    assert lock.held
    lock.release()
