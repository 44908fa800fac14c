"""ONVIF probe: read identity, clock, services, media profiles and stream URIs of one device.

Order of calls (PITFALLS.md):
1. GetSystemDateAndTime without credentials (hand-built SOAP, cheap): is an ONVIF device there, and what
   time does it think it is? The offset is reported and used to sign every WS-Security digest (the range
   sweep's reading of the last 10 minutes, when the device came from one, instead of asking again).
2. GetDeviceInformation with each credential in turn (WS-Security digest; HTTP Digest when challenged).
3. GetServices (fallback GetCapabilities), GetNetworkInterfaces, GetScopes, GetNTP, GetHostname.
4. Profiles from Media2 (ver20, H.265) when the device has it, else Media (ver10); stream and snapshot URIs.

GetDeviceInformation, GetServices and Media (ver10) go through zeep (onvif-zeep-async's WSDLs, parsed once
per process); Media2 (not in onvif-zeep-async 4.3) and the four small optional device calls (zeep's typed
parsing cost more CPU than the rest) are hand-built and read with :mod:`probes.soap`'s tolerant reader.
One aiohttp session per camera, always closed. Failed optional calls are warnings; a partial read is kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence, TypeVar
from urllib.parse import urlsplit, urlunsplit

import zeep.exceptions
from lxml import etree
from onvif import client as onvif_client
from onvif.definition import SERVICES
from onvif.wsa import WsAddressingIfMissingPlugin
from zeep.settings import Settings

from probes.errors import AuthFailed, MalformedReply, NotSupported, OnvifDisabled, ProbeError, ProbeTimeout
from probes.onvif_values import (
    _fault_error,
    _fault_text,
    _find,
    SERVICE_NAMES as _SERVICE_NAMES,
    _media1_profile,
    _media2_profile,
    clock_offset,
    _preferred_device_url,
    _qname_local,
    _repair_url,
    _s,
    _says_locked,
    scope_fields,
    _uri_of,
    _xml_text,
    nic_addresses,
    ntp_information,
    scope_items,
)
from probes.results import DeviceIdentity, MediaProfile, Observation, ProbeStatus, utc_now_iso
from probes.soap import CameraSession, HostLimiter, ZeepTransport, envelope, excerpt, is_auth_fault, local, text
from probes.soap import DEFAULT_PER_HOST, soap_fault, wsse_header
from probes.targets import Credential, Target
from probes.targets import on_probed_host as _on_probed_host
from probes.vocab import normalise_mac, redact_uri

__all__ = ["probe_onvif", "probe_onvif_detailed", "OnvifReadout", "PLACEHOLDER_BITRATES"]

LOGGER = logging.getLogger(__name__)

DEVICE_NS = "http://www.onvif.org/ver10/device/wsdl"
MEDIA_NS = "http://www.onvif.org/ver10/media/wsdl"
MEDIA2_NS = "http://www.onvif.org/ver20/media/wsdl"
#: BitrateLimit values that mean "not set" (agsh/onvif#233).
PLACEHOLDER_BITRATES = {2147483647, 4294967295, 65535, 0}
_CLOCK_WARN_S = 5.0
_BORROWED_CLOCK_MAX_AGE_S = 600.0  # a sweep's clock reading signs a probe this long (clocks drift s/day)
_WSDL_DIR = Path(onvif_client.__file__).parent / "wsdl"

# zeep settings for camera replies: lenient about the schema (cameras deviate), strict about safety.
# Well-formedness was already checked by probes.soap, so recover mode only affects schema leniency here.
_ZEEP_SETTINGS = Settings(strict=False, xml_huge_tree=False, forbid_dtd=True, forbid_entities=True,
                          forbid_external=True)

T = TypeVar("T")


async def probe_onvif(target: Target, credentials: Sequence[Credential], *, timeout_s: float = 5.0,
                      limiter: HostLimiter | None = None, total_timeout_s: float | None = None) -> Observation:
    """Probe one ONVIF device and return what it said; never raises for device problems."""
    readout = await probe_onvif_detailed(target, credentials, timeout_s=timeout_s, limiter=limiter,
                                         total_timeout_s=total_timeout_s)
    return readout.observation


@dataclass(frozen=True)
class OnvifReadout:
    """An observation plus what the stream check needs and the observation must not hold."""

    observation: Observation
    credential: Credential | None = None  # the credential the device accepted
    stream_uris: dict[str, str] = field(default_factory=dict, repr=False)  # token -> URI as given (unredacted)


async def probe_onvif_detailed(target: Target, credentials: Sequence[Credential], *, timeout_s: float = 5.0,
                               limiter: HostLimiter | None = None, total_timeout_s: float | None = None,
                               skipped: int = 0) -> OnvifReadout:
    """Like :func:`probe_onvif`, also returning the accepted credential and the unredacted stream URIs.

    ``skipped``: how many credentials the caller left out because this device rejected them before; with
    none left, the device is only checked for life (no login attempt) and reported as a wrong password.
    """
    started = time.monotonic()
    state = _State(target)
    session = CameraSession(target.host, timeout_s=timeout_s, limiter=limiter,
                            per_host_connections=limiter.limit if limiter else DEFAULT_PER_HOST)
    # A slow camera answers every call just inside the timeout; bound the whole probe as well.
    total = total_timeout_s if total_timeout_s is not None else max(timeout_s * 8, 30.0)
    try:
        async with asyncio.timeout(total):
            await _Prober(state, session, list(credentials), timeout_s, skipped).run()
    except ProbeError as exc:
        state.fail(exc)
    except TimeoutError:
        state.fail(ProbeTimeout(f"the whole probe took longer than {total:g} s (device answers very slowly); "
                                "what was read so far is kept"))
    except Exception as exc:  # noqa: BLE001 - one broken camera must never stop a scan
        LOGGER.exception("%s: unexpected error while probing", target.address)
        state.fail(ProbeError(f"unexpected {type(exc).__name__} while probing: {exc}"))
    finally:
        await session.close()
    state.warnings.extend(w for w in session.repairs if w not in state.warnings)
    if session.http_digest_used:
        state.warn("device required HTTP Digest authentication on top of WS-Security")
    # The probe boundary: camera strings leave here without control characters or credentials.
    return OnvifReadout(state.build(time.monotonic() - started).sanitised(), state.credential,
                        dict(state.stream_uris))


@dataclass
class _State:
    """What has been read so far (a partial read keeps it)."""

    target: Target
    status: ProbeStatus = ProbeStatus.OK
    error: str | None = None
    device: dict[str, Any] = field(default_factory=dict)
    macs: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)
    clock_offset_s: float | None = None
    ntp_servers: list[str] = field(default_factory=list)
    ntp_from_dhcp: bool | None = None
    services: dict[str, str] = field(default_factory=dict)  # short name -> xaddr
    profiles: list[MediaProfile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    raw_errors: list[str] = field(default_factory=list)
    credential: Credential | None = None
    rejected: list[str] = field(default_factory=list)  # credential labels the device refused
    stream_uris: dict[str, str] = field(default_factory=dict)
    foreign_hosts: list[str] = field(default_factory=list)
    rejected_refs: list[str] = field(default_factory=list)
    locked: bool = False

    def foreign(self, host: str, what: str) -> None:
        """Note that the device named another host for ``what`` (it gets no credential from us)."""
        if host not in self.foreign_hosts:
            self.foreign_hosts.append(host)
        self.warn(f"{what} names another host ({host}) than the one probed ({self.target.host}); used on "
                  f"{self.target.host} instead, no credential sent to {host}")

    def warn(self, message: str) -> None:
        """Record a non-fatal problem once."""
        if message not in self.warnings:
            LOGGER.info("%s: %s", self.target.address, message)
            self.warnings.append(message)

    def fail(self, exc: ProbeError) -> None:
        """Record the fatal outcome."""
        LOGGER.info("%s: %s: %s", self.target.address, exc.status.value, exc.message)
        self.status, self.error = exc.status, exc.message
        if exc.excerpt:
            self.raw_errors.append(exc.excerpt)

    def build(self, duration_s: float) -> Observation:
        """The frozen observation."""
        device = None
        if self.device or self.macs or self.scopes:
            name, location, profiles = scope_fields(self.scopes)
            device = DeviceIdentity(
                manufacturer=self.device.get("manufacturer"), model=self.device.get("model"),
                firmware=self.device.get("firmware"), serial=self.device.get("serial"),
                hardware_id=self.device.get("hardware_id"), macs=tuple(self.macs),
                hostname=self.device.get("hostname"), name=name, location=location, scopes=tuple(self.scopes),
                onvif_profiles=profiles)
        return Observation(
            address=self.target.address, status=self.status, error=self.error, observed_at=utc_now_iso(),
            duration_s=round(duration_s, 3), device=device, clock_offset_s=self.clock_offset_s,
            ntp_servers=tuple(self.ntp_servers), ntp_from_dhcp=self.ntp_from_dhcp,
            services=tuple(self.services), xaddrs=self.target.xaddrs, profiles=tuple(self.profiles),
            warnings=tuple(self.warnings), raw_errors=tuple(self.raw_errors),
            foreign_hosts=tuple(self.foreign_hosts),
            credential_ref=self.credential.ref if self.credential is not None else None,
            rejected_refs=tuple(dict.fromkeys(self.rejected_refs)), auth_locked=self.locked,
            credential_user=self.credential.username if self.credential else None,
            credential_source=(self.credential.source or None) if self.credential else None,
            rejected_credentials=tuple(self.rejected))


class _Prober:
    """The call sequence for one device."""

    def __init__(self, state: _State, session: CameraSession, credentials: list[Credential],
                 timeout_s: float, skipped: int = 0) -> None:
        self.state = state
        self.skipped = skipped
        self.session = session
        self.credentials = credentials
        self.timeout_s = timeout_s
        self.target = state.target
        self.device_url = _preferred_device_url(state.target)
        self.offset = 0.0  # seconds to add to our clock to get the camera's, for signing
        self._zclients: dict[str, Any] = {}
        self._credential: Credential | None = None
        self._clock_fault: tuple[str, list[str], str] | None = None

    # -- sequence ---------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run the whole sequence; raises the fatal ProbeError."""
        clock = self.target.clock
        if clock is not None and time.monotonic() - clock.at <= _BORROWED_CLOCK_MAX_AGE_S:
            # The sweep read the clock moments ago: one request less per camera. Credentials rejected: the
            # clock is read again and, if it moved, they are tried once more (the rejection was the clock's).
            self._set_offset(clock.offset_s)
            try:
                await self._authenticate()
            except AuthFailed:
                if self.state.locked or await self._read_clock(authenticated=False) or self.offset == clock.offset_s:
                    raise
                self.state.rejected_refs.clear()
                self.state.rejected.clear()
                await self._authenticate()
        else:
            time_needs_auth = await self._read_clock(authenticated=False)
            await self._authenticate()
            if time_needs_auth:
                await self._read_clock(authenticated=True)
        self.state.services["device"] = self.device_url
        # The profiles need only the service list: reading them beside the optional calls keeps the host's
        # request slots busy (a camera slow per answer took two answers longer when media waited).
        # Every call ends before a fatal error is raised, so none runs on after the probe gave up.
        outcomes = await asyncio.gather(
            self._services_then_media(), self._optional_value("GetNetworkInterfaces", self._network),
            self._optional_value("GetScopes", self._scopes), self._optional_value("GetNTP", self._ntp),
            self._optional_value("GetHostname", self._hostname), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _services_then_media(self) -> None:
        await self._services()
        await self._media()

    async def _read_clock(self, *, authenticated: bool) -> bool:
        """GetSystemDateAndTime; returns True when the device wants credentials for it."""
        header = ""
        if authenticated and self._credential is not None:
            header = wsse_header(self._credential.username, self._credential.password, self.offset)
        body = envelope('<tds:GetSystemDateAndTime/>', header, {"tds": DEVICE_NS})
        try:
            reply = await self.session.post(self.device_url, body, action=f"{DEVICE_NS}/GetSystemDateAndTime",
                                            authenticated=authenticated)
        except AuthFailed:
            if authenticated:
                raise
            self.state.warn("GetSystemDateAndTime needs credentials on this device (ONVIF allows it without)")
            return True
        received = time.time()
        fault = soap_fault(reply.xml.root)
        if fault is not None:
            code, subcodes, reason = fault
            if not authenticated and is_auth_fault(code, subcodes, reason):
                self.state.warn("GetSystemDateAndTime needs credentials on this device (ONVIF allows it without)")
                return True
            # Could be ONVIF switched off (every call faults) or just this call: GetDeviceInformation decides.
            self.state.warn(f"GetSystemDateAndTime answered with a SOAP fault ({_fault_text(fault)}); "
                            "clock not read, digests signed with our own clock")
            self._clock_fault = fault
            return False
        offset = clock_offset(reply.xml.root, received)
        if offset is None:
            self.state.warn("GetSystemDateAndTime carried no readable UTCDateTime; clock offset unknown")
            return False
        self._set_offset(offset)
        return False

    def _set_offset(self, offset: float) -> None:
        """Sign with ``offset``; one clock warning, for it (a stale sweep reading's makes way for a fresh one)."""
        self.offset = self.state.clock_offset_s = offset
        self.state.warnings = [w for w in self.state.warnings if not w.startswith("camera clock is")]
        if abs(offset) > _CLOCK_WARN_S:
            self.state.warn(f"camera clock is {offset:+.0f} s off (signing with the camera's clock); set NTP on "
                            "the camera")

    async def _authenticate(self) -> None:
        """GetDeviceInformation with each credential until one is accepted; stop at the first lock-out."""
        if not self.credentials and self.skipped:
            raise AuthFailed(f"wrong password: the {self.skipped} credential(s) for this device were rejected by it "
                             "before and are not tried again until they change (a camera locks its account after "
                             "a few failures); update the site's credentials")
        candidates: list[Credential | None] = list(self.credentials) or [None]
        rejected: list[str] = []
        last: ProbeError | None = None
        for credential in candidates:
            self._use(credential)
            try:
                info = await self._zcall("devicemgmt", "GetDeviceInformation")
            except AuthFailed as exc:
                if _says_locked(exc):
                    # Every further attempt would extend the lock (Hikvision: 600 s, per user or per address).
                    self.state.locked = True
                    raise AuthFailed(f"locked: the device reports the account or our address as locked "
                                     f"({exc.message}); no further credentials tried. Wait for the lock to expire or "
                                     "unlock it on the camera; this is not a wrong password.",
                                     excerpt=exc.excerpt) from exc
                rejected.append(credential.username if credential else "(no credentials)")
                if credential is not None and credential.ref and self.state.clock_offset_s is not None:
                    # Only with the camera's clock known is a rejection the password's fault, not the clock's.
                    self.state.rejected_refs.append(credential.ref)
                self.state.rejected.append(credential.label if credential else "(no credentials)")
                last = exc
                continue
            except NotSupported as exc:
                if self._clock_fault is not None:
                    raise OnvifDisabled(f"device service answers every call with a SOAP fault "
                                        f"({exc.message}): ONVIF is switched off on this device; enable it in the "
                                        "camera's web page") from exc
                raise
            self._credential = credential
            self.state.credential = credential
            self.state.device.update(
                manufacturer=_s(info, "Manufacturer"), model=_s(info, "Model"), firmware=_s(info, "FirmwareVersion"),
                serial=_s(info, "SerialNumber"), hardware_id=_s(info, "HardwareId"))
            return
        assert last is not None
        users = ", ".join(dict.fromkeys(rejected))
        skew = ""
        if self.state.clock_offset_s is None:
            skew = " The camera clock could not be read, so a clock skew may also break the digest."
        raise AuthFailed(f"wrong password: all {len(rejected)} credential(s) rejected (users: {users}): "
                         f"{last.message}. Check the ONVIF user list on the camera (it is often separate from the "
                         f"web users).{skew}", excerpt=last.excerpt)

    async def _services(self) -> None:
        try:
            services = await self._zcall("devicemgmt", "GetServices", {"IncludeCapability": False})
            for svc in services or []:
                ns, xaddr = _s(svc, "Namespace"), _s(svc, "XAddr")
                name = _SERVICE_NAMES.get(ns or "")
                if name and xaddr:
                    self.state.services[name] = self._fix_xaddr(xaddr, name)
            if "media" in self.state.services or "media2" in self.state.services:
                return
        except ProbeError as exc:
            if exc.status in (ProbeStatus.UNREACHABLE, ProbeStatus.TIMEOUT):
                raise
            self.state.warn(f"GetServices failed ({exc.message}); trying GetCapabilities")
        try:
            caps = await self._zcall("devicemgmt", "GetCapabilities", {"Category": "All"})
        except ProbeError as exc:
            if exc.status in (ProbeStatus.UNREACHABLE, ProbeStatus.TIMEOUT):
                raise
            self.state.warn(f"GetCapabilities failed ({exc.message})")
            return
        for key, name in (("Media", "media"), ("Events", "events"), ("Imaging", "imaging"), ("PTZ", "ptz"),
                          ("Analytics", "analytics")):
            xaddr = _s(getattr(caps, key, None), "XAddr")
            if xaddr:
                self.state.services[name] = self._fix_xaddr(xaddr, name)

    async def _network(self) -> None:
        for raw in nic_addresses(await self._device("GetNetworkInterfaces")):
            if not raw:
                continue
            mac = normalise_mac(raw)
            if mac is None:
                self.state.warn(f"unreadable MAC address {raw[:40]!r} ignored")
                continue
            if mac in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"):
                self.state.warn(f"device reports placeholder MAC {mac}; identify it by serial instead")
            if mac not in self.state.macs:
                self.state.macs.append(mac)

    async def _scopes(self) -> None:
        self.state.scopes.extend(scope_items(await self._device("GetScopes")))

    async def _ntp(self) -> None:
        self.state.ntp_from_dhcp, servers = ntp_information(await self._device("GetNTP"))
        for value in servers:
            if value not in self.state.ntp_servers:
                self.state.ntp_servers.append(value)

    async def _hostname(self) -> None:
        self.state.device["hostname"] = text(_find(await self._device("GetHostname"), "HostnameInformation"), "Name")

    async def _media(self) -> None:
        if "media2" in self.state.services:
            try:
                await self._media2()
                return
            except (AuthFailed, NotSupported, MalformedReply) as exc:
                self.state.warn(f"Media2 failed ({exc.message}); reading Media (ver10) instead, H.265 may be missed")
        if "media" not in self.state.services:
            raise NotSupported("device lists no Media service (GetServices/GetCapabilities): profiles and stream "
                               "URIs cannot be read; identity was read")
        await self._media1()

    async def _media1(self) -> None:
        try:
            profiles = await self._zcall("media", "GetProfiles")
        except (NotSupported, MalformedReply, AuthFailed) as exc:
            self.state.warn(f"GetProfiles failed ({exc.message}); no media profiles read")
            return
        except ProbeError as exc:
            if exc.status is not ProbeStatus.ERROR:
                raise
            self.state.warn(f"GetProfiles failed ({exc.message}); no media profiles read")
            return
        read = [_media1_profile(p) for p in profiles or [] if _s(p, "token")]

        async def uris(prof: MediaProfile) -> MediaProfile:
            stream = await self._optional_value(
                f"GetStreamUri({prof.token})",
                lambda: self._zcall("media", "GetStreamUri", {
                    "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
                    "ProfileToken": prof.token}))
            snap = await self._optional_value(
                f"GetSnapshotUri({prof.token})",
                lambda: self._zcall("media", "GetSnapshotUri", {"ProfileToken": prof.token}))
            self._keep_stream_uri(prof.token, _s(stream, "Uri"))
            return replace(prof, stream_uri=self._media_uri(_s(stream, "Uri")),
                           snapshot_uri=self._media_uri(_s(snap, "Uri"), http=True))

        self.state.profiles = list(await asyncio.gather(*(uris(p) for p in read)))
        self._check_profiles()

    async def _media2(self) -> None:
        url = self.state.services["media2"]
        root = await self._raw(url, "GetProfiles", "<tr2:GetProfiles><tr2:Type>All</tr2:Type></tr2:GetProfiles>")
        read = [_media2_profile(p) for p in root.iter() if local(p.tag) == "Profiles" and p.get("token")]
        if not read:
            raise MalformedReply("Media2 GetProfiles listed no profiles")

        async def uris(prof: MediaProfile) -> MediaProfile:
            token = _xml_text(prof.token)
            stream = await self._optional_value(f"Media2 GetStreamUri({prof.token})", lambda: self._raw(
                url, "GetStreamUri", f"<tr2:GetStreamUri><tr2:Protocol>RtspUnicast</tr2:Protocol>"
                                     f"<tr2:ProfileToken>{token}</tr2:ProfileToken></tr2:GetStreamUri>"))
            snap = await self._optional_value(f"Media2 GetSnapshotUri({prof.token})", lambda: self._raw(
                url, "GetSnapshotUri", f"<tr2:GetSnapshotUri><tr2:ProfileToken>{token}</tr2:ProfileToken>"
                                       "</tr2:GetSnapshotUri>"))
            self._keep_stream_uri(prof.token, _uri_of(stream))
            return replace(prof, stream_uri=self._media_uri(_uri_of(stream)),
                           snapshot_uri=self._media_uri(_uri_of(snap), http=True))

        self.state.profiles = list(await asyncio.gather(*(uris(p) for p in read)))
        self._check_profiles()

    def _check_profiles(self) -> None:
        for prof in self.state.profiles:
            if prof.bitrate_kbps is not None and prof.bitrate_kbps in PLACEHOLDER_BITRATES:
                self.state.warn(f"profile {prof.token}: BitrateLimit {prof.bitrate_kbps} is a placeholder, "
                                "not a real limit; measure the stream")
            if prof.encoding is None:
                self.state.warn(f"profile {prof.token}: no video encoder configuration reported")

    # -- plumbing ---------------------------------------------------------------------------------------------

    def _use(self, credential: Credential | None) -> None:
        self._zclients.clear()
        if credential is None:
            self.session.use_credentials(None, None)
        else:
            self.session.use_credentials(credential.username, credential.password)
        self._credential = credential

    async def _service(self, name: str) -> Any:
        """A zeep service proxy for ``name`` ("devicemgmt" or "media") on this camera's session."""
        proxy = self._zclients.get(name)
        if proxy is not None:
            return proxy
        definition = SERVICES[name]
        # onvif-zeep-async parses each WSDL once per process (with its date/time fixes) and caches it.
        document = await _wsdl_document(definition["wsdl"])
        wsse = None
        if self._credential is not None:
            # PasswordDigest (zeep's default is PasswordText: the password in clear on the wire).
            wsse = onvif_client.UsernameDigestTokenDtDiff(self._credential.username, self._credential.password,
                                                          dt_diff=timedelta(seconds=self.offset), use_digest=True)
        zclient = onvif_client.ZeepAsyncClient(wsdl=document, wsse=wsse, transport=ZeepTransport(self.session),
                                               settings=_ZEEP_SETTINGS, plugins=[WsAddressingIfMissingPlugin()])
        xaddr = self.device_url if name == "devicemgmt" else self.state.services["media"]
        proxy = zclient.create_service(f"{{{definition['ns']}}}{definition['binding']}", xaddr)
        self._zclients[name] = proxy
        return proxy

    async def _zcall(self, service: str, operation: str, params: dict[str, Any] | None = None) -> Any:
        """One zeep call; zeep/lxml errors mapped to ProbeErrors."""
        proxy = await self._service(service)
        try:
            return await getattr(proxy, operation)(**(params or {}))
        except ProbeError:
            raise
        except zeep.exceptions.Fault as exc:
            raise _fault_error(operation, exc.code or "", [_qname_local(s) for s in exc.subcodes or []],
                               exc.message or "") from exc
        except (zeep.exceptions.DTDForbidden, zeep.exceptions.EntitiesForbidden) as exc:
            raise MalformedReply(f"{operation}: reply carries DTD/entity declarations (refused, nothing expanded)"
                                 ) from exc
        except (zeep.exceptions.XMLSyntaxError, zeep.exceptions.XMLParseError, zeep.exceptions.TransportError,
                zeep.exceptions.ValidationError, etree.LxmlError, ValueError, TypeError, AttributeError) as exc:
            raise MalformedReply(f"{operation}: reply does not match the ONVIF schema ({type(exc).__name__}: "
                                 f"{str(exc)[:200]})", excerpt=excerpt(getattr(exc, "content", None))) from exc

    async def _raw(self, url: str, operation: str, body: str, ns: tuple[str, str] = ("tr2", MEDIA2_NS)) -> Any:
        """A hand-built call (Media2, or ``ns`` ``("tds", DEVICE_NS)``) signed with the camera's clock; returns
        the reply root. zeep's typed parsing cost more CPU than the rest of the probe for such small replies."""
        def signed() -> bytes:  # made when the request goes out: see CameraSession.post
            header = ""
            if self._credential is not None:
                header = wsse_header(self._credential.username, self._credential.password, self.offset)
            return envelope(body, header, dict([ns]))

        reply = await self.session.post(url, signed, action=f"{ns[1]}/{operation}")
        fault = soap_fault(reply.xml.root)
        if fault is not None:
            raise _fault_error(f"Media2 {operation}" if ns[1] == MEDIA2_NS else operation, *fault)
        return reply.xml.root

    async def _device(self, operation: str) -> Any:
        return await self._raw(self.device_url, operation, f"<tds:{operation}/>", ("tds", DEVICE_NS))

    async def _optional_value(self, operation: str, func: Callable[[], Awaitable[T]]) -> T | None:
        """Run an optional call; device-side failures become warnings, dead devices stay fatal."""
        try:
            return await func()
        except ProbeError as exc:
            if exc.status in (ProbeStatus.UNREACHABLE, ProbeStatus.TIMEOUT):
                raise
            self.state.warn(f"{operation} failed: {exc.message}")
            if exc.excerpt:
                self.state.raw_errors.append(exc.excerpt)
            return None

    def _fix_xaddr(self, xaddr: str, name: str) -> str:
        """Make a service URL the device advertised usable from here (duplicated ports, NAT, link-local)."""
        fixed = _repair_url(xaddr)
        if fixed is None:
            self.state.warn(f"{name} service XAddr {xaddr[:120]!r} is not a URL; using the device address")
            return f"{self.target.url.rsplit(self.target.path, 1)[0]}/onvif/{name}_service"
        if fixed != xaddr.strip():
            self.state.warn(f"{name} service XAddr {xaddr[:120]!r} is malformed (repaired to {fixed})")
        parts = urlsplit(fixed)
        if _on_probed_host(fixed, self.target.host)[1] is not None:
            # The device advertises an address we did not reach it on (NAT, link-local, second NIC, or a
            # hostile camera): calls go to the probed address only, signed calls never leave it.
            rewritten = urlunsplit((parts.scheme, self.target.address, parts.path, parts.query, ""))
            self.state.foreign(parts.hostname or parts.netloc, f"{name} service XAddr")
            return rewritten
        return fixed

    def _keep_stream_uri(self, token: str, uri: str | None) -> None:
        if uri:
            self.state.stream_uris[token] = _repair_url(uri) or uri  # as given: the stream check re-aims it

    def _media_uri(self, uri: str | None, *, http: bool = False) -> str | None:
        """Redacted, repaired URI (duplicated port) as stored in the observation."""
        if not uri:
            return None
        fixed = _repair_url(uri) or uri
        what = "snapshot URI" if http else "stream URI"
        if fixed != uri:
            self.state.warn(f"{what} had a malformed address (repaired)")
        named = _on_probed_host(fixed, self.target.host)[1]
        if named is not None:
            self.state.foreign(named, what)
        return redact_uri(fixed)


_DOCUMENT_LOCKS: dict[str, asyncio.Lock] = {}


async def _wsdl_document(wsdl: str) -> Any:
    """onvif-zeep-async's parsed WSDL document (parsed once per process, with its date/time type fixes).

    Its cache has no lock: 100 cameras starting at once would parse the same WSDL 100 times in parallel
    (seconds of CPU, tens of MB). One lock per file makes the first caller parse and the rest wait.
    """
    path = str(_WSDL_DIR / wsdl)
    if path in onvif_client._DOCUMENT_CACHE:
        return onvif_client._DOCUMENT_CACHE[path]
    lock = _DOCUMENT_LOCKS.setdefault(path, asyncio.Lock())
    async with lock:
        return await onvif_client._cached_document(path)
