"""The one way observations enter the inventory: expanders, receipts (idempotency), then the recorder.

``ingest(factory, run, observations)`` records a batch of any size, in any order, as one transaction;
an observation whose id was stored before is skipped, so a batch sent twice (a retry, a file imported
again, overlapping batches) changes nothing the second time. One broken observation never loses the
batch: the batch is then recorded observation by observation, skipping the broken one.

Before identity, every observation passes the expanders (``expand(observation) -> list[observation]``):
a recorder's observation becomes one observation per camera behind it. They run after the receipt check,
so the receipt is kept for the observation that was sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from cctv_monitor.compliance.engine import SILENT
from cctv_monitor.models import ObservationReceipt, utcnow
from cctv_monitor.scan.recorder import Recorded, Recorder
from cctv_monitor.scan.runs import RunRef, SessionFactory, live_run
from cctv_monitor.scan.scope import ScanScope
from cctv_monitor.scan.scope import scope_of as _scope_of
from cctv_monitor.scan.settings import ScanSettings
from probes.results import Observation as ObsData

LOGGER = logging.getLogger(__name__)

__all__ = ["Expander", "EXPANDERS", "IngestResult", "Ingestor", "ingest", "scope_of", "expanders"]

#: ``expand(observation) -> list[observation]``; return ``[observation]`` for one it does not concern.
Expander = Callable[[ObsData], list[ObsData]]

#: Extra expanders, applied in order after ``cctv_monitor.recorders.expand`` (when that module exists).
EXPANDERS: list[Expander] = []

#: Receipts are looked up in chunks (bound parameters have limits on every database).
_CHUNK = 500


def expanders() -> list[Expander]:
    """The expanders in force: the recorder expansion (if the module exists), then :data:`EXPANDERS`."""
    out: list[Expander] = []
    try:
        from cctv_monitor.recorders import expand  # type: ignore[import-not-found,attr-defined]
    except ImportError:
        pass
    else:
        out.append(expand)
    return out + list(EXPANDERS)


def _expand(obs: ObsData, chain: Sequence[Expander]) -> list[ObsData]:
    items = [obs]
    for expander in chain:
        items = [child for item in items for child in expander(item)]
    return items


@dataclass
class IngestResult:
    """What one batch did: ``new`` observations recorded, ``skipped`` (already stored), ``failed`` ones."""

    new: int
    skipped: int
    failed: int = 0
    results: list[Recorded] = field(default_factory=list)


def scope_of(session: Session, run: RunRef, settings: ScanSettings) -> ScanScope:
    """The scope a run covers (its target's, or an empty one): :func:`cctv_monitor.scan.scope.scope_of`."""
    return _scope_of(session, run, default_ports=settings.ports)


class Ingestor:
    """Records observations of one run through one :class:`Recorder`; used by the pipeline per camera."""

    def __init__(self, session: Session, run: RunRef, scope: ScanScope, *, keep_results: bool = False,
                 autocommit: bool = True, chain: Sequence[Expander] | None = None) -> None:
        """Load the recorder's indexes for ``run``."""
        self.session = session
        self.ref = run
        self.row = live_run(session, run)
        self.recorder = Recorder(session, self.row, scope, keep_results=keep_results, autocommit=autocommit)
        self.chain = list(expanders() if chain is None else chain)

    def received(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` were ingested before (by any run)."""
        wanted = list(dict.fromkeys(i for i in ids if i))
        out: set[str] = set()
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start:start + _CHUNK]
            out.update(self.session.scalars(select(ObservationReceipt.observation_uid)
                                            .where(ObservationReceipt.observation_uid.in_(chunk))))
        return out

    def add(self, obs: ObsData) -> list[Recorded]:
        """Expand and record one observation and keep its receipt (committed with it in autocommit mode)."""
        out = []
        if obs.observation_id:
            # Added first so the recorder's commit (per camera) writes the receipt in the same transaction.
            self.session.add(ObservationReceipt(observation_uid=obs.observation_id[:128], scan_run_id=self.row.id,
                                                received_at=utcnow()))
        children = _expand(obs, self.chain)
        for child in sorted(children, key=lambda o: o.status in SILENT):
            result = self.recorder.record(child)
            if result is not None:
                out.append(result)
        if self.recorder.autocommit and not children:
            self.session.commit()
        return out

    def forget_failed(self) -> None:
        """After a rollback: drop devices that never reached the database from the in-memory index."""
        for device_id in [d for d, dev in self.recorder.devices.items() if dev.id is None]:
            self.recorder.devices.pop(device_id, None)


def _ordered(observations: Iterable[ObsData]) -> list[ObsData]:
    """Answering ones first, so a camera that moved is not first marked offline at its old address."""
    return sorted(observations, key=lambda o: o.status in SILENT)


def ingest(session_factory: SessionFactory, run: RunRef, observations: Iterable[ObsData], *,
           settings: ScanSettings | None = None, keep_results: bool = False) -> IngestResult:
    """Record a batch into an open run (one transaction) and renew its lease; already stored ids are skipped."""
    settings = settings or ScanSettings()
    given = list(observations)
    session = session_factory()
    try:
        scope = scope_of(session, run, settings)
        ingestor = Ingestor(session, run, scope, keep_results=keep_results, autocommit=False)
        seen = ingestor.received(o.observation_id for o in given if o.observation_id)
        fresh: list[ObsData] = []
        batch_ids: set[str] = set()
        for obs in given:
            oid = obs.observation_id
            if oid and (oid in seen or oid in batch_ids):
                continue
            if oid:
                batch_ids.add(oid)
            fresh.append(obs)
        skipped = len(given) - len(fresh)
        try:
            for obs in _ordered(fresh):
                ingestor.add(obs)
            _touch(ingestor, settings, len(fresh))
            session.commit()
            return IngestResult(len(fresh), skipped, 0, ingestor.recorder.results)
        except Exception:  # noqa: BLE001 - one broken observation must not lose the batch
            session.rollback()
            LOGGER.warning("run #%s: a batch of %d failed as a whole; recording it one by one", run.id, len(fresh))
        return _one_by_one(session, run, scope, fresh, skipped, settings, keep_results)
    finally:
        session.close()


def _one_by_one(session: Session, run: RunRef, scope: ScanScope, fresh: list[ObsData], skipped: int,
                settings: ScanSettings, keep_results: bool) -> IngestResult:
    """The slow path: each observation in a transaction of its own; broken ones are logged and skipped."""
    ingestor = Ingestor(session, run, scope, keep_results=keep_results, autocommit=True)
    new = failed = 0
    for obs in _ordered(fresh):
        try:
            ingestor.add(obs)
            new += 1
        except Exception:  # noqa: BLE001 - one broken camera never stops a scan
            session.rollback()
            failed += 1
            LOGGER.exception("%s: recording the observation failed; skipped", obs.address)
            ingestor.forget_failed()
    _touch(ingestor, settings, new)
    session.commit()
    return IngestResult(new, skipped, failed, ingestor.recorder.results)


def _touch(ingestor: Ingestor, settings: ScanSettings, added: int) -> None:
    """Count the batch into the run's total and renew its lease (feeding a run is a heartbeat)."""
    from datetime import timedelta

    row = ingestor.row
    row.total = (row.total or 0) + added
    row.lease_expires = utcnow() + timedelta(seconds=settings.lease_s)
