"""Limits for imported spreadsheets, checked before and while reading, so a hostile file gets a clear error.

An XLSX file is a zip archive: a few hundred kilobytes can expand to gigabytes of XML (a "zip bomb"), and
openpyxl reads the shared-strings part whole even in read-only mode. :func:`check_xlsx_archive` reads
only the archive's directory and refuses too many members, too much uncompressed data or a compression
ratio no real workbook has, before openpyxl opens anything. Python's ``zipfile`` never returns more than
a member's declared size (a member that lies about its size fails its CRC check), so the declared sizes
are a real bound. A sheet can also claim a million rows by one far-away cell: :func:`bounded_rows` stops
at :data:`MAX_ROWS` and keeps rows short, so reading stays streaming and small.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Iterable, Iterator

__all__ = ["SpreadsheetLimitError", "MAX_UNCOMPRESSED_BYTES", "MAX_MEMBER_BYTES", "MAX_MEMBERS", "MAX_RATIO",
           "MAX_ROWS", "MAX_COLUMNS", "check_xlsx_archive", "bounded_rows"]

MAX_UNCOMPRESSED_BYTES = 100 * 1024 * 1024  # a 50,000-row register is about 30 MB of sheet XML
MAX_MEMBER_BYTES = 64 * 1024 * 1024
MAX_MEMBERS = 500
MAX_RATIO = 200  # real sheets compress 5-50x; bombs 1000x and more
_RATIO_FLOOR = 1024 * 1024  # small members may compress as they like
MAX_ROWS = 50_000
MAX_COLUMNS = 100


class SpreadsheetLimitError(ValueError):
    """The spreadsheet is larger than an import accepts; the message names the limit and the part."""


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MiB"


def check_xlsx_archive(path: Path) -> None:
    """Refuse an XLSX whose zip directory announces more data than an import may expand."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise SpreadsheetLimitError(f"not a readable XLSX workbook (not a zip archive: {exc})") from None
    if len(members) > MAX_MEMBERS:
        raise SpreadsheetLimitError(f"the workbook has {len(members)} parts, more than the {MAX_MEMBERS} allowed")
    total = 0
    for member in members:
        size, packed = member.file_size, max(member.compress_size, 1)
        if size > MAX_MEMBER_BYTES:
            raise SpreadsheetLimitError(f"the workbook part {member.filename!r} expands to {_mib(size)}, more than "
                                        f"the {_mib(MAX_MEMBER_BYTES)} allowed (a zip bomb?)")
        if size > _RATIO_FLOOR and size / packed > MAX_RATIO:
            raise SpreadsheetLimitError(f"the workbook part {member.filename!r} expands {size // packed}-fold "
                                        f"({_mib(size)}), more than the {MAX_RATIO}-fold allowed (a zip bomb?)")
        total += size
    if total > MAX_UNCOMPRESSED_BYTES:
        raise SpreadsheetLimitError(f"the workbook expands to {_mib(total)}, more than the "
                                    f"{_mib(MAX_UNCOMPRESSED_BYTES)} allowed")


def bounded_rows(rows: Iterable[Iterable[Any]], *, max_rows: int = MAX_ROWS) -> Iterator[list[Any]]:
    """Rows as lists without trailing empty cells; more than ``max_rows`` rows is an error."""
    for count, row in enumerate(rows, start=1):
        if count > max_rows:
            raise SpreadsheetLimitError(f"the sheet has more than {max_rows} rows; split the register into "
                                        "several files")
        cells = list(row)
        while cells and cells[-1] is None:
            cells.pop()
        yield cells
