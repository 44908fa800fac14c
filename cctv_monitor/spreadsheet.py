"""Project spreadsheets (CSV and XLSX) as a provincial clerk fills them: columns, header row, rows to projects.

A spreadsheet holds one row per register entry, with the project and site columns repeated (or left empty
after their first row). The header row may sit below a title line; its columns may be written in English
(:data:`CSV_COLUMNS`) or Thai (:data:`TH_HEADERS`). Every problem names the spreadsheet row and the column
as the file writes it, so a Thai header stays Thai in the message.

This module only reads and groups; :mod:`cctv_monitor.registry` validates and writes.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cctv_monitor.spreadsheet_limits import MAX_COLUMNS, bounded_rows, check_xlsx_archive

__all__ = ["CSV_COLUMNS", "TH_HEADERS", "THAI_COLUMNS", "REQUIRED_COLUMNS", "EXAMPLE_CODE", "TableRead", "csv_rows", "xlsx_rows",
           "cell", "read_rows", "canonical_column"]

#: CSV/XLSX columns (header row, any order, case-insensitive). Project and site columns repeat per row.
CSV_COLUMNS: dict[str, str] = {
    "project_code": "project code (unique), e.g. CR-MS-2568-001",
    "project_title_th": "project title in Thai",
    "project_title_en": "project title in English (optional)",
    "agency_code": "agency code, e.g. maesai-mun",
    "agency_name_th": "agency name in Thai",
    "agency_name_en": "agency name in English (optional)",
    "province": "province (Thai or English name)",
    "district": "district (optional)",
    "subdistrict": "subdistrict (optional)",
    "approval_ref": "approval reference (letter number)",
    "approval_date": "approval date: 2025-03-14, 14/03/2568 (Buddhist year) or a date cell",
    "committee_level": "ministry or province",
    "budget_thb": "approved budget in baht (optional)",
    "spec_profile": "spec profile code (or its Thai name): fixed_indoor, fixed_outdoor, ptz, fixed_analytics, nvr",
    "approved_count": "number of approved cameras",
    "site_code": "site code within the project, e.g. market",
    "site_name_th": "site name in Thai",
    "site_name_en": "site name in English (optional)",
    "site_address_ranges": "address ranges: CIDRs, a.b.c.d-a.b.c.e ranges, addresses or host:port, separated "
                           "by spaces or ;",
    "site_ports": "ONVIF ports to sweep, separated by spaces or ; (optional)",
    "site_latitude": "latitude (optional)",
    "site_longitude": "longitude (optional)",
    "site_username": "ONVIF user of the site's cameras (optional)",
    "site_password_env": "environment variable holding the password (optional)",
    "site_password": "password (used when the variable is unset); encrypted in the database",
    "camera_label": "camera label in the register (optional)",
    "mac": "camera MAC address (mac or serial required for a register entry)",
    "serial": "camera serial number",
    "camera_location": "where the camera is installed (optional)",
    "camera_address": "expected host[:port] (optional)",
}
#: The Thai heading of each column, as the template writes it and the README lists it.
TH_HEADERS: dict[str, str] = {
    "project_code": "รหัสโครงการ", "project_title_th": "ชื่อโครงการ", "project_title_en": "ชื่อโครงการ (อังกฤษ)",
    "agency_code": "รหัสหน่วยงาน", "agency_name_th": "ชื่อหน่วยงาน", "agency_name_en": "ชื่อหน่วยงาน (อังกฤษ)",
    "province": "จังหวัด", "district": "อำเภอ", "subdistrict": "ตำบล", "approval_ref": "เลขที่หนังสืออนุมัติ",
    "approval_date": "วันที่อนุมัติ", "committee_level": "ระดับคณะกรรมการ", "budget_thb": "งบประมาณ (บาท)",
    "spec_profile": "ข้อกำหนด", "approved_count": "จำนวนที่อนุมัติ", "site_code": "รหัสจุดติดตั้ง",
    "site_name_th": "ชื่อจุดติดตั้ง", "site_name_en": "ชื่อจุดติดตั้ง (อังกฤษ)", "site_address_ranges": "ช่วงหมายเลขไอพี",
    "site_ports": "พอร์ต", "site_latitude": "ละติจูด", "site_longitude": "ลองจิจูด", "site_username": "ชื่อผู้ใช้",
    "site_password_env": "ตัวแปรรหัสผ่าน", "site_password": "รหัสผ่าน", "camera_label": "ชื่อกล้อง",
    "mac": "หมายเลข MAC", "serial": "หมายเลขเครื่อง", "camera_location": "ตำแหน่งติดตั้ง",
    "camera_address": "ที่อยู่ไอพีกล้อง",
}
#: Every Thai heading a clerk may use (lower-cased), with the column it means.
THAI_COLUMNS: dict[str, str] = {
    **{th.lower(): column for column, th in TH_HEADERS.items()},
    "งบประมาณ": "budget_thb", "mac address": "mac", "ชื่อโปรไฟล์": "spec_profile", "ประเภทกล้อง": "spec_profile",
}
REQUIRED_COLUMNS = ("project_code",)
#: Project code of the template's example row: such rows are skipped (with a note), never imported.
EXAMPLE_CODE = "EXAMPLE-2568-001"
_IGNORED_COLUMNS = {"note", "notes", "หมายเหตุ", "remark", "remarks"}
_PROJECT_COLUMNS = {
    "project_title_th": ("title_th",), "project_title_en": ("title_en",), "agency_code": ("agency", "code"),
    "agency_name_th": ("agency", "name_th"), "agency_name_en": ("agency", "name_en"),
    "province": ("agency", "province"), "district": ("agency", "district"),
    "subdistrict": ("agency", "subdistrict"), "approval_ref": ("approval_ref",),
    "approval_date": ("approval_date",), "committee_level": ("committee_level",), "budget_thb": ("budget_thb",),
    "spec_profile": ("spec_profile",), "approved_count": ("approved_count",),
}
_SITE_COLUMNS = {
    "site_name_th": "name_th", "site_name_en": "name_en", "site_address_ranges": "address_ranges",
    "site_ports": "ports", "site_latitude": "latitude", "site_longitude": "longitude",
}
_CRED_COLUMNS = {"site_username": "username", "site_password_env": "password_env", "site_password": "password"}
_ENTRY_COLUMNS = {"camera_label": "label", "mac": "mac", "serial": "serial", "camera_location": "location",
                  "camera_address": "address"}
# Field path (after the project index) -> column, to name the column of a value that is missing altogether.
_PROJECT_FIELDS = {target: column for column, target in _PROJECT_COLUMNS.items()} | {
    ("code",): "project_code", ("sites",): "site_address_ranges"}
_SITE_FIELDS = {key: column for column, key in _SITE_COLUMNS.items()} | {"code": "site_code"}
_CRED_FIELDS = {key: column for column, key in _CRED_COLUMNS.items()}
_ENTRY_FIELDS = {key: column for column, key in _ENTRY_COLUMNS.items()} | {"site": "site_code"}


def csv_rows(path: Path) -> list[list[Any]]:
    """Rows of a CSV file: UTF-8 (BOM or not) or Windows-874, comma, semicolon or tab."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Thai Excel saves "CSV" in Windows-874 unless "CSV UTF-8" is chosen.
        text = raw.decode("cp874")
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    return [row for row in csv.reader(io.StringIO(text), dialect)]


def xlsx_rows(path: Path) -> list[list[Any]]:
    """Rows of the sheet named ``projects``, else of the first sheet."""
    from openpyxl import load_workbook  # only needed for XLSX

    check_xlsx_archive(path)  # before openpyxl expands anything: zip bombs end here
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a broken file
        raise ValueError(f"not a readable XLSX workbook ({type(exc).__name__}: {exc})") from exc
    try:
        sheet = workbook["projects"] if "projects" in workbook.sheetnames else workbook.worksheets[0]
        return [list(row) for row in bounded_rows(sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS))]
    finally:
        workbook.close()


def cell(value: Any) -> Any:
    """Spreadsheet cell to a plain value: blank -> None, 12.0 -> 12, text stripped."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def canonical_column(heading: Any) -> str:
    """The column a heading means (English or Thai, any case, extra spaces ignored); '' for a blank one."""
    text = " ".join(str(cell(heading) or "").split()).lower()
    return THAI_COLUMNS.get(text, text)


@dataclass
class TableRead:
    """What :func:`read_rows` found: project mappings to validate, where each value came from, problems."""

    projects: list[dict[str, Any]] = field(default_factory=list)
    problems: list[tuple[int | None, str | None, str]] = field(default_factory=list)  # (row, column, message)
    notes: list[str] = field(default_factory=list)
    header_row: int | None = None
    written: dict[str, str] = field(default_factory=dict)  # column -> heading as the file writes it
    locations: dict[tuple[Any, ...], tuple[int, str]] = field(default_factory=dict)

    def shown(self, column: str | None) -> str | None:
        """The column as the file writes it; a column the file lacks by its English and Thai names."""
        if column is None or column in self.written:
            return self.written.get(column, column) if column else column
        if column in CSV_COLUMNS:
            return f"{column} / {TH_HEADERS[column]} (no such column in the file)"
        return column

    def locate(self, field_path: tuple[Any, ...]) -> tuple[int | None, str | None]:
        """(spreadsheet row, column as written) of a value of a project mapping."""
        probe = field_path
        while probe and probe not in self.locations:
            probe = probe[:-1]
        row, column = self.locations.get(probe, (None, None)) if probe else (None, None)
        if probe != field_path:  # the value is missing: name its own column, on the row of its parent
            column = _column_of(field_path) or column
        return row, self.shown(column)


def _column_of(field_path: tuple[Any, ...]) -> str | None:
    rest = field_path[1:]
    if len(rest) >= 3 and rest[0] == "sites" and len(rest) >= 5 and rest[2] == "credentials":
        return _CRED_FIELDS.get(rest[4]) if len(rest) > 4 else "site_username"
    if len(rest) >= 3 and rest[0] == "sites":
        return _SITE_FIELDS.get(rest[2])
    if len(rest) >= 3 and rest[0] == "register":
        return _ENTRY_FIELDS.get(rest[2])
    return _PROJECT_FIELDS.get(tuple(rest))


def _find_header(rows: list[list[Any]]) -> tuple[int | None, list[int]]:
    """Index of the header row (the first whose filled cells are known columns) and the skipped rows."""
    first_filled = None
    for index, row in enumerate(rows):
        filled = [canonical_column(c) for c in row if cell(c) is not None]
        if not filled:
            continue
        if first_filled is None:
            first_filled = index
        known = [c for c in filled if c in CSV_COLUMNS or c in _IGNORED_COLUMNS]
        if "project_code" in known and len(known) * 2 >= len(filled):
            skipped = [i + 1 for i in range(index) if any(cell(c) is not None for c in rows[i])]
            return index, skipped
    return first_filled, []


def read_rows(name: str, rows: list[list[Any]]) -> TableRead:
    """Find the header, map the columns and group the rows into project mappings (not yet validated)."""
    out = TableRead()
    header_index, skipped = _find_header(rows)
    if header_index is None:
        out.problems.append((None, None, "the file is empty (expected a header row)"))
        return out
    header_row = out.header_row = header_index + 1
    if skipped:
        listed = ", ".join(map(str, skipped))
        out.notes.append(f"row(s) {listed} above the header row {header_row} skipped (a title?)")
    columns: dict[str, int] = {}
    for index, heading in enumerate(rows[header_index]):
        column = canonical_column(heading)
        if not column or column in _IGNORED_COLUMNS or column.startswith("#"):
            continue
        written = " ".join(str(cell(heading)).split())
        if column not in CSV_COLUMNS:
            out.problems.append((header_row, written, "unknown column (see the template: cctv-monitor template "
                                                      "projects.xlsx, or the README's CSV/XLSX layout)"))
        elif column in columns:
            out.problems.append((header_row, written, "column appears twice"))
        else:
            columns[column] = index
            out.written[column] = written
    for column in REQUIRED_COLUMNS:
        if column not in columns:
            out.problems.append((header_row, out.shown(column), "required column missing"))
    if out.problems:
        return out
    _group(out, rows[header_index + 1:], header_row, columns)
    return out


def _group(out: TableRead, rows: list[list[Any]], header_row: int, columns: dict[str, int]) -> None:
    projects: dict[str, dict[str, Any]] = {}
    locations = out.locations
    for offset, raw in enumerate(rows):
        row_no = header_row + 1 + offset
        values = {col: cell(raw[i]) if i < len(raw) else None for col, i in columns.items()}
        if all(v is None for v in values.values()):
            continue
        code = values.get("project_code")
        if code is None:
            out.problems.append((row_no, out.shown("project_code"), "missing"))
            continue
        code = str(code)
        if code == EXAMPLE_CODE:
            out.notes.append(f"row {row_no} is the template's example ({EXAMPLE_CODE}): skipped")
            continue
        base = (list(projects).index(code) if code in projects else len(projects),)
        project = projects.setdefault(code, {"code": code, "agency": {}, "sites": [], "register": []})
        if base not in locations:
            locations[base] = (row_no, "project_code")
            locations[base + ("code",)] = (row_no, "project_code")
        for column, target in _PROJECT_COLUMNS.items():
            if column in columns:
                _merge(out, project, target, values[column], base + target, row_no, column)
        site_code = values.get("site_code")
        if site_code is not None or any(values.get(c) is not None for c in [*_SITE_COLUMNS, *_CRED_COLUMNS]):
            if site_code is None:
                out.problems.append((row_no, out.shown("site_code"), "missing (site columns are filled)"))
                continue
            site_code = str(site_code)
            codes = [s["code"] for s in project["sites"]]
            if site_code in codes:
                site_index = codes.index(site_code)
            else:
                site_index = len(project["sites"])
                project["sites"].append({"code": site_code})
                locations[base + ("sites", site_index)] = (row_no, "site_code")
                locations[base + ("sites", site_index, "code")] = (row_no, "site_code")
            site = project["sites"][site_index]
            for column, key in _SITE_COLUMNS.items():
                if column in columns:
                    _merge(out, site, (key,), values[column], base + ("sites", site_index, key), row_no, column)
            if any(values.get(c) is not None for c in _CRED_COLUMNS):
                cred = {key: values.get(column) for column, key in _CRED_COLUMNS.items()}
                creds = site.setdefault("credentials", [])
                if cred not in creds:
                    cpath = base + ("sites", site_index, "credentials", len(creds))
                    creds.append(cred)
                    locations[cpath] = (row_no, "site_username")
                    for column, key in _CRED_COLUMNS.items():
                        locations[cpath + (key,)] = (row_no, column)
        if any(values.get(c) is not None for c in _ENTRY_COLUMNS):
            entry = {key: values.get(column) for column, key in _ENTRY_COLUMNS.items()}
            if site_code is not None:
                entry["site"] = site_code
            epath = base + ("register", len(project["register"]))
            project["register"].append(entry)
            locations[epath] = (row_no, "mac" if "mac" in columns else "serial")
            for column, key in _ENTRY_COLUMNS.items():
                locations[epath + (key,)] = (row_no, column)
            locations[epath + ("site",)] = (row_no, "site_code")
    for data in projects.values():
        if not data["sites"]:
            data.pop("sites")
    out.projects = list(projects.values())


def _merge(out: TableRead, target: dict[str, Any], keys: tuple[str, ...], value: Any, field_path: tuple[Any, ...],
           row_no: int, column: str) -> None:
    """Set a repeated column's value once; a later row may repeat it or leave it empty, not change it."""
    if value is None:
        return
    holder = target
    for key in keys[:-1]:
        holder = holder.setdefault(key, {})
    key = keys[-1]
    if key not in holder or holder[key] is None:
        holder[key] = value
        out.locations[field_path] = (row_no, column)
    elif str(holder[key]) != str(value):
        first = out.locations.get(field_path, (None, column))[0]
        out.problems.append((row_no, out.shown(column),
                             f"{value!r} differs from {holder[key]!r} given in row {first} "
                             f"for the same project/site (repeat the same value or leave it empty)"))
