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
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the database side runs on both in test_discovery_ingest
def test_sadp_dahua_and_wsdiscovery_together_in_namespaces(app, session, runner, tmp_path):
    """One ``discover --interface`` in the client namespace finds each device by the protocols it speaks; its
    ``--save`` file ingests into devices, and ``scan --interface`` probes those inside the site's ranges and
    records the others (and the never-activated camera, probed by nobody) from what discovery said."""
    from cctv_monitor.simulator.netns import list_namespaces
    from cctv_monitor.simulator.testing import running_fleet

    before = set(list_namespaces())
    fleet = {**FLEET, "cameras": [{k: v for k, v in c.items() if v is not None} for c in FLEET["cameras"]]}
    saved = tmp_path / "discovered.jsonl"
    with running_fleet(fleet, netns=True) as running:
        out = subprocess.run(["ip", "netns", "exec", running.client_netns, CLI, "discover", "--interface", "eth0",
                              "--json", "--timeout", "3", "--save", str(saved)], capture_output=True, text=True,
                             timeout=90, cwd=ROOT)
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
        text = subprocess.run(["ip", "netns", "exec", running.client_netns, CLI, "discover", "-i", "eth0",
                               "--timeout", "2"], capture_output=True, text=True, timeout=90, cwd=ROOT)
        assert "NOT ACTIVATED  (sadp)" in text.stdout
        _saved_file_ingests(runner, session, saved, host)
        _scan_on_the_interface(app, session, running, host)
    assert set(list_namespaces()) - before == set()


def _saved_file_ingests(runner, session, saved: Path, host: dict[str, str]) -> None:
    """``ingest`` of the --save file: one device per host; the never-activated camera a critical finding."""
    from sqlalchemy import select

    from cctv_monitor.cli import cli
    from cctv_monitor.models import Device, Finding

    lines = [json.loads(line) for line in saved.read_text().splitlines()]
    assert len(lines) == 5 and {line["status"] for line in lines} == {"discovered", "not_activated"}
    first = runner.invoke(cli, args=["ingest", str(saved)])
    assert first.exit_code == 0 and first.output.startswith("5 new, 0 already stored"), first.output
    assert runner.invoke(cli, args=["ingest", str(saved)]).output.startswith("0 new, 5 already stored")
    devices = {d.address.split(":")[0]: d for d in session.scalars(select(Device))}
    assert set(devices) == set(host.values())
    off = devices[host["hik-off"]]
    assert (off.status, off.serial, off.mac) == ("unreachable", "SN-hik-off", "c0:56:e3:00:08:02")
    assert [f.rule_id for f in session.scalars(select(Finding).where(Finding.device_id == off.id))] == ["not_activated"]
    assert {d.status for name, d in ((n, devices[h]) for n, h in host.items()) if name != "hik-off"} == {"unknown"}


def _scan_on_the_interface(app, session, running, host: dict[str, str]) -> None:
    """``scan --site --interface`` in the client namespace: in-range devices probed with the site's credential
    (ONVIF or the vendor APIs: what discovery found is read through them), the out-of-range ONVIF camera only
    recorded, the unactivated one never probed."""
    from sqlalchemy import func, select

    from cctv_monitor.crypto import encrypt_credentials
    from cctv_monitor.models import Device, Observation
    from scan_helpers import add_project

    in_range = [host[n] for n in ("dahua-off", "hik-off", "hik-both", "hik-nvr")]
    add_project(session, ranges=tuple(in_range), ports=[80], macs=(),
                credentials=encrypt_credentials(app, [("admin", "Demo#2567")]))
    env = dict(os.environ, CCTV_DATABASE_URL=app.config["DATABASE_URL"], CCTV_INSTANCE_PATH=app.instance_path,
               CCTV_SECRET_KEY="test-secret")
    out = subprocess.run(["ip", "netns", "exec", running.client_netns, CLI, "scan", "--site", "CR-MS-2568-001/market",
                          "--interface", "eth0", "--no-progress"], capture_output=True, text=True, timeout=120,
                         cwd=ROOT, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    session.expire_all()
    run_id = session.scalar(select(func.max(Observation.scan_run_id)))
    rows = {row.address: row for row in session.scalars(select(Observation).where(Observation.scan_run_id == run_id))}
    last = {address: row.probe_status for address, row in rows.items()}
    by_host = {a.split(":")[0]: s for a, s in last.items() if "/ch" not in a}
    assert by_host == {host["dahua-off"]: "ok", host["hik-both"]: "ok", host["hik-nvr"]: "ok",
                       host["hik-off"]: "not_activated", host["onvif-only"]: "discovered"}, out.stdout
    dahua = rows[f"{host['dahua-off']}:80"].data
    assert dahua["protocols"] == ["dahua"] and dahua["device"]["serial"] == "SN-dahua-off"
    assert {a for a in last if "/ch" in a} == {f"{host['hik-nvr']}:80/ch1", f"{host['hik-nvr']}:80/ch2"}
    devices = list(session.scalars(select(Device)))
    hosts = [d.address.split(":")[0] for d in devices if "/ch" not in d.address]
    # one device per host: the ingested ones were found again (the address-only one by its address)
    assert sorted(hosts) == sorted(host.values()), [(d.address, d.mac, d.serial) for d in devices]
    outside = next(d for d in devices if d.address.startswith(host["onvif-only"] + ":"))
    assert outside.status == "unknown" and outside.project_id is None

