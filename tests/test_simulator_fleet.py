"""Fleet files: the shipped fleets load, bad files fail with messages naming camera and key, the
generator produces large fleets, and the ``simulate`` command prints what clients need."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cctv_monitor.simulator.fleet import FleetError, demo_mac, generate_fleet, load_fleet
from cctv_monitor.simulator.testing import running_fleet
from process_helpers import end, start

ROOT = Path(__file__).resolve().parents[1]
CAM = {"name": "c1", "host": "127.0.7.11", "macs": ["00:12:41:00:07:0b"],
       "profiles": [{"token": "P1", "encoding": "H264", "width": 1920, "height": 1080}]}


def test_shipped_fleets_follow_the_address_plan():
    demo = load_fleet(ROOT / "config/fleets/demo.yaml")
    assert len(demo.cameras) >= 30
    for cam in demo.cameras:
        if not cam.has("garbage_mac"):
            assert cam.macs[0] == demo_mac(cam.manufacturer, cam.host), cam.name
    assert not demo.camera("ms-bridge-04").online
    assert demo.camera("ms-market-06").clock_offset_s == 300
    assert demo.camera("wp-school-10").has("onvif_disabled")
    quirks = load_fleet(ROOT / "config/fleets/quirks.yaml")
    from cctv_monitor.simulator.faults import HOSTILE
    from cctv_monitor.simulator.fleet import HOSTILE_QUIRKS, QUIRKS, REAL_QUIRKS

    assert sorted(q.name for c in quirks.cameras for q in c.quirks) == sorted(REAL_QUIRKS)
    # the hostile behaviours live in the fault matrix instead, which uses every one of them
    assert {q["name"] for q, _ in HOSTILE.values()} >= set(HOSTILE_QUIRKS)
    assert set(QUIRKS) == set(REAL_QUIRKS) | set(HOSTILE_QUIRKS)


@pytest.mark.parametrize("change, message", [
    ({"host": "10.0.0.1"}, "not a 127.x address"),
    ({"host": "nope"}, "is not an IPv4 address"),
    ({"macs": ["zz"]}, "macs: 'zz' is not a MAC"),
    ({"quirks": ["made_up"]}, "unknown quirk 'made_up'"),
    ({"quirks": [{"name": "fault_on"}]}, "fault_on needs 'operation'"),
    ({"profiles": [{"token": "P1", "encoding": "H265", "width": 1920, "height": 1080}]}, "set 'media2: true'"),
    ({"profiles": [{"token": "P1", "encoding": "VP8", "width": 1920, "height": 1080}]}, "'VP8' is not one of"),
    ({"profiles": [{"token": "P1", "width": 1920}]}, "height: is required"),
    ({"profiles": [{"token": "P1", "width": 64, "height": 64, "stream": {"image": "snow"}}]}, "'snow' is not one of"),
    ({"profiles": []}, "at least one profile"),
    ({"protocols": ["ftp"]}, "unknown protocol 'ftp'"),
    ({"protocols": ["isapi", "dahua"]}, "either isapi (Hikvision) or dahua"),
    ({"kind": "recorder"}, "channels: a recorder needs at least one channel"),
    ({"kind": "nvr"}, "kind: 'nvr' is not one of camera, recorder"),
    ({"channels": [{"channel": 1}]}, "only 'kind: recorder' has channels"),
    ({"kind": "recorder", "channels": [{"channel": 1, "address": "x"}]}, "channels[0].address: 'x' is not an IPv4"),
    ({"kind": "recorder", "channel_defaults": {"profiles": CAM["profiles"]}, "channels": [{"channel": 1}, {"channel": 1}]},
     "duplicate channel numbers"),
    ({"kind": "recorder", "channels": [{"channel": 1}]}, "channels[0].profiles: at least one profile"),
    ({"disks": [{"capacity_gb": 100, "free_gb": 200}]}, "disks[0].free_gb: must be between 0 and capacity_gb"),
    ({"disks": [{"status": "melted"}]}, "status: 'melted' is not one of"),
    ({"vendor_quirks": ["bogus"]}, "unknown vendor quirk 'bogus'"),
    ({"isapi_namespace": "ver30"}, "isapi_namespace: 'ver30' is not one of ver10, ver20"),
])
def test_bad_camera_entries_are_named(change, message):
    with pytest.raises(FleetError) as info:
        load_fleet({"fleet": "t", "cameras": [{**CAM, **change}]})
    assert "camera 'c1'" in str(info.value) and message in str(info.value)


def test_vendor_devices_of_the_demo_fleet():
    """The recorder's channels become its profiles at vendor RTSP paths; ONVIF off means onvif_disabled."""
    demo = load_fleet(ROOT / "config/fleets/demo.yaml")
    nvr = demo.camera("ms-nvr-01")
    assert nvr.vendor.kind == "recorder" and [c.channel for c in nvr.vendor.channels] == list(range(1, 9))
    assert nvr.rtsp_path(nvr.profiles[0]) == "/Streaming/Channels/101" and nvr.profiles[0].token == "Ch1_main"
    assert [c.channel for c in nvr.vendor.channels if not c.online] == [8]
    assert all(p.stream is None for p in nvr.vendor.channels[7].profiles)  # offline: nothing served
    assert nvr.has("onvif_disabled") and not nvr.vendor.onvif
    dahua = demo.camera("wp-dahua-01")
    assert dahua.rtsp_path(dahua.profiles[1]) == "/cam/realmonitor?channel=1&subtype=1"
    assert demo.camera("ms-market-01").rtsp_path(demo.camera("ms-market-01").profiles[0]) == "/ms-market-01/Profile_1"


def test_bad_files_and_duplicates(tmp_path):
    with pytest.raises(FleetError, match="not found"):
        load_fleet(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras: [\n")
    with pytest.raises(FleetError, match="not valid YAML"):
        load_fleet(bad)
    with pytest.raises(FleetError, match="used twice"):
        load_fleet({"cameras": [CAM, CAM]})
    with pytest.raises(FleetError, match="both use 127.0.7.11:8000"):
        load_fleet({"cameras": [CAM, {**CAM, "name": "c2"}]})


def test_generated_fleet_serves_and_answers(tmp_path):
    data = generate_fleet(40, base="127.1.0.0", delay_ms=20)
    fleet = load_fleet(data)
    assert len({c.host for c in fleet.cameras}) == 40 and all(c.delay_ms == 20 for c in fleet.cameras)
    import asyncio

    import aiohttp

    with running_fleet(data) as running:
        async def ask():
            async with aiohttp.ClientSession() as s:
                started = time.monotonic()
                body = ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
                        '<GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>')
                statuses = []
                for cam in list(running)[:5]:
                    async with s.post(cam.device_url, data=body) as r:
                        statuses.append(r.status)
                return statuses, time.monotonic() - started

        statuses, took = asyncio.run(ask())
    assert statuses == [200] * 5 and took >= 5 * 0.02


CLI = str(Path(sys.executable).with_name("cctv-monitor"))


def test_simulate_command_prints_json_lines(tmp_path):
    import yaml

    fleet_file = tmp_path / "small.yaml"
    fleet_file.write_text(yaml.safe_dump(generate_fleet(3, base="127.3.77.0")))
    proc = start([CLI, "simulate", "--fleet", str(fleet_file), "--json", "--no-streams"], dict(os.environ),
                 merge_stderr=False)
    try:
        lines = []
        while True:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            data = json.loads(line)
            if data.get("ready"):
                break
            lines.append(data)
    finally:
        end(proc, signal.SIGTERM, timeout_s=20, ports=[(f"127.3.77.{i}", 8000) for i in (1, 2, 3)])
    assert proc.returncode == 0
    assert [line["device_url"] for line in lines] == [
        f"http://127.3.77.{i}:8000/onvif/device_service" for i in (1, 2, 3)]
    assert set(lines[0]) >= {"name", "device_url", "username", "password", "rtsp_urls"}
    assert lines[0]["rtsp_urls"]["Profile_1"] == "rtsp://127.3.77.1:8554/gen-0001/Profile_1"


def test_cli_rejects_a_bad_fleet_file(tmp_path):
    bad = tmp_path / "f.yaml"
    bad.write_text("fleet: x\ncameras: []\n")
    out = subprocess.run([CLI, "simulate", "--fleet", str(bad)], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 2 and "'cameras' must be a non-empty list" in out.stderr
