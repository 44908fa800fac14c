"""The audit log on SQLite and PostgreSQL: what is recorded (log-ins, failures, scans, schedules, registers,
users, tokens, exports), the admin page in both languages with hostile values escaped, and its CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import select

from cctv_monitor.cli import cli
from cctv_monitor.db import get_db
from cctv_monitor.models import AuditEntry, Device, User
from cctv_monitor.scanning import run_scan
from tests.dashboard_helpers import csrf_from, login, seeded

REPO = Path(__file__).resolve().parent.parent
HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def data(app):
    """The sample data."""
    return seeded(app, extra_devices=0, days=1)


def _entries(app) -> list[AuditEntry]:
    with get_db(app).session_scope() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def test_what_is_recorded_with_who_when_and_where(app, client, runner, data):
    """Each audited action leaves one entry naming actor, address, object and time."""
    # log-in failures (a hostile and a formula user name) and a log-in
    client.post("/login", data={"username": HOSTILE, "password": "x" * 9, "csrf_token": csrf_from(client)})
    client.post("/login", data={"username": "=cmd|' /C calc'!A0", "password": "x" * 9,
                                "csrf_token": csrf_from(client)})
    assert login(client, "admin").status_code == 302
    # a schedule created, changed and deleted
    token = csrf_from(client, "/scans")
    client.post("/scans/schedules", data={"target_kind": "project", "target_value": "CR-MS-2568-001",
                                          "interval_minutes": "30", "enabled": "1", "csrf_token": token})
    with get_db(app).session_scope() as session:
        from cctv_monitor.models import ScanSchedule

        schedule_id = session.scalar(select(ScanSchedule.id).where(ScanSchedule.target_kind == "project",
                                                                   ScanSchedule.target_value == "CR-MS-2568-001"))
    client.post(f"/scans/schedules/{schedule_id}", data={"cron": "0 2 * * *", "csrf_token": token})
    client.post(f"/scans/schedules/{schedule_id}/delete", data={"csrf_token": token})
    # an unregistered device added to a register
    with get_db(app).session_scope() as session:
        device_id = session.scalar(select(Device.id).where(Device.registered.is_(False)))
    client.post("/unregistered/assign", data={"device_id": str(device_id), "project_id": str(data.projects[
        "CR-MS-2568-001"]), "csrf_token": csrf_from(client, "/unregistered")})
    # an export downloaded
    assert client.get("/exports/devices.csv?status=offline").status_code == 200
    # a scan started (observations given, so nothing is probed)
    run_id = run_scan(app, "range", "127.0.9.0/30", observations=[], started_by="admin", deliver_alerts=False)
    # users and tokens changed, a register imported, from the command line
    assert runner.invoke(cli, args=["users", "add", "clerk", "--role", "auditor", "--password-stdin"],
                         input="clerk-pass-2568\n").exit_code == 0
    assert runner.invoke(cli, args=["users", "token", "clerk"]).exit_code == 0
    assert runner.invoke(cli, args=["users", "passwd", "clerk", "--password-stdin"],
                         input="clerk-pass-2569\n").exit_code == 0
    assert runner.invoke(cli, args=["users", "deactivate", "clerk"]).exit_code == 0
    # (the sample data already holds this project, so the file may be refused: audited either way)
    imported = runner.invoke(cli, args=["import-projects",
                                        str(REPO / "config" / "projects" / "CR-MS-2568-002.yaml")])
    assert imported.exit_code in (0, 2), imported.output

    entries = _entries(app)
    actions = [e.action for e in entries]
    for action in ("login_failed", "login", "schedule_created", "schedule_updated", "schedule_deleted",
                   "register_assigned", "export", "scan_started", "user_created", "token_issued", "user_password",
                   "user_deactivated", "register_imported"):
        assert action in actions, action
    by_action = {e.action: e for e in entries}
    assert by_action["login"].actor == "admin" and by_action["login"].address == "127.0.0.1"
    assert entries[0].actor == HOSTILE and entries[0].time is not None
    assert by_action["schedule_updated"].detail == {
        "before": {"cron": None, "interval_minutes": 30, "with_streams": False, "enabled": True},
        "after": {"cron": "0 2 * * *", "interval_minutes": None, "with_streams": False, "enabled": False}}
    assert by_action["scan_started"].object_repr == f"#{run_id} range 127.0.9.0/30"
    assert by_action["scan_started"].actor == "admin"
    assert by_action["export"].object_type == "devices" and "offline" in str(by_action["export"].detail)
    assert by_action["user_created"].actor.startswith("cli")
    assert by_action["register_imported"].detail["ok"] is (imported.exit_code == 0)
    assert by_action["register_imported"].object_repr.endswith("CR-MS-2568-002.yaml")
    # nothing secret is kept: no password, no token
    text = repr([(e.actor, e.object_repr, e.detail) for e in entries])
    assert "clerk-pass" not in text and "x" * 9 not in text


@pytest.mark.parametrize("lang", ["th", "en"])
def test_audit_page_in_both_languages_escapes_and_is_for_admins(app, client, data, lang):
    """The page lists entries in the user's language, escapes hostile values; others get 403."""
    client.post("/login", data={"username": HOSTILE, "password": "x" * 9, "csrf_token": csrf_from(client)})
    with get_db(app).session_scope() as session:
        session.scalar(select(User).where(User.username == "admin")).language = lang
    assert login(client, "admin").status_code == 302
    page = client.get("/audit")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert HOSTILE not in body and "&lt;script&gt;" in body
    assert ("บันทึกการตรวจสอบ" in body and "เข้าสู่ระบบไม่สำเร็จ" in body) if lang == "th" else \
        ("Audit log" in body and "log-in failed" in body)
    assert 'id="nav-audit"' in body
    only_failures = client.get("/audit?action=login_failed").get_data(as_text=True)
    assert only_failures.count('class="audit-login_failed"') == 1 and 'class="audit-login"' not in only_failures
    assert client.get("/audit?action=nonsense").status_code == 400
    assert client.get("/audit?since=yesterday").status_code == 400
    auditor = app.test_client()
    assert login(auditor, "auditor").status_code == 302
    assert auditor.get("/audit").status_code == 403 and auditor.get("/audit.csv").status_code == 403
    assert 'id="nav-audit"' not in auditor.get("/").get_data(as_text=True)


def test_audit_csv_neutralises_formulas_and_is_itself_recorded(app, client, data):
    """The CSV holds every entry, oldest first, formula cells prefixed; the download is audited."""
    client.post("/login", data={"username": "=HYPERLINK(\"http://evil\")", "password": "x" * 9,
                                "csrf_token": csrf_from(client)})
    assert login(client, "admin").status_code == 302
    response = client.get("/audit.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:4] == ["เวลา (UTC)", "ผู้กระทำ", "ที่อยู่", "การกระทำ"]  # admin's language is Thai
    assert rows[1][1] == "'=HYPERLINK(\"http://evil\")" and rows[1][3].startswith("login_failed")
    assert rows[2][1] == "admin" and rows[2][3].startswith("login ")
    assert _entries(app)[-1].action == "audit_export"
