"""What the scans page shows of distributed runs: units per state, and which zone workers answer.

Workers are asked with Celery's ``inspect ping`` when the page loads; the answer is kept for 30 s so a page
reloaded often never floods the broker (or waits a second each time). A zone worker's node name is
``zone-<zone>[+<zone2>...]@<host>`` (``cctv-monitor zone-worker`` names it so).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cctv_monitor.models import ScanUnit, Site

LOGGER = logging.getLogger(__name__)

__all__ = ["UNIT_STATES", "unit_counts", "zone_workers", "zones_of_sites", "PING_CACHE_S"]

UNIT_STATES = ("queued", "running", "done", "failed", "expired")
PING_CACHE_S = 30.0
_CACHE: dict[str, tuple[float, dict[str, list[str]] | None]] = {}
_LOCK = threading.Lock()


def unit_counts(session: Session, run_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Units per state for each of ``run_ids`` that has units (distributed runs only)."""
    ids = list(run_ids)
    out: dict[int, dict[str, int]] = {}
    if not ids:
        return out
    rows = session.execute(select(ScanUnit.scan_run_id, ScanUnit.state, func.count())
                           .where(ScanUnit.scan_run_id.in_(ids)).group_by(ScanUnit.scan_run_id, ScanUnit.state))
    for run_id, state, count in rows:
        out.setdefault(run_id, {s: 0 for s in UNIT_STATES})[state] = count
    return out


def zones_of_sites(session: Session) -> list[str]:
    """Every zone named by a site."""
    return sorted(set(session.scalars(select(Site.zone).distinct())) - {None})


def _ping(broker_url: str, timeout_s: float) -> dict[str, list[str]] | None:
    from cctv_monitor.dispatch import celery_for

    try:
        replies = celery_for(broker_url).control.inspect(timeout=timeout_s).ping() or {}
    except Exception as exc:  # noqa: BLE001 - an unreachable broker shows as "unknown", never a 500
        LOGGER.warning("inspect ping failed: %s", exc)
        return None
    zones: dict[str, list[str]] = {}
    for node in replies:
        name = node.split("@", 1)[0]
        if name.startswith("zone-"):
            for zone in name[len("zone-"):].split("+"):
                zones.setdefault(zone, []).append(node)
    return {z: sorted(nodes) for z, nodes in zones.items()}


def zone_workers(broker_url: str | None, *, timeout_s: float = 1.0,
                 max_age_s: float = PING_CACHE_S) -> dict[str, list[str]] | None:
    """Worker nodes per zone that answered ``inspect ping`` (an answer is reused for ``max_age_s``, 30 s);
    None when the broker did not answer."""
    if not broker_url:
        return None
    now = time.monotonic()
    with _LOCK:
        cached = _CACHE.get(broker_url)
        if cached is not None and now - cached[0] < max_age_s:
            return cached[1]
    answer = _ping(broker_url, timeout_s)
    with _LOCK:
        _CACHE[broker_url] = (time.monotonic(), answer)
    return answer
