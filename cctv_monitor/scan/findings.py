"""One way to keep stored findings in step with what the rules say now: insert, refresh, resolve.

Used for a device's findings after each observation, for a registered camera the scan did not find, and
for a project's findings (count shortfall) when a run closes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Hashable, Mapping, MutableMapping

from sqlalchemy.orm import Session

from cctv_monitor.compliance import FindingResult
from cctv_monitor.models import Finding

__all__ = ["sync_findings", "clip", "scrub"]


def clip(value: Any, limit: int) -> Any:
    """Clip a camera string to a column length and drop NUL (PostgreSQL text cannot hold it)."""
    if not isinstance(value, str):
        return value
    return value.replace("\x00", "")[:limit]


def scrub(value: Any) -> Any:
    """Remove NUL characters from every string of a JSON-able structure."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def sync_findings(session: Session, current: MutableMapping[Hashable, Finding],
                  wanted: Mapping[Hashable, FindingResult], *, now: datetime,
                  make: Callable[[Hashable, FindingResult], Finding],
                  refresh: Callable[[Finding, FindingResult], None], resolve_gone: bool = True) -> list[FindingResult]:
    """Insert findings not yet active, refresh the repeated ones, resolve the gone ones; returns the new ones.

    ``current`` (the active findings by key) is updated in place, so a caller's in-memory index stays true.
    """
    new: list[FindingResult] = []
    for key, result in wanted.items():
        row = current.get(key)
        if row is None:
            row = make(key, result)
            row.first_seen = now
            session.add(row)
            current[key] = row
            new.append(result)
        refresh(row, result)
        if row.last_seen != now:  # refresh may have set it (a batch writes it apart: Recorder.hot)
            row.last_seen = now
    if resolve_gone:
        for key in [k for k in current if k not in wanted]:
            gone = current.pop(key)
            gone.active = False
            gone.resolved_at = now
    return new
