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
from cctv_monitor.lookup import LookupError_, did_you_mean, existing_codes, find_profile
from cctv_monitor.models import Agency, Project, RegisterEntry, Site, SpecProfile
from cctv_monitor.spreadsheet import CSV_COLUMNS, THAI_COLUMNS, csv_rows, read_rows, xlsx_rows
from probes.ranges import RangeError, parse_range, split_ranges

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
    noun: str = "field"  # "column" in spreadsheets, where ``field`` is the heading as the file writes it

    def __str__(self) -> str:
        """``file, row N, field F: message`` (``column C`` for a spreadsheet)."""
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field:
            where.append(f"{self.noun} {self.field}")
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
    notes: list[str] = field(default_factory=list)  # not problems: rows skipped above the header, hints

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

    def __init__(self, file: str, locate: Callable[[tuple[Any, ...]], tuple[int | None, str | None]],
                 noun: str = "field") -> None:
        self.file = file
        self.locate = locate
        self.noun = noun
        self.items: list[ImportProblem] = []

    def add(self, path: tuple[Any, ...], message: str) -> None:
        row, name = self.locate(path)
        self.items.append(ImportProblem(self.file, row, name, message, self.noun))

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
    zone: str = "central"  # network zone whose workers reach the site (README "Running a province")


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
            records = _read_table(path, csv_rows(path), result)
        elif suffix == ".xlsx":
            records = _read_table(path, xlsx_rows(path), result)
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


def _read_table(path: Path, rows: list[list[Any]], result: FileResult) -> list[ProjectData]:
    """Group register rows into projects (:mod:`cctv_monitor.spreadsheet`) and validate each project."""
    name = str(path)
    result.kind = "projects"
    table = read_rows(name, rows)
    result.notes.extend(table.notes)
    problems = _Problems(name, table.locate, "column")
    problems.items.extend(ImportProblem(name, row, column, message, "column")
                          for row, column, message in table.problems)
    if table.header_row is None or not table.written:
        result.errors.extend(problems.items)
        return []
    records = []
    for index, data in enumerate(table.projects):
        record = _validate_project(data, problems, (index,))
        if record is not None:
            records.append(record)
    if not table.projects and not problems:
        problems.items.append(ImportProblem(name, None, None, "no project rows below the header"))
    problems.items.sort(key=lambda p: (p.row or 0))
    result.errors.extend(problems.items)
    return [] if problems else records


# ---------------------------------------------------------------------------------------------------
# Validation (shared by YAML and tables)


def _validate_project(data: Mapping[str, Any], problems: _Problems, base: tuple[Any, ...]) -> ProjectData | None:
    """Turn a project mapping into :class:`ProjectData`, adding a problem for every bad field."""
    before = len(problems.items)
    allowed = {"code", "title_th", "title_en", "agency", "approval_ref", "approval_date", "committee_level",
               "budget_thb", "spec_profile", "approved_count", "sites", "register"}
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
    # A code or the profile's Thai name: which one is checked against the imported profiles when writing.
    profile = _str(data, "spec_profile", problems, base, required=True)
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
                       spec_profile=profile, approved_count=approved, sites=sites or [], register=register or [],
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
        names = [n for p in geothai.provinces() for n in (p.name_th, p.name_en)]
        return ("province", f"{province!r} is not a Thai province{did_you_mean(province, names)}")
    prov = matches[0]
    dist = None
    if district:
        wanted = geothai.normalize(district)
        found = [d for d in geothai.districts(prov.code) if geothai.is_district(d, wanted)]
        if not found:
            names = [n for d in geothai.districts(prov.code) for n in (d.name_th, d.name_en)]
            return ("district", f"{district!r} is not a district of {prov.name_th}{did_you_mean(district, names)}")
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
                           "credentials", "zone"}:
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
        zone = _zone(item.get("zone"), problems, where + ("zone",))
        sites.append(SiteData(code=code, name_th=name_th, name_en=_str(item, "name_en", problems, where),
                              address_ranges=ranges or [], ports=ports, latitude=lat, longitude=lon,
                              credentials=creds or [], zone=zone))
    return sites if ok else None


def _zone(value: Any, problems: _Problems, where: tuple[Any, ...]) -> str:
    """The site's network zone (default ``central``); a bad name is reported like any other field."""
    from cctv_monitor.zones import CENTRAL, ZoneKeyError, check_zone

    if value is None or value == "":
        return CENTRAL
    try:
        return check_zone(str(value))
    except ZoneKeyError as exc:
        problems.add(where, str(exc))
        return CENTRAL


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
            if key not in {"mac", "serial", "label", "location", "address", "site"}:
                problems.add(where + (key,), "unknown field")
        mac = None
        if item.get("mac") is not None:
            mac = normalise_mac(str(item["mac"]))
            if mac is None:
                problems.add(where + ("mac",), f"{item['mac']!r} is not a MAC address (e.g. c0:56:e3:00:01:0b)")
            elif mac in macs:
                first = problems.locate(base + (macs[mac], "mac"))[0]
                problems.add(where + ("mac",), f"{mac} is registered twice in this project (first in row {first})"
                             if first is not None else f"{mac} is registered twice in this project "
                             f"(entries {macs[mac] + 1} and {index + 1})")
            else:
                macs[mac] = index
        serial = _str(item, "serial", problems, where)
        if serial is not None:
            if serial in serials:
                first = problems.locate(base + (serials[serial], "serial"))[0]
                problems.add(where + ("serial",), f"serial {serial!r} is registered twice in this project"
                             + (f" (first in row {first})" if first is not None else ""))
            serials[serial] = index
        if mac is None and serial is None and item.get("mac") is None:
            problems.add(where + ("mac",), "give the MAC address or the serial number of the camera")
        site = _str(item, "site", problems, where)
        if site is None and len(site_codes) == 1:
            site = site_codes[0]
        elif site is not None and sites is not None and site not in site_codes:
            problems.add(where + ("site",), f"{site!r} is not a site of this project "
                                            f"({', '.join(site_codes) or 'none'})")
        address = _str(item, "address", problems, where)
        if address is not None and _host_port(address) is None:
            problems.add(where + ("address",), f"{address!r} is not host[:port]")
        entries.append(EntryData(mac=mac, serial=serial, label=_str(item, "label", problems, where),
                                 location=_str(item, "location", problems, where), address=address, site=site,
                                 path=where))
    return entries


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
    items = split_ranges(value) if isinstance(value, str) else _split_list(value)
    if not items:
        problems.add(where, "missing: the address ranges of the site (e.g. 192.168.1.0/24)")
        return None
    out = []
    for item in items:
        try:
            out.append(parse_range(str(item)).text)
        except RangeError as exc:
            problems.add(where, str(exc))
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
    try:
        profile = find_profile(session, data.spec_profile)
    except LookupError_ as exc:
        profile = None
        problems.append(locate(data, ("spec_profile",), str(exc)))
    known_codes = existing_codes(session)
    if data.code not in known_codes:
        hint = did_you_mean(data.code, known_codes, cutoff=0.8)
        if hint:
            result.notes.append(f"project {data.code} is new{hint.replace('did you mean', 'did you mean the existing')}")
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
                      latitude=site_data.latitude, longitude=site_data.longitude, zone=site_data.zone)
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
        return ImportProblem(result.path, row, name, message, "column" if result.kind == "projects" else "field")

    return locate


def iter_projects(session: Session) -> Iterable[Project]:
    """Every project with agency, profile, sites and register loaded, ordered by code."""
    return session.scalars(select(Project).order_by(Project.code).options(
        selectinload(Project.agency), selectinload(Project.spec_profile), selectinload(Project.sites),
        selectinload(Project.register))).all()
