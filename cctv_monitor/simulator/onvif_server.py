"""ONVIF device server for a whole fleet: one aiohttp application, one listening site per camera.

The camera a request is for is found from the local address the connection arrived on, so 500 cameras
cost 500 listening sockets and one application. Quirks of real cameras (PITFALLS.md) are applied here.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable

from aiohttp import web
from lxml import etree

from cctv_monitor.simulator import dahua_server, hostile, isapi_server, soap
from cctv_monitor.simulator.auth import HttpDigest, check_ws_security
from cctv_monitor.simulator.fleet import CameraSpec, ProfileSpec
from cctv_monitor.simulator.vendor_spec import AuthGuard

LOGGER = logging.getLogger(__name__)

# Requests are parsed like the probes must parse replies: no entities, no network, no huge trees.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
_LOCKED_401 = ('<?xml version="1.0" encoding="UTF-8"?>\n<userCheck version="2.0" '
               'xmlns="http://www.hikvision.com/ver20/XMLSchema"><statusValue>401</statusValue>'
               '<statusString>Unauthorized</statusString><lockStatus>lock</lockStatus><unlockTime>600</unlockTime>'
               '<retryLoginTime>0</retryLoginTime></userCheck>')
_HTML_401 = ("<!DOCTYPE html><html><head><title>401 Unauthorized</title></head><body><h1>401 Unauthorized</h1>"
             "<p>Authorization required.</p></body></html>")
_HTML_403 = ("<!DOCTYPE html><html><head><title>403 Forbidden</title></head><body><h1>403 Forbidden</h1>"
             "<p>ONVIF service is disabled. Enable it under Network &gt; Advanced &gt; Integration Protocol.</p>"
             "</body></html>")
_SERVICES = {"/onvif/device_service": "device", "/onvif/media_service": "media", "/onvif/media2_service": "media2",
             "/onvif/search_service": "search"}
_NO_AUTH_OPS = {("device", "GetSystemDateAndTime")}


@dataclass
class CameraBinding:
    """Where one camera listens and what it advertises (addresses differ in netns mode)."""

    spec: CameraSpec
    host: str  # advertised and bound address
    onvif_port: int
    rtsp_port: int
    sock: socket.socket | None = None  # pre-bound listening socket (netns mode), else bind host:port
    digest: HttpDigest = field(init=False)
    requests: int = 0
    auth_failures: int = 0  # rejected credentials (what a lock-out counts)
    auth_attempts: int = 0  # authenticated requests, accepted or not
    clear_passwords: int = 0  # requests whose WS-Security token carried the password in clear (PasswordText)

    def __post_init__(self) -> None:
        self.digest = HttpDigest(realm=f"{self.spec.manufacturer} {self.spec.name}")
        vendor = self.spec.vendor
        # Hikvision's realm is the model; Dahua's names the device ("Login to <serial>").
        self.vendor_digest = HttpDigest(realm=f"Login to {self.spec.serial}" if "dahua" in vendor.protocols
                                        else self.spec.model)
        self.guard = AuthGuard(vendor.lockout_attempts, vendor.lockout_seconds)
        # Hikvision locks the client's address whatever the protocol; Dahua keeps the device account and
        # the ONVIF user apart, each with its own failure count (PITFALLS.md).
        self.onvif_guard = (AuthGuard(vendor.lockout_attempts, vendor.lockout_seconds)
                            if "dahua" in vendor.protocols else self.guard)

    @property
    def advertised_host(self) -> str:
        """The host the camera names in its URIs (quirk: another host's address)."""
        q = self.spec.quirk("foreign_host")
        return str(q.get("host", "127.0.0.2")) if q is not None else self.host

    @property
    def base_url(self) -> str:
        """``http://host:port`` as the camera advertises it (quirk: duplicated port)."""
        if self.spec.has("duplicated_port"):
            return f"http://{self.advertised_host}:{self.onvif_port}:{self.onvif_port}"
        return f"http://{self.advertised_host}:{self.onvif_port}"

    @property
    def device_url(self) -> str:
        """Real device service URL."""
        return f"http://{self.host}:{self.onvif_port}/onvif/device_service"

    def rtsp_url(self, prof: ProfileSpec) -> str:
        """RTSP URL of a profile at the advertised address."""
        return f"rtsp://{self.host}:{self.rtsp_port}{self.spec.rtsp_path(prof)}"

    def camera_now(self) -> datetime:
        """The camera's clock (real UTC + its offset)."""
        return datetime.now(timezone.utc) + timedelta(seconds=self.spec.clock_offset_s)


def _recorded_days(cam: CameraSpec) -> list[float]:
    """Days of recording per recorded track (a camera's own card, or each recorder channel)."""
    vendor = cam.vendor
    days = [ch.recording_days for ch in vendor.channels if ch.recording_days] if vendor.kind == "recorder" else []
    return days or ([vendor.recording_days] if vendor.recording_days else [])


def bind_tcp(host: str, port: int, *, fallback: bool = False, backlog: int = 128) -> socket.socket:
    """A listening TCP socket on host:port; with ``fallback`` a busy port is replaced by a free one.

    The fallback exists for tests run in parallel on one machine: two fleets may want the same
    address plan at once, and the caller reads the real port from the running fleet.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if not fallback or exc.errno != errno.EADDRINUSE:
                raise
            LOGGER.info("%s:%s is busy, using a free port instead", host, port)
            sock.bind((host, 0))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class SoapFault(Exception):
    """Raised by an operation handler to answer with a SOAP fault."""

    def __init__(self, code: str, subcode: str, reason: str, status: int = 400, subsub: str | None = None) -> None:
        super().__init__(reason)
        self.code, self.subcode, self.reason, self.status, self.subsub = code, subcode, reason, status, subsub


def _soap_response(text: str, status: int = 200) -> web.Response:
    return web.Response(body=text.encode("utf-8"), status=status, content_type="application/soap+xml",
                        charset="utf-8")


def _fault_response(exc: SoapFault) -> web.Response:
    return _soap_response(soap.envelope(soap.fault(exc.code, exc.subcode, exc.reason, exc.subsub)), exc.status)


def _child_text(op_el: etree._Element, name: str) -> str | None:
    for child in op_el.iter():
        if isinstance(child.tag, str) and etree.QName(child).localname == name:
            return (child.text or "").strip()
    return None


class OnvifFleetServer:
    """Serves the ONVIF side of many cameras from one aiohttp application."""

    def __init__(self, bindings: list[CameraBinding]) -> None:
        self.bindings = bindings
        self._by_addr: dict[tuple[str, int], CameraBinding] = {(b.host, b.onvif_port): b for b in bindings}
        self._runner: web.AppRunner | None = None
        self._snapshots: dict[tuple[int, int, str], bytes] = {}
        self._hung: set[asyncio.Future] = set()  # hung replies and dripping handlers
        self.app = web.Application(client_max_size=1024**2)
        self.app.router.add_post("/onvif/{service}", self._handle_soap)
        self.app.router.add_get("/onvif/snapshot/{token}.jpg", self._handle_snapshot)
        self.app.router.add_get("/", self._handle_index)
        self.app.router.add_route("*", "/ISAPI/{tail:.*}", self._handle_isapi)
        self.app.router.add_route("*", "/cgi-bin/{tail:.*}", self._handle_dahua)
        self._finders = dahua_server.MediaFinders()

    async def start(self, *, port_fallback: bool = False) -> None:
        """Bind every camera's site; with ``port_fallback`` a busy port is replaced by a free one."""
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        for b in self.bindings:
            try:
                if b.sock is None:
                    b.sock = bind_tcp(b.host, b.onvif_port, fallback=port_fallback)
                    b.onvif_port = b.sock.getsockname()[1]
                await web.SockSite(self._runner, b.sock).start()
            except OSError as exc:
                await self.stop()
                raise OSError(exc.errno, f"camera {b.spec.name}: cannot listen on {b.host}:{b.onvif_port}: "
                                         f"{exc.strerror}") from exc
        self._by_addr = {(b.host, b.onvif_port): b for b in self.bindings}
        # compression bombs are made once, before the first request, so none of them waits for its body
        for size in {int(q.get("size_mb", 256)) for b in self.bindings if (q := b.spec.quirk("gzip_bomb")) is not None}:
            await asyncio.get_running_loop().run_in_executor(None, hostile.gzip_body, size)

    async def stop(self) -> None:
        """Close every site and pending connection."""
        for fut in list(self._hung):
            fut.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for b in self.bindings:  # sockets bound before a failed start never reached a site
            if b.sock is not None:
                b.sock.close()

    def _binding(self, request: web.Request) -> CameraBinding:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        binding = self._by_addr.get((sockname[0], sockname[1])) if sockname else None
        if binding is None:
            raise web.HTTPNotFound(text="no camera on this address")
        return binding

    async def _misbehave(self, request: web.Request, b: CameraBinding) -> web.StreamResponse | None:
        """Delays, hangs and resets that happen before a camera reads the request."""
        cam = b.spec
        if cam.delay_ms:
            await asyncio.sleep(cam.delay_ms / 1000)
        if (q := cam.quirk("slow")) is not None:
            await asyncio.sleep(float(q.get("delay_s", 2)))
        if cam.has("hang"):
            fut = asyncio.get_running_loop().create_future()
            self._hung.add(fut)
            try:
                await fut  # never answers; cancelled when the fleet stops or the client goes away
            finally:
                self._hung.discard(fut)
        if (q := cam.quirk("garbage")) is not None and q.get("mode", "raw") == "raw":
            await hostile.garbage_raw(request, int(q.get("size", 4096)))
        if cam.has("reset"):
            hostile.reset(request)
            raise asyncio.CancelledError
        return None

    async def _handle_isapi(self, request: web.Request) -> web.StreamResponse:
        b = self._binding(request)
        b.requests += 1
        await self._misbehave(request, b)
        return await isapi_server.handle(request, b)

    async def _handle_dahua(self, request: web.Request) -> web.StreamResponse:
        b = self._binding(request)
        b.requests += 1
        await self._misbehave(request, b)
        return await dahua_server.handle(request, b, self._finders)

    async def _handle_index(self, request: web.Request) -> web.StreamResponse:
        b = self._binding(request)
        await self._misbehave(request, b)
        title = soap.x(f"{b.spec.manufacturer} {b.spec.model}")
        return web.Response(text=f"<!DOCTYPE html><html><head><title>{title}</title></head><body><h1>{title}</h1>"
                                 "<p>Web interface (simulated).</p></body></html>", content_type="text/html")

    async def _handle_snapshot(self, request: web.Request) -> web.StreamResponse:
        b = self._binding(request)
        await self._misbehave(request, b)
        if b.spec.has("onvif_disabled"):
            return web.Response(status=403, text=_HTML_403, content_type="text/html")
        if b.spec.has("http_digest"):
            result = b.digest.check(request.headers.get("Authorization"), request.method,
                                    b.spec.username, b.spec.password)
            if not result.ok:
                return web.Response(status=401, text=_HTML_401, content_type="text/html",
                                    headers={"WWW-Authenticate": b.digest.challenge()})
        token = request.match_info["token"]
        prof = next((p for p in b.spec.profiles if p.token == token), None)
        if prof is None:
            raise web.HTTPNotFound(text="no such profile")
        image = prof.stream.image if prof.stream else "pattern"
        jpeg = await asyncio.get_running_loop().run_in_executor(None, self._snapshot, prof.width, prof.height, image)
        return web.Response(body=jpeg, content_type="image/jpeg")

    def _snapshot(self, width: int, height: int, image: str) -> bytes:
        key = (width, height, image)
        if key not in self._snapshots:
            import cv2  # heavy import, only when a snapshot is asked for
            import numpy as np

            if image == "black":
                frame = np.zeros((height, width, 3), np.uint8)
            else:
                xs = np.linspace(0, 255, width, dtype=np.uint8)
                frame = np.dstack([np.tile(xs, (height, 1)), np.tile(xs[::-1], (height, 1)),
                                   np.full((height, width), 128, np.uint8)])
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80])
            if not ok:
                raise RuntimeError("JPEG encoding failed")
            self._snapshots[key] = buf.tobytes()
        return self._snapshots[key]

    async def _handle_soap(self, request: web.Request) -> web.StreamResponse:
        b = self._binding(request)
        b.requests += 1
        await self._misbehave(request, b)
        cam = b.spec
        service = _SERVICES.get(request.path)
        if service is None or (service == "media2" and not cam.media2) or (service == "search" and not
                                                                             _recorded_days(cam)):
            return web.Response(status=404, text="Not Found")
        if (q := cam.quirk("onvif_disabled")) is not None:
            if q.get("mode") == "fault":
                return _fault_response(SoapFault("Receiver", "ter:ActionNotSupported",
                                                 "ONVIF is disabled on this device", status=500))
            return web.Response(status=403, text=_HTML_403, content_type="text/html")
        try:
            raw = await request.read()
        except ConnectionError:  # the client gave up while we delayed (slow quirk): nobody to answer
            raise asyncio.CancelledError from None
        try:
            envelope = etree.fromstring(raw, _PARSER)
            body = envelope.find(f"{{{soap.NS['env']}}}Body")
            op_el = next(c for c in body if isinstance(c.tag, str)) if body is not None else None
        except (etree.XMLSyntaxError, StopIteration, TypeError, ValueError):
            op_el = None
        if op_el is None:
            return _fault_response(SoapFault("Sender", "ter:WellFormed", "Request is not a SOAP 1.2 envelope"))
        operation = etree.QName(op_el).localname
        try:
            if (service, operation) not in _NO_AUTH_OPS:
                denied = self._authenticate(request, b, envelope)
                if denied is not None:
                    return denied
            if (q := cam.quirk("fault_on")) is not None and q.get("operation") == operation:
                raise SoapFault("Receiver", "ter:Action", f"{operation} failed (simulated firmware error)",
                                status=500, subsub="ter:ActionFailed")
            text = self._dispatch(b, service, operation, op_el)
        except SoapFault as exc:
            return _fault_response(exc)
        return await self._reply(request, b, operation, text)

    def _authenticate(self, request: web.Request, b: CameraBinding, envelope: etree._Element) -> web.Response | None:
        """None when the request may proceed, else the rejection the camera sends."""
        cam = b.spec
        client = request.remote or "?"
        b.auth_attempts += 1
        if (q := cam.quirk("lockout")) is not None and b.auth_failures >= int(q.get("attempts", 3)):
            # Hikvision "Illegal Login Lock": even the right password is refused while locked.
            return web.Response(status=401, text=_LOCKED_401, content_type="application/xml")
        digest_ok = False
        if b.onvif_guard.locked_for(client):
            b.onvif_guard.credentialed += 1
            return _fault_response(SoapFault("Sender", "ter:NotAuthorized", "Sender not authorized (locked)",
                                             status=400))
        if cam.has("http_digest"):
            header = request.headers.get("Authorization")
            result = b.digest.check(header, request.method, cam.username, cam.password)
            if header:
                b.onvif_guard.record(client, result.ok)
            if not result.ok:
                LOGGER.debug("%s: HTTP Digest rejected: %s", b.host, result.reason)
                b.auth_failures += 1
                return web.Response(status=401, text=_HTML_401, content_type="text/html",
                                    headers={"WWW-Authenticate": b.digest.challenge()})
            digest_ok = True
        token = envelope.find(".//{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-"
                              "secext-1.0.xsd}UsernameToken")
        has_token = token is not None
        if has_token and any(str(el.get("Type", "")).endswith("#PasswordText") for el in token.iter()):
            b.clear_passwords += 1  # accepted, as most firmware does; a test counts it
        if digest_ok and not has_token:
            return None  # HTTP Digest alone is accepted, as Hikvision 5.7.13 does
        result = check_ws_security(envelope, cam.username, cam.password, b.camera_now())
        if result.ok and not cam.vendor.onvif_users:
            result = type(result)(False, "ONVIF has no users")  # ONVIF on, but nobody created an ONVIF user
        if has_token:
            b.onvif_guard.record(client, result.ok)
        if result.ok:
            return None
        LOGGER.debug("%s: WS-Security rejected: %s", b.host, result.reason)
        b.auth_failures += 1
        if cam.has("html_401"):
            return web.Response(status=401, text=_HTML_401, content_type="text/html")
        return _fault_response(SoapFault("Sender", "ter:NotAuthorized", "Sender not authorized", status=400))

    def _profile(self, b: CameraBinding, op_el: etree._Element) -> ProfileSpec:
        token = _child_text(op_el, "ProfileToken")
        for prof in b.spec.profiles:
            if prof.token == token:
                return prof
        raise SoapFault("Sender", "ter:InvalidArgVal", f"Profile {token!r} does not exist", subsub="ter:NoProfile")

    def _stream_uri(self, b: CameraBinding, prof: ProfileSpec) -> str:
        uri = b.rtsp_url(prof).replace(f"//{b.host}:", f"//{b.advertised_host}:", 1)
        if b.spec.has("unescaped_amp"):
            uri += "?channel=1&subtype=0"
        return uri

    def _dispatch(self, b: CameraBinding, service: str, operation: str, op_el: etree._Element) -> str:
        cam = b.spec
        handlers: dict[tuple[str, str], Callable[[], str]] = {
            ("device", "GetSystemDateAndTime"): lambda: soap.system_date_and_time(cam, b.camera_now()),
            ("device", "GetDeviceInformation"): lambda: soap.device_information(cam, cam.has("invalid_utf8")),
            ("device", "GetCapabilities"): lambda: soap.capabilities(b.base_url, cam.media2),
            ("device", "GetServices"): lambda: soap.services(b.base_url, cam.media2, bool(_recorded_days(cam))),
            ("search", "GetRecordingSummary"): lambda: self._recording_summary(b),
            ("device", "GetNetworkInterfaces"): lambda: soap.network_interfaces(cam, b.host),
            ("device", "GetScopes"): lambda: soap.scopes(cam),
            ("device", "GetHostname"): lambda: soap.hostname(cam),
            ("device", "GetNTP"): lambda: soap.ntp(cam),
            ("media", "GetProfiles"): lambda: soap.media1_profiles(cam),
            ("media", "GetProfile"): lambda: soap.media1_get_profile(cam, self._profile(b, op_el)),
            ("media", "GetVideoEncoderConfigurations"): lambda: soap.media1_encoder_configurations(cam),
            ("media", "GetVideoSources"): lambda: soap.media1_video_sources(cam),
            ("media", "GetStreamUri"): lambda: soap.media_uri(
                "GetStreamUri", self._stream_uri(b, self._profile(b, op_el)), cam.has("unescaped_amp")),
            ("media", "GetSnapshotUri"): lambda: soap.media_uri(
                "GetSnapshotUri", f"{b.base_url}/onvif/snapshot/{self._profile(b, op_el).token}.jpg"),
            ("media2", "GetProfiles"): lambda: soap.media2_profiles(cam, self._media2_selection(b, op_el)),
            ("media2", "GetStreamUri"): lambda: soap.media2_stream_uri(
                self._stream_uri(b, self._profile(b, op_el)), cam.has("unescaped_amp")),
            ("media2", "GetSnapshotUri"): lambda: soap.media2_snapshot_uri(
                f"{b.base_url}/onvif/snapshot/{self._profile(b, op_el).token}.jpg"),
        }
        handler = handlers.get((service, operation))
        if handler is None:
            raise SoapFault("Receiver", "ter:ActionNotSupported",
                            f"{operation} is not supported by the {service} service", status=500)
        return handler()

    def _recording_summary(self, b: CameraBinding) -> str:
        days = _recorded_days(b.spec)
        now = b.camera_now()
        return soap.recording_summary(now - timedelta(days=max(days)), now, len(days))

    def _media2_selection(self, b: CameraBinding, op_el: etree._Element) -> list[ProfileSpec]:
        token = _child_text(op_el, "Token")
        if token:
            return [p for p in b.spec.profiles if p.token == token] or [self._profile(b, op_el)]
        return list(b.spec.profiles)

    async def _reply(self, request: web.Request, b: CameraBinding, operation: str, body: str) -> web.StreamResponse:
        """Wrap ``body`` and apply the quirks that damage the reply on the wire."""
        cam = b.spec
        text = soap.envelope(body)
        if cam.has("xxe"):
            text = text.replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
                                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + soap.XXE_DOCTYPE, 1)
            if operation == "GetDeviceInformation":
                text = text.replace(f"<tds:HardwareId>{soap.x(cam.hardware_id)}</tds:HardwareId>",
                                    "<tds:HardwareId>&xxe;&lol9;</tds:HardwareId>")
        data = text.encode("utf-8")
        if cam.has("invalid_utf8"):
            data = data.replace(soap.INVALID_UTF8_MARK.encode("utf-8"), b"\xc3\x28\xff\xfe")
        if (q := cam.quirk("malformed_xml")) is not None and q.get("operation", operation) == operation:
            data = data[: int(len(data) * 0.6)]
        if (q := cam.quirk("huge_reply")) is not None and operation == q.get("operation", "GetDeviceInformation"):
            return await hostile.huge(request, data, float(q.get("size_mb", 20)), chunked=bool(q.get("chunked")))
        return await self._hostile(request, cam, data) or web.Response(
            body=data, content_type="application/soap+xml", charset="utf-8")

    async def _hostile(self, request: web.Request, cam: CameraSpec, data: bytes) -> web.StreamResponse | None:
        """The fault matrix's behaviours that damage the reply itself (None: answer normally)."""
        if (q := cam.quirk("gzip_bomb")) is not None:
            return await hostile.gzip_bomb(int(q.get("size_mb", 256)))
        if (q := cam.quirk("garbage")) is not None:  # mode http (raw mode never gets here)
            return hostile.garbage_http(int(q.get("size", 4096)))
        if (q := cam.quirk("drip")) is not None:
            task = asyncio.current_task()
            self._hung.add(task)  # cancelled when the fleet stops, like a hung reply
            try:
                await hostile.drip(request, data, float(q.get("interval_s", 1.0)))
            finally:
                self._hung.discard(task)
        if (q := cam.quirk("reset_mid_reply")) is not None:
            await hostile.reset_mid_reply(request, data, float(q.get("fraction", 0.5)))
        if (q := cam.quirk("endless_reply")) is not None:
            return await hostile.endless(request, data, q)
        return None


async def serve_forever(server: OnvifFleetServer, stop: asyncio.Event,
                        on_ready: Callable[[], Awaitable[None]] | None = None) -> None:
    """Start ``server``, call ``on_ready``, serve until ``stop`` is set, then stop it."""
    started = time.monotonic()
    await server.start()
    LOGGER.info("ONVIF fleet of %d cameras listening after %.2f s", len(server.bindings), time.monotonic() - started)
    try:
        if on_ready is not None:
            await on_ready()
        await stop.wait()
    finally:
        await server.stop()
