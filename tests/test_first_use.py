"""First use by a provincial clerk and a technician (issue 11): ranges, credentials, reasons, filters.

Simulated cameras on their own loopback range (127.79.x.y) speak real ONVIF; the database is real SQLite
and PostgreSQL. One camera (127.79.1.13) accepts only its own password, which no site stores, so it stays
unreachable with "credentials rejected".
"""

from __future__ import annotations

import copy
import csv
import json
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from cctv_monitor.cli import cli
from tests.browser_helpers import chromium, need_chromium
from cctv_monitor.models import ScanRun, Site

REPO = Path(__file__).resolve().parent.parent
DEMO = yaml.safe_load((REPO / "config" / "fleets" / "demo.yaml").read_text())
BASE_CAM = DEMO["cameras"][0]  # ms-market-01: compliant with fixed_outdoor
PASSWORD = "Demo#2567"

pytestmark = pytest.mark.slow


def _camera(name: str, host: str, **changes) -> dict:
    cam = copy.deepcopy(BASE_CAM)
    _, _, c, d = host.split(".")
    cam.update(name=name, host=host, macs=[f"c0:56:e3:79:{int(c):02x}:{int(d):02x}"],
               serial=f"DS-2CD2T47G2-L2024FIRST{int(c):02d}{int(d):03d}", **changes)
    return cam


FLEET = {"fleet": "first-use", "defaults": DEMO["defaults"],
         "cameras": [_camera("fu-1", "127.79.1.11"), _camera("fu-2", "127.79.1.12"),
                     _camera("fu-locked", "127.79.1.13", password="Other#Pass1"),
                     _camera("fu-other", "127.79.2.11", manufacturer="Dahua", model="IPC-HFW2431S")]}  # no fw minimum


@pytest.fixture(scope="module")
def fleet():
    """Three cameras, ONVIF only."""
    from cctv_monitor.simulator.testing import running_fleet

    with running_fleet(FLEET) as running:
        yield running


HEADER = ["project_code", "project_title_th", "agency_code", "agency_name_th", "province", "district",
          "spec_profile", "approved_count", "site_code", "site_name_th", "site_address_ranges", "site_ports",
          "site_username", "site_password", "camera_label", "mac"]


def _write_csv(path: Path, code: str, ranges: str, rows: list[tuple[str, str]] | None = None,
               site: str = "market") -> Path:
    """A one-site project file as a clerk writes it (Thai names, the given range text)."""
    rows = rows or [("ตลาด-01", "c0:56:e3:79:01:0b"), ("ตลาด-02", "c0:56:e3:79:01:0c")]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for label, mac in rows:
            writer.writerow([code, f"โครงการทดสอบ {code}", "maesai-mun", "เทศบาลตำบลแม่สาย", "เชียงราย", "แม่สาย",
                             "fixed_outdoor", str(max(2, len(rows))), site, "ตลาดสายลมจอย", ranges, "8000", "admin", PASSWORD, label,
                             mac])
    return path


def _import(runner, path: Path):
    return runner.invoke(cli, args=["import-projects", str(path)])


# -- item 1: one range parser everywhere -------------------------------------------------------------------

RANGE_FORMS = [  # (as written in the file, as stored, cameras the scan must find)
    ("127.79.1.0/24", "127.79.1.0/24", {"127.79.1.11:8000", "127.79.1.12:8000"}),
    ("127.79.1.11-127.79.1.12", "127.79.1.11-127.79.1.12", {"127.79.1.11:8000", "127.79.1.12:8000"}),
    ("127.79.1.11 - 127.79.1.12", "127.79.1.11-127.79.1.12", {"127.79.1.11:8000", "127.79.1.12:8000"}),
    ("127.79.1.11–12", "127.79.1.11-127.79.1.12", {"127.79.1.11:8000", "127.79.1.12:8000"}),  # en dash, short
    ("127.79.1.11", "127.79.1.11", {"127.79.1.11:8000"}),
    ("127.79.1.12:8000", "127.79.1.12:8000", {"127.79.1.12:8000"}),
    ("127.79.1.11; 127.79.1.12:8000", None, {"127.79.1.11:8000", "127.79.1.12:8000"}),
]


@pytest.mark.parametrize("written, stored, found", RANGE_FORMS)
def test_every_range_form_imports_and_scans(runner, session, fleet, tmp_path, written, stored, found):
    result = _import(runner, _write_csv(tmp_path / "p.csv", "TEST-RANGE", written))
    assert result.exit_code == 0, result.output
    site = session.scalar(select(Site).where(Site.code == "market"))
    if stored:
        assert site.address_ranges == [stored]
    scan = runner.invoke(cli, args=["scan", "--project", "TEST-RANGE"])
    assert scan.exit_code == 0, scan.output
    assert "Traceback" not in scan.output
    devices = json.loads(runner.invoke(cli, args=["devices", "--json"]).output)
    assert {d["address"] for d in devices if d["status"] == "compliant"} == found
    # the same text as --range of scan and check
    again = runner.invoke(cli, args=["scan", "--range", written.replace(";", ",")])
    assert again.exit_code == 0, again.output
    check = runner.invoke(cli, args=["check", "--project", "TEST-RANGE", "--range", written.replace(";", ","),
                                     "--no-streams", "--json"])
    assert check.exit_code in (0, 1), check.output
    assert {c["address"] for c in json.loads(check.output)["cameras"] if c["reachable"]} == found


@pytest.mark.parametrize("written, message", [
    ("127.79.1.12-127.79.1.11", "the range ends before it starts"),
    ("127.79.1.11-127.79.1.300", "'127.79.1.300' is not an IP address"),
    ("10.0.0.0/8", "more than the limit of 65536"),
    ("market", "a host name needs a port"),
    ("127.79.1.11:99999", "port '99999' must be a number 1-65535"),
])
def test_bad_ranges_are_clear_errors_everywhere(runner, fleet, tmp_path, written, message):
    result = _import(runner, _write_csv(tmp_path / "bad.csv", "TEST-BAD", written))
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    for args in (["scan", "--range", written], ["discover", "--range", written],
                 ["check", "--project", "TEST-BAD", "--range", written]):
        out = runner.invoke(cli, args=args)
        assert out.exit_code == 2, (args, out.output)
        assert "Traceback" not in out.output and out.exception is None or isinstance(out.exception, SystemExit)
    out = runner.invoke(cli, args=["scan", "--range", written])
    if written != "market":
        assert message in out.output, out.output


def test_range_edited_into_nonsense_in_the_database_exits_2(runner, session, fleet, tmp_path):
    assert _import(runner, _write_csv(tmp_path / "p.csv", "TEST-RANGE", "127.79.1.0/24")).exit_code == 0
    site = session.scalar(select(Site).where(Site.code == "market"))
    site.address_ranges = ["127.79.1.11-127.79.1.300"]
    session.commit()
    for args in (["scan", "--project", "TEST-RANGE"], ["check", "--project", "TEST-RANGE", "--no-streams"]):
        out = runner.invoke(cli, args=args)
        assert out.exit_code == 2, out.output
        assert "site market of project TEST-RANGE" in out.output and "127.79.1.300" in out.output


def test_dashboard_scan_of_a_site_with_a_range(app, runner, session, fleet, tmp_path):
    """The dashboard's API starts a scan of a site written as a range: it runs, finds both cameras."""
    assert _import(runner, _write_csv(tmp_path / "p.csv", "TEST-RANGE", "127.79.1.11-12")).exit_code == 0
    assert runner.invoke(cli, args=["users", "add", "boss", "--role", "admin",
                                    "--password", "long-enough-pw-1"]).exit_code == 0
    token = runner.invoke(cli, args=["users", "token", "boss"]).output.strip()
    client = app.test_client()
    reply = client.post("/api/v1/scans", json={"target": "TEST-RANGE/market"},
                        headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 202, reply.get_data(as_text=True)
    run_id = reply.get_json()["scan_run_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        session.expire_all()
        run = session.get(ScanRun, run_id)
        if run.state not in ("pending", "running"):
            break
        time.sleep(0.2)
    assert run.state == "completed", run.error
    assert run.done == 2


# -- items 6, 8, 9: the acceptance check ------------------------------------------------------------------

@pytest.fixture
def project(runner, fleet, tmp_path):
    """TEST-FU: the market site 127.79.1.11-13 with the register labels ตลาด-01 and ตลาด-02."""
    assert runner.invoke(cli, args=["import-profiles", str(REPO / "config" / "profiles")]).exit_code == 0
    result = _import(runner, _write_csv(tmp_path / "fu.csv", "TEST-FU", "127.79.1.11-127.79.1.13"))
    assert result.exit_code == 0, result.output


def test_check_says_which_credential_each_camera_accepted(runner, project):
    """Each camera names the credential it accepted; a typed password that a camera refused is warned about.

    Credentials are tried per device in the trust order (last good, the site's, then the typed one), so
    a wrong typed password is only ever tried, and refused, where the site's credential failed too.
    """
    wrong = runner.invoke(cli, args=["check", "--project", "TEST-FU", "--no-streams", "--user", "admin",
                                     "--password", "WRONG"])
    lines = wrong.output.splitlines()
    assert wrong.exit_code == 1, wrong.output  # the third camera accepts neither
    row = next(line for line in lines if "127.79.1.11:8000" in line)
    assert "admin (site market)" in row and "ตลาด-01" in row and "pass" in row
    warning = next(line for line in lines if line.startswith("WARNING:"))
    assert "--user admin was rejected by 1 camera(s): 127.79.1.13:8000" in warning
    # the password only the third camera knows: the others keep the site credential that worked last time
    third = json.loads(runner.invoke(cli, args=["check", "--project", "TEST-FU", "--no-streams", "--user", "admin",
                                                "--password", "Other#Pass1", "--json"]).output)
    assert third["typed_credential_rejected_by"] == []
    assert [c["credential_source"] for c in third["cameras"]] == ["site market", "site market", "--user"]
    assert [c["credential_user"] for c in third["cameras"]] == ["admin", "admin", "admin"]
    assert not any(c["typed_credential_rejected"] for c in third["cameras"])

def test_check_prints_one_line_per_camera_and_detail_on_request(runner, project):
    short = runner.invoke(cli, args=["check", "--project", "TEST-FU", "--no-streams"])
    camera_lines = [line for line in short.output.splitlines() if "127.79.1.1" in line and ":8000" in line]
    assert len(camera_lines) == 3  # one line per camera
    locked = next(line for line in camera_lines if "127.79.1.13" in line)
    assert "FAIL" in locked and "ONVIF: wrong password: all 1 credential(s) rejected" in locked
    assert "(each requirement of each camera: --detail)" in short.output
    detail = runner.invoke(cli, args=["check", "--project", "TEST-FU", "--no-streams", "--detail"])
    rows = [line for line in detail.output.splitlines() if "127.79.1.11:8000" in line]
    assert len(rows) > 8  # the summary line plus one per requirement
    assert any("resolution" in r and "≥ 1920x1080" in r and "pass" in r for r in rows)
    assert any(" stream " in f" {r} " and "not checked" in r for r in rows)
    assert any("firmware" in r and "≥ V5.7.0 build 220000 (DS-2CD2T47G2-L)" in r for r in rows), rows


# -- item 8: the Thai report, in a real Chromium ---------------------------------------------------------

#: Names and units that stay as they are in a Thai report (standards, codecs, units, the tool's name).
NAMES = {"ONVIF", "RTSP", "fps", "kbps", "MP", "H264", "H265", "cctv-monitor", "Profile"}


@pytest.mark.browser
def test_thai_report_in_chromium(runner, fleet, tmp_path):
    """Register labels, firmware minimum of the camera's own model, "not checked" streams, ≥, no English."""
    need_chromium()
    assert runner.invoke(cli, args=["import-profiles", str(REPO / "config" / "profiles")]).exit_code == 0
    rows = [("ตลาด-01", "c0:56:e3:79:01:0b"), ("ตลาด-02", "c0:56:e3:79:01:0c"), ("สะพาน-01", "c0:56:e3:79:02:0b")]
    path = _write_csv(tmp_path / "r.csv", "TEST-RPT", "127.79.1.11-127.79.1.13 127.79.2.11", rows)
    imported = _import(runner, path)
    assert imported.exit_code == 0, imported.output
    report = tmp_path / "report.html"
    out = runner.invoke(cli, args=["check", "--project", "TEST-RPT", "--no-streams", "--report", str(report),
                                   "--user", "admin", "--password", "WRONG", "--operator", "สมชาย ใจดี"])
    assert out.exit_code == 1, out.output
    with chromium() as browser:
        page = browser.new_page()
        page.goto(report.as_uri())
        (tmp_path / "report.png").write_bytes(page.screenshot(full_page=True))  # for a human look
        labels = page.locator("td.label").all_inner_texts()
        assert labels == ["ตลาด-01", "ตลาด-02", "-", "สะพาน-01"]
        assert "ไม่ยอมรับรหัสผ่านที่ระบุในคำสั่งตรวจ (ผู้ใช้ admin)" in page.locator("p.warning").inner_text()
        credentials = page.locator("td.credential").all_inner_texts()
        assert credentials[0].startswith("admin (ที่บันทึกไว้ของจุดติดตั้ง market)")
        text = page.locator("body").inner_text()
        # the firmware row of each camera names only its own model's minimum
        assert text.count("≥ V5.7.0 build 220000 (DS-2CD2T47G2-L)") == 2
        assert "DS-2CD1043G2-I" not in text
        assert text.count("ไม่มีเกณฑ์ขั้นต่ำสำหรับรุ่นนี้") == 1  # the IPC-HFW2431S
        assert page.locator("td.result.not_checked").count() == 3 * 3  # stream rows of 3 readable cameras
        assert ">=" not in text and "<=" not in text and "≥" in text
        # no English outside names: drop what cameras, the register and the project files say
        names = set(NAMES)
        for selector in ("td.label", "h2"):
            names.update(w for t in page.locator(selector).all_inner_texts() for w in t.split())
        names.update(["Hikvision", "DS-2CD2T47G2-L", "Dahua", "IPC-HFW2431S", "fixed_outdoor", "TEST-RPT", "admin",
                      "market", "WRONG"])
        for cam in FLEET["cameras"]:  # serials and firmware versions ("V5.7.11 build 230428") are names
            names.update([cam["serial"], *cam["firmware"].split()])
        names.update(BASE_CAM["firmware"].split() + "V5.7.0 build 220000".split())
        import re

        words = {w for w in re.findall(r"[A-Za-z][A-Za-z0-9_.:-]*", text)}
        english = {w for w in words if w not in names and not re.fullmatch(r"[A-Za-z]?[0-9a-fA-F:._-]+", w)
                   and not any(w in n for n in names) and len(w) > 1}
        assert not english, english


# -- item 7: why a camera is unreachable, in the scan summary, `devices` and the dashboard ------------------

def test_unreachable_reason_in_scan_summary_devices_and_dashboard(app, runner, project):
    scan = runner.invoke(cli, args=["scan", "--project", "TEST-FU"])
    assert scan.exit_code == 0, scan.output
    summary = scan.output.split("Not read")[1]
    line = next(x for x in summary.splitlines() if "127.79.1.13:8000" in x)
    assert "wrong user or password" in line and "credential(s) rejected" in line
    table = runner.invoke(cli, args=["devices"]).output.splitlines()
    assert "reason" in table[0]
    row = next(x for x in table if "127.79.1.13:8000" in x)
    assert "unreachable" in row and "wrong user or password" in row
    assert "wrong user or password" not in next(x for x in table if "127.79.1.11:8000" in x)
    items = json.loads(runner.invoke(cli, args=["devices", "--json"]).output)
    assert {i["address"]: i["reason"] for i in items}["127.79.1.13:8000"] == "wrong user or password"
    # the dashboard's device table, in both languages
    from tests.dashboard_helpers import login

    assert runner.invoke(cli, args=["users", "add", "boss", "--role", "admin", "--language", "en",
                                    "--password", "long-enough-pw-1"]).exit_code == 0
    client = app.test_client()
    assert login(client, "boss", "long-enough-pw-1").status_code == 302
    page = client.get("/devices?status=unreachable").get_data(as_text=True)
    assert '<div class="reason small">wrong user or password</div>' in page
    ids = {i["address"]: i["id"] for i in items}
    good = client.get(f"/devices/{ids['127.79.1.11:8000']}").get_data(as_text=True)
    assert '<dd class="accepted-user">admin (site market)</dd>' in good
    bad = client.get(f"/devices/{ids['127.79.1.13:8000']}").get_data(as_text=True)
    assert '<dd class="reason">wrong user or password</dd>' in bad
    assert runner.invoke(cli, args=["users", "add", "somchai", "--role", "admin", "--language", "th",
                                    "--password", "long-enough-pw-2"]).exit_code == 0
    thai = app.test_client()
    login(thai, "somchai", "long-enough-pw-2")
    assert '<div class="reason small">รหัสผ่านไม่ถูกต้อง</div>' in thai.get("/devices").get_data(as_text=True)


# -- item 10 and the hints of item 5: devices --project/--site; unknown codes get "did you mean" ------------

def test_devices_filters_and_did_you_mean(runner, project, tmp_path):
    rows = [("สะพาน-01", "c0:56:e3:79:02:0b")]
    assert _import(runner, _write_csv(tmp_path / "b.csv", "TEST-FU2", "127.79.2.11", rows,
                                      site="bridge")).exit_code == 0
    assert runner.invoke(cli, args=["scan", "--project", "TEST-FU"]).exit_code == 0
    assert runner.invoke(cli, args=["scan", "--site", "bridge"]).exit_code == 0
    def addresses(*args):
        out = runner.invoke(cli, args=["devices", "--json", *args])
        assert out.exit_code == 0, out.output
        return sorted(d["address"] for d in json.loads(out.output))
    assert addresses("--project", "TEST-FU") == ["127.79.1.11:8000", "127.79.1.12:8000", "127.79.1.13:8000"]
    assert addresses("--project", "TEST-FU2") == ["127.79.2.11:8000"]
    assert addresses("--site", "bridge") == ["127.79.2.11:8000"]
    assert addresses("--site", "TEST-FU/market", "--status", "compliant") == ["127.79.1.11:8000", "127.79.1.12:8000"]
    for args, message in [
        (["devices", "--project", "TEST-FU3"], "no project with code 'TEST-FU3' (did you mean 'TEST-FU' or"),
        (["devices", "--site", "brige"], "no site with code 'brige' (did you mean 'bridge'?)"),
        (["scan", "--project", "test-fu2"], "no project with code 'test-fu2' (did you mean 'TEST-FU2'?)"),
        (["check", "--project", "TST-FU"], "no project with code 'TST-FU' (did you mean 'TEST-FU'"),
        (["scan", "--agency", "maesai-mum"], "(did you mean 'maesai-mun'?)"),
    ]:
        out = runner.invoke(cli, args=args)
        assert out.exit_code == 2 and message in out.output, (args, out.output)
