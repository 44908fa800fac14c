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
import re
from pathlib import Path
from typing import Any, Mapping

import yaml
from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cctv_monitor.compliance import Spec, SpecError
from cctv_monitor.crypto import Credential, CredentialKeyError, decrypt_credentials
from cctv_monitor.models import Project, Site, SpecProfile
from cctv_monitor.spreadsheet import CSV_COLUMNS, THAI_COLUMNS, csv_rows, read_rows, xlsx_rows
from cctv_monitor.registry_records import (
    FileResult,
    ImportProblem,
    ImportReport,
    MAX_FILE_BYTES,
    ProjectData,
    SUFFIXES,
    _Problems,
    _dotted,
    _split_dotted,
)
from cctv_monitor.registry_validate import _validate_project, normalise_mac  # noqa: F401 - part of the module API
from cctv_monitor.registry_write import _write, iter_projects  # noqa: F401 - part of the module API

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
