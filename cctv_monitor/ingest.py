"""The ingest worker: consumes ``ingest``, records each unit's batch, counts finished units, closes runs.

A batch is one unit's observations. It is recorded through the scan pipeline (:class:`ScanRecorder`:
identity, drift, findings, statuses) and is idempotent: a unit already counted stores nothing, and an
address the run already holds an observation for is skipped, so a redelivered batch (the worker died after
recording part of it) completes it without doubling anything. The unit is counted done in the same
transaction as its last observation; the batch that counts the last open unit closes the run. A message
due at the run's deadline expires the units still open, marks their devices "not reached this run" (last
status kept) and closes the run: no polling loop.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cctv_monitor.db import get_db
from cctv_monitor.models import Device, Observation, ScanRun, ScanUnit, utcnow
from cctv_monitor.queueing import CLOSE_AT_DEADLINE, INGEST_BATCH, UNIT_EVENT, make_celery
from cctv_monitor.scanning import SILENT, ScanRecorder, _counts, _record_daily_status, resolve_scope
from cctv_monitor.statuses import ScanState
from probes.results import Observation as ObsData
from probes.vocab import host_of

LOGGER = logging.getLogger(__name__)

__all__ = ["Ingest", "build_ingest_app", "OPEN_UNIT_STATES"]

OPEN_UNIT_STATES = ("queued", "running")


class Ingest:
    """Recording into the database for the runs of this process (one recorder per open run, loaded once)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._recorders: dict[int, ScanRecorder] = {}

    def _recorder(self, run_id: int) -> ScanRecorder | None:
        recorder = self._recorders.get(run_id)
        if recorder is not None:
            recorder.session.expire_all()  # other processes (deadline, events) may have changed rows
            return recorder
        session = get_db(self.app).sessionmaker()
        run = session.get(ScanRun, run_id)
        if run is None or run.state != ScanState.RUNNING.value:
            session.close()
            return None
        scope = resolve_scope(session, run.target_kind, run.target_value,
                              default_ports=self.app.config.get("ONVIF_PORTS") or [80])
        recorder = self._recorders[run_id] = ScanRecorder(session, run, scope, keep_results=False)
        return recorder

    def _drop(self, run_id: int) -> None:
        recorder = self._recorders.pop(run_id, None)
        if recorder is not None:
            recorder.session.close()

    def batch(self, run_id: int, unit_id: int, observations: list[dict[str, Any]]) -> int:
        """Record one unit's observations (skipping any already recorded); returns how many were new."""
        with self.app.app_context():
            recorder = self._recorder(run_id)
            if recorder is None:
                LOGGER.warning("batch of unit %s arrived after run %s closed; dropped", unit_id, run_id)
                return 0
            session = recorder.session
            unit = session.get(ScanUnit, unit_id)
            if unit is None or unit.scan_run_id != run_id or unit.state not in OPEN_UNIT_STATES:
                return 0  # redelivered after it was counted, or expired at the deadline: nothing to store
            parsed = [ObsData.from_dict(o) for o in observations]
            have = set(session.scalars(select(Observation.address).where(
                Observation.scan_run_id == run_id, Observation.address.in_([o.address for o in parsed]))))
            new = [o for o in parsed if o.address not in have]
            # Answering ones first: a device that moved is then not marked offline at its old address.
            for obs in sorted(new, key=lambda o: o.status in SILENT):
                record = recorder.record_silent if obs.status in SILENT else recorder.record_answering
                try:
                    record(obs)
                except Exception:  # noqa: BLE001 - one broken camera never stops a batch
                    session.rollback()
                    LOGGER.exception("%s: recording the observation failed; camera skipped", obs.address)
            session.execute(update(Device).where(Device.not_reached_run_id.is_not(None),
                                                 Device.id.in_(list(recorder.seen_this_run)))
                            .values(not_reached_run_id=None))
            counted = session.execute(update(ScanUnit).where(ScanUnit.id == unit_id,
                                                             ScanUnit.state.in_(OPEN_UNIT_STATES))
                                      .values(state="done", observations=len(parsed), finished=utcnow()))
            session.commit()
            if counted.rowcount:
                self._maybe_close(session, run_id)
            return len(new)

    def event(self, run_id: int, unit_id: int, state: str, **extra: Any) -> None:
        """A zone worker's report on a unit: running (attempt counted), retrying or failed (error kept)."""
        with self.app.app_context(), get_db(self.app).sessionmaker() as session:
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

    def _maybe_close(self, session: Session, run_id: int) -> None:
        open_units = session.scalar(select(func.count()).select_from(ScanUnit).where(
            ScanUnit.scan_run_id == run_id, ScanUnit.state.in_(OPEN_UNIT_STATES)))
        if not open_units:
            self.close(run_id, expired=False)

    def close(self, run_id: int, *, expired: bool = True) -> bool:
        """Close the run (at its deadline: open units expire, their devices "not reached"); False if closed."""
        with self.app.app_context():
            recorder = self._recorder(run_id)
            if recorder is None:
                return False
            session = recorder.session
            # Row lock (PostgreSQL): two ingest processes counting the last units close the run once.
            run = session.scalar(select(ScanRun).where(ScanRun.id == run_id).with_for_update())
            if run is None or run.state != ScanState.RUNNING.value:
                session.rollback()
                self._drop(run_id)
                return False
            stale = list(session.scalars(select(ScanUnit).where(ScanUnit.scan_run_id == run_id,
                                                                ScanUnit.state.in_(OPEN_UNIT_STATES))))
            hosts = {h for u in stale for h in u.addresses}
            for unit in stale:
                unit.state, unit.finished = "expired", utcnow()
            not_reached = 0
            for device in recorder.devices.values():
                if device.address and host_of(device.address) in hosts and device.id not in recorder.seen_this_run:
                    device.not_reached_run_id = run_id
                    not_reached += 1
            failed = list(session.scalars(select(ScanUnit.zone).where(ScanUnit.scan_run_id == run_id,
                                                                      ScanUnit.state == "failed")))
            recorder.finish_registers()
            run.counts = _counts(session, recorder.scope, recorder)
            problems = []
            if stale:
                zones = ", ".join(sorted({u.zone for u in stale}))
                problems.append(f"{len(stale)} unit(s) not done by the deadline (zones {zones}); "
                                f"{not_reached} device(s) not reached this run")
            if failed:
                problems.append(f"{len(failed)} unit(s) failed (zones {', '.join(sorted(set(failed)))})")
            run.error = "; ".join(problems) or None
            run.state = ScanState.COMPLETED.value
            run.finished = utcnow()
            session.commit()
            _record_daily_status(session)
            try:
                from cctv_monitor.alerts import deliver_run_alerts

                deliver_run_alerts(self.app, session, run_id)
            except Exception:  # noqa: BLE001 - a mail server being down never fails the run
                LOGGER.exception("alert delivery for scan run %s failed", run_id)
            self._drop(run_id)
            LOGGER.info("run %s closed%s", run_id, f": {run.error}" if run.error else "")
            return True


def build_ingest_app(app: Flask) -> Celery:
    """The Celery app of ``cctv-monitor ingest-worker`` over the Flask app's database and broker."""
    from cctv_monitor.dispatch import ingest_queue_of

    celery = make_celery(app.config["BROKER_URL"], name="cctv_ingest", ingest_queue=ingest_queue_of(app))
    ingest = Ingest(app)

    @celery.task(name=INGEST_BATCH, acks_late=True)
    def ingest_batch(run_id: int, unit_id: int, observations: list[dict[str, Any]]) -> int:
        """Record one unit's batch."""
        return ingest.batch(run_id, unit_id, observations)

    @celery.task(name=UNIT_EVENT, acks_late=True)
    def unit_event(run_id: int, unit_id: int, state: str, **extra: Any) -> None:
        """Record a zone worker's report on a unit."""
        ingest.event(run_id, unit_id, state, **extra)

    @celery.task(name=CLOSE_AT_DEADLINE, acks_late=True)
    def close_at_deadline(run_id: int) -> bool:
        """Close the run at its deadline if it is still open."""
        return ingest.close(run_id)

    return celery
