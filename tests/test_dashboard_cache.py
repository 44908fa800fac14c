"""The overview's figures are reused between requests, yet a finished scan shows at once (both databases).

A real scan over simulated cameras writes into the same database the dashboard reads; the overview asked
before and after must differ in its tile and in every chart built from device counts.
"""

from __future__ import annotations

import copy
import html
import json
import re
from pathlib import Path

import pytest
import yaml

from cctv_monitor.scanning import run_scan
from dashboards import figures, overview_cache
from dashboards.security import save_user
from scan_helpers import add_project
from tests.dashboard_helpers import login

REPO = Path(__file__).resolve().parent.parent
DEMO = yaml.safe_load((REPO / "config" / "fleets" / "demo.yaml").read_text())
RANGE = "127.86.0.0/29"
CAMERAS = 3

pytestmark = pytest.mark.slow


def _fleet() -> dict:
    cams = []
    for i in range(CAMERAS):
        cam = copy.deepcopy(DEMO["cameras"][0])
        cam.update(name=f"cache-{i}", host=f"127.86.0.{i + 1}", macs=[f"c0:56:e3:86:00:{i + 1:02x}"],
                   serial=f"CACHECAM{i:05d}", quirks=[])
        cam.pop("expect", None)
        cams.append(cam)
    return {"fleet": "cache", "defaults": DEMO["defaults"], "cameras": cams}


def _overview(client) -> tuple[int, dict[str, dict]]:
    """(the total tile, the charts' figures) of the overview as the browser receives it."""
    response = client.get("/")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    total = int(re.search(r'id="tile-total">(\d+)<', body).group(1))
    charts = {name: json.loads(html.unescape(text))
              for name, text in re.findall(r'id="chart-(\w+)" data-figure="([^"]*)"', body)}
    return total, charts


def _bar_sum(figure: dict) -> int:
    """Sum of a bar chart's heights, or of a pie's values."""
    return sum(sum(v for v in trace.get("y") or trace.get("values") or [] if isinstance(v, (int, float)))
               for trace in figure["data"])


def test_cached_overview_changes_after_a_scan_finishes(app, session):
    from cctv_monitor.crypto import encrypt_credentials
    from cctv_monitor.simulator.testing import running_fleet

    add_project(session, ranges=(RANGE,), credentials=encrypt_credentials(app, [("admin", "Demo#2567")]))
    save_user(session, "cache-admin", password="cache-pass-2567", role="admin", language="en")
    session.commit()
    figures._cache.clear()
    overview_cache.clear()
    client = app.test_client()
    assert login(client, "cache-admin", "cache-pass-2567").status_code == 302

    before_total, before = _overview(client)
    assert _overview(client) == (before_total, before)  # served again from the cache: the same page
    assert len(figures._cache) == 5  # one per chart, and asking again built none
    assert before_total == 0 and _bar_sum(before["agency"]) == 0

    with running_fleet(_fleet()) as fleet:
        app.config["ONVIF_PORTS"] = [fleet.cameras[0].port]
        run_scan(app, "range", RANGE)

    after_total, after = _overview(client)
    assert after_total == CAMERAS
    assert _bar_sum(after["agency"]) == CAMERAS
    assert _bar_sum(after["codec"]) == CAMERAS and after["codec"]["data"][0]["labels"] == ["H264"]
    assert after["codec"] != before["codec"] and after["agency"] != before["agency"]
