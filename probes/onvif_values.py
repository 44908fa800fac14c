"""Reading ONVIF values: device URLs and their repair, SOAP faults, profiles, dates and scopes.

Pure functions over parsed replies (zeep objects or lxml elements), used by :mod:`probes.onvif`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence
from urllib.parse import unquote, urlsplit, urlunsplit

from probes.errors import AuthFailed, NotSupported, ProbeError
from probes.results import MediaProfile
from probes.soap import child, is_auth_fault, local, text
from probes.targets import Target
from probes.vocab import normalise_encoding

#: The services of GetServices by namespace, under the names the probe uses.
SERVICE_NAMES = {
    "http://www.onvif.org/ver10/device/wsdl": "device", "http://www.onvif.org/ver10/media/wsdl": "media",
    "http://www.onvif.org/ver20/media/wsdl": "media2",
    "http://www.onvif.org/ver10/events/wsdl": "events", "http://www.onvif.org/ver20/imaging/wsdl": "imaging",
    "http://www.onvif.org/ver20/ptz/wsdl": "ptz", "http://www.onvif.org/ver10/deviceIO/wsdl": "deviceio",
    "http://www.onvif.org/ver20/analytics/wsdl": "analytics", "http://www.onvif.org/ver10/recording/wsdl": "recording",
    "http://www.onvif.org/ver10/search/wsdl": "search", "http://www.onvif.org/ver10/replay/wsdl": "replay",
}


def _preferred_device_url(target: Target) -> str:
    """Of the discovered XAddrs, the one on the host that answered; else the target's own URL."""
    for xaddr in target.xaddrs:
        fixed = _repair_url(xaddr)
        if fixed and urlsplit(fixed).hostname == target.host and urlsplit(fixed).scheme == "http":
            return fixed
    for xaddr in target.xaddrs:
        fixed = _repair_url(xaddr)
        if fixed and urlsplit(fixed).hostname == target.host:
            return fixed
    return target.url


def _repair_url(url: str) -> str | None:
    """Parse a URL, repairing ``host:port:port`` (duplicated port); None when it cannot be used."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
        if parts.scheme and parts.hostname:
            return url
    except ValueError:
        pass
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    netloc = parts.netloc.rpartition("@")[2]
    pieces = netloc.split(":")
    if len(pieces) >= 3 and len(set(pieces[1:])) == 1 and pieces[1].isdigit():
        repaired = urlunsplit((parts.scheme, f"{pieces[0]}:{pieces[1]}", parts.path, parts.query, parts.fragment))
        try:
            urlsplit(repaired).port  # noqa: B018
        except ValueError:
            return None
        return repaired
    return None


def _fault_error(operation: str, code: str, subcodes: list[str], reason: str) -> ProbeError:
    fault = (code, subcodes, reason)
    if is_auth_fault(code, subcodes, reason):
        return AuthFailed(f"{operation}: credentials rejected (SOAP fault {_fault_text(fault)}); wrong ONVIF user or "
                          "password, or the camera clock differs too much")
    words = " ".join(subcodes).lower()
    if any(w in words for w in ("actionnotsupported", "notimplemented", "nosuchservice", "operationprohibited")):
        return NotSupported(f"{operation}: not supported by the device (SOAP fault {_fault_text(fault)})")
    return ProbeError(f"{operation}: device answered with SOAP fault {_fault_text(fault)}")


#: Words of lock-out replies: Hikvision userCheck ``<lockStatus>lock</lockStatus>``/"Illegal login lock",
#: Dahua "account locked", generic "locked"/"too many (failed) attempts".
_LOCK_WORDS = ("lockstatus>lock<", "locked", "illegal login lock", "too many", "lockout", "lock out")


def _says_locked(exc: ProbeError) -> bool:
    text = f"{exc.message} {exc.excerpt or ''}".lower().replace(" ", "").replace("\n", "")
    return any(word.replace(" ", "") in text for word in _LOCK_WORDS)


def _fault_text(fault: tuple[str, list[str], str]) -> str:
    code, subcodes, reason = fault
    codes = "/".join([c for c in [code, *subcodes] if c])
    return f"{codes}: {reason[:200]}" if reason else codes


def _qname_local(value: Any) -> str:
    return getattr(value, "localname", None) or str(value).rpartition("}")[2].rpartition(":")[2]


def _s(obj: Any, attr: str) -> str | None:
    """A string attribute of a zeep object, stripped; None when missing or empty."""
    if obj is None:
        return None
    try:
        value = obj[attr] if isinstance(obj, dict) else getattr(obj, attr, None)
    except (KeyError, AttributeError):
        return None
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _num(value: Any, kind: type = int) -> Any:
    if value is None:
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return int(number) if kind is int else number


def _media1_profile(p: Any) -> MediaProfile:
    enc = getattr(p, "VideoEncoderConfiguration", None)
    rate = getattr(enc, "RateControl", None) if enc is not None else None
    res = getattr(enc, "Resolution", None) if enc is not None else None
    gov = None
    for codec in ("H264", "MPEG4"):
        codec_cfg = getattr(enc, codec, None) if enc is not None else None
        if codec_cfg is not None and getattr(codec_cfg, "GovLength", None) is not None:
            gov = _num(codec_cfg.GovLength)
    source = getattr(p, "VideoSourceConfiguration", None)
    return MediaProfile(
        token=_s(p, "token") or "", name=_s(p, "Name"), encoding=normalise_encoding(_s(enc, "Encoding")),
        width=_num(getattr(res, "Width", None)), height=_num(getattr(res, "Height", None)),
        fps=_num(getattr(rate, "FrameRateLimit", None), float), bitrate_kbps=_num(getattr(rate, "BitrateLimit", None)),
        gov_length=gov, quality=_num(getattr(enc, "Quality", None), float) if enc is not None else None,
        media_service="media", video_source_token=_s(source, "SourceToken"))


def _media2_profile(p: Any) -> MediaProfile:
    configs = child(p, "Configurations")
    enc = child(configs, "VideoEncoder")
    source = child(configs, "VideoSource")
    gov = enc.get("GovLength") if enc is not None else None
    return MediaProfile(
        token=p.get("token"), name=text(p, "Name"), encoding=normalise_encoding(text(enc, "Encoding")),
        width=_num(text(enc, "Resolution", "Width")), height=_num(text(enc, "Resolution", "Height")),
        fps=_num(text(enc, "RateControl", "FrameRateLimit"), float),
        bitrate_kbps=_num(text(enc, "RateControl", "BitrateLimit")), gov_length=_num(gov),
        quality=_num(text(enc, "Quality"), float), media_service="media2",
        video_source_token=text(source, "SourceToken"))


def _uri_of(root: Any) -> str | None:
    if root is None:
        return None
    node = _find(root, "Uri")
    return text(node) if node is not None else None


def _find(root: Any, name: str) -> Any:
    for el in root.iter():
        if local(el.tag) == name:
            return el
    return None


def _onvif_datetime(node: Any) -> datetime | None:
    if node is None:
        return None
    try:
        values = [int(text(node, part, key) or "x") for part, key in
                  (("Date", "Year"), ("Date", "Month"), ("Date", "Day"), ("Time", "Hour"), ("Time", "Minute"),
                   ("Time", "Second"))]
        return datetime(*values, tzinfo=timezone.utc)
    except ValueError:
        return None


def clock_offset(root: Any, received: float) -> float | None:
    """Seconds to add to our clock to get the camera's, from a GetSystemDateAndTime reply that arrived at
    ``received`` (``time.time()``); None when it carries no readable UTCDateTime.

    The camera stamps its reply when it sends it, in whole seconds (truncated): compare with the time the
    reply arrived (+0.5 s for the truncation), not the time we asked (a slow camera would skew it)."""
    utc = _find(root, "SystemDateAndTime")
    camera_time = _onvif_datetime(child(utc, "UTCDateTime") if utc is not None else None)
    if camera_time is None:
        return None
    return float(round(camera_time.timestamp() - received + 0.5))


def scope_fields(scopes: Sequence[str]) -> tuple[str | None, str | None, tuple[str, ...]]:
    """(name, location, ONVIF profiles) from onvif://www.onvif.org/... scopes (URL-decoded)."""
    name = location = None
    profiles: list[str] = []
    for scope in scopes:
        lowered = scope.lower()
        if lowered.startswith("onvif://www.onvif.org/name/") and name is None:
            name = unquote(scope.split("/name/", 1)[1]) or None
        elif lowered.startswith("onvif://www.onvif.org/location/") and location is None:
            location = unquote(scope.split("/location/", 1)[1]) or None
        elif lowered.startswith("onvif://www.onvif.org/profile/"):
            value = unquote(scope.rsplit("/", 1)[1])
            if value and value not in profiles:
                profiles.append(value)
    return name, location, tuple(profiles)


def _xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def nic_addresses(root: Any) -> list[str | None]:
    """GetNetworkInterfaces reply: each interface's ``Info/HwAddress`` (None where it has none)."""
    return [text(nic, "Info", "HwAddress") for nic in root.iter() if local(nic.tag) == "NetworkInterfaces"]


def scope_items(root: Any) -> list[str]:
    """GetScopes reply: the ``ScopeItem`` of each scope that has one."""
    items = (text(scope, "ScopeItem") for scope in root.iter() if local(scope.tag) == "Scopes")
    return [item for item in items if item]


def ntp_information(root: Any) -> tuple[bool | None, list[str]]:
    """GetNTP reply: (FromDHCP, the servers: DNS name or address of each manual and DHCP entry)."""
    info = _find(root, "NTPInformation")
    if info is None:
        return None, []
    flag = (text(info, "FromDHCP") or "").lower()
    from_dhcp = True if flag in ("true", "1") else False if flag in ("false", "0") else None
    servers = []
    for entry in [c for c in info if local(c.tag) in ("NTPManual", "NTPFromDHCP")]:
        value = text(entry, "DNSname") or text(entry, "IPv4Address") or text(entry, "IPv6Address")
        if value:
            servers.append(value)
    return from_dhcp, servers
