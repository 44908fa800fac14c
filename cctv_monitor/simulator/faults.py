"""The fault matrix: a fleet of healthy cameras mixed with every quirk of quirks.yaml and every hostile wire
behaviour, several copies each, with the probe outcome each faulty camera must end in.

Used by the slow fault-matrix test and ``benchmarks/fault_matrix.py``; the outcomes are the ones
config/fleets/FORMAT.md documents.
"""

from __future__ import annotations

import copy
import ipaddress
from pathlib import Path
from typing import Any

import yaml

from cctv_monitor.simulator.fleet import FleetError, demo_mac, generate_fleet

QUIRKS_FILE = Path(__file__).resolve().parents[2] / "config" / "fleets" / "quirks.yaml"

#: Hostile behaviours (quirk entries) and the probe status each must end in, with why.
HOSTILE: dict[str, tuple[dict[str, Any], str]] = {
    "endless_reply": ({"name": "endless_reply"}, "malformed_reply"),  # refused at the 2 MB reply cap
    "reset_mid_reply": ({"name": "reset_mid_reply"}, "malformed_reply"),  # reply body broken off
    "garbage_raw": ({"name": "garbage"}, "malformed_reply"),  # no HTTP status line: invalid HTTP reply
    "garbage_http": ({"name": "garbage", "mode": "http"}, "not_onvif"),  # HTTP 200, a non-XML body
    "drip": ({"name": "drip", "interval_s": 1.0}, "timeout"),  # the hard per-request deadline ends it
    "entities": ({"name": "xxe"}, "malformed_reply"),  # DOCTYPE refused unread, nothing expanded
    "huge_64mb": ({"name": "huge_reply", "size_mb": 64, "operation": "GetSystemDateAndTime"},
                  "malformed_reply"),  # announced length over the cap: refused before reading
    "huge_64mb_chunked": ({"name": "huge_reply", "size_mb": 64, "chunked": True,
                           "operation": "GetSystemDateAndTime"}, "malformed_reply"),  # cap while reading
    "gzip_bomb": ({"name": "gzip_bomb"}, "malformed_reply"),  # 250 kB inflating to 256 MB: cap after inflating
}


def quirk_cameras() -> list[dict[str, Any]]:
    """The cameras of quirks.yaml (one per quirk of real cameras), with ``expect.probe_status``."""
    return yaml.safe_load(QUIRKS_FILE.read_text())["cameras"]


def fault_matrix_fleet(healthy: int, copies: int = 3, *, base: str = "127.90.0.0",
                       delay_ms: float = 0.0) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """(fleet mapping, {camera name: {"kind": quirk or behaviour, "expect": probe status or "ok"}}).

    ``healthy`` generated cameras come first; then ``copies`` of every quirk camera and every hostile
    behaviour, spread through the address range so faults meet the scan at its start, middle and end.
    """
    if healthy < 1 or copies < 1:
        raise FleetError("fault_matrix_fleet: healthy and copies must be at least 1")
    quirks = quirk_cameras()
    faulty_count = copies * (len(quirks) + len(HOSTILE))
    fleet = generate_fleet(healthy + faulty_count, base=base, delay_ms=delay_ms, name="fault-matrix")
    cams = fleet["cameras"]
    expected: dict[str, dict[str, str]] = {}
    faulty: list[tuple[str, str, dict[str, Any] | None, list[Any]]] = []
    for n in range(copies):
        for cam in quirks:
            kind = cam["name"].removeprefix("quirk-").replace("-", "_")
            faulty.append((kind, cam["expect"]["probe_status"], cam, []))
        for kind, (quirk, outcome) in HOSTILE.items():
            faulty.append((kind, outcome, None, [quirk]))
    step = len(cams) / len(faulty)
    slots = sorted({int(i * step) for i in range(len(faulty))})
    for slot, (kind, outcome, template, quirk_list) in zip(slots, faulty):
        cam = cams[slot]
        if template is not None:  # a quirks.yaml camera moved to this slot's address, name and identity
            new = copy.deepcopy(template)
            new.pop("expect", None)
            new.update(name=f"{cam['name']}-{kind}", host=cam["host"], serial=cam["serial"],
                       macs=[demo_mac(new.get("manufacturer", "Hikvision"), cam["host"])])
            new.pop("onvif_port", None)
            new.pop("rtsp_port", None)
            new.setdefault("delay_ms", delay_ms)
            cams[slot] = new
        else:
            cam["name"] = f"{cam['name']}-{kind}"
            cam["quirks"] = quirk_list
        expected[cams[slot]["name"]] = {"kind": kind, "expect": outcome}
    for cam in cams:
        expected.setdefault(cam["name"], {"kind": "healthy", "expect": "ok"})
    return fleet, expected


def healthy_only(fleet: dict[str, Any], expected: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The same fleet without its faulty cameras (the baseline of the time bound)."""
    out = copy.deepcopy(fleet)
    out["cameras"] = [c for c in out["cameras"] if expected[c["name"]]["kind"] == "healthy"]
    return out


def address_ranges(fleet: dict[str, Any]) -> list[str]:
    """The /24 blocks that hold the fleet's addresses."""
    nets = {ipaddress.ip_network(f"{c['host']}/24", strict=False) for c in fleet["cameras"]}
    return [str(n) for n in sorted(nets)]
