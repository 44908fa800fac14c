"""``cctv-monitor check``: acceptance of a new installation against simulated cameras over real ONVIF.

Two projects on their own loopback range (127.78.x.y): ``TEST-OK`` (two compliant cameras, nothing
registered yet) and ``TEST-LOW`` (one camera at 1280x720). The report is rendered by a real Chromium.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from cctv_monitor.cli import cli
from tests.browser_helpers import chromium, need_chromium
from cctv_monitor.models import Device, RegisterEntry, ScanRun
from cctv_monitor.report import thai_date

REPO = Path(__file__).resolve().parent.parent
DEMO = yaml.safe_load((REPO / "config" / "fleets" / "demo.yaml").read_text())
BASE_CAM = DEMO["cameras"][0]  # ms-market-01: compliant with fixed_outdoor

pytestmark = pytest.mark.slow


def _camera(name: str, host: str, **changes) -> dict:
    cam = copy.deepcopy(BASE_CAM)
    _, _, c, d = host.split(".")
    cam.update(name=name, host=host, macs=[f"c0:56:e3:78:{int(c):02x}:{int(d):02x}"],
               serial=f"DS-2CD2T47G2-L2024TEST{int(c):02d}{int(d):03d}", **changes)
    cam["scopes"] = dict(cam["scopes"], name=f"<b>{name}</b>")  # hostile-ish: must be escaped in the report
    return cam


LOW_PROFILES = [dict(BASE_CAM["profiles"][0], width=1280, height=720), BASE_CAM["profiles"][1]]
FLEET = {"fleet": "check-test", "defaults": DEMO["defaults"],
         "cameras": [_camera("ok-1", "127.78.1.11"), _camera("ok-2", "127.78.1.12"),
                     _camera("low-1", "127.78.2.11", profiles=LOW_PROFILES)]}


def _project(code: str, cidr: str, approved: int, ports: list[int]) -> dict:
    return {"code": code, "title_th": f"โครงการทดสอบ {code}", "agency": {
        "code": "maesai-mun", "name_th": "เทศบาลตำบลแม่สาย", "name_en": "Mae Sai Subdistrict Municipality",
        "province": "เชียงราย", "district": "แม่สาย", "subdistrict": "แม่สาย"},
        "approval_ref": "ชร 0023.3/9999", "approval_date": "2025-02-14", "spec_profile": "fixed_outdoor",
        "approved_count": approved,
        "sites": [{"code": "site", "name_th": "จุดติดตั้งทดสอบ", "address_ranges": [cidr], "ports": ports,
                   "credentials": [{"username": "admin", "password": "Demo#2567"}]}]}


@pytest.fixture(scope="module")
def fleet():
    """The three test cameras, ONVIF only."""
    from cctv_monitor.simulator.testing import running_fleet

    with running_fleet(FLEET) as running:
        yield running


@pytest.fixture
def projects(runner, fleet, tmp_path):
    """TEST-OK and TEST-LOW imported from project files (the shipped profiles too)."""
    ports = sorted({cam.port for cam in fleet})
    folder = tmp_path / "projects"
    folder.mkdir()
    (folder / "ok.yaml").write_text(yaml.safe_dump(_project("TEST-OK", "127.78.1.0/24", 2, ports),
                                                   allow_unicode=True))
    (folder / "low.yaml").write_text(yaml.safe_dump(_project("TEST-LOW", "127.78.2.0/24", 1, ports),
                                                    allow_unicode=True))
    assert runner.invoke(cli, args=["import-profiles", str(REPO / "config" / "profiles")]).exit_code == 0
    result = runner.invoke(cli, args=["import-projects", str(folder)])
    assert result.exit_code == 0, result.output


def test_thai_buddhist_date():
    from datetime import date

    assert thai_date(date(2024, 10, 25)) == "๒๕ ตุลาคม ๒๕๖๗"
    assert thai_date(date(2025, 2, 14), digits=False) == "14 กุมภาพันธ์ 2568"


def test_compliant_project_passes_and_registers(runner, session, projects, tmp_path):
    report = tmp_path / "ok.html"
    result = runner.invoke(cli, args=["check", "--project", "TEST-OK", "--no-streams", "--report", str(report),
                                      "--register", "--operator", "สมชาย ใจดี", "--detail"])
    assert result.exit_code == 0, result.output
    assert "VERDICT: PASS" in result.output and "2 device(s) added to the register" in result.output
    assert "127.78.1.11" in result.output and "resolution" in result.output
    # the English output names the scope in English; the Thai report in Thai
    assert "Acceptance check of TEST-OK (every site of the project: " in result.output
    assert "ทุกสถานที่" not in result.output
    entries = session.scalars(select(RegisterEntry)).all()
    assert sorted(e.mac for e in entries) == ["c0:56:e3:78:01:0b", "c0:56:e3:78:01:0c"]
    assert {e.added_by for e in entries} == {"check --register"}
    assert {d.status for d in session.scalars(select(Device))} == {"compliant"}
    html = report.read_text()
    assert "ทุกสถานที่ติดตั้งของโครงการ" in html
    assert '<span class="verdict pass">ผ่าน</span>' in html and "ชร 0023.3/9999" in html and "สมชาย ใจดี" in html
    assert "&lt;b&gt;ok-1&lt;/b&gt;" in html and "<b>ok-1</b>" not in html  # camera strings escaped
    assert "๑๔ กุมภาพันธ์ ๒๕๖๘" in html  # approval date, Buddhist era, Thai digits
    assert session.scalar(select(ScanRun)).trigger == "check"
    # a second check: already registered, nothing added, still a pass
    again = runner.invoke(cli, args=["check", "--project", "TEST-OK", "--no-streams", "--json", "--register"])
    data = json.loads(again.output)
    assert again.exit_code == 0 and data["passed"] and data["registered_now"] == 0
    assert all(c["registered"] for c in data["cameras"])


def test_low_resolution_project_fails(runner, projects, tmp_path):
    report = tmp_path / "low.html"
    result = runner.invoke(cli, args=["check", "--project", "TEST-LOW", "--no-streams", "--json",
                                      "--report", str(report), "--register"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    assert not data["passed"] and data["registered_now"] == 0
    (cam,) = data["cameras"]
    resolution = next(r for r in cam["requirements"] if r["key"] == "resolution")
    assert resolution["passed"] is False
    assert resolution["expected"].startswith("1920x1080") and resolution["observed"].startswith("1280x720")
    # --no-streams: the stream rows are "not checked" (passed null), never "pass"
    assert all(r["passed"] is not False for r in cam["requirements"] if r["key"] != "resolution")
    assert {r["result"] for r in cam["requirements"] if r["key"] in ("stream", "stream_match", "image")} \
        == {"not checked"}
    assert '<span class="verdict fail">ไม่ผ่าน</span>' in report.read_text()


def test_check_range_and_credentials(runner, projects):
    # a range check with the right user given on the command line
    ok = runner.invoke(cli, args=["check", "--project", "TEST-OK", "--range", "127.78.1.0/24", "--no-streams",
                                  "--user", "admin", "--password", "Demo#2567"])
    assert ok.exit_code == 0, ok.output
    assert "(address range 127.78.1.0/24)" in ok.output
    # a wrong user first: the site's stored credentials still get the cameras read
    wrong = runner.invoke(cli, args=["check", "--project", "TEST-OK", "--no-streams", "--user", "x",
                                     "--password", "y"])
    assert wrong.exit_code == 0, wrong.output


@pytest.mark.parametrize("args, message", [
    (["check", "--project", "NOPE"], "no project with code 'NOPE'"),
    (["check", "--project", "TEST-OK", "--range", "300.1.1.0/24"], "invalid address range"),
    (["check", "--project", "TEST-OK", "--user", "admin"], "--user and --password go together"),
    (["check", "--project", "TEST-OK", "--report", "/nonexistent/dir/r.html"], "does not exist"),
])
def test_check_usage_errors_exit_2(runner, projects, args, message, monkeypatch):
    monkeypatch.delenv("CCTV_CHECK_PASSWORD", raising=False)
    result = runner.invoke(cli, args=args)
    assert result.exit_code == 2, result.output
    assert message in result.output


@pytest.mark.browser
def test_report_renders_in_chromium(runner, projects, tmp_path):
    """Both reports open in a real Chromium: the verdicts are visible text, printable to PDF."""
    need_chromium()
    paths = {}
    for code in ("TEST-OK", "TEST-LOW"):
        paths[code] = tmp_path / f"{code}.html"
        runner.invoke(cli, args=["check", "--project", code, "--no-streams", "--report", str(paths[code])])
    with chromium() as browser:
        page = browser.new_page()
        for code, expect in (("TEST-OK", "ผ่าน"), ("TEST-LOW", "ไม่ผ่าน")):
            page.goto(paths[code].as_uri())
            assert page.locator(".verdict").inner_text() == expect
            # the embedded Thai font loaded (not a fallback box font)
            assert page.evaluate("document.fonts.check('16px ReportThai', 'ผ่าน')")
            pdf = page.pdf(format="A4", landscape=True)
            assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
            png = page.screenshot(full_page=True)
            assert png.startswith(b"\x89PNG")
            (tmp_path / f"{code}.png").write_bytes(png)
