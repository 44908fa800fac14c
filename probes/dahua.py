"""Dahua HTTP API (CGI) over Digest: magicBox identity, Encode streams, network, RTSP port; recorders'
remote devices, their connection state, disks and the oldest recording per channel (mediaFileFind).

Replies are ``key=value`` lines (``table.Encode[0].MainFormat[0].Video.Width=1920``); failures are a
body starting with ``Error``, on some firmware with status 200, so the body is checked, not only the
status. A 401 whose body names a lock means the account is locked: nothing more is tried.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta


from probes.errors import AuthFailed, MalformedReply, NotSupported, ProbeError
from probes.results import ChannelInfo, DeviceIdentity, MediaProfile, StorageInfo, redact_uri
from probes.vendor_http import HttpReply, VendorReadout, VendorSession, auth_error, clean, excerpt, number

LOGGER = logging.getLogger(__name__)

RECORDER_WORDS = ("NVR", "XVR", "DVR", "HCVR", "IVSS", "EVS")
_CODECS = {"H.264": "H264", "H.264H": "H264", "H.264B": "H264", "H.265": "H265", "MJPG": "JPEG", "MJPEG": "JPEG"}
_KEY = re.compile(r"^[A-Za-z0-9_.\[\]:-]{1,200}$")
_MAX_LINES = 20000


def parse_kv(reply: HttpReply, what: str) -> dict[str, str]:
    """``key=value`` lines of a reply; ``Error`` bodies (any status), HTML pages and junk are mapped."""
    if reply.status == 401:
        raise auth_error(reply, what, b"lock" in reply.body.lower())
    body = reply.text.strip()
    if reply.is_html:
        raise MalformedReply(f"{what}: HTTP {reply.status} with a web page (log-in or error page) instead of "
                             "key=value lines: the HTTP API is off or behind the web log-in",
                             excerpt=excerpt(reply.body))
    if body.lower().startswith("error"):
        detail = clean(" ".join(body.splitlines()[1:2])) or "no detail"
        raise NotSupported(f"{what}: the device answered Error ({detail}) with HTTP {reply.status}")
    if reply.status >= 300:
        raise MalformedReply(f"{what}: HTTP {reply.status}", excerpt=excerpt(reply.body))
    if body.upper() == "OK":
        return {}  # actions (findFile, close, destroy) answer a bare OK
    values: dict[str, str] = {}
    for line in body.splitlines()[:_MAX_LINES]:
        key, sep, value = line.partition("=")
        if sep and _KEY.match(key.strip()):
            values[key.strip()] = clean(value, 512) or ""
    if body and not values:
        raise MalformedReply(f"{what}: reply has no key=value lines", excerpt=excerpt(reply.body))
    return values


async def cgi(session: VendorSession, path: str) -> dict[str, str]:
    """GET one CGI call and parse its lines."""
    return parse_kv(await session.request("GET", path), path.partition("&")[0])


async def _optional(session: VendorSession, path: str, out: VendorReadout) -> dict[str, str]:
    try:
        return await cgi(session, path)
    except AuthFailed:
        raise
    except ProbeError as exc:
        out.warn(exc, path.partition("&")[0])
        return {}


def _firmware(value: str | None) -> str | None:
    if not value:
        return None
    version, _, build = value.partition(",build:")
    return f"{version} build {build}" if build else version


def _profiles(values: dict[str, str], index: int, host: str, port: int | None) -> tuple[list[MediaProfile], dict]:
    profiles, uris = [], {}
    for part, subtype in [("MainFormat[0]", 0), *[(f"ExtraFormat[{i}]", i + 1) for i in range(3)]]:
        key = f"table.Encode[{index}].{part}"
        if f"{key}.Video.Width" not in values or values.get(f"{key}.VideoEnable") == "false":
            continue
        video = f"{key}.Video"
        uri = f"rtsp://{host}:{port}/cam/realmonitor?channel={index + 1}&subtype={subtype}" if port else None
        token = f"{index + 1}-{subtype}"
        codec = values.get(f"{video}.Compression")
        profiles.append(MediaProfile(
            token=token, name="mainStream" if subtype == 0 else f"extraStream{subtype}",
            encoding=_CODECS.get(codec or "", codec), width=number(values.get(f"{video}.Width")),
            height=number(values.get(f"{video}.Height")), fps=number(values.get(f"{video}.FPS"), float),
            bitrate_kbps=number(values.get(f"{video}.BitRate")), gov_length=number(values.get(f"{video}.GOP")),
            stream_uri=redact_uri(uri), media_service="dahua", video_source_token=str(index + 1)))
        if uri:
            uris[token] = uri
    return profiles, uris


async def read_dahua(session: VendorSession, *, host: str) -> VendorReadout:
    """Read one Dahua device; the first call decides about credentials (raises AuthFailed/Locked)."""
    out = VendorReadout(protocol="dahua")
    info = await cgi(session, "/cgi-bin/magicBox.cgi?action=getSystemInfo")
    soft = await _optional(session, "/cgi-bin/magicBox.cgi?action=getSoftwareVersion", out)
    net = await _optional(session, "/cgi-bin/configManager.cgi?action=getConfig&name=Network", out)
    iface = net.get("table.Network.DefaultInterface", "eth0")
    mac = (net.get(f"table.Network.{iface}.PhysicalAddress") or "").lower()
    model = info.get("deviceType")
    out.device = DeviceIdentity(manufacturer="Dahua", model=model, serial=info.get("serialNumber"),
                                firmware=_firmware(soft.get("version")), hardware_id=info.get("hardwareVersion"),
                                macs=(mac,) if len(mac) == 17 else (), hostname=net.get("table.Network.Hostname"),
                                device_type="NVR" if _is_recorder(model) else "IPC")
    rtsp = await _optional(session, "/cgi-bin/configManager.cgi?action=getConfig&name=RTSP", out)
    port = number(rtsp.get("table.RTSP.Port")) or 554
    encode = await _optional(session, "/cgi-bin/configManager.cgi?action=getConfig&name=Encode", out)
    indexes = sorted({int(m.group(1)) for k in encode if (m := re.match(r"table\.Encode\[(\d+)\]", k))})
    profiles, uris = [], {}
    for index in indexes[:256]:
        profs, found = _profiles(encode, index, host, port)
        profiles += profs
        uris.update(found)
    out.profiles, out.stream_uris = tuple(profiles), uris
    if _is_recorder(model):
        await _recorder(session, out)
    return out


def _is_recorder(model: str | None) -> bool:
    upper = (model or "").upper()
    return any(word in upper for word in RECORDER_WORDS)


async def _recorder(session: VendorSession, out: VendorReadout) -> None:
    remote = await _optional(session, "/cgi-bin/configManager.cgi?action=getConfig&name=RemoteDevice", out)
    state = await _optional(session, "/cgi-bin/LogicDeviceManager.cgi?action=getCameraState&uniqueChannels[0]=-1", out)
    online: dict[int, tuple[bool, str]] = {}
    for key, value in state.items():
        if m := re.match(r"states\[(\d+)\]\.connectionState$", key):
            channel = number(state.get(f"states[{m.group(1)}].channel"))
            if channel is not None:
                online[channel + 1] = (value.lower() == "connected", value)
    prefixes = sorted({m.group(1) for k in remote if (m := re.match(r"(table\.RemoteDevice\.[^.]+)\.", k))})
    now = await _device_now(session, out)
    channels = []
    for i, prefix in enumerate(prefixes[:256]):
        if remote.get(f"{prefix}.Enable") == "false":
            continue
        m = re.search(r"_(\d+)$", prefix)
        number_ = int(m.group(1)) + 1 if m else i + 1
        profs = tuple(p for p in out.profiles if p.video_source_token == str(number_))
        flag, detail = online.get(number_, (None, None))
        channels.append(ChannelInfo(
            channel=number_, name=remote.get(f"{prefix}.Name") or None, address=remote.get(f"{prefix}.Address"),
            protocol=remote.get(f"{prefix}.ProtocolType"), manufacturer=remote.get(f"{prefix}.Vendor") or None,
            model=remote.get(f"{prefix}.DeviceType") or None, serial=remote.get(f"{prefix}.SerialNo") or None,
            mac=(remote.get(f"{prefix}.Mac") or "").lower() or None, firmware=remote.get(f"{prefix}.Version") or None,
            online=flag, status_detail=detail, profiles=profs, stream_uri=profs[0].stream_uri if profs else None,
            retention_days=await _retention(session, number_, now, out) if now else None, source="dahua"))
    out.channels = tuple(channels)
    kept = [c.retention_days for c in channels if c.retention_days is not None]
    out.retention_days = min(kept) if kept else None
    disks = await _optional(session, "/cgi-bin/storageDevice.cgi?action=getDeviceAllInfo", out)
    out.storage = tuple(_disks(disks))


def _disks(values: dict[str, str]) -> list[StorageInfo]:
    out = []
    for idx in sorted({int(m.group(1)) for k in values if (m := re.match(r"list\.info\[(\d+)\]\.", k))}):
        key = f"list.info[{idx}]"
        total = number(values.get(f"{key}.Detail[0].TotalBytes"), float)
        used = number(values.get(f"{key}.Detail[0].UsedBytes"), float)
        failed = values.get(f"{key}.Detail[0].IsError") == "true" or values.get(f"{key}.State", "").lower() == "error"
        out.append(StorageInfo(name=values.get(f"{key}.Name") or f"disk{idx}", status="failed" if failed else "ok",
                               capacity_gb=round(total / 1e9, 1) if total is not None else None,
                               free_gb=round((total - used) / 1e9, 1) if total is not None and used is not None
                               else None, source="dahua"))
    return out


async def _device_now(session: VendorSession, out: VendorReadout) -> datetime | None:
    # Recording times are the device's local time: compare them with its own clock, never ours.
    values = await _optional(session, "/cgi-bin/global.cgi?action=getCurrentTime", out)
    try:
        return datetime.strptime(values.get("result", ""), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None


async def _retention(session: VendorSession, channel: int, now: datetime, out: VendorReadout) -> float | None:
    """Days from the oldest recording of ``channel`` to the device's now, via a mediaFileFind finder."""
    base = "/cgi-bin/mediaFileFind.cgi?action="
    try:
        created = await cgi(session, f"{base}factory.create")
    except AuthFailed:
        raise
    except ProbeError as exc:
        out.warn(exc, f"recording search, channel {channel}")
        return None
    oid = created.get("result", "")
    if not oid.isdigit():
        return None
    end = (now + timedelta(days=1)).strftime("%Y-%m-%d%%20%H:%M:%S")
    try:
        await cgi(session, f"{base}findFile&object={oid}&condition.Channel={channel}"
                           f"&condition.StartTime=2000-01-01%2000:00:00&condition.EndTime={end}")
        found = await cgi(session, f"{base}findNextFile&object={oid}&count=1")
    except AuthFailed:
        raise
    except NotSupported:
        return None  # Error from findFile: nothing recorded on this channel
    except ProbeError as exc:
        out.warn(exc, f"recording search, channel {channel}")
        return None
    finally:
        for action in ("close", "destroy"):
            try:
                await cgi(session, f"{base}{action}&object={oid}")
            except AuthFailed:
                raise
            except ProbeError:
                pass
    try:
        oldest = datetime.strptime(found.get("items[0].StartTime", ""), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return round(max(0.0, (now - oldest).total_seconds() / 86400), 1)
