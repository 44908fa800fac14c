"""Vendor discovery on one named interface: Hikvision SADP (UDP 37020) and Dahua DHDiscover (UDP 37810).

Both answer without credentials with model, serial, firmware and MAC, and SADP says whether a Hikvision
device was ever activated (an unactivated camera on a live network is a finding of its own). Like
WS-Discovery, this only sends on the interface it is given, with a multicast TTL of 1, and accepts
replies addressed to our socket. Replies are hostile input: size-capped, XML without DTDs or entities,
JSON only after a valid DHIP header.
"""

from __future__ import annotations

import json
import logging
import re
import struct
import threading
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from lxml import etree

from probes.discovery import interface_addresses, multicast_collect

__all__ = ["VendorDiscovered", "vendor_discover", "SADP_GROUP", "SADP_PORT", "DAHUA_GROUP", "DAHUA_PORT",
           "sadp_inquiry", "dahua_search", "parse_sadp", "parse_dahua"]

LOGGER = logging.getLogger(__name__)

SADP_GROUP, SADP_PORT = "239.255.255.250", 37020
DAHUA_GROUP, DAHUA_PORT = "239.255.255.251", 37810
DHIP_MAGIC = b"\x20\x00\x00\x00DHIP"
_MAX_DATAGRAM = 16384
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
                          remove_comments=True, remove_pis=True)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class VendorDiscovered:
    """One device that answered a vendor discovery probe."""

    method: str  # "sadp" or "dahua"
    address: str  # the IPv4 address the device reported (else the sender's)
    manufacturer: str
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    mac: str | None = None
    http_port: int | None = None
    activated: bool | None = None  # SADP: False = never activated (default password not yet set)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return asdict(self)


def _clean(value: Any, limit: int = 128) -> str | None:
    if value is None:
        return None
    text = _CONTROL.sub("", str(value)).strip()[:limit]
    return text or None


def _mac(value: Any) -> str | None:
    text = (_clean(value) or "").lower().replace("-", ":")
    return text if re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", text) else None


def _port(value: Any) -> int | None:
    try:
        port = int(str(value))
    except (TypeError, ValueError):
        return None
    return port if 0 < port < 65536 else None


def sadp_inquiry(probe_id: str) -> bytes:
    """The SADP inquiry datagram."""
    return (f'<?xml version="1.0" encoding="utf-8"?><Probe><Uuid>{probe_id}</Uuid><Types>inquiry</Types>'
            "</Probe>").encode()


def dahua_search() -> bytes:
    """The DHDiscover.search datagram: a 32-byte DHIP header and a JSON body."""
    body = json.dumps({"method": "DHDiscover.search", "params": {"mac": "", "uni": 1}}).encode()
    return DHIP_MAGIC + struct.pack("<IIIIII", 0, 0, len(body), 0, len(body), 0) + body


def parse_sadp(data: bytes, sender: str) -> VendorDiscovered | None:
    """A SADP ProbeMatch as a device, or None for anything else (including DOCTYPEs)."""
    if len(data) > _MAX_DATAGRAM or b"<!DOCTYPE" in data[:1024].upper():
        return None
    try:
        root = etree.fromstring(data, _PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return None
    if root is None or etree.QName(root).localname != "ProbeMatch":
        return None
    values = {etree.QName(el).localname: (el.text or "") for el in root if isinstance(el.tag, str)}
    firmware = _clean(values.get("SoftwareVersion"))
    if firmware:
        firmware = re.sub(r"(?<=\d)build\s*", " build ", firmware)  # "V5.7.3build 220112" -> "V5.7.3 build 220112"
    activated = values.get("Activated", "").strip().lower()
    return VendorDiscovered(
        method="sadp", address=_clean(values.get("IPv4Address")) or sender, manufacturer="Hikvision",
        model=_clean(values.get("DeviceDescription")), serial=_clean(values.get("DeviceSN")), firmware=firmware,
        mac=_mac(values.get("MAC")), http_port=_port(values.get("HttpPort")),
        activated={"true": True, "false": False}.get(activated))


def parse_dahua(data: bytes, sender: str) -> VendorDiscovered | None:
    """A Dahua client.notifyDevInfo reply as a device, or None for anything else."""
    if len(data) > _MAX_DATAGRAM or len(data) < 32 or not data.startswith(DHIP_MAGIC):
        return None
    try:
        message = json.loads(data[32:].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    info = (message.get("params") or {}).get("deviceInfo") if isinstance(message, dict) else None
    if not isinstance(info, dict):
        return None
    ipv4 = info.get("IPv4Address") if isinstance(info.get("IPv4Address"), dict) else {}
    return VendorDiscovered(
        method="dahua", address=_clean(ipv4.get("IPAddress")) or sender, manufacturer=_clean(info.get("Vendor")) or
        "Dahua", model=_clean(info.get("DeviceType")), serial=_clean(info.get("SerialNo")),
        firmware=_clean(info.get("Version")), mac=_mac(info.get("Mac")), http_port=_port(info.get("HttpPort")))


def vendor_discover(interface: str, *, timeout_s: float = 3.0, retries: int = 2) -> list[VendorDiscovered]:
    """SADP and Dahua discovery on ``interface`` for ``timeout_s``; one entry per (method, MAC or address)."""
    address = interface_addresses(interface)[0]
    found: dict[tuple[str, str], VendorDiscovered] = {}
    lock = threading.Lock()
    probe_id = str(uuid.uuid4()).upper()

    def add(device: VendorDiscovered) -> None:
        with lock:
            found.setdefault((device.method, device.mac or device.address), device)

    jobs = [("SADP", SADP_GROUP, SADP_PORT, sadp_inquiry(probe_id), parse_sadp),
            ("Dahua", DAHUA_GROUP, DAHUA_PORT, dahua_search(), parse_dahua)]
    threads = [threading.Thread(target=multicast_collect, args=(interface, address, m, g, p, parse, add),
                                kwargs={"timeout_s": timeout_s, "retries": retries, "max_bytes": _MAX_DATAGRAM + 1,
                                        "what": f"{name} discovery"},
                                name=f"discover-{p}", daemon=True) for name, g, p, m, parse in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s + 5)
    return sorted(found.values(), key=lambda d: (d.address, d.method))
