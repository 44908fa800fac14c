"""The audit log: who did what, when and from where (after NetBox's change log).

Each entry names the actor (user name, kept even when the user is removed; ``cli:<login>`` for the command
line, ``scheduler`` for timed scans), the client address, an action from :data:`ACTIONS`, the object it
touched and a small JSON detail (before/after for changes, context otherwise; never a password or token).
Changes are recorded in the same transaction as the change itself (:func:`record`); events that change
nothing, such as a failed log-in or a download, are committed on their own (:func:`record_now`), so a
failed request still leaves its trace.
"""

from __future__ import annotations

import getpass
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Iterator

from flask import Flask, has_request_context, request
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from cctv_monitor.models import AuditEntry, utcnow

LOGGER = logging.getLogger(__name__)

__all__ = ["ACTIONS", "record", "record_now", "cli_actor", "AuditFilter", "entries", "CSV_HEADERS", "csv_rows"]

#: action -> (Thai label, English label)
ACTIONS: dict[str, tuple[str, str]] = {
    "login": ("เข้าสู่ระบบ", "log-in"),
    "login_failed": ("เข้าสู่ระบบไม่สำเร็จ", "log-in failed"),
    "login_throttled": ("ถูกระงับการเข้าสู่ระบบชั่วคราว", "log-in refused (throttled)"),
    "logout": ("ออกจากระบบ", "log-out"),
    "token_rejected": ("โทเคน API ไม่ถูกต้อง", "API token rejected"),
    "token_throttled": ("ถูกระงับการใช้โทเคนชั่วคราว", "API token refused (throttled)"),
    "scan_started": ("เริ่มการสแกน", "scan started"),
    "observations_ingested": ("นำเข้าผลการตรวจจากภายนอก", "observations ingested"),
    "schedule_created": ("สร้างตารางสแกน", "schedule created"),
    "schedule_updated": ("แก้ไขตารางสแกน", "schedule changed"),
    "schedule_deleted": ("ลบตารางสแกน", "schedule deleted"),
    "register_imported": ("นำเข้าทะเบียนโครงการ", "project register imported"),
    "register_assigned": ("เพิ่มอุปกรณ์เข้าทะเบียน", "devices added to a register"),
    "user_created": ("สร้างผู้ใช้", "user created"),
    "user_updated": ("แก้ไขผู้ใช้", "user changed"),
    "user_password": ("เปลี่ยนรหัสผ่าน", "password changed"),
    "user_deactivated": ("ระงับผู้ใช้", "user deactivated"),
    "token_issued": ("ออกโทเคน API", "API token issued"),
    "export": ("ดาวน์โหลดข้อมูลส่งออก", "export downloaded"),
    "audit_export": ("ดาวน์โหลดบันทึกการตรวจสอบ", "audit log downloaded"),
    "credential_key_rotated": ("เปลี่ยนกุญแจเข้ารหัสรหัสผ่านกล้อง", "credential key rotated"),
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _clean(value: Any, limit: int) -> str | None:
    """Text without control characters, cut to ``limit`` (user names and targets may come from anyone)."""
    if value is None:
        return None
    return _CONTROL.sub("?", str(value))[:limit]


def cli_actor() -> str:
    """Actor name for the command line: ``cli:`` and the operating-system login."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli"


def _request_address() -> str | None:
    return request.remote_addr if has_request_context() else None


def record(session: Session, action: str, *, actor: str | None, object_type: str | None = None,
           object_repr: str | None = None, detail: dict[str, Any] | None = None,
           address: str | None = None) -> AuditEntry:
    """Add one entry to ``session`` (committed with the caller's change)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    entry = AuditEntry(time=utcnow(), actor=_clean(actor, 128), address=_clean(address or _request_address(), 64),
                       action=action, object_type=_clean(object_type, 32), object_repr=_clean(object_repr, 255),
                       detail=detail or None)
    session.add(entry)
    return entry


def record_now(app: Flask, action: str, **fields: Any) -> None:
    """Record one entry in a transaction of its own; a failure to write is logged, never raised."""
    from cctv_monitor.db import get_db

    try:
        with get_db(app).session_scope() as session:
            record(session, action, **fields)
    except Exception:  # noqa: BLE001 - losing an audit row must not turn a refused log-in into a 500
        LOGGER.exception("could not write the audit entry %s", action)


@dataclass(frozen=True)
class AuditFilter:
    """What the audit page and its CSV show: an action, an actor, a time window."""

    action: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, stmt: Select[Any]) -> Select[Any]:
        """Restrict ``stmt`` over :class:`AuditEntry`."""
        if self.action:
            stmt = stmt.where(AuditEntry.action == self.action)
        if self.actor:
            stmt = stmt.where(AuditEntry.actor == self.actor)
        if self.since:
            stmt = stmt.where(AuditEntry.time >= self.since)
        if self.until:
            stmt = stmt.where(AuditEntry.time < self.until)
        return stmt


def entries(session: Session, filters: AuditFilter, *, limit: int = 100,
            offset: int = 0) -> tuple[list[AuditEntry], int]:
    """The newest matching entries (a page) and how many match in all."""
    total = session.scalar(filters.apply(select(func.count(AuditEntry.id)))) or 0
    rows = session.scalars(filters.apply(select(AuditEntry)).order_by(AuditEntry.time.desc(), AuditEntry.id.desc())
                           .limit(limit).offset(offset))
    return list(rows), int(total)


CSV_HEADERS = {
    "th": ["เวลา (UTC)", "ผู้กระทำ", "ที่อยู่", "การกระทำ", "ประเภท", "รายการ", "รายละเอียด"],
    "en": ["time (UTC)", "actor", "address", "action", "object type", "object", "detail"],
}


def csv_rows(session: Session, filters: AuditFilter, lang: str, *, batch: int = 1000) -> Iterator[list[Any]]:
    """Every matching entry, oldest first, as CSV cells (read in batches, not all at once)."""
    import json

    last_id = 0
    while True:
        stmt = filters.apply(select(AuditEntry)).where(AuditEntry.id > last_id).order_by(AuditEntry.id).limit(batch)
        rows: Iterable[AuditEntry] = list(session.scalars(stmt))
        if not rows:
            return
        for row in rows:
            label = ACTIONS.get(row.action, (row.action, row.action))[0 if lang == "th" else 1]
            yield [row.time.isoformat(timespec="seconds") if row.time else "", row.actor or "", row.address or "",
                   f"{row.action} ({label})", row.object_type or "", row.object_repr or "",
                   json.dumps(row.detail, ensure_ascii=False, sort_keys=True) if row.detail else ""]
            last_id = row.id
