"""Scheduled scans with APScheduler 3.x: schedules per site, agency, project or range, in the database.

* Schedules are :class:`~cctv_monitor.models.ScanSchedule` rows: loaded from ``config/schedules.yaml`` by
  :func:`schedules_from_config`, edited later from the dashboard, then pushed into the scheduler by
  :func:`sync_schedules`. Jobs live in APScheduler's SQLAlchemy job store (table ``apscheduler_jobs`` in
  the same database), so next run times survive restarts.
* Never two runs of the same target at once: ``max_instances=1`` per job, and :func:`run_scan` refuses a
  second live run of a target whoever started it (CLI, dashboard, another process).
* Missed runs are coalesced (``coalesce=True``): after downtime a job runs once, not once per missed slot.
* A job records its run (a ScanRun row, also when it was skipped or failed) and never raises into the
  scheduler.
* The scheduler also reaps runs whose lease expired (:func:`reap_leases`, every ``SCAN_LEASE_S / 2`` s, at
  most every minute), so a run whose owner died elsewhere is marked interrupted without waiting for the
  next scan or restart.
* Only one process may hold the scheduler (``serve`` or ``worker``): :class:`SchedulerLock` takes a
  PostgreSQL advisory lock on a connection it keeps open (released by the server when the process dies,
  even on SIGKILL), or on SQLite an exclusive ``flock`` on a lock file beside the database file (released
  by the kernel when the process dies). A second process finds the lock taken and runs without scheduler.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import socket
import zlib
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session

from cctv_monitor.db import get_db
from cctv_monitor.models import ScanRun, ScanSchedule, utcnow
from cctv_monitor.statuses import ScanState

LOGGER = logging.getLogger(__name__)

__all__ = ["init_scheduler", "sync_schedules", "schedules_from_config", "load_schedule_file", "scheduled_scan",
           "SchedulerLock", "ScheduleConfigError", "JOB_PREFIX", "TIMEZONE", "make_trigger", "shutdown_scheduler",
           "reap_leases", "reap_interval_s", "REAP_JOB"]

TIMEZONE = "Asia/Bangkok"  # crontab times are local Thai time
JOB_PREFIX = "scan-schedule-"
REAP_JOB = "reap-expired-leases"
JOBS_TABLE = "apscheduler_jobs"
SCHEDULE_KINDS = ("site", "agency", "project", "range")
SCHEDULE_TARGET_MAX = 255  # scan_schedule.target_value
#: Advisory lock id: a fixed 31-bit number derived from the name, so every process agrees on it.
ADVISORY_KEY = zlib.crc32(b"cctv-monitor-scheduler") & 0x7FFFFFFF

_APPS: dict[str, Flask] = {}  # job functions find their app here (APScheduler stores only the reference)


class ScheduleConfigError(ValueError):
    """A schedule entry is invalid; the message names the entry and the field."""


def make_trigger(cron: str | None, interval_minutes: int | None) -> Any:
    """Cron (``m h dom mon dow``, Thai time) or interval trigger; exactly one must be given."""
    if (cron in (None, "")) == (interval_minutes is None):
        raise ScheduleConfigError("give exactly one of cron or interval_minutes")
    if cron:
        try:
            return CronTrigger.from_crontab(cron, timezone=TIMEZONE)
        except ValueError as exc:
            raise ScheduleConfigError(f"cron {cron!r}: {exc} (expected 'minute hour day month weekday')") from None
    if not isinstance(interval_minutes, int) or isinstance(interval_minutes, bool) or interval_minutes < 1:
        raise ScheduleConfigError(f"interval_minutes {interval_minutes!r}: expected a whole number of minutes >= 1")
    return IntervalTrigger(minutes=interval_minutes, timezone=TIMEZONE)


# -- config file -> ScanSchedule rows ------------------------------------------------------------------------

def load_schedule_file(path: Path) -> list[Mapping[str, Any]]:
    """Entries of a schedules YAML file (``schedules: [...]``); errors name the file."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScheduleConfigError(f"{path}: cannot read schedules: {exc}") from None
    if data is None:
        return []
    entries = data.get("schedules") if isinstance(data, Mapping) else None
    if not isinstance(entries, list):
        raise ScheduleConfigError(f"{path}: expected a mapping with a 'schedules' list")
    return entries


def schedules_from_config(session: Session, entries: Iterable[Mapping[str, Any]], *, source: str = "config",
                          check_targets: bool = True) -> list[ScanSchedule]:
    """Create or update ScanSchedule rows from config entries; all valid or none written.

    Entry: one of ``site``/``agency``/``project``/``range`` (the target), one of ``cron``/
    ``interval_minutes``, optional ``streams`` (bool) and ``enabled`` (bool).
    """
    from cctv_monitor.scanning import ScanTargetError, resolve_scope

    parsed = []
    for index, entry in enumerate(entries):
        where = f"{source}: schedules[{index}]"
        if not isinstance(entry, Mapping):
            raise ScheduleConfigError(f"{where}: expected a mapping")
        unknown = sorted(set(entry) - {*SCHEDULE_KINDS, "cron", "interval_minutes", "streams", "enabled"})
        if unknown:
            raise ScheduleConfigError(f"{where}.{unknown[0]}: unknown field")
        targets = [(k, entry[k]) for k in SCHEDULE_KINDS if entry.get(k)]
        if len(targets) != 1:
            raise ScheduleConfigError(f"{where}: give exactly one of {', '.join(SCHEDULE_KINDS)}")
        kind, value = targets[0][0], str(targets[0][1]).strip()
        if len(value) > SCHEDULE_TARGET_MAX:
            # the schedule's target is a unique key (String(255)); a scan run's target holds any length
            raise ScheduleConfigError(f"{where}.{kind}: at most {SCHEDULE_TARGET_MAX} characters, got {len(value)} "
                                      "(for a long list of ranges, schedule the site or project that holds them)")
        try:
            make_trigger(entry.get("cron"), entry.get("interval_minutes"))
        except ScheduleConfigError as exc:
            raise ScheduleConfigError(f"{where}: {exc}") from None
        for flag in ("streams", "enabled"):
            if flag in entry and not isinstance(entry[flag], bool):
                raise ScheduleConfigError(f"{where}.{flag}: expected true or false")
        if check_targets:
            try:
                resolve_scope(session, kind, value, default_ports=[80])
            except ScanTargetError as exc:
                raise ScheduleConfigError(f"{where}.{kind}: {exc}") from None
        parsed.append((kind, value, entry))
    rows = []
    for kind, value, entry in parsed:
        row = session.scalar(select(ScanSchedule).where(ScanSchedule.target_kind == kind,
                                                        ScanSchedule.target_value == value))
        if row is None:
            row = ScanSchedule(target_kind=kind, target_value=value)
            session.add(row)
        row.cron = entry.get("cron") or None
        row.interval_minutes = entry.get("interval_minutes") or None
        row.with_streams = bool(entry.get("streams", False))
        row.enabled = bool(entry.get("enabled", True))
        rows.append(row)
    session.commit()
    return rows


# -- single holder -------------------------------------------------------------------------------------------

class SchedulerLock:
    """Exclusive right to run the scheduler for one database (see the module docstring)."""

    def __init__(self, app: Flask) -> None:
        """Prepare the lock for ``app``'s database (nothing is taken yet)."""
        self.app = app
        self.url = make_url(app.config["DATABASE_URL"])
        self._conn: Connection | None = None
        self._fd: int | None = None

    @property
    def lock_file(self) -> Path:
        """Lock file for non-PostgreSQL databases: beside the SQLite file, else in the instance folder."""
        if self.url.get_backend_name() == "sqlite" and self.url.database not in (None, "", ":memory:"):
            return Path(f"{self.url.database}.scheduler.lock")
        return Path(self.app.instance_path) / "scheduler.lock"

    def acquire(self) -> bool:
        """Take the lock without waiting; False when another process holds it."""
        if self.held:
            return True
        if self.url.get_backend_name() == "postgresql":
            conn = get_db(self.app).engine.connect()
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}).scalar())
            conn.commit()
            if got:
                self._conn = conn
            else:
                conn.close()
            return got
        path = self.lock_file
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        self._fd = fd
        return True

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._conn is not None or self._fd is not None

    def release(self) -> None:
        """Give the lock back (closing the connection or file also does, as does process death)."""
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
                self._conn.commit()
            finally:
                self._conn.close()
                self._conn = None
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None


# -- scheduler -----------------------------------------------------------------------------------------------

def _app_key(app: Flask) -> str:
    # One scheduler per process (the lock sees to that), so one key; stored job args stay stable across restarts.
    return "app"


def init_scheduler(app: Flask, *, force: bool = False) -> BackgroundScheduler | None:
    """Start the scheduler for ``app`` when SCHEDULER_ENABLED (or ``force``) and this process gets the lock."""
    if not (force or app.config.get("SCHEDULER_ENABLED")):
        return None
    existing = app.extensions.get("cctv_scheduler")
    if existing is not None:
        return existing
    lock = SchedulerLock(app)
    if not lock.acquire():
        LOGGER.warning("another process holds the scheduler for this database; scheduled scans run there")
        return None
    try:
        from cctv_monitor.scanning import mark_dead_runs_interrupted

        with get_db(app).session_scope() as session:
            mark_dead_runs_interrupted(session)
            path = Path(app.config.get("SCHEDULES_FILE") or Path(app.config["CONFIG_DIR"]) / "schedules.yaml")
            if path.exists():
                schedules_from_config(session, load_schedule_file(path), source=str(path))
        key = _app_key(app)
        _APPS[key] = app
        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=get_db(app).engine, tablename=JOBS_TABLE)},
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": int(app.config.get("SCHEDULER_MISFIRE_GRACE_S", 3600))},
            timezone=TIMEZONE)
        scheduler.start()
        app.extensions["cctv_scheduler"] = scheduler
        app.extensions["cctv_scheduler_lock"] = lock
        sync_schedules(app)
        scheduler.add_job("cctv_monitor.scheduler:reap_leases", IntervalTrigger(seconds=reap_interval_s(app)),
                          id=REAP_JOB, name="reap runs whose lease expired", replace_existing=True)
    except BaseException:
        lock.release()
        raise
    atexit.register(shutdown_scheduler, app)
    LOGGER.info("scheduler started with %d job(s)", len(scheduler.get_jobs()))
    return scheduler


def shutdown_scheduler(app: Flask, wait: bool = False) -> None:
    """Stop the scheduler of ``app`` and release the single-holder lock."""
    scheduler = app.extensions.pop("cctv_scheduler", None)
    if scheduler is not None and scheduler.running:
        scheduler.shutdown(wait=wait)
    lock = app.extensions.pop("cctv_scheduler_lock", None)
    if lock is not None:
        lock.release()
    _APPS.pop(_app_key(app), None)


def sync_schedules(app: Flask) -> int:
    """Make the job store match the ScanSchedule rows (after the dashboard edits them); returns job count.

    Jobs whose trigger did not change keep their next run time.
    """
    scheduler: BackgroundScheduler | None = app.extensions.get("cctv_scheduler")
    if scheduler is None:
        return 0
    wanted: dict[str, ScanSchedule] = {}
    with get_db(app).session_scope() as session:
        for row in session.scalars(select(ScanSchedule).where(ScanSchedule.enabled.is_(True))):
            wanted[f"{JOB_PREFIX}{row.id}"] = row
    for job in scheduler.get_jobs():
        if job.id.startswith(JOB_PREFIX) and job.id not in wanted:
            scheduler.remove_job(job.id)
    for job_id, row in wanted.items():
        try:
            trigger = make_trigger(row.cron, row.interval_minutes)
        except ScheduleConfigError as exc:
            LOGGER.error("schedule #%s (%s %s) is invalid and was not scheduled: %s", row.id, row.target_kind,
                         row.target_value, exc)
            if scheduler.get_job(job_id):
                scheduler.remove_job(job_id)
            continue
        current = scheduler.get_job(job_id)
        args = [row.id]
        if current is not None and str(current.trigger) == str(trigger) and list(current.args) == args:
            continue
        scheduler.add_job("cctv_monitor.scheduler:scheduled_scan", trigger, id=job_id, args=args,
                          name=f"scan {row.target_kind} {row.target_value}", replace_existing=True)
    return len(wanted)


def reap_interval_s(app: Flask) -> float:
    """How often the scheduler reaps expired leases: half a lease, at least every minute (and at most every second)."""
    return min(60.0, max(1.0, float(app.config.get("SCAN_LEASE_S") or 120.0) / 2))


def reap_leases() -> int:
    """The job: mark runs interrupted whose lease expired or whose process here is gone; never raises."""
    from cctv_monitor.scan.runs import reap_expired

    app = _APPS.get("app")
    if app is None:
        return 0
    try:
        return reap_expired(get_db(app).sessionmaker)
    except Exception:  # noqa: BLE001 - the scheduler thread must survive a database hiccup
        LOGGER.exception("reaping expired scan leases failed; trying again at the next interval")
        return 0


def scheduled_scan(schedule_id: int) -> int | None:
    """The job: run the schedule's scan and record it; never raises into the scheduler."""
    from cctv_monitor.scanning import ScanAlreadyRunning, ScanError, run_scan

    app = _APPS.get("app")
    if app is None:
        LOGGER.error("scheduled scan #%s: no application registered in this process", schedule_id)
        return None
    try:
        with get_db(app).session_scope() as session:
            row = session.get(ScanSchedule, schedule_id)
            if row is None or not row.enabled:
                LOGGER.info("schedule #%s is gone or disabled; nothing to run", schedule_id)
                return None
            kind, value, streams = row.target_kind, row.target_value, row.with_streams
        try:
            run_id = run_scan(app, kind, value, with_streams=streams, trigger="schedule", started_by="scheduler")
        except ScanAlreadyRunning as exc:
            run_id = _record_skipped(app, kind, value, streams, f"skipped: {exc}")
        except ScanError as exc:
            run_id = _record_skipped(app, kind, value, streams, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - run_scan recorded the failure on its run row
            LOGGER.error("scheduled scan of %s %s failed: %s", kind, value, exc)
            run_id = _latest_run(app, kind, value)
        with get_db(app).session_scope() as session:
            row = session.get(ScanSchedule, schedule_id)
            if row is not None and run_id is not None:
                row.last_run_id = run_id
        return run_id
    except Exception:  # noqa: BLE001 - the scheduler thread must survive anything
        LOGGER.exception("scheduled scan #%s could not be recorded", schedule_id)
        return None


def _record_skipped(app: Flask, kind: str, value: str, streams: bool, why: str) -> int:
    """A run row that says why a scheduled run did not happen (the job records its run)."""
    LOGGER.warning("scheduled scan of %s %s: %s", kind, value, why)
    now = utcnow()
    with get_db(app).session_scope() as session:
        run = ScanRun(target_kind=kind, target_value=value, trigger="schedule", state=ScanState.FAILED.value,
                      started=now, finished=now, error=why[:4000], pid=os.getpid(), host=socket.gethostname(),
                      started_by="scheduler", with_streams=streams)
        session.add(run)
        session.flush()
        return run.id


def _latest_run(app: Flask, kind: str, value: str) -> int | None:
    with get_db(app).session_scope() as session:
        return session.scalar(select(ScanRun.id).where(ScanRun.target_kind == kind, ScanRun.target_value == value)
                              .order_by(ScanRun.id.desc()).limit(1))
