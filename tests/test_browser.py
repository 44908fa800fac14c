"""The dashboard in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

The app runs on 127.0.0.1 in a thread with the sample data on SQLite. Every test fails on a console
error, an uncaught page error or a JavaScript dialog (a hostile camera name that ran would open one).
Screenshots of each page, in Thai and English, go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import shutil
from typing import Iterator

import pytest

from tests.browser_helpers import SHOTS, chromium, login, need_chromium, served, watched_page

pytestmark = pytest.mark.browser

CHARTS = ("chart-agency", "chart-trend", "chart-resolution", "chart-codec", "chart-findings")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, object]]:
    """The app with sample data, served by werkzeug on 127.0.0.1 (ephemeral port) in a thread."""
    need_chromium()
    from cctv_monitor import create_app
    from cctv_monitor.db import get_db
    from cctv_monitor.simulator.sampledata import seed

    folder = tmp_path_factory.mktemp("browser")
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{folder / 'ui.sqlite3'}",
                      "SECRET_KEY": "browser-test", "INSTANCE_PATH": str(folder / "instance")})
    with get_db(app).session_scope() as session:
        data = seed(session, extra_devices=150, days=120)
    try:
        with served(app) as base:
            yield base, data
    finally:
        get_db(app).dispose()


@pytest.fixture(scope="module")
def browser(server):
    """One headless Chromium for the module."""
    with chromium() as instance:
        yield instance


@pytest.fixture
def page(browser, server):
    """A fresh page (own cookies) with problem watching."""
    with watched_page(browser, accept_downloads=True) as pg:
        yield pg


def _wait_charts(page) -> None:
    for chart in CHARTS:
        page.wait_for_selector(f"#{chart}[data-rendered='1'] .main-svg", state="attached")


def _shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_login_overview_charts_and_every_page_in_both_languages(page, server):
    """Log in, see the overview charts drawn, visit every page in Thai, switch to English, visit again."""
    base, data = server
    page.goto(f"{base}/devices")
    assert "/login" in page.url
    _shot(page, "login-th")
    login(page, base)
    pages = [("overview", "/"), ("devices", "/devices"), ("device", f"/devices/{data.devices['127.0.1.17:8000']}"),
             ("device-hostile", f"/devices/{data.hostile_device_id}"), ("projects", "/projects"),
             ("project", f"/projects/{data.projects['CR-MS-2567-003']}"), ("unregistered", "/unregistered"),
             ("scans", "/scans"), ("exports", "/exports")]
    for lang in ("th", "en"):
        assert page.get_attribute("html", "lang") == lang
        for name, path in pages:
            page.goto(base + path)
            page.wait_for_load_state("networkidle")
            if name == "overview":
                _wait_charts(page)
                # bars of the per-agency chart and the trend line are really drawn
                assert page.locator("#chart-agency .bars path").count() > 0
                assert page.locator("#chart-trend .scatterlayer path").count() > 0
            _shot(page, f"{name}-{lang}")
        if lang == "th":
            assert "ภาพรวม" in page.inner_text("nav")
            page.click("#switch-language")
            page.wait_for_load_state("networkidle")
    assert "Overview" in page.inner_text("nav")
    page.click("#switch-language")  # back to Thai: the choice is stored on the user, other tests expect Thai
    page.wait_for_load_state("networkidle")
    assert page.get_attribute("html", "lang") == "th"


def test_thai_font_is_loaded(page, server):
    """The Sarabun webfont served by the app is what the page uses for Thai."""
    base, _ = server
    login(page, base)
    assert page.evaluate("document.fonts.check('16px Sarabun', 'ภาพรวม')")
    page.evaluate("document.fonts.ready")
    loaded = page.evaluate("Array.from(document.fonts).filter(f => f.status === 'loaded').map(f => f.family)")
    assert any("Sarabun" in family for family in loaded)


def test_hostile_name_renders_as_text(page, server):
    """The <script> camera name appears as visible text; no script ran (no dialog, checked by the fixture)."""
    base, data = server
    login(page, base)
    page.goto(f"{base}/devices/{data.hostile_device_id}")
    assert page.inner_text("#device-name").startswith("<script>alert(1)</script>")
    assert page.locator("img[src='x']").count() == 0


def test_filter_device_table_and_open_device(page, server):
    """Choosing a status filter reloads the table with that status only; a row opens the device."""
    base, data = server
    login(page, base)
    page.goto(f"{base}/devices")
    page.select_option("#filter-status", "non_compliant")
    page.wait_for_url(lambda url: "status=non_compliant" in url)
    badges = page.locator("#device-table tbody .badge").all_inner_texts()
    assert badges and set(badges) == {"ไม่ตรงตามข้อกำหนด"}
    page.fill("#filter-q", "127.0.1.17")
    page.click("#filter-apply")
    page.wait_for_url(lambda url: "q=127.0.1.17" in url)
    _shot(page, "devices-filtered-th")
    page.click("#device-table a.device-link")
    page.wait_for_url(lambda url: "/devices/" in url)
    assert page.locator("#findings tbody tr").count() >= 1
    assert "1280×720" in page.inner_text("#profiles")


def test_assign_unregistered_device(page, server):
    """Tick an unregistered camera, pick project and site, submit: it leaves the list."""
    base, data = server
    login(page, base)
    page.goto(f"{base}/unregistered")
    target = data.devices["127.0.1.30:8000"]
    page.check(f"input.row-select[value='{target}']")
    page.select_option("#assign-project", str(data.projects["CR-MS-2568-001"]))
    page.select_option("#assign-site", str(data.sites["market"]))
    page.click("#assign-submit")
    page.wait_for_selector(".flash-success")
    _shot(page, "unregistered-assigned-th")
    assert page.locator(f"input.row-select[value='{target}']").count() == 0


def test_export_csv_download(page, server, tmp_path):
    """The export link downloads a CSV with a BOM and Thai headers, filtered like the table."""
    base, _ = server
    login(page, base)
    page.goto(f"{base}/exports?status=missing")
    with page.expect_download() as info:
        page.click("#export-csv")
    path = tmp_path / "devices.csv"
    info.value.save_as(path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = raw.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("รหัส,ชื่อ")
    assert len(lines) >= 2 and all("ไม่พบอุปกรณ์" in line for line in lines[1:])


def test_technician_sees_own_agency_only(page, server):
    """tech-wiang's overview and table hold Wiang Phang Kham only."""
    base, data = server
    login(page, base, "tech-wiang", "tech-wiang-2567")
    _wait_charts(page)
    _shot(page, "overview-technician-th")
    page.goto(f"{base}/devices?per_page=200")
    text = page.inner_text("#device-table")
    assert "127.0.3.11" in text and "127.0.1.13" not in text
    # with the page's cookies but outside the page, so the expected 404 is not a console error
    response = page.request.get(f"{base}/devices/{data.devices['127.0.1.13:8000']}")
    assert response.status == 404


@pytest.fixture(scope="module", autouse=True)
def _clean_old_shots():
    """Start each run with an empty screenshot folder."""
    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    yield
