"""Hikvision ISAPI over HTTP Digest: identity, clock, NICs, streams, RTSP port, ONVIF switch; recorders'
InputProxy channels, disks and the oldest recording per channel.

Replies come in the ``ver10`` or ``ver20`` namespace depending on firmware, so elements are found by
local name. ``maxFrameRate`` is in hundredths of a frame per second, bitrates are kbit/s. Errors are
``ResponseStatus`` bodies (``subStatusCode`` such as ``notSupport``); a 401 carries a ``userCheck`` body
whose ``lockStatus`` says whether the device has locked us out.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from probes.errors import AuthFailed, MalformedReply, NotSupported, ProbeError
from probes.results import ChannelInfo, DeviceIdentity, MediaProfile, StorageInfo, redact_uri
from probes.vendor_http import (
    HttpReply, VendorReadout, VendorSession, auth_error, clean, find, findall, local, number, parse_xml, text)

LOGGER = logging.getLogger(__name__)

RECORDER_TYPES = ("NVR", "DVR", "HVR", "CVR", "IPDOME_NVR", "ENCODER", "DVS")
_CODECS = {"H.264": "H264", "H264": "H264", "H.265": "H265", "H265": "H265", "MJPEG": "JPEG", "H.265+": "H265",
           "H.264+": "H264"}
_DISK_STATES = {"ok": "ok", "idle": "ok", "error": "failed", "smartfailed": "failed", "unformatted": "unformatted",
                "offline": "missing", "nothdd": "missing"}


async def get(session: VendorSession, path: str) -> Any:
    """GET an ISAPI resource and return its parsed root (errors mapped)."""
    return check(await session.request("GET", path), path)


def check(reply: HttpReply, path: str) -> Any:
    """The parsed root of a reply, or the mapped error (401 userCheck, ResponseStatus, HTML page)."""
    if reply.status == 401:
        locked = False
        if not reply.is_html and reply.body.lstrip()[:1] == b"<":
            try:
                locked = (text(parse_xml(reply, path), "lockStatus") or "").lower() == "lock"
            except MalformedReply:
                locked = False
        raise auth_error(reply, path, locked)
    root = parse_xml(reply, path)
    if local(root.tag) == "ResponseStatus" and reply.status >= 300:
        sub = text(root, "subStatusCode") or ""
        msg = f"{path}: HTTP {reply.status} {text(root, 'statusString') or ''} ({sub or 'no detail'})"
        raise NotSupported(msg) if sub in ("notSupport", "invalidOperation") or reply.status in (403, 404) \
            else MalformedReply(msg)
    if reply.status >= 300:
        raise MalformedReply(f"{path}: HTTP {reply.status} with <{local(root.tag)}>")
    return root


def _identity(root: Any) -> DeviceIdentity:
    version, build = text(root, "firmwareVersion"), text(root, "firmwareReleasedDate")
    mac = (text(root, "macAddress") or "").lower()
    return DeviceIdentity(manufacturer="Hikvision", model=text(root, "model"), serial=text(root, "serialNumber"),
                          firmware=" ".join(p for p in (version, build) if p) or None,
                          macs=(mac,) if len(mac) == 17 else (), name=text(root, "deviceName"),
                          hardware_id=text(root, "hardwareVersion"), device_type=text(root, "deviceType"))


def _clock_offset(root: Any) -> float | None:
    value = text(root, "localTime")
    try:
        moment = datetime.fromisoformat((value or "").replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None  # local time without a zone: no honest offset
    return round((moment - datetime.now(timezone.utc)).total_seconds(), 1)


def _profile(node: Any, host: str, rtsp_port: int | None) -> tuple[MediaProfile, str | None]:
    sid = text(node, "id") or "?"
    video = find(node, "Video")
    codec = text(video, "videoCodecType")
    fps = number(text(video, "maxFrameRate"), float)
    mode = (text(video, "videoQualityControlType") or "").upper()
    rate = text(video, "vbrUpperCap") if mode == "VBR" else text(video, "constantBitRate")
    uri = f"rtsp://{host}:{rtsp_port}/Streaming/Channels/{sid}" if rtsp_port else None
    prof = MediaProfile(token=sid, name=text(node, "channelName"), encoding=_CODECS.get(codec or "", codec),
                        width=number(text(video, "videoResolutionWidth")),
                        height=number(text(video, "videoResolutionHeight")),
                        fps=round(fps / 100, 2) if fps is not None else None,
                        bitrate_kbps=number(rate or text(video, "constantBitRate")),
                        gov_length=number(text(video, "GovLength")), stream_uri=redact_uri(uri),
                        media_service="isapi", video_source_token=text(video, "videoInputChannelID"))
    return prof, uri


async def _rtsp_port(session: VendorSession, out: VendorReadout) -> int | None:
    try:
        root = await get(session, "/ISAPI/Security/adminAccesses")
    except ProbeError as exc:
        out.warn(exc, "RTSP port (/ISAPI/Security/adminAccesses)")
        return 554
    for item in findall(root, "AdminAccessProtocol"):
        if (text(item, "protocol") or "").upper() == "RTSP":
            return number(text(item, "portNo")) or 554
    return 554


async def _optional(session: VendorSession, path: str, out: VendorReadout) -> Any:
    try:
        return await get(session, path)
    except AuthFailed:
        raise  # a credential that stops working mid-read (a lock) ends the read
    except ProbeError as exc:
        out.warn(exc, path)
        return None


async def read_isapi(session: VendorSession, *, host: str) -> VendorReadout:
    """Read one Hikvision device; the first call decides about credentials (raises AuthFailed/Locked)."""
    out = VendorReadout(protocol="isapi")
    device = _identity(await get(session, "/ISAPI/System/deviceInfo"))
    if (root := await _optional(session, "/ISAPI/System/time", out)) is not None:
        out.clock_offset_s = _clock_offset(root)
    if (root := await _optional(session, "/ISAPI/System/Network/interfaces", out)) is not None:
        macs = [m.lower() for nic in findall(root, "NetworkInterface") if (m := text(nic, "Link", "MACAddress"))]
        device = _with(device, macs=tuple(dict.fromkeys([*device.macs, *macs])))
    out.device = device
    rtsp_port = await _rtsp_port(session, out)
    if (root := await _optional(session, "/ISAPI/Streaming/channels", out)) is not None:
        pairs = [_profile(node, host, rtsp_port) for node in findall(root, "StreamingChannel")]
        out.profiles = tuple(p for p, _ in pairs)
        out.stream_uris = {p.token: uri for p, uri in pairs if uri}
    if (root := await _optional(session, "/ISAPI/System/Network/Integrate", out)) is not None:
        onvif = text(root, "ONVIF", "enable")
        out.onvif_enabled = None if onvif is None else onvif.lower() == "true"
    if (device.device_type or "").upper() in RECORDER_TYPES:
        await _recorder(session, out)
    return out


def _with(device: DeviceIdentity, **changes: Any) -> DeviceIdentity:
    return replace(device, **changes)


async def _recorder(session: VendorSession, out: VendorReadout) -> None:
    channels = await _optional(session, "/ISAPI/ContentMgmt/InputProxy/channels", out)
    status = await _optional(session, "/ISAPI/ContentMgmt/InputProxy/channels/status", out)
    online = {}
    for node in findall(status, "InputProxyChannelStatus"):
        flag = text(node, "online")
        online[text(node, "id")] = (None if flag is None else flag.lower() == "true", text(node, "chanDetectResult"))
    found = []
    for node in findall(channels, "InputProxyChannel"):
        number_ = number(text(node, "id"))
        if number_ is None:
            continue
        src = find(node, "sourceInputPortDescriptor")
        profs = tuple(p for p in out.profiles if p.token[:-2] == str(number_))
        main = next((p for p in profs if p.token.endswith("01")), None)
        flag, detail = online.get(str(number_), (None, None))
        days = await _retention(session, f"{number_}01", out)  # an offline camera still has old recordings
        found.append(ChannelInfo(
            channel=number_, name=text(node, "name"), address=text(src, "ipAddress"),
            protocol=text(src, "proxyProtocol"), manufacturer="Hikvision" if (text(src, "proxyProtocol") or "")
            .upper() == "HIKVISION" else None, model=text(src, "model"), serial=text(src, "serialNumber"),
            mac=(text(src, "macAddress") or "").lower() or None, firmware=text(src, "firmwareVersion"),
            online=flag, status_detail=detail, profiles=profs, stream_uri=main.stream_uri if main else None,
            retention_days=days, source="isapi"))
    out.channels = tuple(found)
    kept = [c.retention_days for c in found if c.retention_days is not None]
    out.retention_days = min(kept) if kept else None
    if (root := await _optional(session, "/ISAPI/ContentMgmt/Storage", out)) is not None:
        disks = []
        for hdd in findall(find(root, "hddList"), "hdd"):
            raw = text(hdd, "status")
            cap, free = number(text(hdd, "capacity"), float), number(text(hdd, "freeSpace"), float)
            disks.append(StorageInfo(name=text(hdd, "hddName") or f"hdd{text(hdd, 'id')}",
                                     status=_DISK_STATES.get((raw or "").lower(), raw),
                                     capacity_gb=round(cap / 1024, 1) if cap is not None else None,  # MB
                                     free_gb=round(free / 1024, 1) if free is not None else None, source="isapi"))
        out.storage = tuple(disks)


def search_body(track: str, now: datetime) -> bytes:
    """A CMSearchDescription asking for the oldest recording of ``track`` (results come oldest first)."""
    end = (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (f'<?xml version="1.0" encoding="UTF-8"?><CMSearchDescription><searchID>cctv-monitor-{track}</searchID>'
            f"<trackList><trackID>{clean(track)}</trackID></trackList><timeSpanList><timeSpan><startTime>"
            f"2000-01-01T00:00:00Z</startTime><endTime>{end}</endTime></timeSpan></timeSpanList>"
            "<maxResults>1</maxResults><searchResultPostion>0</searchResultPostion><metadataList>"
            "<metadataDescriptor>//recordType.meta.std-cgi.com</metadataDescriptor></metadataList>"
            "</CMSearchDescription>").encode()


async def _retention(session: VendorSession, track: str, out: VendorReadout) -> float | None:
    """Days from the oldest recording of ``track`` to now (None: nothing recorded or no answer)."""
    now = datetime.now(timezone.utc)
    path = "/ISAPI/ContentMgmt/search"
    try:
        root = check(await session.request("POST", path, data=search_body(track, now)), path)
    except AuthFailed:
        raise
    except ProbeError as exc:
        out.warn(exc, f"recording search, track {track}")
        return None
    start = text(find(find(root, "matchList"), "searchMatchItem"), "timeSpan", "startTime")
    try:
        oldest = datetime.fromisoformat((start or "").replace("Z", "+00:00"))
    except ValueError:
        return None
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=timezone.utc)
    return round(max(0.0, (now - oldest).total_seconds() / 86400), 1)
