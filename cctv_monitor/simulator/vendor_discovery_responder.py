"""SADP (Hikvision, UDP 37020) and DHDiscover (Dahua, UDP 37810) responders of a ``--netns`` fleet.

Each device that speaks ISAPI or the Dahua API gets a socket inside its own namespace, joined to the
vendor's multicast group on its own address; it answers an inquiry with its identity (also when ONVIF
is off: that is what these protocols are for) by unicast to the asker. Never run in the host namespace.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
from typing import Any

from lxml import etree

from cctv_monitor.simulator.netns import in_namespace
from cctv_monitor.simulator.soap import x

LOGGER = logging.getLogger(__name__)

SADP = ("239.255.255.250", 37020)
DAHUA = ("239.255.255.251", 37810)
DHIP_MAGIC = b"\x20\x00\x00\x00DHIP"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)


def sadp_match(b: Any, probe_uuid: str) -> bytes:
    """The SADP ProbeMatch of binding ``b``."""
    cam, vendor = b.spec, b.spec.vendor
    channels = len(vendor.channels) if vendor.kind == "recorder" else 1
    return (f'<?xml version="1.0" encoding="UTF-8"?><ProbeMatch><Uuid>{x(probe_uuid)}</Uuid><Types>inquiry</Types>'
            f"<DeviceType>{'NVR' if vendor.kind == 'recorder' else 'IPC'}</DeviceType>"
            f"<DeviceDescription>{x(cam.model)}</DeviceDescription><DeviceSN>{x(cam.serial)}</DeviceSN>"
            f"<CommandPort>8000</CommandPort><HttpPort>{b.onvif_port}</HttpPort>"
            f"<MAC>{cam.macs[0].replace(':', '-')}</MAC><IPv4Address>{b.host}</IPv4Address>"
            "<IPv4SubnetMask>255.255.255.0</IPv4SubnetMask><IPv4Gateway>0.0.0.0</IPv4Gateway><DHCP>false</DHCP>"
            f"<AnalogChannelNum>0</AnalogChannelNum><DigitalChannelNum>{channels}</DigitalChannelNum>"
            f"<SoftwareVersion>{x(cam.firmware.replace(' build ', 'build '))}</SoftwareVersion>"
            f"<Activated>{str(vendor.activated).lower()}</Activated></ProbeMatch>").encode()


def dahua_match(b: Any) -> bytes:
    """The client.notifyDevInfo reply of binding ``b``."""
    cam = b.spec
    info = {"DeviceType": cam.model, "SerialNo": cam.serial, "Version": cam.firmware.partition(" ")[0],
            "Mac": cam.macs[0], "HttpPort": b.onvif_port, "Port": 37777, "Vendor": "Dahua",
            "MachineName": cam.scopes.get("name") or cam.name,
            "IPv4Address": {"IPAddress": b.host, "SubnetMask": "255.255.255.0", "DefaultGateway": "0.0.0.0",
                            "DhcpEnable": False}}
    body = json.dumps({"method": "client.notifyDevInfo", "params": {"deviceInfo": info}},
                      ensure_ascii=False).encode()
    return DHIP_MAGIC + struct.pack("<IIIIII", 0, 0, len(body), 0, len(body), 0) + body


class VendorResponder(asyncio.DatagramProtocol):
    """Answers one vendor's discovery inquiries for one device."""

    def __init__(self, binding: Any, kind: str) -> None:
        self.binding, self.kind = binding, kind
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self._reply(data[:65536])
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def _reply(self, data: bytes) -> bytes | None:
        if self.kind == "dahua":
            if not data.startswith(DHIP_MAGIC) or b"DHDiscover.search" not in data[32:]:
                return None
            return dahua_match(self.binding)
        try:
            root = etree.fromstring(data, _PARSER)
        except (etree.XMLSyntaxError, ValueError):
            return None
        if root is None or root.tag != "Probe" or (root.findtext("Types") or "").strip().lower() != "inquiry":
            return None
        return sadp_match(self.binding, (root.findtext("Uuid") or "").strip()[:64])

    async def close(self) -> None:
        """Close the socket."""
        if self.transport is not None:
            self.transport.close()


def _socket(ns: str, addr: str, group: str, port: int) -> socket.socket:
    with in_namespace(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))  # inside the device's own namespace, never the host's
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton(addr))
        sock.setblocking(False)
    return sock


async def start_vendor_responders(bindings: list[Any]) -> list[VendorResponder]:
    """One SADP or Dahua responder per netns binding whose device speaks that vendor's API."""
    loop = asyncio.get_running_loop()
    out = []
    for b in bindings:
        ns = getattr(b, "netns_name", None)
        protocols = b.spec.vendor.protocols
        kind = "sadp" if "isapi" in protocols else "dahua" if "dahua" in protocols else None
        if ns is None or kind is None:
            continue
        group, port = SADP if kind == "sadp" else DAHUA
        responder = VendorResponder(b, kind)
        await loop.create_datagram_endpoint(lambda r=responder: r, sock=_socket(ns, b.host, group, port))
        out.append(responder)
    return out
