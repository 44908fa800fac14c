"""WS-Discovery (SOAP-over-UDP, 239.255.255.250:3702) target side for simulated cameras.

Hand-written on sockets rather than the ``wsdiscovery`` library's publishing side: that side binds
every interface of the namespace its own process runs in, with threads per instance, while the fleet
serves hundreds of cameras from one process, each through a socket created inside *its* namespace.
Only ever started for netns fleets: the sockets exist only inside the fleet's namespaces.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import uuid
from typing import Any

from lxml import etree

from cctv_monitor.simulator.onvif_server import CameraBinding
from cctv_monitor.simulator.soap import x

LOGGER = logging.getLogger(__name__)

MCAST = ("239.255.255.250", 3702)
NS_S = "http://www.w3.org/2003/05/soap-envelope"
NS_A = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_D = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
TYPES = "dn:NetworkVideoTransmitter tds:Device"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
_ENV_OPEN = (f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{NS_S}" xmlns:a="{NS_A}" xmlns:d="{NS_D}" '
             'xmlns:dn="http://www.onvif.org/ver10/network/wsdl" xmlns:tds="http://www.onvif.org/ver10/device/wsdl">')


def xaddrs(b: CameraBinding) -> str:
    """XAddrs the camera announces (quirk ``xaddrs_multi``: link-local and https beside the real one)."""
    real = f"http://{b.host}:{b.onvif_port}/onvif/device_service"
    if b.spec.has("xaddrs_multi"):
        last = b.host.rsplit(".", 1)[-1]
        return f"http://169.254.77.{last}/onvif/device_service https://{b.host}/onvif/device_service {real}"
    return real


class Responder(asyncio.DatagramProtocol):
    """Answers Probe for one camera, announces Hello on start and Bye on close."""

    def __init__(self, binding: CameraBinding, sock: socket.socket) -> None:
        self.b = binding
        self.sock = sock
        self.endpoint = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, binding.spec.name + binding.spec.serial)}"
        self.transport: asyncio.DatagramTransport | None = None
        self.message_number = 0
        self.probes = 0

    def _envelope(self, action: str, body: str, relates_to: str | None = None, to: str | None = None) -> bytes:
        self.message_number += 1
        rel = f"<a:RelatesTo>{x(relates_to)}</a:RelatesTo>" if relates_to else ""
        dest = to or "urn:schemas-xmlsoap-org:ws:2005:04:discovery"
        header = (f"<s:Header><a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>{rel}<a:To>{dest}</a:To>"
                  f"<a:Action>{NS_D}/{action}</a:Action><d:AppSequence InstanceId=\"1\" "
                  f"MessageNumber=\"{self.message_number}\"/></s:Header>")
        return (_ENV_OPEN + header + f"<s:Body>{body}</s:Body></s:Envelope>").encode("utf-8")

    def _match_body(self) -> str:
        scopes = " ".join(x(s) for s in self.b.spec.scope_uris())
        return (f"<a:EndpointReference><a:Address>{self.endpoint}</a:Address></a:EndpointReference>"
                f"<d:Types>{TYPES}</d:Types><d:Scopes>{scopes}</d:Scopes><d:XAddrs>{x(xaddrs(self.b))}</d:XAddrs>"
                "<d:MetadataVersion>1</d:MetadataVersion>")

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.send_multicast("Hello", f"<d:Hello>{self._match_body()}</d:Hello>")

    def send_multicast(self, action: str, body: str) -> None:
        """Send an announcement to the multicast group (inside the camera's namespace)."""
        if self.transport is not None:
            self.transport.sendto(self._envelope(action, body), MCAST)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            root = etree.fromstring(data, _PARSER)
        except etree.XMLSyntaxError:
            return
        action = (root.findtext(f".//{{{NS_A}}}Action") or "").strip()
        if not action.endswith("/Probe"):
            return
        probe = root.find(f".//{{{NS_D}}}Probe")
        if probe is None or not self._matches(probe):
            return
        self.probes += 1
        message_id = (root.findtext(f".//{{{NS_A}}}MessageID") or "").strip()
        reply = self._envelope("ProbeMatches", f"<d:ProbeMatches><d:ProbeMatch>{self._match_body()}</d:ProbeMatch>"
                                               "</d:ProbeMatches>", relates_to=message_id,
                               to="http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous")
        # Spec: wait a random 0..APP_MAX_DELAY (500 ms) so a whole segment does not answer at once.
        asyncio.get_running_loop().call_later(random.uniform(0, 0.2), self._send, reply, addr)

    def _send(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)

    def _matches(self, probe: etree._Element) -> bool:
        """Types: every requested type's local name must be ours; Scopes: each must prefix one of ours."""
        types = (probe.findtext(f"{{{NS_D}}}Types") or "").split()
        ours = {t.split(":")[-1] for t in TYPES.split()}
        if any(t.split(":")[-1] not in ours for t in types):
            return False
        scopes = (probe.findtext(f"{{{NS_D}}}Scopes") or "").split()
        mine = self.b.spec.scope_uris()
        return all(any(m == s or m.startswith(s.rstrip("/") + "/") for m in mine) for s in scopes)

    async def close(self) -> None:
        """Say Bye and close the socket."""
        if self.transport is not None:
            self.send_multicast("Bye", f"<d:Bye><a:EndpointReference><a:Address>{self.endpoint}</a:Address>"
                                       "</a:EndpointReference></d:Bye>")
            await asyncio.sleep(0)
            self.transport.close()
            self.transport = None


async def start_responders(netns: Any, bindings: list[CameraBinding]) -> list[Responder]:
    """One responder per camera, each on a socket inside that camera's namespace."""
    loop = asyncio.get_running_loop()
    responders = []
    for b in bindings:
        if b.spec.has("onvif_disabled"):
            continue  # ONVIF off means WS-Discovery off too, as on Hikvision/Dahua firmware
        sock = netns.udp_socket(b.netns_name, b.host)  # type: ignore[attr-defined]
        responder = Responder(b, sock)
        await loop.create_datagram_endpoint(lambda r=responder: r, sock=sock)
        responders.append(responder)
    return responders
