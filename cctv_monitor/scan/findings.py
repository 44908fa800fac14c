"""One way to keep stored findings in step with what the rules say now: insert, refresh, resolve.

Used for a device's findings after each observation, for a registered camera the scan did not find, and
for a project's findings (count shortfall) when a run closes.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Callable, Hashable, Mapping, MutableMapping

from sqlalchemy.orm import Session

from cctv_monitor.compliance import FindingResult
from cctv_monitor.models import Finding
from cctv_monitor.scan.ids import JSONText

__all__ = ["sync_findings", "clip", "scrub", "json_text", "without_nul"]


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


def without_nul(data: dict[str, Any]) -> dict[str, Any]:
    """:func:`scrub` only when a NUL is there (JSON escapes it; a text search is far cheaper than the walk)."""
    return scrub(data) if "\\u0000" in json.dumps(data) else data


def json_text(data: dict[str, Any]) -> JSONText:
    """An observation's JSON without NULs, compact (a tenth fewer bytes to parse, compress and log), ready
    for :func:`cctv_monitor.scan.ids.write_rows`."""
    text = json.dumps(data, separators=_COMPACT)
    return JSONText(json.dumps(scrub(data), separators=_COMPACT) if "\\u0000" in text else text)


_COMPACT = (",", ":")


def sync_findings(session: Session, current: MutableMapping[Hashable, Finding],
                  wanted: Mapping[Hashable, FindingResult], *, now: datetime,
                  make: Callable[[Hashable, FindingResult], Finding],
                  refresh: Callable[[Finding, FindingResult], None], resolve_gone: bool = True,
                  touch: bool = True, on_resolve: Callable[[Finding], None] | None = None) -> list[FindingResult]:
    """Insert findings not yet active, refresh the repeated ones, resolve the gone ones; returns the new ones.

    ``current`` (the active findings by key) is updated in place, so a caller's in-memory index stays true.
    ``touch``: a repeated finding's ``last_seen`` becomes ``now`` (a device's findings are not touched: their
    last confirmation is the device's latest observation, see :mod:`cctv_monitor.scan.recorder`).
    ``on_resolve(row)`` runs for each finding resolved.
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
        if touch and row.last_seen != now:
            row.last_seen = now
    if resolve_gone:
        for key in [k for k in current if k not in wanted]:
            gone = current.pop(key)
            gone.active = False
            gone.resolved_at = now
            if on_resolve is not None:
                on_resolve(gone)
    return new
