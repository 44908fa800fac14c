"""The overview's figures and counts, kept per (filters, agency scope, language) while the data stays the same;
likewise the choices of the filter selects (per agency scope) and export files (per filters, scope, language).

Every overview runs eight aggregate queries and builds five plotly figures (about 250 ms of CPU); with many
users on the page, that work repeats with the same answer. An entry is reused while the *data version*
is unchanged: a handful of cheap aggregates, read from the database on every request so that a scan or an
edit in another process is seen. A scan that starts or finishes and a change of register, project or
agency show at once; so does a device that appears or changes status while no scan runs. While a scan
runs (it changes devices one by one, which would make every request rebuild), and for changes that move
no aggregate (a codec, a finding), the overview is at most :data:`MAX_AGE_S` seconds behind.
"""

from __future__ import annotations

import threading
import time
from datetime import date
from collections import OrderedDict
from typing import Any, Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cctv_monitor.models import Agency, Device, Project, RegisterEntry, ScanRun
from cctv_monitor.statuses import ScanState
from dashboards import queries
from dashboards.queries import DeviceFilters
from dashboards.security import visible_agency_ids

#: Longest time an entry is reused even when the data version has not moved.
MAX_AGE_S = 15.0
#: Entries kept (each a few tens of kB of figure JSON).
SIZE = 128
#: Bytes of export files kept at most; a file above a quarter of it is never kept.
EXPORT_BYTES = 32 * 1024 * 1024

_entries: OrderedDict[tuple[Any, ...], tuple[tuple[Any, ...], tuple[Any, ...], float, Any]] = OrderedDict()
_lock = threading.Lock()
_bytes = 0  # the size of the bytes values among _entries
_building: dict[tuple[Any, ...], threading.Event] = {}  # keys being built, set when done
#: Longest wait for another request's build of the same entry.
BUILD_WAIT_S = 30.0


def data_version(session: Session) -> tuple[tuple[Any, ...], tuple[Any, ...], bool]:
    """(scans, register, projects and agencies; devices; whether a scan runs): what the overview reads."""
    stmt = select(
        select(func.max(ScanRun.id)).scalar_subquery(),
        select(func.max(ScanRun.finished)).scalar_subquery(),
        select(func.count(RegisterEntry.id)).scalar_subquery(),
        select(func.max(RegisterEntry.updated)).scalar_subquery(),
        select(func.count(Project.id)).scalar_subquery(),
        select(func.max(Project.updated)).scalar_subquery(),
        select(func.max(Agency.updated)).scalar_subquery(),
        select(func.count(Device.id)).scalar_subquery(),
        select(func.max(Device.status_changed)).scalar_subquery(),
        select(func.count(ScanRun.id)).where(ScanRun.state == ScanState.RUNNING.value).scalar_subquery(),
    )
    row = tuple(session.execute(stmt).one())
    return row[:7], row[7:9], bool(row[9])


def overview_context(session: Session, filters: DeviceFilters, user: Any, lang: str,
                     build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``build()`` (the overview's template context), or the one built for the same key and data version."""
    scope = visible_agency_ids(user)
    return reuse(session, ("overview", lang, tuple(sorted(filters.args().items())),
                           None if scope is None else tuple(scope), date.today()), build)


def filter_options(session: Session, user: Any) -> dict[str, Any]:
    """:func:`dashboards.queries.filter_options` (five queries), reused like the overview: the choices of
    the filter selects on the device table, the unregistered devices and the exports page."""
    scope = visible_agency_ids(user)
    return reuse(session, ("options", None if scope is None else tuple(scope)),
                 lambda: queries.filter_options(session, user))


def reuse(session: Session, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    """``build()``, or what it gave for the same ``key`` and database while the data version holds (see the
    module's text for how current that is). What it gives is shared between requests: never change it.

    One build per key at a time: requests that arrive while it runs wait for it, or, when the entry only
    aged past :data:`MAX_AGE_S` (the data version still holds), get the entry they would have got a moment
    earlier. Many users on a page whose entry expires cost one build, not one each."""
    key = (str(session.get_bind().url), *key)
    scans, devices, running = data_version(session)
    now = time.monotonic()
    with _lock:
        hit = _entries.get(key)
        # while a scan runs, its device-by-device changes would make every request a miss: they show
        # within MAX_AGE_S instead; with no scan running, any change of status or device count shows at once
        current = hit is not None and hit[0] == scans and (hit[1] == devices or running)
        if current and now - hit[2] < MAX_AGE_S:
            _entries.move_to_end(key)
            return hit[3]
        building = _building.get(key)
        if building is not None and current:
            return hit[3]
        builder = building is None
        if builder:
            building = _building[key] = threading.Event()
    if not builder:  # another request builds it
        building.wait(BUILD_WAIT_S)
        with _lock:
            hit = _entries.get(key)
        if hit is not None and hit[0] == scans and (hit[1] == devices or running):
            return hit[3]
        return build()  # the other build failed or is still running: build it here, keep nothing
    try:
        value = build()
        _keep(key, (scans, devices, now, value))
    finally:
        with _lock:
            _building.pop(key, None)
        building.set()
    return value


def _keep(key: tuple[Any, ...], entry: tuple[tuple[Any, ...], tuple[Any, ...], float, Any]) -> None:
    global _bytes
    size = len(entry[3]) if isinstance(entry[3], bytes) else 0
    if size > EXPORT_BYTES // 4:
        return
    with _lock:
        old = _entries.pop(key, None)
        if old is not None and isinstance(old[3], bytes):
            _bytes -= len(old[3])
        _entries[key] = entry
        _bytes += size
        while len(_entries) > SIZE or _bytes > EXPORT_BYTES:
            dropped = _entries.popitem(last=False)[1][3]
            if isinstance(dropped, bytes):
                _bytes -= len(dropped)


def export_file(session: Session, kind: str, fmt: str, filters: DeviceFilters, user: Any, lang: str,
                build: Callable[[], bytes]) -> bytes:
    """An export's file, reused like the overview for the same filters, agency scope and language (kept
    while it is at most a quarter of :data:`EXPORT_BYTES`): with no scan running it is what the database
    holds; while one runs, at most :data:`MAX_AGE_S` seconds behind, as the overview."""
    scope = visible_agency_ids(user)
    return reuse(session, ("export", kind, fmt, lang, tuple(sorted(filters.args(page=1).items())),
                           None if scope is None else tuple(scope)), build)


def clear() -> None:
    """Forget every entry (tests, or after a bulk change made outside the usual paths)."""
    global _bytes
    with _lock:
        _entries.clear()
        _bytes = 0
