"""The fault matrix: hostile cameras (endless, reset mid-reply, garbage, drip, entities, 64 MB) end in their
documented outcome, and a 500-camera ONVIF scan with every quirk and behaviour meets its time and memory bound.
"""

from __future__ import annotations

import asyncio
import re
import socket
import sys
import time
from pathlib import Path

import pytest

from cctv_monitor.simulator.faults import HOSTILE, fault_matrix_fleet
from cctv_monitor.simulator.testing import running_fleet
from probes.scan import probe_many
from probes.targets import Credential, Target
from process_helpers import run

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _hostile_only() -> tuple[dict, dict]:
    fleet, expected = fault_matrix_fleet(1, 1, base="127.91.0.0")
    fleet["cameras"] = [c for c in fleet["cameras"] if expected[c["name"]]["kind"] in HOSTILE]
    return fleet, expected


def test_each_hostile_behaviour_ends_in_its_documented_outcome_within_the_deadline():
    """One camera per behaviour, probed at once: each outcome as FORMAT.md says, none beyond its deadline."""
    fleet_map, expected = _hostile_only()
    with running_fleet(fleet_map) as fleet:
        names = {Target.parse(f"{c.host}:{c.port}").address: c.name for c in fleet}

        async def scan() -> list:
            return [o async for o in probe_many([Target.parse(a) for a in names], [Credential("admin", "Demo#2567")],
                                                timeout_s=2.0)]

        started = time.monotonic()
        observations = asyncio.run(scan())
        elapsed = time.monotonic() - started
    got = {expected[names[o.address]]["kind"]: (o.status.value, o.error or "") for o in observations}
    assert {kind: status for kind, (status, _) in got.items()} == {k: outcome for k, (_, outcome) in HOSTILE.items()}
    assert "2 MB" in got["endless_reply"][1] and "2 MB" in got["huge_64mb_chunked"][1]
    assert "67.1 MB refused" in got["huge_64mb"][1]
    assert "larger than 2 MB" in got["gzip_bomb"][1]  # counted after inflating, as it arrives
    assert "DOCTYPE" in got["entities"][1] and "nothing expanded" in got["entities"][1]
    assert "broken off" in got["reset_mid_reply"][1]
    assert elapsed < 2.0 + 3.0  # the drip is cut at the 2 s request deadline; the rest answer at once


def test_drip_and_raw_garbage_are_what_they_claim_on_the_wire():
    """The drip sends its reply a byte at a time, the raw garbage is no HTTP at all."""
    fleet_map, expected = _hostile_only()
    by_kind = {expected[c["name"]]["kind"]: c["name"] for c in fleet_map["cameras"]}
    body = (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
            b'<GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>')
    request = (b"POST /onvif/device_service HTTP/1.1\r\nHost: x\r\nContent-Type: application/soap+xml\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    with running_fleet(fleet_map) as fleet:
        drip, garbage = fleet[by_kind["drip"]], fleet[by_kind["garbage_raw"]]
        with socket.create_connection((drip.host, drip.port), timeout=5) as sock:
            sock.sendall(request)
            started = time.monotonic()
            received = b""
            while len(received) < 3:
                received += sock.recv(100)
            assert received == b"HTT" and time.monotonic() - started >= 1.5  # one byte a second
        with socket.create_connection((garbage.host, garbage.port), timeout=5) as sock:
            sock.sendall(request)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            assert len(data) == 4096 and not data.startswith(b"HTTP/")


@pytest.mark.slow
def test_fault_matrix_scan_of_500_cameras_meets_its_bounds():
    """Every quirk and behaviour three times among 440 healthy cameras, one ONVIF scan: all outcomes as
    documented, time within healthy + two probe timeouts, scanning process under 400 MB."""
    result = run([sys.executable, str(BENCH / "fault_matrix.py"), "--healthy", "440", "--copies", "3"],
                 timeout_s=900, cwd=str(BENCH.parent))
    out = result.stdout
    assert result.returncode == 0, out + result.stderr[-3000:]
    cameras = int(re.search(r"fault matrix: (\d+) cameras", out).group(1))
    assert cameras >= 500
    assert re.search(r"^healthy\s+ok\s+440 ok$", out, re.M), out
    for target in ("every healthy camera read correctly", "every faulty camera with its documented outcome",
                   "scan time <= healthy + 2 probe timeouts", "peak RSS < 400 MB"):
        assert re.search(rf"target {re.escape(target)}: met", out), out
    assert "<-- differs" not in out, out
