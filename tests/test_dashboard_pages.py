"""Dashboard pages on SQLite and PostgreSQL: log-in, every page in both languages, filters, assignment,
schedules, escaping of hostile camera strings, security headers."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select

from cctv_monitor.db import get_db
from cctv_monitor.models import Device, RegisterEntry, ScanSchedule, User
from dashboards import i18n
from cctv_monitor.simulator.sampledata import CAMERA_PASSWORD
from tests.dashboard_helpers import csrf_from, login, seeded

PAGES = ["/", "/devices", "/projects", "/unregistered", "/scans", "/exports"]


@pytest.fixture
def data(app):
    """The sample data in the app's database."""
    return seeded(app, extra_devices=60, days=20)


def _pages(data) -> list[str]:
    return PAGES + [f"/devices/{data.devices['127.0.1.17:8000']}", f"/devices/{data.hostile_device_id}",
                    f"/projects/{data.projects['CR-MS-2568-001']}", f"/projects/{data.projects['CR-MS-2567-003']}"]


def test_every_page_needs_login(client, data):
    """Anonymous requests are sent to the log-in page; the log-in page itself answers."""
    for path in _pages(data) + ["/exports/devices.csv"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login"), path
    assert client.get("/login").status_code == 200


def test_login_wrong_password_and_csrf(client, data):
    """A wrong password is refused; a form without its CSRF token is refused; the right one signs in."""
    assert login(client, "admin", "wrong-password").status_code == 401
    no_token = client.post("/login", data={"username": "admin", "password": "admin-pass-2567"})
    assert no_token.status_code == 400
    ok = login(client, "admin")
    assert ok.status_code == 302 and ok.headers["Location"] == "/"
    assert client.get("/").status_code == 200


def test_login_next_is_same_site_only(client, data):
    """``next`` after log-in never leads to another site."""
    token = csrf_from(client)
    response = client.post("/login?next=//evil.example/x", data={"username": "admin", "password": "admin-pass-2567",
                                                                 "csrf_token": token})
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("lang", ["th", "en"])
def test_every_page_renders_in_both_languages(app, client, data, lang):
    """Each page answers 200 in Thai and English with labels of that language and no camera password."""
    with get_db(app).session_scope() as session:
        session.scalar(select(User).where(User.username == "admin")).language = lang
    login(client, "admin")
    overview_word = "ภาพรวม" if lang == "th" else "Overview"
    for path in _pages(data):
        response = client.get(path)
        body = response.get_data(as_text=True)
        assert response.status_code == 200, path
        assert f'<html lang="{lang}">' in body
        assert overview_word in body, path
        assert CAMERA_PASSWORD not in body, path
        assert "gAAAAA" not in body, path  # encrypted site credentials never shown either


def test_hostile_camera_name_is_escaped(client, data):
    """The quirks fleet's ``<script>`` name and ``onerror`` location show as text on every page they reach."""
    login(client, "admin")
    for path in (f"/devices/{data.hostile_device_id}", "/devices?q=script", "/unregistered"):
        body = client.get(path).get_data(as_text=True)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body, path
        assert "<script>alert(1)</script>" not in body, path
        assert "<img src=x" not in body, path
        assert "<b>DS</b>" not in body, path


def test_thai_dates_use_buddhist_era():
    """Thai dates add 543 years and use Thai month names; English dates stay Gregorian."""
    assert i18n.format_date(date(2024, 10, 25), "th") == "25 ตุลาคม 2567"
    assert i18n.format_date(date(2024, 10, 25), "en") == "25 Oct 2024"
    # 20:30 UTC on 31 Dec is already 1 Jan in Thailand (UTC+7)
    assert i18n.format_datetime(datetime(2024, 12, 31, 20, 30, tzinfo=timezone.utc), "th") == "1 ม.ค. 2568 03:30"
    assert i18n.format_date(None, "th") == "-"


def test_translation_table_is_complete():
    """Every label has non-empty Thai and English text, and Thai text is really Thai."""
    for key, (th, en) in i18n.MESSAGES.items():
        assert th.strip() and en.strip(), key
    thai = re.compile("[\u0e00-\u0e7f]")
    assert sum(1 for th, _ in i18n.MESSAGES.values() if thai.search(th)) > 0.9 * len(i18n.MESSAGES)
    templates = __import__("pathlib").Path(i18n.__file__).parent / "templates"
    used = set()
    for path in templates.glob("*.html"):
        used |= set(re.findall(r"t\('([a-z_]+)'", path.read_text(encoding="utf-8")))
    assert used and not used - set(i18n.MESSAGES), used - set(i18n.MESSAGES)


def test_language_switch_is_remembered_per_user(app, client, data):
    """The switch stores the language on the user; the next log-in uses it."""
    login(client, "auditor")
    assert '<html lang="th">' in client.get("/").get_data(as_text=True)
    token = csrf_from(client, "/")
    client.post("/language", data={"lang": "en", "next": "/devices", "csrf_token": token})
    assert '<html lang="en">' in client.get("/devices").get_data(as_text=True)
    with get_db(app).session_scope() as session:
        assert session.scalar(select(User.language).where(User.username == "auditor")) == "en"


def test_device_table_filters_sort_and_pages(client, data):
    """Filters narrow the table, sorting orders it, pages split it."""
    login(client, "admin")
    body = client.get("/devices?status=non_compliant&agency=%d" % data.agencies["maesai-mun"]).get_data(as_text=True)
    for address in ("127.0.1.13", "127.0.1.14", "127.0.1.15", "127.0.1.16", "127.0.1.17"):
        assert address in body
    assert "127.0.1.11:8000" not in body
    assert "127.0.4.17" not in body
    body = client.get("/devices?finding=codec&project=CR-MS-2568-001").get_data(as_text=True)
    assert "127.0.1.14:8000" in body and "127.0.1.13:8000" not in body
    page1 = client.get("/devices?per_page=25&sort=name").get_data(as_text=True)
    page2 = client.get("/devices?per_page=25&sort=name&page=2").get_data(as_text=True)
    links1 = set(re.findall(r'href="/devices/(\d+)"', page1))
    links2 = set(re.findall(r'href="/devices/(\d+)"', page2))
    assert len(links1) == 25 and len(links2) == 25 and not links1 & links2
    names = re.findall(r'class="device-link">([^<]+)<', client.get("/devices?sort=name&direction=desc&per_page=200")
                       .get_data(as_text=True))
    assert names == sorted(names, reverse=True)
    # garbage in the query string falls back to defaults instead of failing
    assert client.get("/devices?page=abc&per_page=-3&sort=evil&status=nope").status_code == 200


def test_device_detail_shows_claims_beside_measurements(client, data):
    """The detail page shows claimed 1920x1080 beside measured 1280x720, the finding and its source."""
    login(client, "admin")
    body = client.get(f"/devices/{data.devices['127.0.1.17:8000']}").get_data(as_text=True)
    assert "1920×1080" in body and "1280×720" in body
    assert 'class="differs"' in body
    assert "stream_resolution" in body and "MDES CCTV standard" in body
    assert "rtsp://***@127.0.1.17" in body
    match = re.search(r'src="(/devices/\d+/thumbnail/\d+\.jpg)"', body)
    assert match
    thumb = client.get(match.group(1))
    assert thumb.status_code == 200 and thumb.data.startswith(b"\xff\xd8")


def test_projects_show_approved_found_compliant(app, client):
    """Pong Pha: 8 approved, 7 found, shortfall finding and last check listed."""
    data = seeded(app)
    login(client, "admin")
    body = client.get(f"/projects/{data.projects['CR-MS-2567-003']}").get_data(as_text=True)
    assert re.search(r'id="approved-count">8<', body)
    assert re.search(r'id="found-count">7<', body)
    assert re.search(r'id="compliant-count">6<', body)
    assert "count_shortfall" in body or "จำนวนกล้องน้อยกว่าที่อนุมัติ" in body


def test_admin_assigns_unregistered_devices(app, client, data):
    """Two unregistered devices go into a project's register in one post."""
    login(client, "admin")
    ids = [data.devices["127.0.3.31:8000"], data.devices["127.0.3.32:8000"]]
    token = csrf_from(client, "/unregistered")
    response = client.post("/unregistered/assign", data={"device_id": [str(i) for i in ids], "csrf_token": token,
                                                         "project_id": data.projects["CR-MS-2568-002"],
                                                         "site_id": data.sites["school"]})
    assert response.status_code == 302
    with get_db(app).session_scope() as session:
        for device_id in ids:
            device = session.get(Device, device_id)
            assert device.registered and device.project_id == data.projects["CR-MS-2568-002"]
            entry = session.get(RegisterEntry, device.register_entry_id)
            assert entry.mac == device.mac and entry.site_id == data.sites["school"]
            assert entry.added_by == "dashboard:admin"
    body = client.get("/unregistered").get_data(as_text=True)
    assert "127.0.3.31" not in body


def test_assign_rejects_site_of_other_project(app, client, data):
    """A site from another project is refused with a message; nothing changes."""
    login(client, "admin")
    token = csrf_from(client, "/unregistered")
    client.post("/unregistered/assign", data={"device_id": [str(data.devices["127.0.1.30:8000"])], "csrf_token": token,
                                              "project_id": data.projects["CR-MS-2568-002"],
                                              "site_id": data.sites["market"]})
    with get_db(app).session_scope() as session:
        assert not session.get(Device, data.devices["127.0.1.30:8000"]).registered


def test_only_admin_assigns_and_edits_schedules(client, data):
    """Auditors and technicians cannot assign or edit schedules (403) and see no such forms."""
    for user in ("auditor", "tech-maesai"):
        client.get("/")  # fresh client state per user
        login(client, user)
        token = csrf_from(client, "/unregistered")
        assert 'id="assign-form"' in client.get("/unregistered").get_data(as_text=True)
        assert 'id="assign-submit"' not in client.get("/unregistered").get_data(as_text=True)
        assert client.post("/unregistered/assign", data={"device_id": [str(data.devices["127.0.1.30:8000"])],
                                                         "project_id": data.projects["CR-MS-2568-001"],
                                                         "csrf_token": token}).status_code == 403
        assert client.post("/scans/schedules/1", data={"cron": "0 3 * * *", "csrf_token": token}).status_code == 403
        client.post("/logout", data={"csrf_token": token})


def test_admin_edits_and_creates_schedules(app, client, data):
    """Edit the cron of a schedule, refuse a bad cron, add an interval schedule, delete it."""
    login(client, "admin")
    token = csrf_from(client, "/scans")
    with get_db(app).session_scope() as session:
        first = session.scalar(select(ScanSchedule).where(ScanSchedule.target_value == "CR-MS-2568-001/market"))
        first_id = first.id
    client.post(f"/scans/schedules/{first_id}", data={"cron": "30 3 * * 1-5", "enabled": "1", "csrf_token": token})
    bad = client.post(f"/scans/schedules/{first_id}", data={"cron": "99 99 * * *", "csrf_token": token},
                      follow_redirects=True)
    assert "cron" in bad.get_data(as_text=True).lower()
    both = client.post(f"/scans/schedules/{first_id}", data={"cron": "0 1 * * *", "interval_minutes": "5",
                                                             "csrf_token": token}, follow_redirects=True)
    assert "cron" in both.get_data(as_text=True)
    client.post("/scans/schedules", data={"target_kind": "agency", "target_value": "pongpha-sao",
                                          "interval_minutes": "720", "enabled": "1", "csrf_token": token})
    with get_db(app).session_scope() as session:
        assert session.get(ScanSchedule, first_id).cron == "30 3 * * 1-5"
        new = session.scalar(select(ScanSchedule).where(ScanSchedule.target_value == "pongpha-sao"))
        assert new.interval_minutes == 720 and new.enabled and new.cron is None
        new_id = new.id
    client.post(f"/scans/schedules/{new_id}/delete", data={"csrf_token": token})
    with get_db(app).session_scope() as session:
        assert session.get(ScanSchedule, new_id) is None


def test_scans_page_lists_runs_with_errors(client, data):
    """Runs show state, counts, duration and the error of a failed run."""
    login(client, "admin")
    body = client.get("/scans").get_data(as_text=True)
    assert "scan interrupted by restart" in body
    assert "CR-MS-2568-001/market" in body
    assert "42" in body  # the failed run lasted 42 s


def test_security_headers_and_cookie_flags(client, data):
    """CSP without inline scripts, nosniff, frame denial; the session cookie is HttpOnly and SameSite."""
    response = login(client, "admin")
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Referrer-Policy"]
    assert "<script>" not in page.get_data(as_text=True)  # no inline script blocks at all


def test_assets_served_locally(client):
    """plotly.js and the Thai font come from the app with caching headers, without logging in."""
    js = client.get("/assets/plotly.min.js")
    assert js.status_code == 200 and b"plotly" in js.data[:2000].lower()
    assert js.headers["Cache-Control"].startswith("public") or "max-age" in js.headers["Cache-Control"]
    css = client.get("/assets/fonts.css").get_data(as_text=True)
    assert "font-family: 'Sarabun'" in css
    url = re.search(r"url\('([^']+)'\)", css).group(1)
    font = client.get(url)
    assert font.status_code == 200 and font.data[:4] in (b"\x00\x01\x00\x00", b"OTTO", b"true")


def test_server_error_rolls_back_and_hides_details(app, client, data):
    """An unexpected error gives a plain 500 page, and the next request works."""
    @app.route("/boom")
    def boom():  # a route that fails after touching the session
        from cctv_monitor.db import get_session

        get_session().add(User(username="half", password_hash="x", role="admin"))
        raise RuntimeError("secret internals")

    login(client, "admin")
    response = client.get("/boom")
    assert response.status_code == 500
    assert "secret internals" not in response.get_data(as_text=True)
    assert client.get("/").status_code == 200


def test_record_daily_status_replaces_the_day(app, data):
    """The scan pipeline's hook writes one snapshot per day; a second call the same day replaces it."""
    from sqlalchemy import func

    from cctv_monitor.models import StatusDaily
    from dashboards.queries import DeviceFilters, status_trend
    from dashboards.security import LoginUser
    from cctv_monitor.history import record_daily_status

    day = date(2030, 1, 2)
    with get_db(app).session_scope() as session:
        first = record_daily_status(session, day)
        again = record_daily_status(session, day)
        assert first == again > 0
        stored = session.scalar(select(func.sum(StatusDaily.count)).where(StatusDaily.day == day))
        assert stored == session.scalar(select(func.count(Device.id)))
        admin = LoginUser(id=0, username="x", role="admin", agency_id=None, language="th")
        trend = status_trend(session, DeviceFilters(), admin, days=3, today=date(2030, 1, 3))
        assert sum(trend[day].values()) == stored
