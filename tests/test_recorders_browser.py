"""Recorder pages in a real headless Chromium, over data from a real scan of the simulated control room.

The control-room devices of the demo fleet (a Hikvision recorder with 8 cameras behind it, a Hikvision and
a Dahua camera with ONVIF off) run on 127.78.8.x; the shipped project CR-MS-2568-004 is moved there and
scanned; then the dashboard is served on 127.0.0.1 and read as a user would.
"""

from __future__ import annotations

from typing import Iterator

import pytest
from sqlalchemy import select

from tests.browser_helpers import SHOTS, chromium, login, need_chromium, served, watched_page
from tests.test_recorders import control_room, import_control_room

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HOST_FROM, HOST_TO = "127.78.7.", "127.78.8."
PASSWORD = "recorder-pass-2567"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, dict[str, int]]]:
    """Scan the control room into a fresh SQLite database and serve the dashboard (ids by device key)."""
    need_chromium()
    from cctv_monitor import create_app
    from cctv_monitor.accounts import save_user
    from cctv_monitor.db import get_db
    from cctv_monitor.models import Device, RegisterEntry, Site
    from cctv_monitor.scanning import run_scan
    from cctv_monitor.simulator.testing import running_fleet
    from probes.vocab import split_channel

    folder = tmp_path_factory.mktemp("recorders")
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{folder / 'ui.sqlite3'}",
                      "SECRET_KEY": "recorder-browser-test", "INSTANCE_PATH": str(folder / "instance")})
    fleet_data = control_room()
    for cam in fleet_data["cameras"]:
        cam["host"] = cam["host"].replace(HOST_FROM, HOST_TO, 1)
    database = get_db(app)
    with running_fleet(fleet_data) as fleet:
        with database.session_scope() as session:
            import_control_room(app, session, {cam.port for cam in fleet})
            for site in session.scalars(select(Site)):
                site.address_ranges = [r.replace(HOST_FROM, HOST_TO, 1) for r in site.address_ranges]
            for entry in session.scalars(select(RegisterEntry)):
                entry.address = entry.address.replace(HOST_FROM, HOST_TO, 1) if entry.address else None
            save_user(session, "auditor", password=PASSWORD, role="admin", language="th")
            session.commit()
        run_scan(app, "project", "CR-MS-2568-004", deliver_alerts=False)
    ids = {}
    with database.session_scope() as session:
        for device in session.scalars(select(Device)):
            base, channel = split_channel(device.address)
            ids[base.rpartition(":")[0] + (f"/ch{channel}" if channel is not None else "")] = device.id
    try:
        with served(app) as base:
            yield base, ids
    finally:
        database.dispose()


@pytest.fixture(scope="module")
def browser(server):
    """One headless Chromium for the module."""
    with chromium() as instance:
        yield instance


@pytest.fixture
def page(browser, server):
    """A fresh page with problem watching (console errors, page errors, dialogs fail the test)."""
    with watched_page(browser) as pg:
        yield pg


def test_recorder_page_channels_disks_and_the_camera_behind_it(page, server):
    """Recorder detail lists 8 channels and its disk; a channel's page names the recorder and channel."""
    base, ids = server
    login(page, base, "auditor", PASSWORD)
    assert page.locator("#tile-behind-recorders .tile-count").inner_text() == "8"
    page.goto(f"{base}/devices/{ids['127.78.8.11']}")
    rows = page.locator("#recorder-channels tbody tr")
    assert rows.count() == 8
    assert page.locator("#recorder-disks tbody tr").count() == 1
    assert page.locator("#recorder-disks tbody tr td").nth(1).inner_text() == "ok"
    assert page.locator("#recorder-retention").inner_text().startswith("14")
    offline = page.locator("#recorder-channels tr[data-channel='8']")
    assert "netUnreachable" in offline.inner_text()
    assert "retention" in page.locator("#findings").inner_text()
    page.screenshot(path=str(SHOTS / "recorder-th.png"), full_page=True)
    page.locator("#recorder-channels tr[data-channel='3'] a.channel-link").click()
    page.wait_for_url(f"{base}/devices/{ids['127.78.8.11/ch3']}")
    assert page.locator("#device-channel").inner_text() == "3"
    assert "127.78.8.11" in page.locator("#device-recorder").inner_text()
    assert "resolution" in page.locator("#findings").inner_text()
    page.locator("#device-recorder a").click()
    page.wait_for_url(f"{base}/devices/{ids['127.78.8.11']}")


def test_device_table_filters_cameras_behind_a_recorder(page, server):
    """'Behind a recorder' keeps the 8 channel devices; 'own address' keeps the recorder and the two cameras."""
    base, ids = server
    login(page, base, "auditor", PASSWORD)
    page.goto(f"{base}/devices")
    page.select_option("#filter-behind", "yes")
    page.wait_for_url(lambda url: "behind=yes" in url)
    assert page.locator("#device-table tbody tr").count() == 8
    assert all("/ch" in t for t in page.locator("#device-table tbody tr td:nth-child(2)").all_inner_texts())
    page.select_option("#filter-behind", "no")
    page.wait_for_url(lambda url: "behind=no" in url)
    addresses = page.locator("#device-table tbody tr td:nth-child(2)").all_inner_texts()
    assert sorted(a.split(":")[0] for a in addresses) == ["127.78.8.11", "127.78.8.12", "127.78.8.13"]
    page.screenshot(path=str(SHOTS / "devices-behind-recorder-th.png"), full_page=True)


def test_api_gives_recorder_and_channel(page, server):
    """The JSON API lists the same 8 cameras behind the recorder, each with its recorder and channel."""
    base, ids = server
    login(page, base, "auditor", PASSWORD)
    reply = page.request.get(f"{base}/api/v1/devices?behind=yes")
    assert reply.status == 200, reply.text()
    items = reply.json()["items"]
    assert sorted(i["channel"] for i in items) == list(range(1, 9))
    assert {i["recorder_id"] for i in items} == {ids["127.78.8.11"]}
    detail = page.request.get(f"{base}/api/v1/devices/{ids['127.78.8.11/ch5']}").json()
    assert detail["channel"] == 5 and detail["recorder"].startswith("127.78.8.11:")
