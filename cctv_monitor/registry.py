"""Project registry: import spec profiles and approved projects from YAML, CSV and XLSX files.

Files are validated completely before anything is written; every problem is collected with its file,
row (spreadsheet row, or YAML line) and field. A file with any problem imports nothing; a good file is
written and committed in a transaction of its own (all-or-nothing per file). Re-importing the same file
updates rows in place, so the result is the same however often it runs.

File kinds:
- a YAML mapping with ``requirements`` (or ``kind: spec_profile``) is a spec profile
  (see :mod:`cctv_monitor.compliance.spec`);
- any other YAML mapping is one approved project (agency inline, sites, register);
- a CSV or XLSX file holds projects, one row per register entry, with the project and site columns
  repeated on every row (or left empty after their first row). Columns: :data:`CSV_COLUMNS`.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import yaml
from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from cctv_monitor.compliance import Spec, SpecError
from cctv_monitor.credentials import password_env_problem
from cctv_monitor.crypto import Credential, CredentialKeyError, decrypt_credentials, encrypt_credentials
from cctv_monitor.models import Agency, Project, RegisterEntry, Site, SpecProfile
from cctv_monitor.spreadsheet_limits import MAX_COLUMNS, bounded_rows, check_xlsx_archive
from probes.vocab import channel_address, split_channel

LOGGER = logging.getLogger(__name__)

__all__ = [
    "ImportProblem",
    "FileResult",
    "ImportReport",
    "import_path",
    "load_spec",
    "spec_for_project",
    "site_credentials",
    "CSV_COLUMNS",
    "THAI_COLUMNS",
    "SUFFIXES",
]

SUFFIXES = (".yaml", ".yml", ".csv", ".xlsx")
MAX_FILE_BYTES = 20 * 1024 * 1024
COMMITTEE_LEVELS = ("ministry", "province")

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
    "spec_profile": "spec profile code: fixed_indoor, fixed_outdoor, ptz, fixed_analytics, nvr",
    "approved_count": "number of approved cameras",
    "site_code": "site code within the project, e.g. market",
    "site_name_th": "site name in Thai",
    "site_name_en": "site name in English (optional)",
    "site_address_ranges": "address ranges: CIDRs or host:port, separated by spaces or ;",
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
#: Thai column headings a clerk may use instead of the English ones (same meaning as CSV_COLUMNS).
THAI_COLUMNS: dict[str, str] = {
    "รหัสโครงการ": "project_code", "ชื่อโครงการ": "project_title_th", "ชื่อโครงการ (อังกฤษ)": "project_title_en",
    "รหัสหน่วยงาน": "agency_code", "ชื่อหน่วยงาน": "agency_name_th", "ชื่อหน่วยงาน (อังกฤษ)": "agency_name_en",
    "จังหวัด": "province", "อำเภอ": "district", "ตำบล": "subdistrict", "เลขที่หนังสืออนุมัติ": "approval_ref",
    "วันที่อนุมัติ": "approval_date", "ระดับคณะกรรมการ": "committee_level", "งบประมาณ (บาท)": "budget_thb",
    "งบประมาณ": "budget_thb", "ข้อกำหนด": "spec_profile", "จำนวนที่อนุมัติ": "approved_count",
    "รหัสจุดติดตั้ง": "site_code", "ชื่อจุดติดตั้ง": "site_name_th", "ชื่อจุดติดตั้ง (อังกฤษ)": "site_name_en",
    "ช่วงหมายเลขไอพี": "site_address_ranges", "พอร์ต": "site_ports", "ละติจูด": "site_latitude",
    "ลองจิจูด": "site_longitude", "ชื่อผู้ใช้": "site_username", "ตัวแปรรหัสผ่าน": "site_password_env",
    "รหัสผ่าน": "site_password", "ชื่อกล้อง": "camera_label", "หมายเลข mac": "mac", "mac address": "mac",
    "หมายเลขเครื่อง": "serial", "ตำแหน่งติดตั้ง": "camera_location", "ที่อยู่ไอพีกล้อง": "camera_address",
}
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

_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MAC_HEX_RE = re.compile(r"^[0-9a-f]{12}$")


# ---------------------------------------------------------------------------------------------------
# Report


@dataclass(frozen=True)
class ImportProblem:
    """One problem in one file: where (row and field) and what."""

    file: str
    row: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        """``file, row N, field F: message``."""
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field:
            where.append(f"field {self.field}")
        return f"{', '.join(where)}: {self.message}"


@dataclass
class FileResult:
    """What happened to one file."""

    path: str
    kind: str = "unknown"  # spec_profile | project | projects | skipped
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[ImportProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the file was imported (no problem)."""
        return not self.errors

    def summary(self) -> str:
        """One line: what was created, updated or unchanged."""
        parts = [f"{label} {', '.join(codes)}" for label, codes in
                 (("created", self.created), ("updated", self.updated), ("unchanged", self.unchanged)) if codes]
        return f"{self.kind}: " + ("; ".join(parts) if parts else "nothing to import")


@dataclass
class ImportReport:
    """Per-file results of one import run."""

    files: list[FileResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every file was imported."""
        return all(f.ok for f in self.files)

    @property
    def errors(self) -> list[ImportProblem]:
        """All problems of all files."""
        return [e for f in self.files for e in f.errors]

    def count(self, what: str) -> int:
        """Number of created/updated/unchanged objects over all files."""
        return sum(len(getattr(f, what)) for f in self.files)


class _Problems:
    """Collects problems of one file; ``locate`` turns a field path into (row, field name)."""

    def __init__(self, file: str, locate: Callable[[tuple[Any, ...]], tuple[int | None, str | None]]) -> None:
        self.file = file
        self.locate = locate
        self.items: list[ImportProblem] = []

    def add(self, path: tuple[Any, ...], message: str) -> None:
        row, name = self.locate(path)
        self.items.append(ImportProblem(self.file, row, name, message))

    def __bool__(self) -> bool:
        return bool(self.items)


# ---------------------------------------------------------------------------------------------------
# Validated records (plain data, no ORM)


@dataclass
class AgencyData:
    code: str
    name_th: str
    name_en: str | None
    province: str
    district: str | None
    subdistrict: str | None


@dataclass
class SiteData:
    code: str
    name_th: str
    name_en: str | None
    address_ranges: list[str]
    ports: list[int] | None
    latitude: float | None
    longitude: float | None
    credentials: list[Credential]


@dataclass
class EntryData:
    mac: str | None
    serial: str | None
    label: str | None
    location: str | None
    address: str | None
    site: str | None
    path: tuple[Any, ...] = ()


@dataclass
class ProjectData:
    code: str
    title_th: str
    title_en: str | None
    agency: AgencyData
    approval_ref: str | None
    approval_date: date | None
    committee_level: str | None
    budget_thb: Decimal | None
    spec_profile: str
    recorder_spec_profile: str | None
    approved_count: int
    sites: list[SiteData]
    register: list[EntryData]
    path: tuple[Any, ...] = ()
    locate: Callable[[tuple[Any, ...]], tuple[int | None, str | None]] | None = field(default=None, repr=False)


# ---------------------------------------------------------------------------------------------------
# Public API


def import_path(session: Session, path: Path, *, app: Flask | None = None,
                profiles_dir: Path | None = None) -> ImportReport:
    """Import a file or a folder (profiles first, then projects); each file commits or rolls back alone."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    report = ImportReport()
    files: list[Path] = []
    if profiles_dir is not None and Path(profiles_dir).is_dir():
        files += _files_in(Path(profiles_dir))
    path = Path(path)
    if path.is_dir():
        # A config folder: its profiles/ and projects/ subfolders, then its own files.
        for sub in ("profiles", "projects"):
            if (path / sub).is_dir():
                files += _files_in(path / sub)
        files += _files_in(path)
    elif path.exists():
        files.append(path)
    else:
        report.files.append(FileResult(str(path), "missing", errors=[ImportProblem(str(path), None, None,
                                                                                   "no such file or folder")]))
        return report
    seen: set[Path] = set()
    ordered = []
    for item in files:
        resolved = item.resolve()
        if resolved not in seen:
            seen.add(resolved)
            ordered.append(item)
    # Profiles before projects, so a project may use a profile imported in the same run.
    ordered.sort(key=lambda p: (0 if _looks_like_profile(p) else 1))
    for item in ordered:
        report.files.append(_import_file(session, item, app))
    return report


def load_spec(session: Session, code: str) -> Spec:
    """The parsed spec profile ``code`` from the database; LookupError when it is not imported."""
    row = session.scalars(select(SpecProfile).where(SpecProfile.code == code)).one_or_none()
    if row is None:
        raise LookupError(f"spec profile {code!r} is not imported (run: cctv-monitor import-profiles)")
    return Spec.from_mapping(row.requirements, code=row.code)


def spec_for_project(project: Project) -> Spec:
    """The parsed spec profile of ``project``."""
    profile = project.spec_profile
    return Spec.from_mapping(profile.requirements, code=profile.code)


def site_credentials(site: Site, *, app: Flask | None = None) -> list[Credential]:
    """The decrypted ONVIF credentials of ``site`` (empty list when none were given)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    return decrypt_credentials(app, site.credentials_encrypted)


# ---------------------------------------------------------------------------------------------------
# Files


def _files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES
                  and not p.name.startswith((".", "~$")))


def _looks_like_profile(path: Path) -> bool:
    if path.suffix.lower() not in (".yaml", ".yml"):
        return False
    if path.parent.name == "profiles":
        return True
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:20000]
    except OSError:
        return False
    return bool(re.search(r"^(requirements:|kind:\s*spec_profile)", head, re.M))


def _import_file(session: Session, path: Path, app: Flask) -> FileResult:
    name = str(path)
    result = FileResult(name)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            result.errors.append(ImportProblem(name, None, None, f"file is {size} bytes, more than the "
                                                                 f"{MAX_FILE_BYTES} allowed"))
            return result
        suffix = path.suffix.lower()
        if suffix in (".yaml", ".yml"):
            records = _read_yaml(path, result)
        elif suffix == ".csv":
            records = _read_table(path, _csv_rows(path), result)
        elif suffix == ".xlsx":
            records = _read_table(path, _xlsx_rows(path), result)
        else:
            result.kind = "skipped"
            result.errors.append(ImportProblem(name, None, None, f"unsupported file type {suffix!r} "
                                                                 f"(use {', '.join(SUFFIXES)})"))
            return result
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        result.errors.append(ImportProblem(name, None, None, f"cannot read the file: {exc}"))
        return result
    if result.errors:
        return result
    # Everything is valid on paper; now check against the database and write, in one transaction.
    try:
        problems = _write(session, records, result, app)
        if problems:
            session.rollback()
            result.errors.extend(problems)
            result.created.clear(), result.updated.clear(), result.unchanged.clear()
        else:
            session.commit()
    except (SQLAlchemyError, CredentialKeyError) as exc:
        session.rollback()
        result.created.clear(), result.updated.clear(), result.unchanged.clear()
        result.errors.append(ImportProblem(name, None, None, f"database write failed, nothing imported: "
                                                             f"{getattr(exc, 'orig', None) or exc}"))
    return result


# ---- YAML -------------------------------------------------------------------------------------------


def _read_yaml(path: Path, result: FileResult) -> list[Any]:
    name = str(path)
    text = path.read_text(encoding="utf-8-sig")
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        row = mark.line + 1 if mark is not None else None
        result.errors.append(ImportProblem(name, row, None, f"not valid YAML: {getattr(exc, 'problem', exc)}"))
        return []

    def locate(field_path: tuple[Any, ...]) -> tuple[int | None, str | None]:
        return _yaml_line(root, field_path), _dotted(field_path)

    problems = _Problems(name, locate)
    if not isinstance(data, Mapping):
        problems.add((), "expected a mapping (one project or one spec profile per file)")
        result.errors.extend(problems.items)
        return []
    if "requirements" in data or data.get("kind") == "spec_profile":
        result.kind = "spec_profile"
        code = str(data.get("code") or path.stem)
        try:
            spec = Spec.from_mapping(data, code=code)
        except SpecError as exc:
            problems.add(tuple(_split_dotted(exc.field)), exc.message)
            result.errors.extend(problems.items)
            return []
        return [spec]
    result.kind = "project"
    body = {k: v for k, v in data.items() if k != "kind"}
    if data.get("kind") not in (None, "project"):
        problems.add(("kind",), f"{data.get('kind')!r}: expected project or spec_profile")
    project = _validate_project(body, problems, ())
    result.errors.extend(problems.items)
    return [project] if project is not None and not problems else []


def _yaml_line(node: Any, field_path: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at ``field_path`` (the deepest existing ancestor if it is absent)."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in field_path:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if str(key_node.value) == str(key):
                    child = value_node
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
            child = node.value[key]
        if child is None:
            return line
        node = child
        line = node.start_mark.line + 1
    return line


def _dotted(field_path: tuple[Any, ...]) -> str | None:
    out = ""
    for key in field_path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out or None


def _split_dotted(text: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"[.\[\]]+", text) if p]


# ---- CSV / XLSX ----------------------------------------------------------------------------------------


def _csv_rows(path: Path) -> list[list[Any]]:
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


def _xlsx_rows(path: Path) -> list[list[Any]]:
    from openpyxl import load_workbook  # only needed for XLSX

    check_xlsx_archive(path)  # before openpyxl expands anything: zip bombs end here
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a broken file
        raise ValueError(f"not a readable XLSX workbook ({type(exc).__name__}: {exc})") from exc
    try:
        sheet = workbook["projects"] if "projects" in workbook.sheetnames else workbook.worksheets[0]
        return list(bounded_rows(sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS)))
    finally:
        workbook.close()


def _cell(value: Any) -> Any:
    """Spreadsheet cell to a plain value: blank -> None, 12.0 -> 12, text stripped."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _read_table(path: Path, rows: list[list[Any]], result: FileResult) -> list[ProjectData]:
    """Group register rows into projects (project/site columns repeated) and validate each project."""
    name = str(path)
    result.kind = "projects"
    locations: dict[tuple[Any, ...], tuple[int, str]] = {}

    def locate(field_path: tuple[Any, ...]) -> tuple[int | None, str | None]:
        probe = field_path
        while probe:
            if probe in locations:
                return locations[probe]
            probe = probe[:-1]
        return locations.get(field_path[:1], (None, None)) if field_path else (None, None)

    problems = _Problems(name, locate)
    header_index = next((i for i, row in enumerate(rows) if any(_cell(c) is not None for c in row)), None)
    if header_index is None:
        problems.items.append(ImportProblem(name, None, None, "the file is empty (expected a header row)"))
        result.errors.extend(problems.items)
        return []
    header = [str(_cell(c) or "").strip().lower() for c in rows[header_index]]
    header = [THAI_COLUMNS.get(column, column) for column in header]
    header_row = header_index + 1
    columns: dict[str, int] = {}
    for index, column in enumerate(header):
        if not column or column in _IGNORED_COLUMNS or column.startswith("#"):
            continue
        if column not in CSV_COLUMNS:
            problems.items.append(ImportProblem(name, header_row, column, "unknown column (see README: project "
                                                                          "files, CSV/XLSX layout)"))
        elif column in columns:
            problems.items.append(ImportProblem(name, header_row, column, "column appears twice"))
        else:
            columns[column] = index
    if "project_code" not in columns:
        problems.items.append(ImportProblem(name, header_row, "project_code", "required column missing"))
    if problems:
        result.errors.extend(problems.items)
        return []

    projects: dict[str, dict[str, Any]] = {}
    first_row: dict[str, int] = {}
    for offset, raw in enumerate(rows[header_index + 1:]):
        row_no = header_row + 1 + offset
        values = {col: _cell(raw[i]) if i < len(raw) else None for col, i in columns.items()}
        if all(v is None for v in values.values()):
            continue
        code = values.get("project_code")
        if code is None:
            problems.items.append(ImportProblem(name, row_no, "project_code", "missing"))
            continue
        code = str(code)
        index = list(projects).index(code) if code in projects else len(projects)
        base = (index,)
        project = projects.setdefault(code, {"code": code, "agency": {}, "sites": [], "register": []})
        if code not in first_row:
            first_row[code] = row_no
            locations[base] = (row_no, "project_code")
            locations[base + ("code",)] = (row_no, "project_code")
        for column, target in _PROJECT_COLUMNS.items():
            if column in columns:
                _merge(project, target, values[column], base + target, row_no, column, locations, problems)
        site_code = values.get("site_code")
        site_index = None
        if site_code is not None or any(values.get(c) is not None for c in list(_SITE_COLUMNS) + list(_CRED_COLUMNS)):
            if site_code is None:
                problems.items.append(ImportProblem(name, row_no, "site_code", "missing (site columns are filled)"))
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
                    _merge(site, (key,), values[column], base + ("sites", site_index, key), row_no, column,
                           locations, problems)
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
            locations[epath] = (row_no, "mac")
            for column, key in _ENTRY_COLUMNS.items():
                locations[epath + (key,)] = (row_no, column)
            locations[epath + ("site",)] = (row_no, "site_code")

    records = []
    for index, data in enumerate(projects.values()):
        if not data["sites"]:
            data.pop("sites")
        record = _validate_project(data, problems, (index,))
        if record is not None:
            records.append(record)
    if not projects and not problems:
        problems.items.append(ImportProblem(name, None, None, "no project rows below the header"))
    problems.items.sort(key=lambda p: (p.row or 0))
    result.errors.extend(problems.items)
    return [] if problems else records


def _merge(target: dict[str, Any], keys: tuple[str, ...], value: Any, field_path: tuple[Any, ...], row_no: int,
           column: str, locations: dict[tuple[Any, ...], tuple[int, str]], problems: _Problems) -> None:
    """Set a repeated column's value once; a later row may repeat it or leave it empty, not change it."""
    if value is None:
        return
    holder = target
    for key in keys[:-1]:
        holder = holder.setdefault(key, {})
    key = keys[-1]
    if key not in holder or holder[key] is None:
        holder[key] = value
        locations[field_path] = (row_no, column)
    elif str(holder[key]) != str(value):
        first = locations.get(field_path, (None, column))[0]
        problems.items.append(ImportProblem(problems.file, row_no, column,
                                            f"{value!r} differs from {holder[key]!r} given in row {first} "
                                            f"for the same project/site (repeat the same value or leave it empty)"))


# ---------------------------------------------------------------------------------------------------
# Validation (shared by YAML and tables)


def _validate_project(data: Mapping[str, Any], problems: _Problems, base: tuple[Any, ...]) -> ProjectData | None:
    """Turn a project mapping into :class:`ProjectData`, adding a problem for every bad field."""
    before = len(problems.items)
    allowed = {"code", "title_th", "title_en", "agency", "approval_ref", "approval_date", "committee_level",
               "budget_thb", "spec_profile", "recorder_spec_profile", "approved_count", "sites", "register"}
    for key in data:
        if key not in allowed:
            problems.add(base + (key,), f"unknown field (allowed: {', '.join(sorted(allowed))})")
    code = _code(data, "code", problems, base)
    title_th = _str(data, "title_th", problems, base, required=True)
    agency = _validate_agency(data.get("agency"), problems, base + ("agency",))
    approval_date = _date(data.get("approval_date"), problems, base + ("approval_date",))
    committee = _str(data, "committee_level", problems, base)
    if committee is not None and committee not in COMMITTEE_LEVELS:
        problems.add(base + ("committee_level",), f"{committee!r}: expected one of {', '.join(COMMITTEE_LEVELS)}")
    budget = _decimal(data.get("budget_thb"), problems, base + ("budget_thb",))
    profile = _code(data, "spec_profile", problems, base)
    recorder_profile = _code(data, "recorder_spec_profile", problems, base) if data.get("recorder_spec_profile") else None
    approved = _int(data.get("approved_count"), problems, base + ("approved_count",), required=True, minimum=0)
    sites = _validate_sites(data.get("sites"), problems, base + ("sites",))
    register = _validate_register(data.get("register"), sites, problems, base + ("register",))
    if approved is not None and register is not None and len(register) > approved:
        problems.add(base + ("approved_count",), f"the register lists {len(register)} cameras, more than the "
                                                 f"{approved} approved")
    if len(problems.items) > before:
        return None
    return ProjectData(code=code, title_th=title_th, title_en=_str(data, "title_en", problems, base),
                       agency=agency, approval_ref=_str(data, "approval_ref", problems, base),
                       approval_date=approval_date, committee_level=committee, budget_thb=budget,
                       spec_profile=profile, recorder_spec_profile=recorder_profile, approved_count=approved, sites=sites or [], register=register or [],
                       path=base, locate=problems.locate)


def _validate_agency(data: Any, problems: _Problems, base: tuple[Any, ...]) -> AgencyData | None:
    if not isinstance(data, Mapping):
        problems.add(base, "missing: give the agency (code, name_th, province, district)")
        return None
    for key in data:
        if key not in {"code", "name_th", "name_en", "province", "district", "subdistrict"}:
            problems.add(base + (key,), "unknown field")
    code = _code(data, "code", problems, base)
    name_th = _str(data, "name_th", problems, base, required=True)
    province = _str(data, "province", problems, base, required=True)
    district = _str(data, "district", problems, base)
    subdistrict = _str(data, "subdistrict", problems, base)
    if province is not None:
        place = _check_place(province, district, subdistrict)
        if isinstance(place, tuple) and len(place) == 2:
            problems.add(base + (place[0],), place[1])
        elif place is not None:
            province, district, subdistrict = place
    return AgencyData(code=code, name_th=name_th, name_en=_str(data, "name_en", problems, base),
                      province=province, district=district, subdistrict=subdistrict)


def _check_place(province: str, district: str | None, subdistrict: str | None) -> Any:
    """Official Thai names (province, district, subdistrict), or (field, message) when a name is unknown."""
    import geothai  # DOPA codes and names of every province, district and subdistrict

    wanted = geothai.normalize(province)
    matches = [p for p in geothai.provinces() if geothai.is_province(p, wanted)]
    if not matches:
        return ("province", f"{province!r} is not a Thai province")
    prov = matches[0]
    dist = None
    if district:
        wanted = geothai.normalize(district)
        found = [d for d in geothai.districts(prov.code) if geothai.is_district(d, wanted)]
        if not found:
            return ("district", f"{district!r} is not a district of {prov.name_th}")
        dist = found[0]
    sub_name = None
    if subdistrict:
        if dist is None:
            return ("district", "give the district when a subdistrict is given")
        hits = geothai.match(subdistrict, district=dist.name_th, province=prov.name_th)
        if not hits:
            return ("subdistrict", f"{subdistrict!r} is not a subdistrict of {dist.name_th}, {prov.name_th}")
        sub_name = hits[0].subdistrict.name_th
    return prov.name_th, dist.name_th if dist else None, sub_name


def _validate_sites(data: Any, problems: _Problems, base: tuple[Any, ...]) -> list[SiteData] | None:
    if data is None:
        problems.add(base, "missing: at least one site with its address ranges")
        return None
    if not isinstance(data, list) or not data:
        problems.add(base, "expected a non-empty list of sites")
        return None
    sites: list[SiteData] = []
    codes: set[str] = set()
    ok = True
    for index, item in enumerate(data):
        where = base + (index,)
        if not isinstance(item, Mapping):
            problems.add(where, "expected a mapping")
            ok = False
            continue
        for key in item:
            if key not in {"code", "name_th", "name_en", "address_ranges", "ports", "latitude", "longitude",
                           "credentials"}:
                problems.add(where + (key,), "unknown field")
        code = _code(item, "code", problems, where)
        if code is not None:
            if code in codes:
                problems.add(where + ("code",), f"site code {code!r} appears twice")
            codes.add(code)
        ranges = _address_ranges(item.get("address_ranges"), problems, where + ("address_ranges",))
        ports = _ports(item.get("ports"), problems, where + ("ports",))
        lat = _float(item.get("latitude"), problems, where + ("latitude",), -90, 90)
        lon = _float(item.get("longitude"), problems, where + ("longitude",), -180, 180)
        creds = _credentials(item.get("credentials"), problems, where + ("credentials",))
        name_th = _str(item, "name_th", problems, where, required=True)
        sites.append(SiteData(code=code, name_th=name_th, name_en=_str(item, "name_en", problems, where),
                              address_ranges=ranges or [], ports=ports, latitude=lat, longitude=lon,
                              credentials=creds or []))
    return sites if ok else None


def _validate_register(data: Any, sites: list[SiteData] | None, problems: _Problems,
                       base: tuple[Any, ...]) -> list[EntryData] | None:
    if data is None:
        return []
    if not isinstance(data, list):
        problems.add(base, "expected a list of register entries")
        return None
    site_codes = [s.code for s in sites or []]
    entries: list[EntryData] = []
    macs: dict[str, int] = {}
    serials: dict[str, int] = {}
    for index, item in enumerate(data):
        where = base + (index,)
        if not isinstance(item, Mapping):
            problems.add(where, "expected a mapping")
            continue
        for key in item:
            if key not in {"mac", "serial", "label", "location", "address", "site", "recorder", "channel"}:
                problems.add(where + (key,), "unknown field")
        mac = None
        if item.get("mac") is not None:
            mac = normalise_mac(str(item["mac"]))
            if mac is None:
                problems.add(where + ("mac",), f"{item['mac']!r} is not a MAC address (e.g. c0:56:e3:00:01:0b)")
            elif mac in macs:
                problems.add(where + ("mac",), f"{mac} is registered twice in this project "
                                               f"(entries {macs[mac] + 1} and {index + 1})")
            else:
                macs[mac] = index
        serial = _str(item, "serial", problems, where)
        if serial is not None:
            if serial in serials:
                problems.add(where + ("serial",), f"serial {serial!r} is registered twice in this project")
            serials[serial] = index
        # A camera behind a recorder may be named by the recorder's host:port and its channel number instead.
        by_channel = _recorder_channel(item, problems, where)
        if mac is None and serial is None and item.get("mac") is None and by_channel is None:
            problems.add(where + ("mac",), "give the MAC address or the serial number of the camera, "
                                           "or its recorder (host:port) and channel")
        site = _str(item, "site", problems, where)
        if site is None and len(site_codes) == 1:
            site = site_codes[0]
        elif site is not None and sites is not None and site not in site_codes:
            problems.add(where + ("site",), f"{site!r} is not a site of this project "
                                            f"({', '.join(site_codes) or 'none'})")
        address = by_channel or _str(item, "address", problems, where)
        if address is not None and _host_port(split_channel(address)[0]) is None:
            problems.add(where + ("address",), f"{address!r} is not host[:port]")
        entries.append(EntryData(mac=mac, serial=serial, label=_str(item, "label", problems, where),
                                 location=_str(item, "location", problems, where), address=address, site=site,
                                 path=where))
    return entries


def _recorder_channel(item: Mapping[str, Any], problems: _Problems, where: tuple[Any, ...]) -> str | None:
    """The channel address ("host:port/ch3") of an entry naming ``recorder`` and ``channel``, else None."""
    if item.get("recorder") is None and item.get("channel") is None:
        return None
    recorder = _str(item, "recorder", problems, where)
    channel = _int(item.get("channel"), problems, where + ("channel",), required=True, minimum=1)
    if recorder is None or _host_port(recorder) is None:
        problems.add(where + ("recorder",), f"{item.get('recorder')!r} is not the recorder's host[:port]")
        return None
    return channel_address(recorder, channel) if channel is not None else None


def normalise_mac(text: str) -> str | None:
    """``aa:bb:cc:dd:ee:ff`` from any common spelling (colons, dashes, dots, none); None if not a MAC."""
    digits = re.sub(r"[\s:.\-]", "", text.strip().lower())
    if not _MAC_HEX_RE.match(digits):
        return None
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def _host_port(text: str) -> tuple[str, int | None] | None:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, ""
    if port and (not port.isdigit() or not 0 < int(port) < 65536):
        return None
    if not re.match(r"^[A-Za-z0-9.\-\[\]:]+$", host):
        return None
    return host, int(port) if port else None


def _split_list(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        return [p for p in re.split(r"[\s,;]+", value) if p]
    return [value]


def _address_ranges(value: Any, problems: _Problems, where: tuple[Any, ...]) -> list[str] | None:
    if value is None:
        problems.add(where, "missing: the address ranges of the site (e.g. 192.168.1.0/24)")
        return None
    items = _split_list(value)
    if not items:
        problems.add(where, "missing: the address ranges of the site (e.g. 192.168.1.0/24)")
        return None
    out = []
    for index, item in enumerate(items):
        text = str(item).strip()
        try:
            network = ipaddress.ip_network(text, strict=False)
            if network.num_addresses > 65536:
                problems.add(where, f"{text!r} is larger than a /16; split it into smaller ranges")
                continue
            out.append(str(network) if "/" in text else text)
        except ValueError:
            if "-" in text:  # 10.0.0.10-10.0.0.40
                first, _, last = text.partition("-")
                try:
                    ipaddress.ip_address(first.strip())
                    ipaddress.ip_address(last.strip())
                    out.append(text)
                    continue
                except ValueError:
                    pass
            if _host_port(text) is not None and ":" in text:
                out.append(text)
                continue
            problems.add(where, f"{text!r} is not an address range (CIDR such as 192.168.1.0/24, "
                                f"a range a.b.c.d-a.b.c.e, or host:port)")
    return out


def _ports(value: Any, problems: _Problems, where: tuple[Any, ...]) -> list[int] | None:
    if value is None:
        return None
    out = []
    for item in _split_list(value):
        port = _int(item, problems, where, minimum=1)
        if port is not None:
            if port > 65535:
                problems.add(where, f"{port} is not a port (1-65535)")
            else:
                out.append(port)
    return out or None


def _credentials(value: Any, problems: _Problems, where: tuple[Any, ...]) -> list[Credential] | None:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add(where, "expected a list of {username, password or password_env}")
        return None
    out = []
    for index, item in enumerate(value):
        at = where + (index,)
        if not isinstance(item, Mapping):
            problems.add(at, "expected a mapping with username and password or password_env")
            continue
        for key in item:
            if key not in {"username", "password", "password_env"}:
                problems.add(at + (key,), "unknown field (username, password, password_env)")
        username = item.get("username")
        if username is None or not str(username).strip():
            problems.add(at + ("username",), "missing")
            continue
        env = item.get("password_env")
        if env and (problem := password_env_problem(str(env))) is not None:
            problems.add(at + ("password_env",), problem)
            continue
        password = os.environ.get(str(env)) if env else None
        if password is None:
            password = item.get("password")
        if password is None:
            if env:
                problems.add(at + ("password_env",), f"environment variable {env} is not set and no password "
                                                     f"is given")
            else:
                problems.add(at + ("password",), "give password or password_env")
            continue
        out.append(Credential(str(username).strip(), str(password)))
    return out


def _str(data: Mapping[str, Any], key: str, problems: _Problems, base: tuple[Any, ...], *,
         required: bool = False) -> str | None:
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            problems.add(base + (key,), "missing")
        return None
    if isinstance(value, (Mapping, list)):
        problems.add(base + (key,), f"expected text, got a {type(value).__name__}")
        return None
    return str(value).strip()


def _code(data: Mapping[str, Any], key: str, problems: _Problems, base: tuple[Any, ...]) -> str | None:
    value = _str(data, key, problems, base, required=True)
    if value is not None and not _CODE_RE.match(value):
        problems.add(base + (key,), f"{value!r}: use letters, digits, '.', '_' or '-' (at most 64)")
        return None
    return value


def _int(value: Any, problems: _Problems, where: tuple[Any, ...], *, required: bool = False,
         minimum: int | None = None) -> int | None:
    if value is None or value == "":
        if required:
            problems.add(where, "missing")
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(str(value).replace(",", "").strip()) if not isinstance(value, float) else int(value)
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
    except ValueError:
        problems.add(where, f"{value!r} is not a whole number")
        return None
    if minimum is not None and number < minimum:
        problems.add(where, f"{number} must be at least {minimum}")
        return None
    return number


def _float(value: Any, problems: _Problems, where: tuple[Any, ...], low: float, high: float) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        problems.add(where, f"{value!r} is not a number")
        return None
    if not low <= number <= high:
        problems.add(where, f"{number} is outside {low}..{high}")
        return None
    return number


def _decimal(value: Any, problems: _Problems, where: tuple[Any, ...]) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value).replace(",", "").strip())
    except InvalidOperation:
        problems.add(where, f"{value!r} is not an amount in baht")
        return None
    if not number.is_finite() or number < 0:
        problems.add(where, f"{value!r} is not an amount in baht")
        return None
    return number.quantize(Decimal("0.01"))


def _date(value: Any, problems: _Problems, where: tuple[Any, ...]) -> date | None:
    """ISO or d/m/y dates; a year above 2400 is a Buddhist-era year (minus 543)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        parsed = value
    else:
        text = str(value).strip()
        match = re.match(r"^(\d{4})-(\d{1,2})-(\d{1,2})$", text) or None
        try:
            if match:
                year, month, day = (int(g) for g in match.groups())
            else:
                match = re.match(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$", text)
                if not match:
                    raise ValueError
                day, month, year = (int(g) for g in match.groups())
            if year > 2400:
                year -= 543
            parsed = date(year, month, day)
        except ValueError:
            problems.add(where, f"{value!r} is not a date (2025-03-14 or 14/03/2568)")
            return None
    if parsed.year > 2400:
        parsed = parsed.replace(year=parsed.year - 543)
    return parsed


# ---------------------------------------------------------------------------------------------------
# Writing


def _assign(obj: Any, **values: Any) -> bool:
    """Set attributes that differ; True when anything changed (so unchanged rows stay untouched)."""
    changed = False
    for key, value in values.items():
        if getattr(obj, key) != value:
            setattr(obj, key, value)
            changed = True
    return changed


def _write(session: Session, records: Sequence[Any], result: FileResult, app: Flask) -> list[ImportProblem]:
    problems: list[ImportProblem] = []
    for record in records:
        if isinstance(record, Spec):
            _write_profile(session, record, result)
        else:
            problems += _write_project(session, record, result, app)
    return problems


def _write_profile(session: Session, spec: Spec, result: FileResult) -> None:
    row = session.scalars(select(SpecProfile).where(SpecProfile.code == spec.code)).one_or_none()
    values = dict(name_th=spec.name_th, name_en=spec.name_en, device_class=spec.device_class,
                  requirements=spec.to_mapping(), source=spec.source, content_hash=spec.content_hash())
    if row is None:
        session.add(SpecProfile(code=spec.code, **values))
        result.created.append(spec.code)
    elif row.content_hash != values["content_hash"] or row.name_th != spec.name_th:
        _assign(row, **values)
        result.updated.append(spec.code)
    else:
        result.unchanged.append(spec.code)
    session.flush()


def _write_project(session: Session, data: ProjectData, result: FileResult, app: Flask) -> list[ImportProblem]:
    problems: list[ImportProblem] = []
    locate = _locator_for(result)
    profile = session.scalars(select(SpecProfile).where(SpecProfile.code == data.spec_profile)).one_or_none()
    if profile is None:
        known = ", ".join(session.scalars(select(SpecProfile.code).order_by(SpecProfile.code))) or "none imported"
        problems.append(locate(data, ("spec_profile",), f"spec profile {data.spec_profile!r} is not imported "
                                                        f"(known: {known})"))
    recorder_profile = None
    if data.recorder_spec_profile is not None:
        recorder_profile = session.scalars(select(SpecProfile)
                                           .where(SpecProfile.code == data.recorder_spec_profile)).one_or_none()
        if recorder_profile is None:
            problems.append(locate(data, ("recorder_spec_profile",),
                                   f"spec profile {data.recorder_spec_profile!r} is not imported"))
    # A camera belongs to one project: its MAC or serial may not sit in another project's register.
    macs = [e.mac for e in data.register if e.mac]
    serials = [e.serial for e in data.register if e.serial]
    clashes = session.execute(
        select(RegisterEntry.mac, RegisterEntry.serial, Project.code).join(Project)
        .where(Project.code != data.code)
        .where((RegisterEntry.mac.in_(macs)) | (RegisterEntry.serial.in_(serials)))).all()
    for mac, serial, other in clashes:
        for entry in data.register:
            if (mac and entry.mac == mac) or (serial and entry.serial == serial):
                what = f"MAC {mac}" if mac and entry.mac == mac else f"serial {serial}"
                problems.append(locate(data, entry.path[len(data.path):] + ("mac" if "MAC" in what else "serial",),
                                       f"{what} is already registered in project {other}"))
    if problems:
        return problems

    changed = False
    created = False
    agency = session.scalars(select(Agency).where(Agency.code == data.agency.code)).one_or_none()
    agency_values = dict(name_th=data.agency.name_th, name_en=data.agency.name_en, province=data.agency.province,
                         district=data.agency.district, subdistrict=data.agency.subdistrict)
    if agency is None:
        agency = Agency(code=data.agency.code, **agency_values)
        session.add(agency)
        changed = True
    else:
        changed |= _assign(agency, **agency_values)
    session.flush()

    project = session.scalars(select(Project).where(Project.code == data.code)
                              .options(selectinload(Project.sites), selectinload(Project.register))).one_or_none()
    project_values = dict(title_th=data.title_th, title_en=data.title_en, agency_id=agency.id,
                          approval_ref=data.approval_ref, approval_date=data.approval_date,
                          committee_level=data.committee_level, budget_thb=data.budget_thb,
                          spec_profile_id=profile.id, approved_count=data.approved_count,
                          recorder_spec_profile_id=recorder_profile.id if recorder_profile else None,
                          source_file=Path(result.path).name)
    if project is None:
        project = Project(code=data.code, **project_values)
        session.add(project)
        session.flush()
        created = True
    else:
        if project.budget_thb is not None and data.budget_thb is not None \
                and Decimal(project.budget_thb) == data.budget_thb:
            project_values["budget_thb"] = project.budget_thb  # 1850000 == 1850000.00: not a change
        changed |= _assign(project, **project_values)

    # Sites: update in place by code, add new ones, drop those no longer in the file.
    existing_sites = {s.code: s for s in project.sites}
    sites_by_code: dict[str, Site] = {}
    for site_data in data.sites:
        site = existing_sites.pop(site_data.code, None)
        values = dict(name_th=site_data.name_th, name_en=site_data.name_en,
                      address_ranges=list(site_data.address_ranges), ports=site_data.ports,
                      latitude=site_data.latitude, longitude=site_data.longitude)
        if site is None:
            site = Site(project=project, code=site_data.code, **values)
            session.add(site)
            changed = True
        else:
            changed |= _assign(site, **values)
        changed |= _store_credentials(app, site, site_data.credentials)
        sites_by_code[site_data.code] = site
    for stale in existing_sites.values():
        project.sites.remove(stale)
        changed = True
    session.flush()

    # Register: match by MAC, then serial; update in place, add, drop what the file no longer lists.
    by_mac = {e.mac: e for e in project.register if e.mac}
    by_serial = {e.serial: e for e in project.register if e.serial}
    kept: set[int] = set()
    for entry_data in data.register:
        entry = (by_mac.get(entry_data.mac) if entry_data.mac else None) or \
                (by_serial.get(entry_data.serial) if entry_data.serial else None)
        site = sites_by_code.get(entry_data.site) if entry_data.site else None
        values = dict(mac=entry_data.mac, serial=entry_data.serial, label=entry_data.label,
                      location=entry_data.location, address=entry_data.address,
                      site_id=site.id if site is not None else None)
        if entry is None or id(entry) in kept:
            entry = RegisterEntry(project=project, added_by="import", **values)
            session.add(entry)
            changed = True
        else:
            changed |= _assign(entry, **values)
        kept.add(id(entry))
    for stale in [e for e in project.register if id(e) not in kept]:
        project.register.remove(stale)
        changed = True
    session.flush()

    if created:
        result.created.append(data.code)
    elif changed:
        result.updated.append(data.code)
    else:
        result.unchanged.append(data.code)
    return problems


def _store_credentials(app: Flask, site: Site, creds: list[Credential]) -> bool:
    """Encrypt ``creds`` into the site unless the stored ones are the same (tokens differ on every run)."""
    if site.credentials_encrypted:
        try:
            if decrypt_credentials(app, site.credentials_encrypted) == creds:
                return False
        except CredentialKeyError:
            LOGGER.warning("stored credentials of site %s were encrypted with another key; replacing them",
                           site.code)
    elif not creds:
        return False
    site.credentials_encrypted = encrypt_credentials(app, creds) if creds else None
    return True


def _locator_for(result: FileResult) -> Callable[[ProjectData, tuple[Any, ...], str], ImportProblem]:
    """Problems found while writing name the file, the row and the field, like validation problems."""

    def locate(data: ProjectData, field_path: tuple[Any, ...], message: str) -> ImportProblem:
        row, name = data.locate(data.path + field_path) if data.locate else (None, _dotted(field_path))
        return ImportProblem(result.path, row, name, message)

    return locate


def iter_projects(session: Session) -> Iterable[Project]:
    """Every project with agency, profile, sites and register loaded, ordered by code."""
    return session.scalars(select(Project).order_by(Project.code).options(
        selectinload(Project.agency), selectinload(Project.spec_profile), selectinload(Project.sites),
        selectinload(Project.register))).all()
