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
                     _camera("fu-locked", "127.79.1.13", password="Other#Pass1")]}


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
                             "fixed_outdoor", "2", site, "ตลาดสายลมจอย", ranges, "8000", "admin", PASSWORD, label,
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
