"""Camera strings are stripped of control characters at the probe boundary (issue "Trust", item 9).

A camera whose ONVIF name scope is ``Gate%01%1B[2J cam`` used to make the XLSX export answer 500 for
everyone (openpyxl refuses control characters) and put terminal escapes into CLI output.
"""

from __future__ import annotations

import io

from openpyxl import load_workbook
from sqlalchemy import select

from cctv_monitor.cli import cli
from cctv_monitor.models import Device
from probes.targets import Credential
from tests.dashboard_helpers import login

PORT = 18831
HOST = "127.0.8.40"
HOSTILE = "Gate\x01\x1b[2J\x1b]0;pwned\x07 cam"
CLEAN = "Gate[2J]0;pwned cam"


def fleet() -> dict:
    return {"fleet": "trust-strings", "cameras": [{
        "name": "control-chars", "host": HOST, "onvif_port": PORT, "username": "admin", "password": "Right#1",
        "manufacturer": "Hikvision", "model": "DS-2CD2143G2-I", "serial": "CTRL00001", "macs": ["c0:56:e3:00:08:28"],
        "scopes": {"name": HOSTILE, "location": "Lab\x1b[31m"},
        "profiles": [{"token": "Profile_1", "name": "main", "encoding": "H264", "width": 1920, "height": 1080,
                      "fps": 25, "bitrate_kbps": 4096, "gov_length": 50}]}]}


def test_control_characters_never_reach_cli_output_or_the_xlsx_export(app, runner, client, session):
    from cctv_monitor.scanning import run_scan
    from cctv_monitor.simulator.testing import running_fleet

    app.config["ONVIF_PORTS"] = [PORT]
    with running_fleet(fleet(), port_fallback=False):
        for args in (["probe", f"{HOST}:{PORT}", "-u", "admin", "-p", "Right#1"],
                     ["probe", f"{HOST}:{PORT}", "-u", "admin", "-p", "Right#1", "--json"]):
            result = runner.invoke(cli, args=args)
            assert result.exit_code == 0, result.output
            assert "\x1b" not in result.output and "\x01" not in result.output and "\x07" not in result.output
            assert "Gate" in result.output
        run_scan(app, "range", f"{HOST}/32", deliver_alerts=False, credentials=[Credential("admin", "Right#1")])
    session.expire_all()
    device = session.scalar(select(Device).where(Device.address == f"{HOST}:{PORT}"))
    assert device.name == CLEAN and device.location_text == "Lab[31m"

    result = runner.invoke(cli, args=["users", "add", "auditor", "--role", "admin", "--password-stdin"],
                           input="long-enough-secret\n")
    assert result.exit_code == 0, result.output
    assert login(client, "auditor", "long-enough-secret").status_code == 302
    response = client.get("/exports/devices.xlsx")
    assert response.status_code == 200  # was 500 for every user
    sheet = load_workbook(io.BytesIO(response.data)).active
    names = [row[1] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert names == [CLEAN]
    listing = runner.invoke(cli, args=["devices"])
    assert listing.exit_code == 0 and "\x1b" not in listing.output
