"""Discovery: address sweeps on loopback, and WS-Discovery multicast inside the simulator's namespaces only."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from probes.discovery import DiscoveredDevice, parse_cidrs, preferred_xaddr, sweep
from probes.results import ProbeStatus

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "cctv-monitor")


def test_sweep_on_loopback_finds_the_loopback_fleet(demo_fleet):
    """Every online demo camera with ONVIF on answers; the ONVIF-disabled and the offline one do not."""
    raw = yaml.safe_load((ROOT / "config" / "fleets" / "demo.yaml").read_text(encoding="utf-8"))
    ports = sorted({c.port for c in demo_fleet})
    started = time.monotonic()
    found = asyncio.run(sweep(["127.0.1.0/24", "127.0.2.0/24", "127.0.3.0/24", "127.0.4.0/24"], [80, *ports]))
    elapsed = time.monotonic() - started
    want = {f"{demo_fleet[c['name']].host}:{demo_fleet[c['name']].port}" for c in raw["cameras"]
            if c.get("online", True) and "onvif_disabled" not in (c.get("quirks") or [])}
    assert {t.address for t in found} == want
    assert elapsed < 15, elapsed


def test_empty_range_finishes_in_seconds():
    """A /24 with nothing on it (all five default ports) is done in seconds."""
    started = time.monotonic()
    assert asyncio.run(sweep(["127.0.88.0/24"])) == []
    assert time.monotonic() - started < 5


def test_only_ports_that_open_are_asked():
    """The sweep's connect pass keeps, in order, the ports that accept and drops refused ones."""
    import socket

    from probes.discovery import _open_ports

    listeners = []
    try:
        for host in ("127.0.89.2", "127.0.89.5"):
            sock = socket.socket()
            sock.bind((host, 0))
            sock.listen(4)
            listeners.append(sock)
        pairs = [(f"127.0.89.{i}", port) for i in range(1, 7) for port in {s.getsockname()[1] for s in listeners}]
        want = [(s.getsockname()[0], s.getsockname()[1]) for s in listeners]
        assert _open_ports(pairs, 2, 1.0) == want
    finally:
        for sock in listeners:
            sock.close()


def test_ranges_are_validated():
    """Bad or oversized ranges are refused with a message that names them."""
    assert parse_cidrs(["127.0.0.8/30", "127.0.0.9"]) == ["127.0.0.9", "127.0.0.10"]
    with pytest.raises(ValueError, match="'nonsense' is not an address range"):
        parse_cidrs(["nonsense"])
    with pytest.raises(ValueError, match="more than the limit of 65536"):
        parse_cidrs(["10.0.0.0/8"])
    with pytest.raises(ValueError, match="invalid port list"):
        asyncio.run(sweep(["127.0.0.1/32"], [0]))


def test_preferred_xaddr_is_on_the_host_that_replied():
    """Link-local, https and foreign URLs lose against the sender's own http URL (PITFALLS.md)."""
    xaddrs = ["http://169.254.1.20/onvif/device_service", "https://10.77.0.12/onvif/device_service",
              "http://10.77.0.12/onvif/device_service"]
    assert preferred_xaddr(xaddrs, "10.77.0.12") == "http://10.77.0.12/onvif/device_service"
    assert preferred_xaddr(["http://169.254.1.20/x", "http://192.168.1.64/x"], "10.0.0.1") == "http://192.168.1.64/x"
    device = DiscoveredDevice("10.77.0.12", tuple(xaddrs), preferred_xaddr(xaddrs, "10.77.0.12"))
    assert device.target().address == "10.77.0.12:80" and device.target().xaddrs == tuple(xaddrs)


def test_discover_command_needs_an_explicit_scope(demo_fleet):
    """Without --interface or --range nothing is scanned; --range prints what it found."""
    nothing = subprocess.run([CLI, "discover"], capture_output=True, text=True, timeout=60)
    assert nothing.returncode == 2 and "nothing is scanned by default" in nothing.stderr
    cam = demo_fleet["pp-office-01"]
    out = subprocess.run([CLI, "discover", "--range", f"{cam.host}/32", "--ports", f"81,{cam.port}", "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [{"method": "sweep", "address": cam.host, "port": cam.port,
                                       "xaddr": f"http://{cam.host}:{cam.port}/onvif/device_service"}]


DISCOVER = """
import json, sys
from probes.discovery import ws_discover
found = ws_discover("eth0", timeout_s=3)
print(json.dumps([{"address": d.address, "xaddrs": list(d.xaddrs), "preferred": d.preferred_xaddr,
                   "scopes": list(d.scopes), "types": list(d.types), "epr": d.epr} for d in found]))
"""


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create network namespaces (ip netns)")
def test_multicast_discovery_inside_namespaces_finds_the_netns_fleet():
    """WS-Discovery run in the fleet's client namespace finds every camera, preferring the sender's XAddr.

    The discovery code runs only inside the simulator's own namespaces (``ip netns exec``), never here.
    """
    from cctv_monitor.simulator.netns import list_namespaces
    from cctv_monitor.simulator.testing import running_fleet

    before = set(list_namespaces())
    fleet = {"fleet": "probe-ns", "defaults": {"username": "admin", "password": "Demo#2567"}, "cameras": [
        {"name": f"pns-{i}", "host": f"127.0.7.{i}", "macs": [f"c0:56:e3:00:07:{i:02x}"],
         "scopes": {"name": f"Probe cam {i}", "location": "Lab"}, "quirks": ["xaddrs_multi"] if i == 2 else [],
         "profiles": [{"token": "P1", "encoding": "H264", "width": 1280, "height": 720}]} for i in range(1, 5)]}
    with running_fleet(fleet, netns=True) as running:
        out = subprocess.run(["ip", "netns", "exec", running.client_netns, sys.executable, "-c", DISCOVER],
                             capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        found = {d["address"]: d for d in json.loads(out.stdout)}
        for cam in running:
            assert cam.host in found, (cam.host, found)
            assert found[cam.host]["preferred"] == cam.device_url.replace(":80/", "/") or \
                found[cam.host]["preferred"] == cam.device_url
            assert any("NetworkVideoTransmitter" in t for t in found[cam.host]["types"])
        multi = found[running["pns-2"].host]
        assert len(multi["xaddrs"]) == 3 and any("169.254." in x for x in multi["xaddrs"])
        assert multi["preferred"].startswith(f"http://{running['pns-2'].host}")
        # The found device probes over ONVIF from the same namespace.
        probe = subprocess.run(["ip", "netns", "exec", running.client_netns, CLI, "probe",
                                multi["preferred"], "--user", "admin", "--password", "Demo#2567", "--json"],
                               capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert probe.returncode == 0, probe.stdout + probe.stderr
        assert json.loads(probe.stdout)["device"]["name"] == "Probe cam 2"
    assert set(list_namespaces()) - before == set()


@pytest.mark.parametrize("text, stored, hosts", [
    ("10.0.0.8/30", "10.0.0.8/30", ["10.0.0.9", "10.0.0.10"]),
    ("10.0.0.11-10.0.0.13", "10.0.0.11-10.0.0.13", ["10.0.0.11", "10.0.0.12", "10.0.0.13"]),
    ("10.0.0.11 – 13", "10.0.0.11-10.0.0.13", ["10.0.0.11", "10.0.0.12", "10.0.0.13"]),
    ("10.0.0.7", "10.0.0.7", ["10.0.0.7"]),
    ("fd00::1-fd00::2", "fd00::1-fd00::2", ["fd00::1", "fd00::2"]),
    ("10.0.0.7:8000", "10.0.0.7:8000", ["10.0.0.7"]),
    ("[fd00::7]:80", "[fd00::7]:80", ["fd00::7"]),
    ("cam-7.lan:80", "cam-7.lan:80", ["cam-7.lan"]),
])
def test_every_range_form_parses(text, stored, hosts):
    """The one parser: each documented form, normalised as stored, with the addresses it covers."""
    from probes.ranges import parse_range

    entry = parse_range(text)
    assert entry.text == stored and list(entry.hosts()) == hosts
    assert parse_range(entry.text) == entry  # the stored text parses to the same entry


def _binding_of(fleet, cam):
    return next(b for b in fleet.bindings if b.spec.name == cam.name)


def test_a_swept_camera_is_probed_with_the_clock_the_sweep_read(demo_fleet):
    """The sweep's GetSystemDateAndTime gives the clock: the probe signs with it and asks one request less."""
    from probes.onvif import probe_onvif
    from probes.scan import Credential, Target

    cam = next(c for c in demo_fleet if c.spec is not None and c.spec.clock_offset_s == 300)
    binding = _binding_of(demo_fleet, cam)
    [swept] = asyncio.run(sweep([f"{cam.host}/32"], [cam.port]))
    assert swept == Target(cam.host, cam.port) and swept.clock is not None
    assert abs(swept.clock.offset_s - 300) <= 1
    credential = Credential(cam.username, cam.password)
    counts, observations = [], []
    for target in (Target(cam.host, cam.port), swept):
        before = binding.requests
        observations.append(asyncio.run(probe_onvif(target, [credential])))
        counts.append(binding.requests - before)
    fresh, borrowed = observations
    assert fresh.status is borrowed.status is ProbeStatus.OK
    assert borrowed.clock_offset_s == fresh.clock_offset_s and abs(borrowed.clock_offset_s - 300) <= 1
    assert any("clock is +300 s off" in w for w in borrowed.warnings)
    assert borrowed.device.serial == fresh.device.serial and len(borrowed.profiles) == len(fresh.profiles) > 0
    assert counts[1] == counts[0] - 1, counts


def test_a_clock_that_moved_since_the_sweep_is_read_again(demo_fleet):
    """The camera's clock jumped after the sweep (NTP): the rejection is the clock's, so the clock is read again
    and the same credential tried once more; a wrong password is rejected once, its clock read once more."""
    from probes.onvif import probe_onvif
    from probes.scan import Credential

    cam = next(c for c in demo_fleet if c.spec is not None and c.spec.clock_offset_s == 0)
    binding = _binding_of(demo_fleet, cam)
    [swept] = asyncio.run(sweep([f"{cam.host}/32"], [cam.port]))
    assert swept.clock is not None and abs(swept.clock.offset_s) <= 1
    try:
        binding.spec.clock_offset_s = 120.0
        obs = asyncio.run(probe_onvif(swept, [Credential(cam.username, cam.password)]))
        assert obs.status is ProbeStatus.OK, obs.error
        assert abs(obs.clock_offset_s - 120) <= 1 and obs.rejected_refs == ()
        clock_warnings = [w for w in obs.warnings if w.startswith("camera clock is")]
        assert len(clock_warnings) == 1 and clock_warnings[0].startswith("camera clock is +1"), obs.warnings
        binding.spec.clock_offset_s = 0.0
        [swept] = asyncio.run(sweep([f"{cam.host}/32"], [cam.port]))
        failures = binding.auth_failures
        wrong = asyncio.run(probe_onvif(swept, [Credential(cam.username, "not-the-password", ref="r1")]))
        assert wrong.status is ProbeStatus.AUTH_FAILED and binding.auth_failures - failures == 1
        assert wrong.rejected_refs == ("r1",)
    finally:
        binding.spec.clock_offset_s = 0.0


def test_a_camera_slow_to_answer_is_found_by_a_scans_sweep_with_its_clock():
    """2 s per answer: missed when an open port gets only the connect timeout, found (with its clock) when it
    gets the scan sweep's answer time."""
    from cctv_monitor.simulator.testing import running_fleet
    from probes.discovery import sweep_timeouts

    raw = yaml.safe_load((ROOT / "config" / "fleets" / "quirks.yaml").read_text(encoding="utf-8"))
    slow = next(c for c in raw["cameras"] if c["name"] == "quirk-slow")
    with running_fleet({"fleet": "slow-only", "defaults": raw.get("defaults") or {}, "cameras": [slow]}) as fleet:
        cam = fleet.cameras[0]
        connect_s, answer_s = sweep_timeouts(5.0)
        assert (connect_s, answer_s) == (2.0, 2.5)
        assert asyncio.run(sweep([f"{cam.host}/32"], [cam.port], timeout_s=connect_s)) == []
        [found] = asyncio.run(sweep([f"{cam.host}/32"], [cam.port], timeout_s=connect_s, answer_timeout_s=answer_s))
        assert found.host == cam.host and found.clock is not None and abs(found.clock.offset_s) <= 1
