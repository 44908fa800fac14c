"""Project registry on SQLite and PostgreSQL: importing the shipped examples (twice, same result), CSV and
XLSX layouts, all-or-nothing per file with errors naming file/row/field, credentials encrypted at rest."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from cctv_monitor.cli import cli
from cctv_monitor.models import Agency, Project, RegisterEntry, Site, SpecProfile

ROOT = Path(__file__).resolve().parent.parent
PROJECTS = ROOT / "config" / "projects"
EXAMPLE_CSV = PROJECTS / "examples" / "mae-sai-projects.csv"
EXAMPLE_XLSX = PROJECTS / "examples" / "mae-sai-projects.xlsx"

EXPECTED = {  # code: (agency, profile, approved, sites, register size)
    "CR-MS-2568-001": ("maesai-mun", "fixed_outdoor", 12, ["bridge", "market"], 12),
    "CR-MS-2568-002": ("wiangphangkham-mun", "fixed_analytics", 10, ["school"], 10),
    "CR-MS-2567-003": ("pongpha-sao", "fixed_indoor", 8, ["office"], 7),
}


def csv_to_xlsx(source: Path, target: Path, edit=None) -> Path:
    """Write the rows of a CSV file into an XLSX workbook (sheet "projects"); ``edit(rows)`` may change them."""
    from openpyxl import Workbook

    with source.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    if edit:
        edit(rows)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "projects"
    for row in rows:
        # Numbers as numbers, as a clerk's Excel sheet would hold them.
        sheet.append([int(v) if v.isdigit() else v for v in row])
    workbook.save(target)
    return target


def snapshot(session) -> dict[str, list[tuple]]:
    """Every imported row of every registry table, to compare the database before and after."""
    session.expire_all()
    out = {}
    for model, cols in ((Agency, ("code", "name_th", "province", "district", "subdistrict")),
                        (SpecProfile, ("code", "content_hash")),
                        (Project, ("code", "approved_count", "approval_ref", "approval_date", "agency_id",
                                   "spec_profile_id", "updated")),
                        (Site, ("project_id", "code", "address_ranges", "ports", "credentials_encrypted", "updated")),
                        (RegisterEntry, ("project_id", "site_id", "mac", "serial", "label", "address", "updated"))):
        rows = session.execute(select(*(getattr(model, c) for c in cols))).all()
        out[model.__tablename__] = sorted((tuple(str(v) for v in r) for r in rows))
    return out


def projects_table(session) -> dict[str, tuple]:
    """code -> (agency, profile, approved, site codes, register size) from the database."""
    session.expire_all()
    out = {}
    for p in session.scalars(select(Project)):
        out[p.code] = (p.agency.code, p.spec_profile.code, p.approved_count, sorted(s.code for s in p.sites),
                       len(p.register))
    return out


@pytest.fixture
def imported(runner, session):
    """The shipped profiles and example projects, imported once."""
    result = runner.invoke(cli, args=["import-projects", str(PROJECTS)])
    assert result.exit_code == 0, result.output
    return result


def test_import_examples_twice_same_result(runner, session, imported):
    """Importing the examples twice gives the same rows; the second run reports everything unchanged."""
    assert "8 created" in imported.output
    assert projects_table(session) == EXPECTED
    before = snapshot(session)
    again = runner.invoke(cli, args=["import-projects", str(PROJECTS)])
    assert again.exit_code == 0, again.output
    assert "0 created, 0 updated, 8 unchanged" in again.output
    assert snapshot(session) == before
    assert session.scalar(select(RegisterEntry).where(RegisterEntry.mac == "c0:56:e3:00:02:0e")).label == "ms-bridge-04"
    agency = session.scalar(select(Agency).where(Agency.code == "pongpha-sao"))
    assert (agency.province, agency.district, agency.subdistrict) == ("เชียงราย", "แม่สาย", "โป่งผา")


def test_projects_command_lists_what_is_loaded(runner, imported):
    """``projects`` shows code, agency, profile, approved count, sites and register size."""
    result = runner.invoke(cli, args=["projects"])
    assert result.exit_code == 0
    lines = {line.split()[0]: line.split() for line in result.output.splitlines()[1:]}
    assert lines["CR-MS-2567-003"][:4] == ["CR-MS-2567-003", "pongpha-sao", "fixed_indoor", "8"]
    assert lines["CR-MS-2567-003"][5] == "7"
    assert "market," in lines["CR-MS-2568-001"] and "bridge" in lines["CR-MS-2568-001"]


def test_help_lists_commands(runner):
    """The CLI group lists the registry commands."""
    result = runner.invoke(cli, args=["--help"])
    for name in ("import-projects", "import-profiles", "projects"):
        assert name in result.output


def test_credentials_encrypted_at_rest(app, session, imported, monkeypatch):
    """The site password is not in the database in clear; site_credentials decrypts it."""
    from cctv_monitor.registry import site_credentials

    site = session.scalar(select(Site).where(Site.code == "market"))
    assert "Demo#2567" not in (site.credentials_encrypted or "") and site.credentials_encrypted.startswith("gAAAA")
    creds = site_credentials(site, app=app)
    assert [(c.username, c.password) for c in creds] == [("admin", "Demo#2567")]
    assert "Demo#2567" not in repr(creds)
    key_file = Path(app.instance_path) / "credential.key"
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_password_env_overrides_demo_default(app, runner, session, monkeypatch):
    """``password_env`` wins over the inline demo password when the variable is set."""
    from cctv_monitor.registry import site_credentials

    monkeypatch.setenv("CCTV_SITE_PW_DEMO", "Other#1")
    assert runner.invoke(cli, args=["import-projects", str(PROJECTS)]).exit_code == 0
    site = session.scalar(select(Site).where(Site.code == "school"))
    assert site_credentials(site, app=app)[0].password == "Other#1"


def test_wrong_credential_key_names_the_setting(app, session, imported):
    """Decrypting with another key fails with a message naming CCTV_CREDENTIAL_KEY."""
    from cryptography.fernet import Fernet

    from cctv_monitor.crypto import CredentialKeyError
    from cctv_monitor.registry import site_credentials

    site = session.scalar(select(Site).where(Site.code == "office"))
    app.config["CREDENTIAL_KEY"] = Fernet.generate_key().decode()
    with pytest.raises(CredentialKeyError, match="CCTV_CREDENTIAL_KEY"):
        site_credentials(site, app=app)
    app.config["CREDENTIAL_KEY"] = "not-a-key"
    with pytest.raises(CredentialKeyError, match="CCTV_CREDENTIAL_KEY.*not a valid Fernet key"):
        site_credentials(site, app=app)


def test_load_spec_and_spec_for_project(session, imported):
    """Specs come back from the database as parsed Spec objects."""
    from cctv_monitor.registry import load_spec, spec_for_project

    spec = load_spec(session, "fixed_outdoor")
    assert spec.threshold("resolution", "min_width") == 1920
    project = session.scalar(select(Project).where(Project.code == "CR-MS-2568-002"))
    assert spec_for_project(project).code == "fixed_analytics"
    with pytest.raises(LookupError, match="import-profiles"):
        load_spec(session, "nope")


def test_example_csv_equals_yaml(runner, session, imported):
    """The example CSV holds the same projects as the YAML files; importing it twice is idempotent."""
    before = projects_table(session)
    first = runner.invoke(cli, args=["import-projects", "--no-profiles", str(EXAMPLE_CSV)])
    assert first.exit_code == 0, first.output
    assert projects_table(session) == before == EXPECTED
    macs = {e.mac for e in session.scalars(select(RegisterEntry))}
    assert "24:28:fd:00:04:0b" in macs and len(macs) == 29  # 24-28-FD-00-04-0B normalised
    project = session.scalar(select(Project).where(Project.code == "CR-MS-2567-003"))
    assert str(project.approval_date) == "2024-06-10"  # 10/06/2567 (Buddhist year)
    assert str(project.budget_thb) in ("620000.00", "620000")
    state = snapshot(session)
    second = runner.invoke(cli, args=["import-projects", "--no-profiles", str(EXAMPLE_CSV)])
    assert "3 unchanged" in second.output
    assert snapshot(session) == state


def test_example_xlsx_imports(runner, session, tmp_path, imported):
    """The committed XLSX example and one generated from the CSV both import to the same projects."""
    generated = csv_to_xlsx(EXAMPLE_CSV, tmp_path / "generated.xlsx")
    for path in (EXAMPLE_XLSX, generated):
        result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(path)])
        assert result.exit_code == 0, result.output
        assert projects_table(session) == EXPECTED


def test_bad_csv_row_exits_2_and_changes_nothing(runner, session, tmp_path, imported):
    """A CSV with bad rows: exit 2, every problem names file, row and field, the database is unchanged."""
    rows = list(csv.reader(EXAMPLE_CSV.open(encoding="utf-8", newline="")))
    header = rows[0]
    col = header.index
    rows[3][col("mac")] = "24-28-FD-00-04-ZZ"  # file row 4
    for row in rows[1:]:
        if row[col("project_code")] == "CR-MS-2567-003":  # file rows 2-8: a valid change that must NOT apply
            row[col("approved_count")] = "9"
            row[col("site_address_ranges")] = "127.0.4.300/24"  # ... next to a bad one
        if row[col("project_code")] == "CR-MS-2568-001":  # file rows 9-20
            row[col("approved_count")] = "twelve"
    rows[12][col("site_latitude")] = "21.0"  # file row 13: a site value that disagrees with row 9
    bad = tmp_path / "bad.csv"
    with bad.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    before = snapshot(session)
    result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(bad)])
    assert result.exit_code == 2
    problems = [line.strip() for line in result.output.splitlines() if line.startswith("  ")]
    assert problems == [
        f"{bad}, row 2, column site_address_ranges: '127.0.4.300/24' is not an address range (not a valid "
        "network address/prefix); write a CIDR such as 192.168.1.0/24, an address, a range 192.168.1.11-192.168.1.18 "
        "(or 192.168.1.11-18), or host:port",
        f"{bad}, row 4, column mac: '24-28-FD-00-04-ZZ' is not a MAC address (e.g. c0:56:e3:00:01:0b)",
        f"{bad}, row 9, column approved_count: 'twelve' is not a whole number",
        f"{bad}, row 13, column site_latitude: '21.0' differs from '20.4465' given in row 9 for the same "
        "project/site (repeat the same value or leave it empty)",
    ]
    assert "nothing imported from this file" in result.output
    assert snapshot(session) == before
    assert session.scalar(select(Project).where(Project.code == "CR-MS-2567-003")).approved_count == 8


def test_bad_file_among_good_ones_is_isolated(runner, session, tmp_path):
    """In a folder, a bad file imports nothing while the good files import (all-or-nothing per file)."""
    folder = tmp_path / "projects"
    folder.mkdir()
    shutil.copy(PROJECTS / "CR-MS-2568-001.yaml", folder)
    data = yaml.safe_load((PROJECTS / "CR-MS-2568-002.yaml").read_text(encoding="utf-8"))
    data["register"][2]["mac"] = "not-a-mac"
    data["agency"]["district"] = "ดอยสะเก็ด"  # a district of Chiang Mai, not of Chiang Rai
    (folder / "CR-MS-2568-002.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                                                encoding="utf-8")
    result = runner.invoke(cli, args=["import-projects", str(folder)])
    assert result.exit_code == 2
    assert "field register[2].mac: 'not-a-mac' is not a MAC address" in result.output
    assert "field agency.district: 'ดอยสะเก็ด' is not a district of เชียงราย" in result.output
    assert set(projects_table(session)) == {"CR-MS-2568-001"}


def test_yaml_errors_name_line_and_field(runner, session, tmp_path):
    """YAML problems give the line of the offending value and its field path."""
    text = (PROJECTS / "CR-MS-2567-003.yaml").read_text(encoding="utf-8")
    text = text.replace("approved_count: 8", "approved_count: -1").replace("spec_profile: fixed_indoor",
                                                                          "spec_profile: fixed_indor")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    line = next(i for i, l in enumerate(text.splitlines(), 1) if l.startswith("approved_count"))
    result = runner.invoke(cli, args=["import-projects", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}, row {line}, field approved_count: -1 must be at least 0" in result.output
    # Only found once the file is valid on paper: the profile is checked against the database.
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(text.replace("approved_count: -1", "approved_count: 8"), encoding="utf-8")
    result = runner.invoke(cli, args=["import-projects", str(fixed)])
    assert result.exit_code == 2
    assert "field spec_profile: 'fixed_indor' is not a spec profile (did you mean 'fixed_indoor'" in result.output
    assert projects_table(session) == {}


def test_not_yaml_at_all(runner, tmp_path):
    """A syntax error reports the line."""
    bad = tmp_path / "broken.yaml"
    bad.write_text("code: X\nsites: [\n  - a: 1\n", encoding="utf-8")
    result = runner.invoke(cli, args=["import-projects", str(bad)])
    assert result.exit_code == 2 and "not valid YAML" in result.output and ", row " in result.output


def test_bad_xlsx_cell_names_row_and_field(runner, session, tmp_path, imported):
    """XLSX errors name the spreadsheet row and the column."""

    def edit(rows):
        for row in rows[1:]:
            if row[0] == "CR-MS-2567-003":  # file rows 2-8, project columns filled down as clerks do
                row[rows[0].index("site_ports")] = "80 99999"

    bad = csv_to_xlsx(EXAMPLE_CSV, tmp_path / "bad.xlsx", edit)
    before = snapshot(session)
    result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}, row 2, column site_ports: 99999 is not a port (1-65535)" in result.output
    assert snapshot(session) == before


def test_not_an_xlsx(runner, tmp_path):
    """A file named .xlsx that is not a workbook is rejected with a clear message."""
    bad = tmp_path / "fake.xlsx"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(bad)])
    assert result.exit_code == 2 and "not a readable XLSX workbook" in result.output


def test_reimport_updates_in_place(runner, session, tmp_path, imported):
    """Changing a file updates rows in place (same ids), drops register entries no longer listed."""
    project = session.scalar(select(Project).where(Project.code == "CR-MS-2567-003"))
    project_id = project.id
    kept_entry_id = session.scalar(select(RegisterEntry.id).where(RegisterEntry.mac == "24:28:fd:00:04:0b"))
    data = yaml.safe_load((PROJECTS / "CR-MS-2567-003.yaml").read_text(encoding="utf-8"))
    data["approved_count"] = 7
    data["register"] = data["register"][:6]
    data["register"][0]["label"] = "pp-office-01-renamed"
    changed = tmp_path / "CR-MS-2567-003.yaml"
    changed.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(changed)])
    assert result.exit_code == 0 and "updated CR-MS-2567-003" in result.output
    session.expire_all()
    project = session.get(Project, project_id)
    assert project.approved_count == 7 and len(project.register) == 6
    entry = session.get(RegisterEntry, kept_entry_id)
    assert entry is not None and entry.label == "pp-office-01-renamed"
    assert session.scalar(select(RegisterEntry).where(RegisterEntry.mac == "24:28:fd:00:04:11")) is None


def test_mac_registered_in_another_project(runner, session, tmp_path, imported):
    """A camera already in another project's register is refused, naming the row and field."""
    rows = [
        ["project_code", "project_title_th", "agency_code", "agency_name_th", "province", "district",
         "spec_profile", "approved_count", "site_code", "site_name_th", "site_address_ranges", "mac"],
        ["CR-X-1", "โครงการทดสอบ", "maesai-mun", "เทศบาลตำบลแม่สาย", "Chiang Rai", "Mae Sai", "ptz", "2", "s1",
         "จุดทดสอบ", "10.1.0.0/24", "aa:bb:cc:00:00:01"],
        ["CR-X-1", "", "", "", "", "", "", "", "s1", "", "", "c0:56:e3:00:01:0b"],
    ]
    path = tmp_path / "clash.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(path)])
    assert result.exit_code == 2
    assert f"{path}, row 3, column mac: MAC c0:56:e3:00:01:0b is already registered in project CR-MS-2568-001" \
        in result.output
    assert "CR-X-1" not in projects_table(session)


def test_minimal_csv_english_place_names_and_cp874(runner, session, tmp_path, imported):
    """A short Windows-874 CSV (Thai Excel default) with English place names imports and normalises them."""
    rows = [
        ["project_code", "project_title_th", "agency_code", "agency_name_th", "province", "district",
         "approval_date", "spec_profile", "approved_count", "site_code", "site_name_th", "site_address_ranges",
         "site_ports", "mac", "หมายเหตุ"],
        ["CR-X-2", "โครงการทดสอบ", "test-agency", "หน่วยงานทดสอบ", "Chiang Rai", "Mae Sai", "2025-01-31", "nvr", "1",
         "hq", "สำนักงาน", "10.2.0.0/24; 10.3.0.10-10.3.0.20", "80 8000", "AABBCC000002", "ทดสอบ"],
    ]
    path = tmp_path / "thai.csv"
    with path.open("w", encoding="cp874", newline="") as handle:
        csv.writer(handle).writerows(rows)
    result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(path)])
    assert result.exit_code == 0, result.output
    session.expire_all()
    project = session.scalar(select(Project).where(Project.code == "CR-X-2"))
    assert (project.agency.province, project.agency.district) == ("เชียงราย", "แม่สาย")
    assert project.sites[0].address_ranges == ["10.2.0.0/24", "10.3.0.10-10.3.0.20"]
    assert project.sites[0].ports == [80, 8000]
    assert project.register[0].mac == "aa:bb:cc:00:00:02" and project.register[0].site_id == project.sites[0].id


def test_thai_column_headings(runner, session, tmp_path, imported):
    """A clerk's sheet with Thai headings imports like the English one."""
    from cctv_monitor.registry import THAI_COLUMNS

    english_to_thai = {}
    for thai, english in THAI_COLUMNS.items():
        english_to_thai.setdefault(english, thai)

    def edit(rows):
        rows[0] = [english_to_thai.get(column, column) for column in rows[0]]

    path = csv_to_xlsx(EXAMPLE_CSV, tmp_path / "thai-headings.xlsx", edit)
    result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(path)])
    assert result.exit_code == 0, result.output
    assert set(english_to_thai) == set(csv.reader(EXAMPLE_CSV.open(encoding="utf-8")).__next__())
    assert projects_table(session) == EXPECTED


def test_csv_header_problems(runner, tmp_path):
    """Unknown or missing columns are reported on the header row."""
    path = tmp_path / "header.csv"
    path.write_text("project_cod,mac\nX,aa:bb:cc:dd:ee:ff\n", encoding="utf-8")
    result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(path)])
    assert result.exit_code == 2
    assert "row 1, column project_cod: unknown column" in result.output
    assert "row 1, column project_code / รหัสโครงการ (no such column in the file): required column missing" in result.output


def test_register_larger_than_approved(runner, tmp_path, imported):
    """More registered cameras than approved is refused."""
    data = yaml.safe_load((PROJECTS / "CR-MS-2567-003.yaml").read_text(encoding="utf-8"))
    data["approved_count"] = 5
    path = tmp_path / "over.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(path)])
    assert result.exit_code == 2 and "the register lists 7 cameras, more than the 5 approved" in result.output


def test_import_profiles_bad_profile(runner, session, tmp_path):
    """import-profiles rejects a bad profile naming the field and imports the good ones."""
    folder = tmp_path / "profiles"
    folder.mkdir()
    shutil.copy(ROOT / "config" / "profiles" / "ptz.yaml", folder)
    data = yaml.safe_load((ROOT / "config" / "profiles" / "nvr.yaml").read_text(encoding="utf-8"))
    data["requirements"]["channels"]["min"] = "many"
    (folder / "nvr.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = runner.invoke(cli, args=["import-profiles", str(folder)])
    assert result.exit_code == 2
    assert "field requirements.channels.min: expected a whole number, got 'many'" in result.output
    assert [p.code for p in session.scalars(select(SpecProfile))] == ["ptz"]


def test_import_path_api_reports_per_file(app, session, tmp_path):
    """import_path returns per-file results without raising for bad input."""
    from cctv_monitor.registry import import_path

    bad = tmp_path / "bad.csv"
    bad.write_text("", encoding="utf-8")
    with app.app_context():
        report = import_path(session, PROJECTS, profiles_dir=ROOT / "config" / "profiles")
        assert report.ok and report.count("created") == 8
        report = import_path(session, bad)
    assert not report.ok
    assert report.errors[0].file == str(bad) and "empty" in report.errors[0].message


@pytest.mark.parametrize("variable", ["CCTV_SECRET_KEY", "CCTV_CREDENTIAL_KEY", "HOME", "CCTV_SITE_PW_"])
def test_password_env_only_reads_site_password_variables(runner, session, tmp_path, monkeypatch, variable):
    """A project file naming a server secret as ``password_env`` is refused with a clear import error, and
    the secret never becomes a site credential (it would be sent to the file's address range)."""
    monkeypatch.setenv(variable, "the-servers-own-secret")
    data = yaml.safe_load((PROJECTS / "CR-MS-2568-002.yaml").read_text(encoding="utf-8"))
    data["sites"][0]["credentials"] = [{"username": "admin", "password_env": variable}]
    bad = tmp_path / "CR-MS-2568-002.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    result = runner.invoke(cli, args=["import-projects", "--no-profiles", str(bad)])
    assert result.exit_code == 2, result.output
    assert f"environment variable {variable!r} is not allowed" in result.output
    assert "CCTV_SITE_PW_" in result.output
    assert "Traceback" not in result.output
    assert session.scalar(select(Project).where(Project.code == "CR-MS-2568-002")) is None


def test_password_env_with_the_site_prefix_is_read(app, runner, session, tmp_path, monkeypatch):
    """``CCTV_SITE_PW_<NAME>`` is the accepted form (the shipped examples use ``CCTV_SITE_PW_DEMO``)."""
    from cctv_monitor.registry import site_credentials

    monkeypatch.setenv("CCTV_SITE_PW_SCHOOL", "School#9")
    data = yaml.safe_load((PROJECTS / "CR-MS-2568-002.yaml").read_text(encoding="utf-8"))
    assert data["sites"][0]["credentials"][0]["password_env"] == "CCTV_SITE_PW_DEMO"
    data["sites"][0]["credentials"] = [{"username": "admin", "password_env": "CCTV_SITE_PW_SCHOOL"}]
    good = tmp_path / "CR-MS-2568-002.yaml"
    good.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    result = runner.invoke(cli, args=["import-projects", str(good)])
    assert result.exit_code == 0, result.output
    site = session.scalar(select(Site).where(Site.code == "school"))
    assert site_credentials(site, app=app)[0].password == "School#9"
