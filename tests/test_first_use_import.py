"""First use by a provincial clerk (issue 11, items 2-5): the template, spreadsheet messages, header row, hints.

Real files (XLSX written by the command and filled here with openpyxl, CSV with Thai headings) imported by
the real command into SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from cctv_monitor.cli import cli
from cctv_monitor.models import Project, RegisterEntry
from cctv_monitor.spreadsheet import CSV_COLUMNS, TH_HEADERS

REPO = Path(__file__).resolve().parent.parent
OUTDOOR_TH = "กล้องโทรทัศน์วงจรปิดชนิดเครือข่าย แบบมุมมองคงที่ สำหรับติดตั้งภายนอกอาคาร"


@pytest.fixture
def profiles(runner):
    """The shipped spec profiles, imported."""
    result = runner.invoke(cli, args=["import-profiles", str(REPO / "config" / "profiles")])
    assert result.exit_code == 0, result.output


def _thai_csv(path: Path, rows: list[dict[str, object]], *, title: str | None = None,
              columns: list[str] | None = None) -> Path:
    """A CSV with Thai headings (optionally a title line above them), as a clerk's Excel saves it."""
    columns = columns or ["project_code", "project_title_th", "agency_code", "agency_name_th", "province",
                          "district", "spec_profile", "approved_count", "site_code", "site_name_th",
                          "site_address_ranges", "camera_label", "mac"]
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh)
        if title:
            writer.writerow([title] + [""] * (len(columns) - 1))
        writer.writerow([TH_HEADERS[c] for c in columns])
        for row in rows:
            writer.writerow([row.get(c, "") for c in columns])
    return path


def _row(label: str, mac: str, **changes: object) -> dict[str, object]:
    base = {"project_code": "CR-MSI-2568-015", "project_title_th": "โครงการกล้องตลาดสายลมจอย",
            "agency_code": "maesai-mun", "agency_name_th": "เทศบาลตำบลแม่สาย", "province": "เชียงราย",
            "district": "แม่สาย", "spec_profile": "fixed_outdoor", "approved_count": 4, "site_code": "market",
            "site_name_th": "ตลาดสายลมจอย", "site_address_ranges": "10.20.1.11-10.20.1.18", "camera_label": label,
            "mac": mac}
    base.update(changes)
    return base


ROWS = [_row("ตลาด-01", "C0-56-E3-15-00-01"), _row("ตลาด-02", "C0-56-E3-15-00-02"),
        _row("ตลาด-03", "C0-56-E3-15-00-03")]


def _problems(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.startswith("  ") and "note:" not in line]


# -- item 2: the template ---------------------------------------------------------------------------------

def test_template_round_trip(runner, session, profiles, tmp_path):
    path = tmp_path / "projects.xlsx"
    out = runner.invoke(cli, args=["template", str(path)])
    assert out.exit_code == 0, out.output
    book = load_workbook(path)
    sheet = book["projects"]
    headings = [c.value for c in sheet[1]]
    assert headings == [TH_HEADERS[c] for c in CSV_COLUMNS]  # every column, in Thai
    example = dict(zip(headings, [c.value for c in sheet[2]]))
    assert example["รหัสโครงการ"] == "EXAMPLE-2568-001" and example["ข้อกำหนด"] == "fixed_outdoor"
    explained = book["คำอธิบาย"]
    text = [[c.value for c in row] for row in explained.iter_rows()]
    assert {r[1] for r in text if r and len(r) > 1} >= set(CSV_COLUMNS)  # each column explained
    codes = {r[0] for r in text if r and r[0] in ("fixed_indoor", "fixed_outdoor", "ptz", "fixed_analytics", "nvr")}
    assert codes == {"fixed_indoor", "fixed_outdoor", "ptz", "fixed_analytics", "nvr"}
    assert any(r[1] == OUTDOOR_TH for r in text if r and len(r) > 1)
    # the clerk overwrites the example with three cameras, in Thai, profile by its Thai name
    col = {h: i + 1 for i, h in enumerate(headings)}
    for r in range(2, 5):
        for heading in headings:
            sheet.cell(row=r, column=col[heading]).value = None
        values = {"รหัสโครงการ": "CR-MS-2568-077", "ชื่อโครงการ": "โครงการกล้องวงจรปิดสะพานมิตรภาพ",
                  "รหัสหน่วยงาน": "maesai-mun", "ชื่อหน่วยงาน": "เทศบาลตำบลแม่สาย", "จังหวัด": "เชียงราย",
                  "อำเภอ": "แม่สาย", "ตำบล": "เวียงพางคำ", "ข้อกำหนด": OUTDOOR_TH, "จำนวนที่อนุมัติ": 3,
                  "วันที่อนุมัติ": "01/03/2568", "รหัสจุดติดตั้ง": "bridge", "ชื่อจุดติดตั้ง": "สะพานมิตรภาพ",
                  "ช่วงหมายเลขไอพี": "10.30.1.11-13", "ชื่อกล้อง": f"สะพาน-0{r - 1}",
                  "หมายเลข MAC": f"c0:56:e3:77:00:0{r}", "ตำแหน่งติดตั้ง": "เสาไฟฝั่งขาเข้า"}
        for heading, value in values.items():
            sheet.cell(row=r, column=col[heading]).value = value
    book.save(path)
    imported = runner.invoke(cli, args=["import-projects", "--no-profiles", str(path)])
    assert imported.exit_code == 0, imported.output
    project = session.scalar(select(Project).where(Project.code == "CR-MS-2568-077"))
    assert project.spec_profile.code == "fixed_outdoor" and project.approved_count == 3
    assert project.agency.subdistrict == "เวียงพางคำ" and project.sites[0].address_ranges == ["10.30.1.11-10.30.1.13"]
    labels = sorted(e.label for e in session.scalars(select(RegisterEntry)))
    assert labels == ["สะพาน-01", "สะพาน-02", "สะพาน-03"]
    # no overwriting without --force; only .xlsx
    again = runner.invoke(cli, args=["template", str(path)])
    assert again.exit_code == 2 and "exists" in again.output
    assert runner.invoke(cli, args=["template", str(tmp_path / "t.csv")]).exit_code == 2


def test_template_example_row_is_valid_but_skipped(runner, session, profiles, tmp_path):
    """Left in by mistake, the example row imports nothing and says so; with a real code it is a valid project."""
    path = tmp_path / "t.xlsx"
    assert runner.invoke(cli, args=["template", str(path)]).exit_code == 0
    result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(path)])
    assert "note: row 2 is the template's example (EXAMPLE-2568-001): skipped" in result.output
    assert session.scalar(select(Project)) is None
    book = load_workbook(path)
    book["projects"]["A2"] = "CR-MS-2568-099"
    book.save(path)
    result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(path)])
    assert result.exit_code == 0, result.output
    assert session.scalar(select(Project)).code == "CR-MS-2568-099"


def test_readme_lists_every_thai_column():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [f"{c} / {th}" for c, th in TH_HEADERS.items() if th not in readme]
    assert not missing, missing


# -- items 3 and 4: messages name the column as written and the spreadsheet row; a title line is skipped -----

def test_messages_name_the_thai_column_and_the_spreadsheet_row(runner, profiles, tmp_path):
    rows = [*ROWS, _row("ตลาด-04", "c0:56:e3:15:00:01")]  # rows 2..5; row 5 repeats row 2's MAC
    rows[1]["agency_code"] = ""  # fine: filled in row 2
    path = _thai_csv(tmp_path / "dup.csv", rows)
    result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(path)])
    assert result.exit_code == 2
    assert _problems(result.output) == [f"{path}, row 5, column หมายเลข MAC: c0:56:e3:15:00:01 is registered twice "
                                        "in this project (first in row 2)"]
    # the agency code left empty on every row: the Thai column is named, on the project's first row
    empty = _thai_csv(tmp_path / "agency.csv", [dict(r, agency_code="") for r in ROWS])
    result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(empty)])
    assert _problems(result.output) == [f"{empty}, row 2, column รหัสหน่วยงาน: missing"]
    # the column absent altogether: named in English and Thai
    columns = ["project_code", "project_title_th", "agency_name_th", "province", "spec_profile", "approved_count",
               "site_code", "site_name_th", "site_address_ranges"]
    absent = _thai_csv(tmp_path / "absent.csv", ROWS[:1], columns=columns)
    result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(absent)])
    assert _problems(result.output) == [f"{absent}, row 2, column agency_code / รหัสหน่วยงาน (no such column in "
                                        "the file): missing"]


def test_title_line_above_the_header_is_skipped_and_said(runner, session, profiles, tmp_path):
    path = _thai_csv(tmp_path / "title.csv", ROWS, title="ทะเบียนกล้องโทรทัศน์วงจรปิด เทศบาลตำบลแม่สาย ปี ๒๕๖๘")
    result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(path)])
    assert result.exit_code == 0, result.output
    assert "note: row(s) 1 above the header row 2 skipped (a title?)" in result.output
    assert len(session.scalars(select(RegisterEntry)).all()) == 3
    # a bad value below it: the row number is the spreadsheet's (title 1, header 2, data 3..)
    bad = _thai_csv(tmp_path / "bad.csv", [ROWS[0], dict(ROWS[1], mac="nonsense")], title="ทะเบียน")
    result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(bad)])
    assert _problems(result.output) == [f"{bad}, row 4, column หมายเลข MAC: 'nonsense' is not a MAC address "
                                        "(e.g. c0:56:e3:00:01:0b)"]


# -- item 5: profile codes and Thai names, close-match hints -------------------------------------------------

def test_profile_by_thai_name_and_valid_codes_listed(runner, session, profiles, tmp_path):
    named = _thai_csv(tmp_path / "named.csv", [dict(r, spec_profile=OUTDOOR_TH) for r in ROWS])
    result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(named)])
    assert result.exit_code == 0, result.output
    assert session.scalar(select(Project)).spec_profile.code == "fixed_outdoor"
    for value, hint in (("กล้องภายนอกอาคาร", "(did you mean 'fixed_outdoor'?)"),
                        ("fixed_outdor", "(did you mean 'fixed_outdoor'")):
        path = _thai_csv(tmp_path / "p.csv", [dict(r, spec_profile=value) for r in ROWS])
        result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(path)])
        (problem,) = _problems(result.output)
        assert problem.startswith(f"{path}, row 2, column ข้อกำหนด: {value!r} is not a spec profile {hint}")
        for code in ("fixed_indoor", "fixed_outdoor", "ptz", "fixed_analytics", "nvr"):
            assert code in problem
        assert OUTDOOR_TH in problem


def test_close_matches_for_districts_and_project_codes(runner, profiles, tmp_path):
    path = _thai_csv(tmp_path / "d.csv", [dict(r, district="แม่สาร") for r in ROWS])
    result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(path)])
    (problem,) = _problems(result.output)
    assert problem.startswith(f"{path}, row 2, column อำเภอ: 'แม่สาร' is not a district of เชียงราย "
                              "(did you mean 'แม่สาย'")
    english = _thai_csv(tmp_path / "e.csv", [dict(r, district="Mae Sia") for r in ROWS])
    assert "(did you mean 'Mae Sai'" in runner.invoke(cli, args=["import-projects", "--no-profiles",
                                                                  str(english)]).output
    assert runner.invoke(cli, args=["import-projects", "--no-profiles",
                                    str(_thai_csv(tmp_path / "ok.csv", ROWS))]).exit_code == 0
    # a new project whose code is one typo away from an existing one: imported, with a note
    other = [dict(r, project_code="CR-MSI-2568-016", mac=r["mac"][:-1] + "9") for r in ROWS[:1]]
    result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(_thai_csv(tmp_path / "n.csv", other))])
    assert result.exit_code == 0, result.output
    assert "note: project CR-MSI-2568-016 is new (did you mean the existing 'CR-MSI-2568-015'?)" in result.output
    # scan and check give the same hint for a code that does not exist
    for command in (["scan", "--project", "CR-MSI-2568-05"], ["check", "--project", "CR-MSI-2568-05"]):
        out = runner.invoke(cli, args=command)
        assert out.exit_code == 2 and "(did you mean 'CR-MSI-2568-015'" in out.output, out.output
