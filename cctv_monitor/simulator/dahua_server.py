"""Dahua HTTP API (CGI) of a simulated camera or recorder (``/cgi-bin/...``): ``key=value`` lines.

Failures are a text body starting with ``Error`` (HTTP 400, or 200 with the ``error_200`` vendor quirk,
as some firmware does); Digest realm ``Login to <serial>``; recorders list their cameras in the
``RemoteDevice`` config, their state in ``LogicDeviceManager`` and their recordings through the
``mediaFileFind`` finder objects.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from cctv_monitor.simulator.vendor_http import (
    HTML_LOGIN, camera_now, check_digest, day_segments, huge_reply, recording_span)

_CODECS = {"H264": "H.264", "H265": "H.265", "JPEG": "MJPG"}
_LOCAL = timezone(timedelta(hours=7))
_finder_ids = itertools.count(3000)


def _clean(value: object) -> str:
    # key=value lines: a camera string must not start a new line of its own
    return str(value).replace("\r", " ").replace("\n", " ")


def _text(lines: list[str], status: int = 200) -> web.Response:
    return web.Response(text="".join(f"{line}\r\n" for line in lines), status=status, content_type="text/plain",
                        headers={"Server": "DNVRS-Webs"})


def error(b: Any, message: str = "Bad Request!") -> web.Response:
    """Dahua's failure body; some firmware sends it with status 200."""
    status = 200 if b.spec.vendor.quirk("error_200") is not None else 400
    return _text(["Error", message], status)


def _local(moment: datetime) -> str:
    return moment.astimezone(_LOCAL).strftime("%Y-%m-%d %H:%M:%S")


def _magic_box(b: Any, action: str) -> list[str] | None:
    cam = b.spec
    kind = "NVR" if cam.vendor.kind == "recorder" else "IPC"
    version, _, build = cam.firmware.partition(" ")
    answers = {
        "getDeviceType": [f"type={_clean(cam.model)}"],
        "getSerialNo": [f"sn={_clean(cam.serial)}"],
        "getSoftwareVersion": [f"version={_clean(version)},build:{_clean(build.removeprefix('build '))}"],
        "getMachineName": [f"name={_clean(cam.scopes.get('name') or cam.name)}"],
        "getHardwareVersion": [f"version={_clean(cam.hardware_id)}"],
        "getSystemInfo": [f"deviceType={_clean(cam.model)}", f"processor={kind}", f"serialNumber={_clean(cam.serial)}",
                          f"hardwareVersion={_clean(cam.hardware_id)}", "updateSerial=DH"],
        "getVendor": ["vendor=Dahua"],
    }
    return answers.get(action)


def _format(prefix: str, prof: Any) -> list[str]:
    video = f"{prefix}.Video"
    return [f"{prefix}.VideoEnable=true", f"{video}.Compression={_CODECS[prof.encoding]}", f"{video}.Width={prof.width}",
            f"{video}.Height={prof.height}", f"{video}.FPS={prof.fps:g}", f"{video}.BitRate={prof.bitrate_kbps}",
            f"{video}.BitRateControl=CBR", f"{video}.GOP={prof.gov_length}", f"{video}.Quality=4"]


def _encode(b: Any) -> list[str]:
    vendor = b.spec.vendor
    groups = [ch.profiles for ch in vendor.channels] if vendor.kind == "recorder" else [b.spec.profiles]
    lines = []
    for index, profiles in enumerate(groups):
        for i, prof in enumerate(profiles[:4]):
            part = "MainFormat[0]" if i == 0 else f"ExtraFormat[{i - 1}]"
            lines += _format(f"table.Encode[{index}].{part}", prof)
    return lines


def _config(b: Any, name: str) -> list[str] | None:
    cam = b.spec
    if name == "Encode":
        return _encode(b)
    if name == "Network":
        return ["table.Network.DefaultInterface=eth0", f"table.Network.Hostname={_clean(cam.hostname)}",
                f"table.Network.eth0.IPAddress={b.host}", "table.Network.eth0.SubnetMask=255.255.255.0",
                f"table.Network.eth0.PhysicalAddress={cam.macs[0]}", "table.Network.eth0.DhcpEnable=false"]
    if name == "RTSP":
        return ["table.RTSP.Enable=true", f"table.RTSP.Port={b.rtsp_port}"]
    if name == "NTP":
        servers = cam.ntp.get("servers") or []
        return [f"table.NTP.Enable={'true' if servers else 'false'}", f"table.NTP.Address={_clean(servers[0] if servers else '')}"]
    if name == "RemoteDevice" and cam.vendor.kind == "recorder":
        lines = []
        for ch in cam.vendor.channels:
            key = f"table.RemoteDevice.uuid:System_CONFIG_NETCAMERA_INFO_{ch.channel - 1}"
            lines += [f"{key}.Address={ch.address}", f"{key}.DeviceType={_clean(ch.model)}", f"{key}.Enable=true",
                      f"{key}.Name={_clean(ch.name)}", f"{key}.SerialNo={_clean(ch.serial)}", f"{key}.Mac={ch.mac}",
                      f"{key}.Port=37777", f"{key}.ProtocolType=Private", f"{key}.Vendor={_clean(ch.manufacturer)}",
                      f"{key}.Version={_clean(ch.firmware)}", f"{key}.VideoInputChannels=1"]
        return lines
    return None


def _camera_state(b: Any) -> list[str] | None:
    if b.spec.vendor.kind != "recorder":
        return None
    lines = []
    for i, ch in enumerate(b.spec.vendor.channels):
        lines += [f"states[{i}].channel={ch.channel - 1}",
                  f"states[{i}].connectionState={'Connected' if ch.online else 'Disconnected'}"]
    return lines


def _storage(b: Any) -> list[str]:
    lines = []
    for i, d in enumerate(b.spec.vendor.disks):
        total = d.capacity_gb * 1e9
        used = (d.capacity_gb - d.free_gb) * 1e9
        key = f"list.info[{i}]"
        lines += [f"{key}.Name=/dev/sd{chr(97 + i)}", f"{key}.State={'Success' if d.status == 'ok' else 'Error'}",
                  f"{key}.Detail[0].Path=/dev/sd{chr(97 + i)}1", f"{key}.Detail[0].Type=ReadWrite",
                  f"{key}.Detail[0].TotalBytes={total:.6f}", f"{key}.Detail[0].UsedBytes={used:.6f}",
                  f"{key}.Detail[0].IsError={'false' if d.status == 'ok' else 'true'}"]
    return lines


class MediaFinders:
    """The ``mediaFileFind.cgi`` finder objects of one server (create, findFile, findNextFile, close)."""

    def __init__(self) -> None:
        self._finders: dict[str, dict[str, Any]] = {}

    def handle(self, b: Any, query: Any) -> list[str] | None:
        """Lines of the reply, or None for an Error."""
        action = query.get("action", "")
        if action == "factory.create":
            oid = str(next(_finder_ids))
            self._finders[oid] = {"items": [], "pos": 0}
            return [f"result={oid}"]
        finder = self._finders.get(query.get("object", ""))
        if finder is None:
            return None
        if action == "findFile":
            return self._find(b, finder, query)
        if action == "findNextFile":
            try:
                count = max(1, min(int(query.get("count", "100")), 100))
            except ValueError:
                return None
            page = finder["items"][finder["pos"]:finder["pos"] + count]
            finder["pos"] += len(page)
            lines = [f"found={len(page)}"]
            for i, (channel, start, end) in enumerate(page):
                lines += [f"items[{i}].Channel={channel - 1}", f"items[{i}].StartTime={_local(start)}",
                          f"items[{i}].EndTime={_local(end)}", f"items[{i}].Type=dav",
                          f"items[{i}].FilePath=/mnt/dvr/{start:%Y-%m-%d}/{channel - 1}/dav/{start:%H}.dav"]
            return lines
        if action in ("close", "destroy"):
            if action == "destroy":
                self._finders.pop(query.get("object", ""), None)
            return ["OK"]
        return None

    @staticmethod
    def _find(b: Any, finder: dict[str, Any], query: Any) -> list[str] | None:
        try:
            channel = int(query.get("condition.Channel", "1"))
            start = datetime.strptime(query.get("condition.StartTime", "2000-01-01 00:00:00"), "%Y-%m-%d %H:%M:%S")
            end = datetime.strptime(query.get("condition.EndTime", "2099-01-01 00:00:00"), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return None
        vendor = b.spec.vendor
        days = vendor.recording_days
        if vendor.kind == "recorder":
            ch = next((c for c in vendor.channels if c.channel == channel), None)
            days = ch.recording_days if ch is not None else None
        span = recording_span(days, camera_now(b))
        segs = day_segments(span, start.replace(tzinfo=_LOCAL), end.replace(tzinfo=_LOCAL))
        finder["items"], finder["pos"] = [(channel, s, e) for s, e in segs], 0
        return ["OK"] if segs else None


async def handle(request: web.Request, b: Any, finders: MediaFinders) -> web.StreamResponse:
    """Answer one ``/cgi-bin/...`` request for binding ``b``."""
    vendor = b.spec.vendor
    if "dahua" not in vendor.protocols:
        return web.Response(status=404, text="Not Found")
    denied = check_digest(request, b, b.vendor_digest)
    if denied is not None:
        # A locked account is named in the body, so a client can stop instead of trying again.
        lines = ["Error", "Account locked, try again later"] if denied.locked else ["Error", "Unauthorized"]
        return web.Response(text="\r\n".join(lines) + "\r\n", status=401, content_type="text/plain",
                            headers={"WWW-Authenticate": denied.challenge, "Server": "DNVRS-Webs"})
    if vendor.quirk("html_login") is not None:
        return web.Response(text=HTML_LOGIN, content_type="text/html")
    query = request.query
    script = request.path.rpartition("/")[2]
    action = query.get("action", "")
    lines: list[str] | None = None
    if script == "magicBox.cgi":
        lines = _magic_box(b, action)
    elif script == "global.cgi" and action == "getCurrentTime":
        lines = [f"result={_local(camera_now(b))}"]
    elif script == "configManager.cgi" and action == "getConfig":
        lines = _config(b, query.get("name", ""))
    elif script == "LogicDeviceManager.cgi" and action == "getCameraState":
        lines = _camera_state(b)
    elif script == "storageDevice.cgi" and action == "getDeviceAllInfo" and (vendor.disks or vendor.kind == "recorder"):
        lines = _storage(b)
    elif script == "mediaFileFind.cgi":
        lines = finders.handle(b, query)
    if lines is None:
        return error(b)
    if (q := vendor.quirk("huge_reply")) is not None and script == "magicBox.cgi":
        body = "".join(f"{line}\r\n" for line in lines).encode()
        return await huge_reply(request, body, b"", float(q.get("size_mb", 64)), "text/plain",
                                pad=lambda n: b"x" * (n - 2) + b"\r\n")
    return _text(lines)
