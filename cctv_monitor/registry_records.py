"""Project registry: the import report (problems per file, row and field) and the validated records."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Callable

from cctv_monitor.crypto import Credential


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
    recorder_spec_profile: str | None
    approved_count: int
    sites: list[SiteData]
    register: list[EntryData]
    path: tuple[Any, ...] = ()
    locate: Callable[[tuple[Any, ...]], tuple[int | None, str | None]] | None = field(default=None, repr=False)

def _dotted(field_path: tuple[Any, ...]) -> str | None:
    out = ""
    for key in field_path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out or None


def _split_dotted(text: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"[.\[\]]+", text) if p]
