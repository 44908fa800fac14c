"""Device and finding exports as CSV (UTF-8 with BOM, so Excel shows Thai) and XLSX (openpyxl).

Exports use the same filters and the same access scope as the device table. They list only columns we
chose (never the observation JSON, never site credentials), and every text cell that a spreadsheet would
read as a formula (starting with = + - @, or a tab/CR) is prefixed with ``'`` (OWASP CSV injection).
"""

from __future__ import annotations

import csv
import io
import logging
from datetime import datetime
from typing import Any, Iterable, Iterator, Sequence

from openpyxl import Workbook
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from cctv_monitor.models import Agency, Device, Finding, Project
from cctv_monitor.statuses import DeviceStatus
from dashboards.i18n import rule_label
from dashboards.queries import DeviceFilters, LastObs, device_conditions, device_result
from dashboards.security import device_scope
from cctv_monitor.serialize import strip_control

LOGGER = logging.getLogger(__name__)

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_STARTS = frozenset(FORMULA_PREFIXES)

DEVICE_HEADERS = {
    "th": ["รหัส", "ชื่อ", "ที่อยู่ IP", "MAC", "หมายเลขเครื่อง", "ผู้ผลิต", "รุ่น", "เฟิร์มแวร์", "สถานะ",
           "ลงทะเบียน", "หน่วยงาน", "โครงการ", "การเข้ารหัส", "ความละเอียด", "เฟรมต่อวินาที", "พบล่าสุด (UTC)"],
    "en": ["ID", "Name", "Address", "MAC", "Serial", "Manufacturer", "Model", "Firmware", "Status", "Registered",
           "Agency", "Project", "Codec", "Resolution", "FPS", "Last seen (UTC)"],
}
FINDING_HEADERS = {
    "th": ["รหัสอุปกรณ์", "ชื่ออุปกรณ์", "ที่อยู่ IP", "MAC", "หน่วยงาน", "โครงการ", "กฎ", "ชื่อกฎ", "ระดับ",
           "เรื่อง", "ที่กำหนด", "ที่ตรวจพบ", "ที่มาของข้อกำหนด", "รายละเอียด", "พบครั้งแรก (UTC)", "พบล่าสุด (UTC)"],
    "en": ["Device ID", "Device name", "Address", "MAC", "Agency", "Project", "Rule", "Rule name", "Severity",
           "Subject", "Expected", "Observed", "Source", "Message", "First seen (UTC)", "Last seen (UTC)"],
}


def safe_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas in text cells; other types pass through."""
    if isinstance(value, str):
        # Control characters make openpyxl refuse the whole workbook (a 500 for every user).
        value = strip_control(value, keep_newlines=True)
        if value.startswith(FORMULA_PREFIXES):
            return "'" + value
    return value


def safe_row(row: Iterable[Any]) -> list[Any]:
    """:func:`safe_cell` over a row; the common cell (not text, or printable text starting with no formula
    character) is checked inline, without a call: an export has hundreds of thousands of cells."""
    return [safe_cell(v) if isinstance(v, str) and (not v.isprintable() or v[:1] in _FORMULA_STARTS) else v
            for v in row]


def _iso(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


#: What a device export reads, in this order.
EXPORT_COLUMNS = (
    Device.id, Device.name, Device.address, Device.mac, Device.serial, Device.manufacturer, Device.model,
    Device.firmware, Device.status, Device.registered, Agency.code, Project.code, LastObs.encoding, LastObs.width,
    LastObs.height, LastObs.fps, LastObs.measured_width, LastObs.measured_height, LastObs.measured_fps,
    Device.last_seen,
)


def device_rows(session: Session, filters: DeviceFilters, user: Any, lang: str) -> Iterator[list[Any]]:
    """Export rows for devices matching ``filters``."""
    labels = {s.value: s.label(lang) for s in DeviceStatus}
    yes, no = ("ใช่", "ไม่ใช่") if lang == "th" else ("yes", "no")
    for (id_, name, address, mac, serial, manufacturer, model, firmware, status, registered, agency_code,
         project_code, encoding, width, height, fps, m_width, m_height, m_fps, last_seen) in device_result(
            session, filters, user, EXPORT_COLUMNS).tuples():  # plain tuples: no dict per row
        width = m_width or width
        height = m_height or height
        fps = m_fps if m_fps is not None else fps
        yield [id_, name, address, mac, serial, manufacturer, model, firmware,
               labels.get(status, status or ""), yes if registered else no, agency_code, project_code, encoding,
               f"{width}x{height}" if width and height else "", round(fps, 2) if fps is not None else "",
               _iso(last_seen)]


def finding_rows(session: Session, filters: DeviceFilters, user: Any, lang: str) -> Iterator[list[Any]]:
    """Export rows for the active findings of devices matching ``filters``; an active finding was last
    confirmed by its device's latest observation (its "last seen")."""
    stmt = (select(Finding.device_id, Device.name, Device.address, Device.mac, Agency.code, Project.code,
                   Finding.rule_id, Finding.severity, Finding.subject, Finding.expected, Finding.observed,
                   Finding.source, Finding.message_th, Finding.message_en, Finding.first_seen,
                   func.coalesce(LastObs.observed_at, Finding.last_seen))
            .select_from(Device)
            .join(Finding, and_(Finding.device_id == Device.id, Finding.active.is_(True)))
            .outerjoin(LastObs, LastObs.id == Device.last_observation_id)
            .outerjoin(Agency, Agency.id == Device.agency_id)
            .outerjoin(Project, Project.id == Device.project_id))
    stmt = device_scope(stmt, user)
    conds = device_conditions(filters)
    if conds:
        stmt = stmt.where(and_(*conds))
    stmt = stmt.order_by(Device.address, Device.id, Finding.rule_id, Finding.id)
    for r in session.execute(stmt):
        yield [r[0], r[1], r[2], r[3], r[4], r[5], r[6], rule_label(r[6], lang), r[7], r[8], r[9], r[10], r[11],
               r[12] if lang == "th" else r[13], _iso(r[14]), _iso(r[15])]


def to_csv(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """CSV text chunks: a BOM, the header, then rows with formula cells neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    yield "\ufeff"
    writer.writerow(headers)
    for i, row in enumerate(rows, 1):
        writer.writerow(safe_row(row))
        if i % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def to_xlsx(sheet_title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """An XLSX workbook (write-only mode: constant memory for large exports)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_title[:31])
    sheet.append(list(headers))
    for row in rows:
        sheet.append(safe_row(row))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
