"""The run life cycle: open (claim a target), heartbeat (renew the lease), close, abort, reap.

A run is owned by whoever holds its lease (``owner``, ``lease_expires`` in the database), so a run can
be fed by another process or machine. A run whose lease expired is marked interrupted by whoever looks
next (:func:`reap_expired`: the next scan, ``serve``, ``worker``). On this host a run whose process is
gone is marked at once (no need to wait for its lease).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from cctv_monitor.models import Project, ScanRun, utcnow
from cctv_monitor.scan.errors import LeaseLostError, RunClosedError, ScanAlreadyRunning, ScanTargetError
from cctv_monitor.scan import coverage
from cctv_monitor.scan.recorder import Recorder
from cctv_monitor.scan.scope import NO_TARGET_KIND, parse_target, resolve_scope, scope_of, target_name
from cctv_monitor.scan.settings import ScanSettings
from cctv_monitor.statuses import ScanState

LOGGER = logging.getLogger(__name__)

__all__ = ["RunRef", "RunSummary", "SessionFactory", "open_run", "heartbeat", "close_run", "abort_run",
           "reap_expired", "reap", "default_owner", "hand_off", "NO_TARGET_KIND"]

#: A session factory: ``sessionmaker`` or anything that returns a new :class:`Session` when called.
SessionFactory = Callable[[], Session]


_OPEN = (ScanState.RUNNING.value, ScanState.PENDING.value)
#: Runs fed by this very process: its death ends them at once. API and worker runs live by their lease only
#: (the sender is elsewhere; a restarted web server must not end them).
_LOCAL_SOURCES = ("scan", "file")
_LOCK = threading.Lock()
_CLAIMED: set[str] = set()  # target names being opened by a thread of this process right now
_MINE: set[int] = set()  # runs opened by this process and not closed yet


def default_owner() -> str:
    """This process as a lease owner: host, process id and a random part (a restarted pid differs)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class RunRef:
    """A handle on an open run, passed to :func:`~cctv_monitor.scan.ingest.ingest` and :func:`close_run`."""

    id: int
    target: str | None  # "kind:value" (see scope.parse_target), None: covers only what it brings
    source: str  # scan | file | api | worker
    owner: str
    client_run_id: str | None = None
    default_project: str | None = None  # check: devices outside every site range belong to it
    #: Prefix for observation ids made by this run's own prober (the pipeline): ``f"{uid}:{seq}"``.
    uid: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True)
class RunSummary:
    """How a run ended: its state, how many observations it recorded, device counts per status."""

    run_id: int
    state: str
    new: int
    coverage: str  # target | devices
    counts: dict[str, int]


def _lease_until(settings: ScanSettings, deadline: datetime | None = None) -> datetime:
    return deadline or utcnow() + timedelta(seconds=settings.lease_s)


def open_run(session_factory: SessionFactory, *, target: str | None, source: str, owner: str,
             client_run_id: str | None = None, deadline: datetime | None = None,
             settings: ScanSettings | None = None, trigger: str | None = None, started_by: str | None = None,
             with_streams: bool = False, default_project: str | None = None) -> RunRef:
    """Claim a run (a target is validated first, and only one live run per target); returns its handle.

    With ``client_run_id`` an open run of the same source and client id is resumed (its lease taken over),
    so a sender retrying after a lost reply keeps feeding one run. ``deadline`` overrides the first lease
    expiry (default: now + ``settings.lease_s``).
    """
    settings = settings or ScanSettings()
    kind, value = parse_target(target) if target else (NO_TARGET_KIND, (client_run_id or source)[:255])
    name = target_name(kind, value) if target else None
    session = session_factory()
    try:
        if target:
            # Validate before a run row exists, so a typo never leaves a failed run behind.
            resolve_scope(session, kind, value, default_ports=settings.ports)
        if default_project and session.scalar(select(Project).where(Project.code == default_project)) is None:
            raise ScanTargetError(f"no project with code {default_project!r}")
        reap(session)
        if client_run_id:
            resumed = session.scalar(select(ScanRun).where(ScanRun.source == source,
                                                           ScanRun.client_run_id == client_run_id,
                                                           ScanRun.state.in_(_OPEN)))
            if resumed is not None:
                resumed.lease_owner, resumed.lease_expires = owner, _lease_until(settings, deadline)
                session.commit()
                with _LOCK:
                    _MINE.add(resumed.id)
                return RunRef(resumed.id, name, source, owner, client_run_id, default_project)
        if name:
            _claim_here(name)  # held only while checking and inserting: the database row guards the run after
        try:
            if name:
                other = session.scalar(select(ScanRun).where(ScanRun.target_kind == kind,
                                                             ScanRun.target_value == value,
                                                             ScanRun.state.in_(_OPEN)))
                if other is not None:
                    raise ScanAlreadyRunning(f"a scan of {kind} {value!r} is already running (run #{other.id}, "
                                             f"owner {other.lease_owner or f'pid {other.pid} on {other.host}'})")
            run = ScanRun(target_kind=kind, target_value=value, trigger=(trigger or source)[:16],
                          state=ScanState.RUNNING.value, started=utcnow(),
                          pid=os.getpid() if source in _LOCAL_SOURCES else None,
                          host=socket.gethostname() if source in _LOCAL_SOURCES else None,
                          started_by=started_by, with_streams=with_streams, total=0, done=0,
                          lease_owner=owner[:255], lease_expires=_lease_until(settings, deadline),
                          source=source[:16], client_run_id=client_run_id[:128] if client_run_id else None)
            session.add(run)
            session.commit()
            run_id = run.id
            with _LOCK:
                _MINE.add(run_id)
        finally:
            if name:
                with _LOCK:
                    _CLAIMED.discard(name)
        return RunRef(run_id, name, source, owner, client_run_id, default_project)
    finally:
        session.close()


def _claim_here(name: str) -> None:
    """Guard against two threads of this process opening the same target at once."""
    with _LOCK:
        if name in _CLAIMED:
            kind, _, value = name.partition(":")
            raise ScanAlreadyRunning(f"a scan of {kind} {value!r} is already running (being started)")
        _CLAIMED.add(name)


def hand_off(run_id: int) -> None:
    """This process no longer feeds or closes run ``run_id`` (another does, e.g. the ingest worker).

    Only the in-memory mark "opened here" is dropped, so this process's end or restart never marks the run
    interrupted; the open row in the database still refuses a second run of the same target, and the run
    lives by its lease.
    """
    with _LOCK:
        _MINE.discard(run_id)



def live_run(session: Session, run: RunRef) -> ScanRun:
    """The run row, which must still be open; :class:`RunClosedError` / :class:`LeaseLostError` if not."""
    row = session.get(ScanRun, run.id)
    if row is None:
        raise RunClosedError(f"run #{run.id} does not exist")
    if row.state not in _OPEN:
        if row.state == ScanState.INTERRUPTED.value and row.lease_owner == run.owner:
            raise LeaseLostError(f"run #{run.id} was marked interrupted (its lease expired): {row.error}")
        raise RunClosedError(f"run #{run.id} is {row.state}; open a new run")
    return row


def heartbeat(session_factory: SessionFactory, run: RunRef, *, settings: ScanSettings | None = None) -> datetime:
    """Renew the run's lease; returns the new expiry. :class:`LeaseLostError` when it was reaped meanwhile."""
    settings = settings or ScanSettings()
    session = session_factory()
    try:
        row = live_run(session, run)
        row.lease_owner = run.owner[:255]
        row.lease_expires = _lease_until(settings)
        session.commit()
        return row.lease_expires
    finally:
        session.close()


def close_run(session_factory: SessionFactory, run: RunRef, *, complete: bool,
              settings: ScanSettings | None = None) -> RunSummary:
    """Finish a run. ``complete`` with a target: the run covers the target (missing cameras, project findings,
    daily snapshot); otherwise it covers only the devices it brought. A run of ``source="scan"`` that brought
    nothing new still covers its target (the scan looked); a file or API run that brought nothing changes
    nothing. Closing a closed run returns its summary again.
    """
    settings = settings or ScanSettings()
    session = session_factory()
    try:
        row = session.get(ScanRun, run.id)
        if row is None:
            raise RunClosedError(f"run #{run.id} does not exist")
        if row.state not in _OPEN:
            return RunSummary(row.id, row.state, row.done or 0, row.coverage or "devices", dict(row.counts or {}))
        covers = bool(complete and run.target and (run.source == "scan" or (row.done or 0) > 0))
        recorder = Recorder(session, row, scope_of(session, run, default_ports=settings.ports), keep_results=False)
        if covers:
            coverage.finish_registers(recorder)
        row.counts = coverage.counts(recorder, whole_scope=covers)
        row.coverage = "target" if covers else "devices"
        row.state = ScanState.COMPLETED.value
        row.finished = utcnow()
        row.lease_expires = None
        session.commit()
        if covers or (row.done or 0) > 0:
            _record_daily_status(session)
        return RunSummary(row.id, row.state, row.done or 0, row.coverage, dict(row.counts or {}))
    finally:
        hand_off(run.id)
        session.close()


def abort_run(session_factory: SessionFactory, run: RunRef, state: ScanState, error: str) -> None:
    """End a run as interrupted or failed with ``error``; what it recorded stays."""
    session = session_factory()
    try:
        row = session.get(ScanRun, run.id)
        if row is not None and row.state in _OPEN:
            row.state = state.value
            row.finished = utcnow()
            row.error = error[:4000]
            row.lease_expires = None
            session.commit()
    finally:
        hand_off(run.id)
        session.close()


def _record_daily_status(session: Session) -> None:
    """Today's per-status snapshot for the dashboard trend; a failure there never fails the finished run."""
    from cctv_monitor.history import record_daily_status

    try:
        record_daily_status(session)
        session.commit()
    except Exception:  # noqa: BLE001 - the run and its observations are already committed
        session.rollback()
        LOGGER.exception("updating today's status snapshot failed; the trend misses this run until the next")


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def reap(session: Session, *, now: datetime | None = None) -> int:
    """Mark open runs interrupted whose lease expired, or whose process on this host is gone; returns how many."""
    now = now or utcnow()
    host, me = socket.gethostname(), os.getpid()
    count = 0
    for run in session.scalars(select(ScanRun).where(ScanRun.state.in_(_OPEN))):
        expired = run.lease_expires is not None and run.lease_expires < now
        local = run.pid is not None and (not run.host or run.host == host)
        if expired:
            why = f"the lease of {run.lease_owner or 'its owner'} expired at {run.lease_expires:%Y-%m-%d %H:%M:%S}"
        elif local and run.pid == me:
            with _LOCK:
                if run.id in _MINE:
                    continue
            why = f"process {run.pid} ended without finishing the run (killed or crashed)"
        elif local and not _pid_alive(run.pid):
            why = f"process {run.pid} ended without finishing the run (killed or crashed)"
        else:
            continue  # alive here, or another machine's run with a live (or no) lease
        run.state = ScanState.INTERRUPTED.value
        run.finished = now
        run.error = f"{why}; {run.done} of {run.total} cameras were recorded"
        run.lease_expires = None
        count += 1
    if count:
        session.commit()
        LOGGER.warning("marked %d scan run(s) interrupted (owner gone or lease expired)", count)
    return count


def reap_expired(session_factory: SessionFactory, *, now: datetime | None = None) -> int:
    """:func:`reap` in a session of its own (for ``serve``, ``worker`` and periodic jobs)."""
    session = session_factory()
    try:
        return reap(session, now=now)
    finally:
        session.close()
