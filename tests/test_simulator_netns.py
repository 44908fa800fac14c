"""Netns fleet (root): every camera in its own namespace on a private bridge, found by multicast
WS-Discovery with the ``wsdiscovery`` library run inside the fleet's client namespace; no namespace is
left behind, not even after the launcher is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cctv_monitor.simulator.netns import PREFIX, list_namespaces
from cctv_monitor.simulator.testing import running_fleet

pytestmark = [pytest.mark.root, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
if os.geteuid() != 0:
    pytestmark.append(pytest.mark.skip(reason="needs root to create network namespaces (ip netns)"))

DISCOVER = """
import json
from wsdiscovery.discovery import ThreadedWSDiscovery
wsd = ThreadedWSDiscovery()
wsd.start()
try:
    found = wsd.searchServices(timeout=4)
    print(json.dumps([{"xaddrs": s.getXAddrs(), "types": [t.getLocalname() for t in s.getTypes()],
                       "scopes": [str(x) for x in s.getScopes()]} for s in found]))
finally:
    wsd.stop()
"""


def mine(pid: int) -> list[str]:
    return [n for n in list_namespaces() if n.startswith(f"{PREFIX}{pid}-")]


def test_wsdiscovery_finds_the_netns_fleet_and_namespaces_are_removed():
    before = set(list_namespaces())
    fleet = {"fleet": "ns", "defaults": {"username": "admin", "password": "Demo#2567"}, "cameras": [
        {"name": f"ns-{i}", "host": f"127.0.6.{i}", "macs": [f"c0:56:e3:00:06:{i:02x}"],
         "scopes": {"name": f"Cam {i}", "location": "Lab"}, "quirks": ["xaddrs_multi"] if i == 3 else [],
         "profiles": [{"token": "P1", "encoding": "H264", "width": 1280, "height": 720}]} for i in range(1, 6)]}
    with running_fleet(fleet, netns=True) as running:
        assert running.client_netns and running.client_netns in list_namespaces()
        found: list = []
        for attempt in range(3):  # multicast is best effort: a client probes again, like real tools do
            out = subprocess.run(["ip", "netns", "exec", running.client_netns, sys.executable, "-c", DISCOVER],
                                 capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            found = json.loads(out.stdout)
            if len(found) == len(running):
                break
            print(f"discovery attempt {attempt + 1} found {len(found)} of {len(running)}")
        by_url = {x: s for s in found for x in s["xaddrs"]}
        for cam in running:
            assert cam.device_url in by_url, (cam.device_url, found)
            assert "NetworkVideoTransmitter" in by_url[cam.device_url]["types"]
        multi = by_url[running["ns-3"].device_url]["xaddrs"]
        assert len(multi) == 3 and any("169.254." in x for x in multi)
        # The cameras answer ONVIF inside their namespaces on port 80.
        curl = subprocess.run(["ip", "netns", "exec", running.client_netns, "curl", "-s", "-m", "5", "-X", "POST",
                               running["ns-1"].device_url, "-d",
                               '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
                               '<GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body>'
                               "</s:Envelope>"], capture_output=True, text=True, timeout=30)
        assert "UTCDateTime" in curl.stdout
        assert running["ns-1"].device_url == "http://10.77.0.10:80/onvif/device_service"
    assert set(list_namespaces()) - before == set()


def test_killed_launcher_leaves_no_namespace(tmp_path):
    fleet_file = tmp_path / "f.yaml"
    fleet_file.write_text("cameras:\n- {name: k1, host: 127.0.6.40, macs: ['00:12:41:00:06:28'], "
                          "profiles: [{token: P1, width: 640, height: 360}]}\n")
    proc = subprocess.Popen([sys.executable, "-m", "cctv_monitor.simulator.launcher", "--fleet", str(fleet_file),
                             "--json", "--netns", "--no-streams"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        while not json.loads(proc.stdout.readline()).get("ready"):
            pass
        assert len(mine(proc.pid)) == 3
        proc.send_signal(signal.SIGKILL)  # no chance to clean up itself: the watchdog must
        proc.wait(10)
        deadline = time.monotonic() + 15
        while mine(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert mine(proc.pid) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
