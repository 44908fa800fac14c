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

import gc
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from sqlalchemy import Connection, Engine, bindparam, func, literal, select, text, union_all
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from cctv_monitor.compliance.engine import SILENT
from cctv_monitor.models import Device, Finding, ObservationReceipt, Project, RegisterEntry, ScanRun, Site, utcnow
from cctv_monitor.scan.ids import write_rows
from cctv_monitor.scan.recorder import Recorded, Recorder
from cctv_monitor.scan.runs import RunRef, SessionFactory, live_run
from cctv_monitor.scan.scope import ScanScope
from cctv_monitor.scan.scope import scope_of as _scope_of
from cctv_monitor.scan.settings import ScanSettings
from probes.results import Observation as ObsData

LOGGER = logging.getLogger(__name__)

__all__ = ["Expander", "EXPANDERS", "IngestResult", "Ingestor", "IngestCache", "ingest", "scope_of", "expanders",
           "collect_less", "dedicated_session", "close_session"]

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
        self.receipts: list[dict[str, Any]] = []
        #: True once :meth:`claim` wrote the batch's receipts itself (PostgreSQL).
        self.claimed_early = False

    def write(self) -> None:
        """Write what a batch (``autocommit=False``) built: the recorder's rows, then the receipts."""
        self.recorder.write()
        if self.receipts:
            write_rows(self.session.connection(), ObservationReceipt.__table__, self.receipts)
            self.receipts = []

    def claim(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` were never ingested (by any run); on PostgreSQL their receipts are written now.

        PostgreSQL: one ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` answers and writes at once, through the
        primary key, whatever the table's size and whatever plan a prepared SELECT was given while the table
        was small; and an observation another process is ingesting at the same moment waits for its commit
        and is then found taken (a SELECT would have missed it). Elsewhere: :meth:`received`, and the
        receipts are written by :meth:`write`. Either way they are part of the batch's transaction.
        """
        wanted = list(dict.fromkeys(i[:128] for i in ids if i))
        if self.session.get_bind().dialect.name != "postgresql" or self.recorder.autocommit:
            return set(wanted) - self.received(wanted)
        self.claimed_early = True
        if not wanted:
            return set()
        rows = self.session.connection().exec_driver_sql(
            "INSERT INTO observation_receipt (observation_uid, scan_run_id, received_at) "
            "SELECT u, %s, %s FROM unnest(%s::varchar[]) AS u ON CONFLICT DO NOTHING RETURNING observation_uid",
            (self.row.id, utcnow(), wanted))
        return {row[0] for row in rows}

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
        if obs.observation_id and not self.claimed_early:
            receipt = {"observation_uid": obs.observation_id[:128], "scan_run_id": self.row.id,
                       "received_at": utcnow()}
            if self.recorder.autocommit:
                # Added first so the recorder's commit (per camera) writes the receipt in the same transaction.
                self.session.add(ObservationReceipt(**receipt))
            else:
                self.receipts.append(receipt)  # a batch: one executemany in :meth:`write`
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


class _Warm:
    """One run's session and recorder kept by :class:`IngestCache` between batches."""

    def __init__(self, session: Session, ingestor: Ingestor) -> None:
        self.session, self.ingestor = session, ingestor
        self.born = time.monotonic()
        self.stamp: tuple[Any, ...] | None = None


class IngestCache:
    """The recorder's indexes of a run kept between its batches, for a long-running ingest process.

    Loading the indexes (every device, the register, sites, active findings) costs far more than
    recording a batch of 64 cameras, so the ingest worker keeps them, in a session of their own, from one
    batch of a run to the next. They are used again only while nobody else changed the inventory: each
    batch first locks the run's row (so two processes feeding one run take turns), then checks the stamp.
    On PostgreSQL the stamp is the ``inventory_version`` row, bumped once by every transaction that writes
    the indexed tables (statement triggers, migration 0015s): the batch bumps it first, which waits for any
    writer still in a transaction, and reuses the indexes only when it went up by exactly one since its
    last batch (one statement, whatever the inventory's size; any statement on those tables counts, even
    one that changes no row, so writers between batches look before they write). Elsewhere (SQLite, one
    writer) the stamp is row counts, highest ids and latest changes, read after the batch's writes. Any
    difference, a failed batch, or an age over ``max_age_s`` loads them afresh. Not thread-safe: one per
    process, used by one thread (the ingest worker's solo pool).
    """

    def __init__(self, *, max_runs: int = 4, max_age_s: float = 60.0) -> None:
        self.max_runs, self.max_age_s = max_runs, max_age_s
        self._runs: OrderedDict[int, _Warm] = OrderedDict()

    def take(self, run_id: int) -> _Warm | None:
        """The kept state of ``run_id`` (removed: it is put back only after a successful batch)."""
        warm = self._runs.pop(run_id, None)
        if warm is not None and time.monotonic() - warm.born > self.max_age_s:
            close_session(warm.session)
            return None
        return warm

    def keep(self, run_id: int, warm: _Warm) -> None:
        """Keep the state after a committed batch; the oldest run is dropped past ``max_runs``."""
        self._runs[run_id] = warm
        while len(self._runs) > self.max_runs:
            close_session(self._runs.popitem(last=False)[1].session)

    def forget(self, run_id: int) -> None:
        """Drop a run's state (it closed)."""
        warm = self._runs.pop(run_id, None)
        if warm is not None:
            close_session(warm.session)

    def clear(self) -> None:
        """Drop every run's state."""
        for run_id in list(self._runs):
            self.forget(run_id)


#: The collector's first threshold in a process that keeps the recorder's indexes (:func:`collect_less`).
GC_FIRST_THRESHOLD = 100_000


def collect_less() -> None:
    """Run Python's cycle collector less often, for a long-running process that keeps an :class:`IngestCache`.

    The kept indexes are tens of thousands of long-lived ORM objects (a province: hundreds of thousands).
    With the default first threshold (700 allocations) a batch of 64 cameras sets off several young
    collections and, every few batches, a full one that walks every object of the process: 0.4-0.6 s of
    each 3,000 observations ingested (``benchmarks/distributed.py --ingest-only``, timed with
    ``gc.callbacks``), a third of the ingest. At 25,000: 55 ms (six young collections of 6 ms, a middle one
    of 20 ms); at 100,000: 10 ms. Memory is freed as before by reference counting; only garbage in cycles
    waits longer (a few megabytes).
    The ingest worker calls this at start (``cctv-monitor ingest-worker``); it changes the whole process.
    """
    first, second, third = gc.get_threshold()
    gc.set_threshold(max(first, GC_FIRST_THRESHOLD), second, third)


_STAMPED = (Device, RegisterEntry, Site, Project, Finding)


def _stamp(session: Session) -> tuple[Any, ...]:
    """What changes when anyone writes what the recorder indexes: row counts, top ids, latest changes."""
    # One aggregate per table (one pass over it), all in one statement: it runs up to three times a batch.
    parts = [select(literal(i), func.count(model.id), func.max(model.id), func.max(model.updated))
             for i, model in enumerate(_STAMPED)]
    return tuple(sorted(tuple(row) for row in session.execute(union_all(*parts))))


_CLAIM = text("UPDATE inventory_version SET version = version + 1 WHERE id = 1 "
              "RETURNING version, set_config('cctv.inventory_txid', txid_current()::text, true)")


def _claim(session: Session) -> int | None:
    """PostgreSQL: bump the inventory version for this transaction (its triggers then leave it alone) and
    return it; the row lock waits for any other writer's commit and keeps others out until ours."""
    row = session.connection().execute(_CLAIM).first()
    return None if row is None else row[0]


def _versioned(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


#: The run's columns a batch reads or adds to (its state and lease are checked, its counts added to).
_RUN_COLUMNS = ("state", "total", "done", "lease_owner", "lease_expires", "error")


_LOCK_RUN = (select(*(ScanRun.__table__.c[c] for c in _RUN_COLUMNS))
             .where(ScanRun.__table__.c.id == bindparam("run")).with_for_update())


def _lock_run_row(session: Session, row: ScanRun) -> None:
    """Lock the run's row and take its current state, counts and lease into the kept object (what another
    batch or process may have changed since): a refresh of the whole row costs twice as much, each batch."""
    values = session.connection().execute(_LOCK_RUN, {"run": row.id}).one()  # Core: no ORM work a batch
    for name, value in zip(_RUN_COLUMNS, values):
        set_committed_value(row, name, value)


def _reuse(warm: _Warm, run: RunRef) -> bool:
    """Lock the run's row, check it is open, and check nobody else changed the inventory since the stamp."""
    session, ingestor = warm.session, warm.ingestor
    try:
        _lock_run_row(session, ingestor.row)
        live_run(session, run)
        if _versioned(session):
            version = _claim(session)
            if version is None or warm.stamp is None or version != warm.stamp[0] + 1:
                return False
            warm.stamp = (version,)
        elif _stamp(session) != warm.stamp:
            return False
    except Exception:  # noqa: BLE001 - a closed run or a lost connection: the fresh path raises it properly
        return False
    ingestor.recorder.results = []
    return True


def ingest(session_factory: SessionFactory, run: RunRef, observations: Iterable[ObsData], *,
           settings: ScanSettings | None = None, keep_results: bool = False,
           cache: IngestCache | None = None,
           before_commit: Callable[[Session, IngestResult], None] | None = None) -> IngestResult:
    """Record a batch into an open run (one transaction) and renew its lease; already stored ids are skipped.

    With ``cache`` (a long-running process feeding many batches) the recorder's indexes are kept between
    batches of a run while nobody else changes the inventory (:class:`IngestCache`). ``before_commit``
    writes the caller's own rows in the batch's transaction, after the batch's (e.g. the ingest worker
    counting its unit done): ``before_commit(session, result)``. Devices it changes must be changed through
    the session (an ORM update), so indexes kept in that session stay true.
    """
    settings = settings or ScanSettings()
    given = list(observations)
    warm = cache.take(run.id) if cache is not None else None
    if warm is not None and not _reuse(warm, run):
        warm.session.rollback()
        close_session(warm.session)
        warm = None
    if warm is not None:
        session, ingestor = warm.session, warm.ingestor
    else:
        session = dedicated_session(session_factory) if cache is not None else session_factory()
    kept = False
    try:
        if warm is None:
            if cache is not None:
                session.expire_on_commit = False  # the indexes outlive the commit
            scope = scope_of(session, run, settings)
            claimed = None
            if _versioned(session):
                # Batches of one run take turns (several ingest processes): counts and indexes stay true.
                session.execute(select(ScanRun.id).where(ScanRun.id == run.id).with_for_update())
                if cache is not None:  # before the load: no other writer until our commit
                    claimed = _claim(session)
            ingestor = Ingestor(session, run, scope, keep_results=keep_results, autocommit=False)
        new_ids = ingestor.claim(o.observation_id for o in given if o.observation_id)
        fresh: list[ObsData] = []
        for obs in given:
            oid = obs.observation_id[:128] if obs.observation_id else None
            if oid and oid not in new_ids:
                continue  # stored before, or a second copy within this batch
            if oid:
                new_ids.discard(oid)
            fresh.append(obs)
        skipped = len(given) - len(fresh)
        try:
            with session.no_autoflush:  # rows of the batch are written in order by Ingestor.write
                for obs in _ordered(fresh):
                    ingestor.add(obs)
            _touch(ingestor, settings, len(fresh))
            ingestor.write()
            result = IngestResult(len(fresh), skipped, 0, ingestor.recorder.results)
            if before_commit is not None:
                before_commit(session, result)
            stamp = None
            if cache is not None and _versioned(session):
                stamp = warm.stamp if warm is not None else (None if claimed is None else (claimed,))
            elif cache is not None:
                # Read in this transaction after its writes: our own rows are in it, so the next batch finds
                # the same stamp unless someone else committed since (then it loads afresh: see _reuse).
                stamp = _stamp(session)
            session.commit()
        except Exception:  # noqa: BLE001 - one broken observation must not lose the batch
            session.rollback()
            LOGGER.warning("run #%s: a batch of %d failed as a whole; recording it one by one", run.id, len(fresh),
                           exc_info=True)
            return _one_by_one(session, run, ingestor.recorder.scope, fresh, skipped, settings, keep_results,
                               before_commit)
        if cache is not None:
            warm = warm or _Warm(session, ingestor)
            warm.stamp = stamp
            cache.keep(run.id, warm)
            kept = True
        return result
    finally:
        if not kept:
            close_session(session)


def dedicated_session(session_factory: SessionFactory) -> Session:
    """A session bound to a connection of its own, which it keeps across its commits (for a session kept
    between batches). A session of the factory gives its connection back to the pool at every commit and
    takes one again for the next batch: a ping and a reset, two round trips a batch. Close it with
    :func:`close_session`."""
    engine = getattr(session_factory, "kw", {}).get("bind")
    if not isinstance(engine, Engine):
        return session_factory()
    return session_factory(bind=engine.connect())


def close_session(session: Session) -> None:
    """Close ``session`` and the connection it was given by :func:`dedicated_session`, if any."""
    bind = session.bind
    session.close()
    if isinstance(bind, Connection):
        bind.close()


def _one_by_one(session: Session, run: RunRef, scope: ScanScope, fresh: list[ObsData], skipped: int,
                settings: ScanSettings, keep_results: bool,
                before_commit: Callable[[Session, IngestResult], None] | None = None) -> IngestResult:
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
    # The run's row again, as every batch holds it to its commit (batches take turns), with its current counts.
    _lock_run_row(session, ingestor.row)
    _touch(ingestor, settings, new)
    result = IngestResult(new, skipped, failed, ingestor.recorder.results)
    if before_commit is not None:
        before_commit(session, result)
    session.commit()
    return result


def _touch(ingestor: Ingestor, settings: ScanSettings, added: int) -> None:
    """Count the batch into the run's total and renew its lease (feeding a run is a heartbeat)."""
    from datetime import timedelta

    row = ingestor.row
    row.total = (row.total or 0) + added
    row.lease_expires = utcnow() + timedelta(seconds=settings.lease_s)
