"""Finding ONVIF devices: WS-Discovery multicast on one named interface, and address-range sweeps.

Both only touch what the caller names: ``ws_discover`` sends on the one interface it is given, ``sweep``
probes only the CIDRs and ports it is given. Nothing here picks a network by itself.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import ipaddress
import logging
import selectors
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence
from urllib.parse import urlsplit

import aiohttp

from probes.errors import ProbeError
from probes.ranges import RangeError, parse_range
from probes.soap import ACCEPT_ENCODING, child, envelope, find_any, local, parse_reply, read_capped, soap_fault, text
from probes.onvif_values import clock_offset
from probes.targets import DEFAULT_PATH, ClockReading, Target
from probes.vendor_http import IDENTIFY_PATHS, says_vendor

__all__ = ["DEFAULT_PORTS", "DiscoveredDevice", "sweep", "ws_discover", "parse_cidrs", "preferred_xaddr",
           "interface_addresses", "multicast_collect"]

LOGGER = logging.getLogger(__name__)

DEFAULT_PORTS: tuple[int, ...] = (80, 8000, 8080, 8899, 443)
#: A sweep larger than this many addresses is refused: it would take long and look like an attack.
MAX_SWEEP_ADDRESSES = 65536
_SWEEP_REPLY_CAP = 64 * 1024

WSD_GROUP = "239.255.255.250"
WSD_PORT = 3702
_WSD_NS = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
_WSA_NS = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
_NVT_NS = "http://www.onvif.org/ver10/network/wsdl"
_DEVICE_NS = "http://www.onvif.org/ver10/device/wsdl"


# -- address-range sweep ------------------------------------------------------------------------------------

def parse_cidrs(cidrs: Iterable[str], *, limit: int = MAX_SWEEP_ADDRESSES) -> list[str]:
    """Host addresses of the given CIDRs, ranges or single addresses, in order, without duplicates."""
    hosts: dict[str, None] = {}
    for raw in cidrs:
        entry = parse_range(raw, limit=limit)  # RangeError is a ValueError naming the text and the forms
        if not entry.sweep:
            raise RangeError(f"{raw!r} names one device (host:port); a sweep needs a CIDR, an address or a range")
        for addr in entry.hosts():
            hosts[addr] = None
            if len(hosts) > limit:
                raise ValueError(f"the ranges together exceed {limit} addresses")
    return list(hosts)


def sweep_timeouts(probe_timeout_s: float) -> tuple[float, float]:
    """(connect, answer) timeouts of a scan's sweep for a probe timeout: a silent address costs at most 2 s,
    an open port gets half the probe timeout to answer GetSystemDateAndTime (a slow camera that takes 2 s an
    answer is still found, with its clock, instead of being missed when it is not registered)."""
    connect = min(probe_timeout_s, 2.0)
    return connect, max(connect, probe_timeout_s / 2)


async def sweep(cidrs: Sequence[str], ports: Sequence[int] = DEFAULT_PORTS, *, concurrency: int = 256,
                timeout_s: float = 1.5, latency: dict[str, float] | None = None,
                answer_timeout_s: float | None = None) -> list[Target]:
    """Hosts in ``cidrs`` that answer an unauthenticated ONVIF GetSystemDateAndTime on one of ``ports``,
    or whose web server there identifies as Hikvision or Dahua (ONVIF off: read through the vendor API).
    ``latency``, when given, receives the seconds each found ``host:port`` took to answer (a slow answer
    predicts a slow probe, which a scan best starts first). Each target carries the clock its answer gave
    (``Target.clock``), so a probe soon after need not ask for it again.

    ``timeout_s`` bounds each connect (a silent address costs that much), ``answer_timeout_s`` (default:
    ``timeout_s``) the answer of a port that accepted: a device is there, maybe slow, so it may get longer.
    Each host is reported once, on the first port in ``ports`` order that answered.
    """
    if isinstance(cidrs, str):
        cidrs = [cidrs]
    hosts = parse_cidrs(cidrs)
    bad = [p for p in ports if not 0 < int(p) < 65536]
    if bad or not ports:
        raise ValueError(f"invalid port list {list(ports)!r}: ports must be 1-65535")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    answer_s = timeout_s if answer_timeout_s is None else max(float(answer_timeout_s), timeout_s)
    started = time.monotonic()
    # Most addresses of a range hold no device: find the open ports first with bare non-blocking connects
    # in one selector loop, then ask only those (see _open_ports).
    pairs = iter(await asyncio.to_thread(_open_ports, [(h, int(p)) for h in hosts for p in ports], concurrency,
                                         timeout_s))
    found: dict[str, set[int]] = {}
    clocks: dict[tuple[str, int], ClockReading] = {}
    body = envelope("<tds:GetSystemDateAndTime/>", namespaces={"tds": _DEVICE_NS})
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=True, ssl=False, use_dns_cache=False)
    # decompression under the cap (read_capped), never aiohttp's whole-chunk inflating: see probes.soap
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                     trust_env=False, auto_decompress=False) as session:

        async def worker() -> None:
            for host, port in pairs:
                asked = time.monotonic()
                answer, clock = await _answers_onvif(session, host, port, body, answer_s)
                # A web server that is no ONVIF device may be a Hikvision/Dahua with ONVIF off: keep it too.
                if answer == "onvif" or (answer == "http" and await _answers_vendor(session, host, port, answer_s)):
                    found.setdefault(host, set()).add(port)
                    if clock is not None:
                        clocks[(host, port)] = clock
                    if latency is not None:
                        latency[f"{host}:{port}"] = time.monotonic() - asked

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(hosts) * len(ports) or 1))))
    order = {p: i for i, p in enumerate(ports)}
    targets = []
    for host in hosts:
        if host in found:
            port = min(found[host], key=lambda p: order[p])
            targets.append(Target(host, port, clock=clocks.get((host, port))))
    LOGGER.info("sweep of %d addresses x %d ports found %d ONVIF devices in %.1f s", len(hosts), len(ports),
                len(targets), time.monotonic() - started)
    return targets


def _open_ports(pairs: list[tuple[str, int]], concurrency: int, timeout_s: float) -> list[tuple[str, int]]:
    """The (host, port) pairs that accept a TCP connection (closed again at once), in the given order: at most
    ``concurrency`` non-blocking connects in flight, each given ``timeout_s``, in one selector loop.

    An address that refuses cost 0.51 CPU-ms as an HTTP ask (aiohttp's connector and request set-up), 0.11
    ms as an asyncio connect and 0.04 ms here, measured on loopback; a 500-camera province scan had spent
    24 of its 66 s asking 12,700 addresses."""
    selector = selectors.DefaultSelector()
    pending = iter(enumerate(pairs))
    deadlines: collections.deque[tuple[float, socket.socket]] = collections.deque()  # in start order
    opened: list[int] = []
    try:
        def start() -> None:
            while len(selector.get_map()) < concurrency:
                item = next(pending, None)
                if item is None:
                    return
                index, (host, port) = item
                sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                try:
                    err = sock.connect_ex((host, port))
                except OSError:
                    err = -1
                if err == 0:
                    opened.append(index)
                if err not in (errno.EINPROGRESS, errno.EAGAIN):
                    sock.close()
                    continue
                selector.register(sock, selectors.EVENT_WRITE, index)
                deadlines.append((time.monotonic() + timeout_s, sock))

        start()
        while selector.get_map():
            wait = max(0.0, deadlines[0][0] - time.monotonic()) if deadlines else timeout_s
            for key, _ in selector.select(wait):
                sock = key.fileobj
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:  # type: ignore[union-attr]
                    opened.append(key.data)
                selector.unregister(sock)
                sock.close()  # type: ignore[union-attr]
            now = time.monotonic()
            while deadlines and (deadlines[0][1].fileno() < 0 or deadlines[0][0] <= now):
                _, sock = deadlines.popleft()
                if sock.fileno() >= 0:  # still connecting: no answer within the timeout
                    selector.unregister(sock)
                    sock.close()
            start()
    finally:
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        selector.close()
    return [pairs[i] for i in sorted(opened)]


async def _answers_vendor(session: aiohttp.ClientSession, host: str, port: int, timeout_s: float) -> bool:
    """True when the web server at host:port identifies as Hikvision or Dahua (unauthenticated GETs)."""
    scheme = "https" if port == 443 else "http"
    bracketed = f"[{host}]" if ":" in host else host
    for brand, path in IDENTIFY_PATHS:
        try:
            async with asyncio.timeout(timeout_s):
                async with session.get(f"{scheme}://{bracketed}:{port}{path}", allow_redirects=False) as resp:
                    content = await read_capped(resp, _SWEEP_REPLY_CAP)
                    if says_vendor(brand, resp.status, resp.headers, content or b""):
                        return True
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError, ProbeError):
            return False
    return False


async def _answers_onvif(session: aiohttp.ClientSession, host: str, port: int, body: bytes,
                         timeout_s: float) -> tuple[str | None, ClockReading | None]:
    """"onvif" when host:port answers GetSystemDateAndTime with SOAP (a reply or a SOAP fault), "http" when
    an HTTP server answered something else, None when nothing answered; with the clock a reply gave."""
    scheme = "https" if port == 443 else "http"
    bracketed = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{bracketed}:{port}{DEFAULT_PATH}"
    headers = {"Content-Type": f'application/soap+xml; charset=utf-8; action="{_DEVICE_NS}/GetSystemDateAndTime"',
               "Accept-Encoding": ACCEPT_ENCODING}
    try:
        async with asyncio.timeout(timeout_s):
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
                content = await read_capped(resp, _SWEEP_REPLY_CAP)
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError, ProbeError):
        return None, None
    received, now = time.time(), time.monotonic()
    if content is None:
        return None, None  # over the sweep's cap: no ONVIF device answers GetSystemDateAndTime with that much
    try:
        root = parse_reply(content, what="GetSystemDateAndTime reply").root
    except ProbeError:
        return "http", None
    if local(root.tag) != "Envelope":
        return "http", None
    if find_any(root, "GetSystemDateAndTimeResponse") is not None:
        offset = clock_offset(root, received)
        return "onvif", (ClockReading(offset, now) if offset is not None else None)
    # a SOAP fault: an ONVIF device that wants credentials even for this call
    return ("onvif" if soap_fault(root) is not None else "http"), None


# -- WS-Discovery -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DiscoveredDevice:
    """One WS-Discovery ProbeMatch: who replied and the service addresses it advertised."""

    address: str  # the IP address the reply came from
    xaddrs: tuple[str, ...]
    preferred_xaddr: str | None
    scopes: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    epr: str | None = None

    def target(self) -> Target:
        """A probe target for this device (the preferred XAddr, all XAddrs kept)."""
        if self.preferred_xaddr:
            parts = urlsplit(self.preferred_xaddr)
            try:
                port = parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError:
                port = 80
            if parts.hostname == self.address:
                return Target(self.address, port, parts.path or DEFAULT_PATH, self.xaddrs)
        return Target(self.address, 80, DEFAULT_PATH, self.xaddrs)


def preferred_xaddr(xaddrs: Sequence[str], sender: str) -> str | None:
    """The XAddr to use: on the host that replied, http before https; else the first routable one."""
    def host_of(url: str) -> str | None:
        try:
            return urlsplit(url).hostname
        except ValueError:
            return None

    usable = [x for x in xaddrs if x.lower().startswith(("http://", "https://")) and host_of(x)]
    same = [x for x in usable if host_of(x) == sender]
    if same:
        return sorted(same, key=lambda x: not x.lower().startswith("http://"))[0]
    for x in usable:
        try:
            ip = ipaddress.ip_address(host_of(x) or "")
        except ValueError:
            return x  # a host name: cannot judge, take it
        if not (ip.is_link_local or ip.is_unspecified or ip.is_loopback):
            return x
    return usable[0] if usable else None


def interface_addresses(interface: str) -> list[str]:
    """IPv4 addresses of ``interface`` (raises ValueError naming the known interfaces when absent)."""
    import ifaddr  # dependency of wsdiscovery

    adapters = ifaddr.get_adapters()
    for adapter in adapters:
        if adapter.nice_name == interface or adapter.name == interface:
            addrs = [ip.ip for ip in adapter.ips if isinstance(ip.ip, str)]
            if not addrs:
                raise ValueError(f"interface {interface!r} has no IPv4 address")
            return addrs
    names = ", ".join(sorted(a.nice_name for a in adapters)) or "none"
    raise ValueError(f"no network interface called {interface!r} (known: {names})")


def ws_discover(interface: str, *, timeout_s: float = 3.0, retries: int = 2) -> list[DiscoveredDevice]:
    """Send WS-Discovery Probes (NetworkVideoTransmitter) on ``interface`` and collect the ProbeMatches.

    Two receivers run side by side for ``timeout_s``: the ``wsdiscovery`` library, limited to this
    interface, and a tolerant one of our own that accepts any reply relating to our Probe and carrying
    XAddrs (the library drops replies that deviate from the schema, and skips loopback interfaces).
    Each Probe is sent ``retries + 1`` times (UDP gets lost).
    """
    addresses = interface_addresses(interface)
    results: dict[str, DiscoveredDevice] = {}
    lock = threading.Lock()

    def add(device: DiscoveredDevice) -> None:
        key = device.epr or f"{device.address}|{' '.join(device.xaddrs)}"
        with lock:
            old = results.get(key)
            if old is None or (not old.preferred_xaddr and device.preferred_xaddr):
                results[key] = device

    threads = [threading.Thread(target=_tolerant_probe, args=(interface, addresses[0], timeout_s, retries, add),
                                name="wsd-tolerant", daemon=True)]
    threads.append(threading.Thread(target=_library_probe, args=(addresses, timeout_s, retries, add),
                                    name="wsd-library", daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s + 5)
    return sorted(results.values(), key=lambda d: (_ip_key(d.address), d.preferred_xaddr or ""))


def _ip_key(address: str) -> tuple[int, Any]:
    try:
        return (0, ipaddress.ip_address(address))
    except ValueError:
        return (1, address)


def _library_probe(addresses: list[str], timeout_s: float, retries: int, add: Any) -> None:
    """The wsdiscovery library, told to use only ``addresses`` (it would use every interface otherwise)."""
    try:
        from wsdiscovery import QName
        from wsdiscovery.discovery import ThreadedWSDiscovery
    except ImportError as exc:  # pragma: no cover - it is a pinned dependency
        LOGGER.warning("wsdiscovery unavailable: %s", exc)
        return
    wanted = {ipaddress.ip_address(a) for a in addresses}
    senders: dict[str, str] = {}

    class _OneInterface(ThreadedWSDiscovery):
        def _networkAddressAdded(self, addr: Any) -> None:  # noqa: N802 - library naming
            if addr in wanted:
                super()._networkAddressAdded(addr)

        def _handle_probematches(self, env: Any, addr: Any) -> None:
            for match in env.getProbeResolveMatches():
                senders[match.getEPR()] = addr[0]
            super()._handle_probematches(env, addr)

    wsd = _OneInterface(multicast_num=retries + 1, relates_to=True)
    try:
        wsd.start()
        services = wsd.searchServices(types=[QName(_NVT_NS, "NetworkVideoTransmitter", "dn")], timeout=timeout_s)
        for svc in services:
            sender = senders.get(svc.getEPR(), "")
            xaddrs = tuple(x for raw in svc.getXAddrs() or [] for x in str(raw).split())
            if not xaddrs:
                continue
            sender = sender or (urlsplit(xaddrs[0]).hostname or "")
            add(DiscoveredDevice(address=sender, xaddrs=xaddrs, preferred_xaddr=preferred_xaddr(xaddrs, sender),
                                 scopes=tuple(s.getValue() for s in svc.getScopes() or []),
                                 types=tuple(t.getFullname() for t in svc.getTypes() or []), epr=svc.getEPR()))
    except Exception as exc:  # noqa: BLE001 - the tolerant receiver still runs
        LOGGER.warning("wsdiscovery library failed on this interface: %s", exc)
    finally:
        try:
            wsd.stop()
        except Exception:  # noqa: BLE001
            LOGGER.debug("wsdiscovery stop failed", exc_info=True)


def _probe_message(message_id: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="{_WSA_NS}" '
        f'xmlns:d="{_WSD_NS}" xmlns:dn="{_NVT_NS}"><s:Header>'
        f"<a:Action>{_WSD_NS}/Probe</a:Action><a:MessageID>{message_id}</a:MessageID>"
        "<a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To></s:Header>"
        "<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body></s:Envelope>"
    ).encode("utf-8")


def _tolerant_probe(interface: str, address: str, timeout_s: float, retries: int, add: Any) -> None:
    """Our own Probe socket: accept any reply relating to our Probe (or any ProbeMatch) carrying XAddrs."""
    message_id = f"urn:uuid:{uuid.uuid4()}"
    multicast_collect(interface, address, _probe_message(message_id), WSD_GROUP, WSD_PORT,
                      lambda data, sender: _read_probe_match(data, sender, message_id), add,
                      timeout_s=timeout_s, retries=retries, what="WS-Discovery Probe")


def multicast_collect(interface: str, address: str, message: bytes, group: str, port: int,
                      parse: Callable[[bytes, str], Any], add: Callable[[Any], None], *, timeout_s: float,
                      retries: int, max_bytes: int = 65535, what: str = "discovery") -> None:
    """Send ``message`` to ``group:port`` on ``interface`` (TTL 1) ``retries + 1`` times and hand every reply
    that ``parse(data, sender)`` turns into something (not None) to ``add``, until ``timeout_s`` is over.

    The one send-and-collect loop of WS-Discovery, SADP and Dahua discovery: bound to the interface's
    ``address`` (and to the interface itself where permitted), replies over ``max_bytes`` are cut short
    (and then refused by the parsers), errors are logged, never raised.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        try:  # keep the probe on the named interface even with several routes (needs root; best effort)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        except (OSError, AttributeError):
            LOGGER.debug("SO_BINDTODEVICE %s not permitted; relying on IP_MULTICAST_IF", interface)
        sock.bind((address, 0))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(address))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, struct.pack("b", 1))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        sock.settimeout(0.1)
        deadline = time.monotonic() + timeout_s
        gap = min(0.5, timeout_s / (retries + 2))
        sends = [time.monotonic() + i * gap for i in range(retries + 1)]
        while time.monotonic() < deadline:
            if sends and time.monotonic() >= sends[0]:
                sends.pop(0)
                try:
                    sock.sendto(message, (group, port))
                except OSError as exc:
                    LOGGER.warning("cannot send %s to %s:%s on %s: %s", what, group, port, interface, exc)
                    return
            try:
                data, peer = sock.recvfrom(max_bytes)
            except (TimeoutError, socket.timeout):
                continue
            item = parse(data, peer[0])
            if item is not None:
                add(item)
    except OSError as exc:
        LOGGER.warning("%s on %s failed: %s", what, interface, exc)
    finally:
        sock.close()


def _read_probe_match(data: bytes, sender: str, message_id: str) -> DiscoveredDevice | None:
    """A DiscoveredDevice from one reply datagram, or None when it is not a usable reply to our Probe."""
    try:
        root = parse_reply(data, what="WS-Discovery reply").root
    except ProbeError as exc:
        LOGGER.debug("ignoring unreadable WS-Discovery reply from %s: %s", sender, exc)
        return None
    header = child(root, "Header")
    relates = text(find_any(header, "RelatesTo")) if header is not None else None
    action = text(find_any(header, "Action")) if header is not None else None
    if relates is not None and relates != message_id:
        return None  # a reply to someone else's Probe
    if relates is None and not (find_any(root, "ProbeMatch") is not None or (action or "").endswith("ProbeMatches")):
        return None
    xaddrs_text = text(find_any(root, "XAddrs"))
    if not xaddrs_text:
        return None
    xaddrs = tuple(xaddrs_text.split())
    epr_node = find_any(root, "EndpointReference")
    epr = text(find_any(epr_node, "Address")) if epr_node is not None else None
    scopes = tuple((text(find_any(root, "Scopes")) or "").split())
    types = tuple((text(find_any(root, "Types")) or "").split())
    return DiscoveredDevice(address=sender, xaddrs=xaddrs, preferred_xaddr=preferred_xaddr(xaddrs, sender),
                            scopes=scopes, types=types, epr=epr)
