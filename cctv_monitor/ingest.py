"""The ingest worker: consumes ``ingest``, records each unit's batch, counts finished units, closes runs.

A batch is one unit's observations, written through the scan core's ingest boundary
(:func:`cctv_monitor.scan.ingest.ingest`): one transaction per batch, idempotent by observation id (the
zone worker names each observation after its run, unit and address), so a redelivered unit stores nothing
twice. The unit is then counted done in the database; whoever counts the last open unit closes the run.
A message due at the run's deadline expires the units still open, marks their devices "not reached this
run" (last status kept) and closes the run without claiming the whole target: no polling loop.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from celery import Celery
from flask import Flask
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from cctv_monitor.db import get_db
from cctv_monitor.models import Device, ScanRun, ScanUnit, utcnow
from cctv_monitor.queueing import CLOSE_AT_DEADLINE, INGEST_BATCH, UNIT_EVENT, make_celery
from cctv_monitor.scan.errors import RunClosedError
from cctv_monitor.scan.ingest import IngestCache, IngestResult, close_session, dedicated_session, ingest
from cctv_monitor.scan.runs import RunRef, close_run
from cctv_monitor.scan.settings import ScanSettings
from cctv_monitor.statuses import ScanState
from probes.results import Observation as ObsData
from probes.vocab import host_of

LOGGER = logging.getLogger(__name__)

__all__ = ["Ingest", "build_ingest_app", "OPEN_UNIT_STATES"]

OPEN_UNIT_STATES = ("queued", "running")


class Ingest:
    """Feeds distributed runs through the ingest boundary and keeps their unit counts."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.factory = get_db(app).sessionmaker
        self.settings = ScanSettings.from_mapping(app.config)
        # The recorder's indexes of each run, kept between its batches (the worker's solo pool: one thread).
        self.cache = IngestCache()
        #: Open runs' handles and settings, looked up once a run (a closed run is refused by the ingest).
        self.runs: OrderedDict[int, tuple[RunRef, ScanSettings]] = OrderedDict()
        self._checks: Session | None = None  # the units' states are read on a connection kept for it

    def _run(self, run_id: int) -> tuple[RunRef, ScanSettings] | None:
        """The handle of an open distributed run and settings whose lease reaches past its deadline."""
        from cctv_monitor.dispatch import LEASE_MARGIN_S

        with self.factory() as session:
            row = session.get(ScanRun, run_id)
            if row is None or row.state != ScanState.RUNNING.value or not row.distributed:
                return None
            ref = RunRef(row.id, f"{row.target_kind}:{row.target_value}", row.source or "worker",
                         row.lease_owner or "zones", row.client_run_id)
            left = (row.deadline - utcnow()).total_seconds() if row.deadline else 0.0
            return ref, replace(self.settings, lease_s=max(self.settings.lease_s, left + LEASE_MARGIN_S))

    def release(self) -> None:
        """Give back the connections kept between batches (the kept indexes and the units' reader)."""
        self.cache.clear()
        if self._checks is not None:
            close_session(self._checks)
            self._checks = None

    def _open_run(self, run_id: int) -> tuple[RunRef, ScanSettings] | None:
        """:meth:`_run`, looked up once per run and kept while it is open (at most 64 runs)."""
        found = self.runs.get(run_id)
        if found is None:
            found = self._run(run_id)
            if found is not None:
                self.runs[run_id] = found
                while len(self.runs) > 64:
                    self.runs.popitem(last=False)
        return found

    def _unit_open(self, run_id: int, unit_id: int) -> bool:
        """The unit belongs to the run and is still queued or running (read on a connection kept for it; a
        kept connection the server dropped, e.g. on a restart, is replaced once, as the pool's ping would)."""
        for attempt in (1, 2):
            if self._checks is None:
                self._checks = dedicated_session(self.factory)
            session = self._checks
            try:
                # Core statements on the session's connection (here and in count_unit): a few a batch, each
                # a third of the cost of the same through the ORM.
                row = session.connection().execute(_UNIT_STATE, {"unit": unit_id}).first()
                session.rollback()  # ends the read: the next one sees what was committed since
                break
            except DBAPIError as exc:
                close_session(session)
                self._checks = None
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        return row is not None and row[0] == run_id and row[1] in OPEN_UNIT_STATES

    def batch(self, run_id: int, unit_id: int, observations: list[dict[str, Any]]) -> int:
        """Record one unit's observations (ids already stored are skipped); returns how many were new.

        The unit is counted done in the batch's own transaction (one commit a batch): the run's row, which
        every batch of the run locks first, makes batches of one run take turns, so the count of units still
        open, read in that transaction, is true; whoever counts the last one closes the run after the commit.
        """
        with self.app.app_context():
            found = self._open_run(run_id)
            if found is None:
                LOGGER.warning("batch of unit %s arrived after run %s closed; dropped", unit_id, run_id)
                return 0
            if not self._unit_open(run_id, unit_id):
                return 0  # counted before (a redelivered unit), or expired at the deadline
            ref, settings = found
            last: list[bool] = []

            def count_unit(session: Any, result: IngestResult) -> None:
                # A device reached again is no longer stale from an earlier run's offline zone. Looked up first:
                # an UPDATE, even of no row, counts as a write to the inventory, and the next batch would load
                # the recorder's indexes afresh (cctv_monitor.scan.ingest.IngestCache).
                conn = session.connection()
                stale = list(conn.execute(_STALE, {"addresses": [o.get("address") for o in observations]}).scalars())
                # The session holds the kept indexes (thousands of objects): "fetch" finds the changed devices
                # among them by key; the default would test every object of the session against the criteria.
                if stale:
                    session.execute(update(Device).where(Device.id.in_(stale)).values(not_reached_run_id=None)
                                    .execution_options(synchronize_session="fetch"))
                # Broken observations get no receipt: said on the unit, so a lost camera is never silent.
                problem = {"error": f"{result.failed} observation(s) could not be recorded (see the ingest "
                                    "worker's log)"} if result.failed else {}
                counted = conn.execute(_UNIT_DONE.values(**problem) if problem else _UNIT_DONE,
                                       {"unit": unit_id, "n": len(observations), "now": utcnow()})
                last[:] = [bool(counted.rowcount) and not _open_units(conn, run_id)]

            try:
                result = ingest(self.factory, ref, [ObsData.from_dict(o) for o in observations], settings=settings,
                                cache=self.cache, before_commit=count_unit)
            except RunClosedError:
                self.runs.pop(run_id, None)
                LOGGER.warning("batch of unit %s arrived after run %s closed; dropped", unit_id, run_id)
                return 0
            if last and last[0]:
                self.close(run_id)
            return result.new

    def event(self, run_id: int, unit_id: int, state: str, **extra: Any) -> None:
        """A zone worker's report on a unit: running (attempt counted), retrying or failed (error kept)."""
        with self.app.app_context(), self.factory() as session:
            unit = session.get(ScanUnit, unit_id)
            if unit is None or unit.scan_run_id != run_id or unit.state not in OPEN_UNIT_STATES:
                return
            if state == "running":
                unit.state = "running"
                unit.attempts = (unit.attempts or 0) + 1
                if extra.get("redelivered"):
                    unit.error = f"redelivered (a worker was lost); attempt {unit.attempts} on {extra.get('worker')}"
            elif state in ("retrying", "failed"):
                unit.error = str(extra.get("error") or state)[:2000]
                if state == "failed":
                    unit.state, unit.finished = "failed", utcnow()
            session.commit()
            if state == "failed":
                self._maybe_close(session, run_id)

    def _maybe_close(self, session: Any, run_id: int) -> None:
        if not _open_units(session, run_id):
            self.close(run_id)

    def close(self, run_id: int) -> bool:
        """Close the run; units still open expire and their devices are "not reached"; False if closed."""
        self.cache.forget(run_id)
        self.runs.pop(run_id, None)
        with self.app.app_context():
            found = self._run(run_id)
            if found is None:
                return False
            ref, settings = found
            with self.factory() as session:
                # Row lock (PostgreSQL): two ingest processes ending the run at once close it once.
                run = session.scalar(select(ScanRun).where(ScanRun.id == run_id).with_for_update())
                if run is None or run.state != ScanState.RUNNING.value:
                    return False
                stale = list(session.scalars(select(ScanUnit).where(ScanUnit.scan_run_id == run_id,
                                                                    ScanUnit.state.in_(OPEN_UNIT_STATES))))
                hosts = {h for u in stale for h in u.addresses}
                for unit in stale:
                    unit.state, unit.finished = "expired", utcnow()
                not_reached = 0
                if hosts:
                    for device in session.scalars(select(Device).where(Device.address.is_not(None))):
                        if host_of(device.address) in hosts:
                            device.not_reached_run_id = run_id
                            not_reached += 1
                failed = sorted(set(session.scalars(select(ScanUnit.zone).where(
                    ScanUnit.scan_run_id == run_id, ScanUnit.state == "failed"))))
                problems = []
                if stale:
                    problems.append(f"{len(stale)} unit(s) not done by the deadline (zones "
                                    f"{', '.join(sorted({u.zone for u in stale}))}); {not_reached} device(s) "
                                    "not reached this run")
                if failed:
                    problems.append(f"unit(s) failed in zones {', '.join(failed)}")
                run.error = "; ".join(problems) or None
                session.commit()
            # Only a run that reached every unit covers its target (cameras not seen become missing/offline);
            # otherwise it covers the devices it brought and the others keep their last status.
            summary = close_run(self.factory, ref, complete=not (stale or failed), settings=settings)
            try:
                from cctv_monitor.alerts import deliver_run_alerts

                with self.factory() as session:
                    deliver_run_alerts(self.app, session, run_id)
            except Exception:  # noqa: BLE001 - a mail server being down never fails the run
                LOGGER.exception("alert delivery for scan run %s failed", run_id)
            LOGGER.info("run %s closed (%s)%s", run_id, summary.coverage, f": {'; '.join(problems)}" if problems else "")
            return True


def _open_units(session: Any, run_id: int) -> int:
    """How many units of the run are still queued or running (``session``: a session or a connection)."""
    return session.scalar(_OPEN_UNITS, {"run": run_id})


_UNITS = ScanUnit.__table__
_UNIT_STATE = select(_UNITS.c.scan_run_id, _UNITS.c.state).where(_UNITS.c.id == bindparam("unit"))
_UNIT_DONE = (update(_UNITS).where(_UNITS.c.id == bindparam("unit"), _UNITS.c.state.in_(OPEN_UNIT_STATES))
              .values(state="done", observations=bindparam("n"), finished=bindparam("now")))
_OPEN_UNITS = select(func.count()).select_from(_UNITS).where(_UNITS.c.scan_run_id == bindparam("run"),
                                                             _UNITS.c.state.in_(OPEN_UNIT_STATES))
_STALE = select(Device.__table__.c.id).where(Device.__table__.c.not_reached_run_id.is_not(None),
                                             Device.__table__.c.address.in_(bindparam("addresses", expanding=True)))


def build_ingest_app(app: Flask) -> Celery:
    """The Celery app of ``cctv-monitor ingest-worker`` over the Flask app's database and broker."""
    from cctv_monitor.dispatch import ingest_queue_of

    celery = make_celery(app.config["BROKER_URL"], name="cctv_ingest", ingest_queue=ingest_queue_of(app))
    worker = Ingest(app)

    @celery.task(name=INGEST_BATCH, acks_late=True)
    def ingest_batch(run_id: int, unit_id: int, observations: list[dict[str, Any]]) -> int:
        """Record one unit's batch."""
        return worker.batch(run_id, unit_id, observations)

    @celery.task(name=UNIT_EVENT, acks_late=True)
    def unit_event(run_id: int, unit_id: int, state: str, **extra: Any) -> None:
        """Record a zone worker's report on a unit."""
        worker.event(run_id, unit_id, state, **extra)

    @celery.task(name=CLOSE_AT_DEADLINE, acks_late=True)
    def close_at_deadline(run_id: int) -> bool:
        """Close the run at its deadline if it is still open."""
        return worker.close(run_id)

    return celery
