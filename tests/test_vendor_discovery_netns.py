"""SADP, Dahua discovery and WS-Discovery together, run inside the simulator's namespaces (root only).

The discovery runs in the fleet's client namespace (``ip netns exec``), never in the host namespace; the
devices with ONVIF off answer only their vendor's protocol, and SADP tells the unactivated camera apart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from probes.vendor_discovery import dahua_search, parse_dahua, parse_sadp, sadp_inquiry

pytestmark = [pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "cctv-monitor")
PROFILES = [{"token": "P1", "encoding": "H264", "width": 1920, "height": 1080, "fps": 25},
            {"token": "P2", "encoding": "H264", "width": 640, "height": 360, "fps": 15, "stream": False}]


def _cam(i: int, name: str, manufacturer: str, **extra) -> dict:
    oui = "3c:ef:8c" if manufacturer == "Dahua" else "c0:56:e3"
    return {"name": name, "host": f"127.0.8.{i}", "manufacturer": manufacturer, "model": extra.pop("model", "X"),
            "serial": f"SN-{name}", "firmware": "V5.7.3 build 220112", "macs": [f"{oui}:00:08:{i:02x}"],
            "profiles": PROFILES, **extra}


FLEET = {"fleet": "vendor-ns", "defaults": {"username": "admin", "password": "Demo#2567"}, "cameras": [
    _cam(1, "onvif-only", "Uniview", model="IPC2124LB"),
    _cam(2, "hik-off", "Hikvision", model="DS-2CD2143G2-I", protocols=["isapi"], activated=False),
    _cam(3, "hik-both", "Hikvision", model="DS-2CD2T47G2-L", protocols=["onvif", "isapi"]),
    _cam(4, "dahua-off", "Dahua", model="IPC-HFW2431S", protocols=["dahua"]),
    {**_cam(5, "hik-nvr", "Hikvision", model="DS-7608NI-K2/8P", protocols=["isapi"], kind="recorder",
            channel_defaults={"profiles": PROFILES, "recording_days": 10},
            channels=[{"channel": 1}, {"channel": 2}]), "profiles": None},
]}


def test_replies_are_parsed_tolerantly_and_safely():
    """Hostile datagrams: DOCTYPEs, bad headers, junk JSON, control characters are dropped or cleaned."""
    assert b"<Types>inquiry</Types>" in sadp_inquiry("ABC") and dahua_search()[4:8] == b"DHIP"
    assert parse_sadp(b'<!DOCTYPE x [<!ENTITY a "b">]><ProbeMatch><DeviceSN>&a;</DeviceSN></ProbeMatch>', "1") is None
    assert parse_sadp(b"<Other/>", "10.0.0.1") is None and parse_sadp(b"not xml", "10.0.0.1") is None
    dev = parse_sadp(b"<ProbeMatch><DeviceDescription>DS-2CD\r\n\t</DeviceDescription><MAC>C0-56-E3-00-00-01</MAC>"
                     b"<SoftwareVersion>V5.7.3build 220112</SoftwareVersion><Activated>false</Activated>"
                     b"<HttpPort>99999</HttpPort></ProbeMatch>", "10.0.0.9")
    assert (dev.address, dev.model, dev.mac, dev.firmware, dev.activated, dev.http_port) == (
        "10.0.0.9", "DS-2CD", "c0:56:e3:00:00:01", "V5.7.3 build 220112", False, None)
    assert parse_dahua(b"\x20\x00\x00\x00DHIP" + b"\x00" * 24 + b"{nope", "1") is None
    assert parse_dahua(b"XXXXXXXX" + b"\x00" * 24 + b"{}", "1") is None


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create network namespaces (ip netns)")
def test_sadp_dahua_and_wsdiscovery_together_in_namespaces():
    """One ``discover --interface`` in the client namespace finds each device by the protocols it speaks."""
    from cctv_monitor.simulator.netns import list_namespaces
    from cctv_monitor.simulator.testing import running_fleet

    before = set(list_namespaces())
    fleet = {**FLEET, "cameras": [{k: v for k, v in c.items() if v is not None} for c in FLEET["cameras"]]}
    with running_fleet(fleet, netns=True) as running:
        out = subprocess.run(["ip", "netns", "exec", running.client_netns, CLI, "discover", "--interface", "eth0",
                              "--json", "--timeout", "3"], capture_output=True, text=True, timeout=90, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        rows = json.loads(out.stdout)
        by_method: dict[str, dict[str, dict]] = {}
        for row in rows:
            by_method.setdefault(row["method"], {})[row["address"]] = row
        host = {cam.name: cam.host for cam in running}
        assert set(by_method["ws-discovery"]) == {host["onvif-only"], host["hik-both"]}
        assert set(by_method["sadp"]) == {host["hik-off"], host["hik-both"], host["hik-nvr"]}
        assert set(by_method["dahua"]) == {host["dahua-off"]}
        off = by_method["sadp"][host["hik-off"]]
        assert (off["model"], off["serial"], off["mac"], off["activated"], off["http_port"]) == (
            "DS-2CD2143G2-I", "SN-hik-off", "c0:56:e3:00:08:02", False, 80)
        assert off["firmware"] == "V5.7.3 build 220112" and by_method["sadp"][host["hik-both"]]["activated"] is True
        dahua = by_method["dahua"][host["dahua-off"]]
        assert (dahua["model"], dahua["serial"], dahua["mac"]) == ("IPC-HFW2431S", "SN-dahua-off", "3c:ef:8c:00:08:04")
        text = subprocess.run(["ip", "netns", "exec", running.client_netns, CLI, "discover", "-i", "eth0"],
                              capture_output=True, text=True, timeout=90, cwd=ROOT)
        assert "NOT ACTIVATED  (sadp)" in text.stdout
        # What discovery found is then read through the vendor API from the same namespace.
        probe = subprocess.run(["ip", "netns", "exec", running.client_netns, CLI, "probe", host["dahua-off"],
                                "--user", "admin", "--password", "Demo#2567", "--json"],
                               capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert probe.returncode == 0, probe.stdout + probe.stderr
        data = json.loads(probe.stdout)
        assert data["protocols"] == ["dahua"] and data["device"]["serial"] == "SN-dahua-off"
    assert set(list_namespaces()) - before == set()
