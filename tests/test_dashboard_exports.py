"""Exports (CSV with BOM, XLSX, filters applied, formula injection neutralised) and the users command."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from cctv_monitor.cli import cli
from cctv_monitor.db import get_db
from cctv_monitor.models import User
from dashboards.exports import safe_cell
from cctv_monitor.simulator.sampledata import CAMERA_PASSWORD, FORMULA_NAME
from tests.dashboard_helpers import login, seeded


@pytest.fixture
def data(app):
    """Sample data without bulk devices."""
    return seeded(app, days=3)


def _csv(client, url: str) -> list[list[str]]:
    response = client.get(url)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    raw = response.data
    assert raw.startswith("\ufeff".encode("utf-8")), "BOM so that Excel reads UTF-8 Thai"
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def test_csv_devices_with_filters_and_thai(app, client, data):
    """The device CSV follows the filters, has Thai headers and labels, and no credentials."""
    login(client, "admin")
    rows = _csv(client, "/exports/devices.csv?status=non_compliant&project=CR-MS-2568-001")
    header, body = rows[0], rows[1:]
    assert header[1] == "ชื่อ" and header[8] == "สถานะ"
    assert {r[2] for r in body} == {f"127.0.1.{i}:8000" for i in (13, 14, 15, 16, 17)}
    assert all(r[8] == "ไม่ตรงตามข้อกำหนด" for r in body)
    everything = client.get("/exports/devices.csv").get_data(as_text=True)
    assert CAMERA_PASSWORD not in everything and "gAAAAA" not in everything


def test_csv_formula_injection_neutralised(client, data):
    """A camera-supplied value starting with = is written with a leading quote."""
    login(client, "admin")
    rows = _csv(client, "/exports/devices.csv?q=127.0.5.28")
    assert len(rows) == 2
    assert rows[1][7] == "'" + FORMULA_NAME
    assert rows[1][1] == "<script>alert(1)</script>"  # plain text in a CSV, not markup
    assert safe_cell("+1") == "'+1" and safe_cell("-x") == "'-x" and safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("normal") == "normal" and safe_cell(5) == 5


def test_findings_csv_and_xlsx(client, data):
    """Findings export lists expected, observed and source; XLSX opens with openpyxl and matches."""
    login(client, "admin")
    rows = _csv(client, "/exports/findings.csv?finding=resolution")
    assert len(rows) == 2 and rows[1][6] == "resolution" and rows[1][10] == "≥ 1920x1080"
    assert rows[1][11] == "1280x720" and "MDES" in rows[1][12]
    response = client.get("/exports/devices.xlsx?agency=pongpha-sao")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data), read_only=True).active
    values = list(sheet.iter_rows(values_only=True))
    assert len(values) == 1 + 7
    assert {v[2] for v in values[1:]} == {f"127.0.4.{i}:8000" for i in range(11, 18)}
    xlsx_all = client.get("/exports/devices.xlsx?q=127.0.5.28")
    row = list(load_workbook(io.BytesIO(xlsx_all.data), read_only=True).active.iter_rows(values_only=True))[1]
    assert row[7] == "'" + FORMULA_NAME


def test_english_export_headers(app, client, data):
    """A user whose language is English gets English headers."""
    with get_db(app).session_scope() as session:
        session.scalar(select(User).where(User.username == "auditor")).language = "en"
    login(client, "auditor")
    rows = _csv(client, "/exports/devices.csv?status=missing")
    assert rows[0][1] == "Name" and rows[1][8] == "Missing"


def test_users_add_and_token(app, runner, client, data):
    """users add creates a hashed user who can log in; users token prints a working token once."""
    result = runner.invoke(cli, args=["users", "add", "somchai", "--role", "technician", "--agency", "pongpha-sao",
                                 "--password-stdin"], input="long-enough-secret\n")
    assert result.exit_code == 0, result.output
    with get_db(app).session_scope() as session:
        row = session.scalar(select(User).where(User.username == "somchai"))
        assert row.password_hash != "long-enough-secret" and row.password_hash.startswith(("scrypt:", "pbkdf2:"))
    assert login(client, "somchai", "long-enough-secret").status_code == 302
    result = runner.invoke(cli, args=["users", "token", "somchai"])
    token = result.output.strip()
    assert result.exit_code == 0 and len(token) >= 40
    items = client.get("/api/v1/devices?per_page=200", headers={"Authorization": f"Bearer {token}"}).get_json()["items"]
    assert items and {i["agency"] for i in items} == {"pongpha-sao"}
    with get_db(app).session_scope() as session:
        assert token not in (session.scalar(select(User.api_token_hash).where(User.username == "somchai")) or "")


@pytest.mark.parametrize("args, message", [
    (["users", "add", "x1", "--role", "technician", "--password", "long-enough-1"], "--agency"),
    (["users", "add", "x2", "--role", "technician", "--agency", "nowhere", "--password", "long-enough-1"], "nowhere"),
    (["users", "add", "x3", "--role", "admin", "--password", "short"], "at least"),
    (["users", "add", "x4", "--role", "king", "--password", "long-enough-1"], "king"),
    (["users", "add", "bad name!", "--role", "admin", "--password", "long-enough-1"], "USERNAME"),
    (["users", "add", "x5", "--role", "admin"], "exactly one"),
    (["users", "token", "nobody"], "nobody"),
])
def test_users_add_errors(runner, data, args, message):
    """Bad input gets a clear, specific error and a non-zero exit."""
    result = runner.invoke(cli, args=args)
    assert result.exit_code != 0
    assert message in result.output


def test_export_reused_per_scope_until_the_data_changes(app, client, data):
    """Asked twice, an export is built once; a technician never gets the file built for an admin; a device
    that appears (no scan running) is in the next export at once."""
    from cctv_monitor.models import Device
    from dashboards import overview_cache

    overview_cache.clear()
    login(client, "admin")
    first = client.get("/exports/devices.csv?sort=name").data
    assert client.get("/exports/devices.csv?sort=name").data == first
    assert sum(1 for key in overview_cache._entries if "export" in key) == 1  # the second was not built again
    tech = app.test_client()
    login(tech, "tech-maesai")
    own = _csv(tech, "/exports/devices.csv?sort=name")
    admin_rows = list(csv.reader(io.StringIO(first.decode("utf-8-sig"))))
    assert len(own) < len(admin_rows) and {r[10] for r in own[1:]} <= {"maesai-mun"}
    with get_db(app).session_scope() as session:
        session.add(Device(name="appeared-now", address="127.0.9.9:80", status="offline"))
    assert "appeared-now" in client.get("/exports/devices.csv?sort=name").get_data(as_text=True)
