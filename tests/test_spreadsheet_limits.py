"""Hostile spreadsheets: a generated zip bomb, a sheet claiming a million rows and one with too many rows each
get a clear error and exit status 2, without the import expanding them in memory."""

from __future__ import annotations

import resource
import zipfile
from pathlib import Path

import pytest

from cctv_monitor.cli import cli
from cctv_monitor.spreadsheet_limits import MAX_ROWS, SpreadsheetLimitError, bounded_rows, check_xlsx_archive

SHEET = "xl/worksheets/sheet1.xml"
BOMB_MIB = 400  # the sheet XML expands to this; the file stays well under 1 MB


def _workbook(path: Path, rows: list[list[object]] | None = None, far_cell: bool = False) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "projects"
    for row in rows or [["project_code", "site_code"], ["CR-MS-2568-001", "market"]]:
        sheet.append(row)
    if far_cell:
        sheet.cell(row=1_048_576, column=16_384, value="x")  # the sheet now spans A1:XFD1048576
    book.save(path)
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """A valid workbook whose sheet is replaced by ~400 MiB of XML deflated to a few hundred KiB."""
    folder = tmp_path_factory.mktemp("bomb")
    plain = _workbook(folder / "plain.xlsx")
    target = folder / "bomb.xlsx"
    row = b'<row><c t="inlineStr"><is><t>' + b"A" * 200 + b"</t></is></c></row>"
    chunk = row * (1024 * 1024 // len(row))
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED,
                                                           compresslevel=9) as out:
        for item in source.infolist():
            if item.filename != SHEET:
                out.writestr(item, source.read(item))
                continue
            with out.open(SHEET, "w", force_zip64=True) as member:
                member.write(b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/'
                             b'spreadsheetml/2006/main"><sheetData>')
                for _ in range(BOMB_MIB):
                    member.write(chunk)
                member.write(b"</sheetData></worksheet>")
    assert target.stat().st_size < 2 * 1024 * 1024
    return target


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_zip_bomb_is_refused_before_it_expands(runner, bomb):
    """Exit 2 naming the part and the expansion; the process's peak memory does not move."""
    before = _peak_rss_mib()
    result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(bomb)])
    assert result.exit_code == 2, result.output
    assert f"the workbook part '{SHEET}' expands" in result.output and "zip bomb" in result.output
    assert "Traceback" not in result.output
    assert _peak_rss_mib() - before < 50


def test_a_sheet_claiming_a_million_rows_stops_at_the_row_limit(runner, tmp_path):
    """One far-away cell makes read-only openpyxl yield every empty row up to it: the reader stops."""
    path = _workbook(tmp_path / "far.xlsx", far_cell=True)
    before = _peak_rss_mib()
    result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(path)])
    assert result.exit_code == 2, result.output
    assert f"the sheet has more than {MAX_ROWS} rows" in result.output
    assert _peak_rss_mib() - before < 100


def test_archive_limits_name_what_is_wrong(tmp_path):
    """Too many parts and a non-zip file get their own messages; a normal workbook passes."""
    check_xlsx_archive(_workbook(tmp_path / "ok.xlsx"))
    many = tmp_path / "many.xlsx"
    with zipfile.ZipFile(many, "w") as archive:
        for i in range(501):
            archive.writestr(f"part{i}.xml", b"<x/>")
    with pytest.raises(SpreadsheetLimitError, match="501 parts, more than the 500 allowed"):
        check_xlsx_archive(many)
    fake = tmp_path / "fake.xlsx"
    fake.write_bytes(b"not a zip at all")
    with pytest.raises(SpreadsheetLimitError, match="not a readable XLSX workbook"):
        check_xlsx_archive(fake)


def test_bounded_rows_trims_and_counts():
    """Trailing empty cells go; one row past the limit is an error."""
    assert list(bounded_rows([(1, None, 2, None, None), (None, None)], max_rows=2)) == [[1, None, 2], []]
    with pytest.raises(SpreadsheetLimitError, match="more than 2 rows"):
        list(bounded_rows([(1,), (2,), (3,)], max_rows=2))
