"""Hikvision ISAPI of a simulated camera or recorder (``/ISAPI/...``), written from string templates.

Replies use the ``ver10`` or ``ver20`` namespace as the fleet file says (firmware differs), Digest
realm = the model, 401 bodies are ``userCheck`` XML carrying ``lockStatus``/``retryLoginTime``, errors
are ``ResponseStatus`` with ``statusCode``/``subStatusCode``; ``maxFrameRate`` is in hundredths and
bitrates in kbps. Recorders list their PoE/LAN cameras under InputProxy and stream them as
``/Streaming/Channels/<channel>01``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web
from lxml import etree

from cctv_monitor.simulator.soap import x
from cctv_monitor.simulator.vendor_http import (
    HTML_LOGIN, XXE_DOCTYPE, camera_now, check_digest, day_segments, huge_reply, recording_span)
from cctv_monitor.simulator.vendor_spec import ISAPI_NAMESPACES

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
_CODECS = {"H264": "H.264", "H265": "H.265", "JPEG": "MJPEG"}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _ns(b: Any) -> str:
    return ISAPI_NAMESPACES[b.spec.vendor.isapi_namespace]


def _doc(b: Any, root: str, inner: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} version="2.0" xmlns="{_ns(b)}">{inner}</{root}>'


def _xml(b: Any, text: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=text, status=status, content_type="application/xml", charset="UTF-8",
                        headers={"Server": "App-webs/", **(headers or {})})


def response_status(b: Any, url: str, code: int, string: str, sub: str, status: int) -> web.Response:
    """An ISAPI ``ResponseStatus`` error reply."""
    return _xml(b, _doc(b, "ResponseStatus", f"<requestURL>{x(url)}</requestURL><statusCode>{code}</statusCode>"
                        f"<statusString>{x(string)}</statusString><subStatusCode>{x(sub)}</subStatusCode>"), status)


def _device_info(b: Any) -> str:
    cam = b.spec
    version, _, build = cam.firmware.partition(" ")
    kind = "NVR" if cam.vendor.kind == "recorder" else "IPCamera"
    name = x(cam.scopes.get("name") or cam.name)
    if cam.vendor.quirk("xxe") is not None:
        name = "&xxe;&lol3;"
    return _doc(b, "DeviceInfo", f"<deviceName>{name}</deviceName><deviceID>{x(cam.serial[-12:])}</deviceID>"
                f"<model>{x(cam.model)}</model><serialNumber>{x(cam.serial)}</serialNumber>"
                f"<macAddress>{x(cam.macs[0])}</macAddress><firmwareVersion>{x(version)}</firmwareVersion>"
                f"<firmwareReleasedDate>{x(build)}</firmwareReleasedDate><deviceType>{kind}</deviceType>"
                f"<telecontrolID>88</telecontrolID>")


def _time(b: Any) -> str:
    local = camera_now(b).astimezone(timezone(timedelta(hours=7)))
    mode = "NTP" if b.spec.ntp.get("servers") else "manual"
    return _doc(b, "Time", f"<timeMode>{mode}</timeMode><localTime>{local.isoformat(timespec='seconds')}</localTime>"
                "<timeZone>CST-7:00:00</timeZone>")


def _interfaces(b: Any) -> str:
    return _doc(b, "NetworkInterfaceList", "<NetworkInterface><id>1</id><IPAddress><ipVersion>v4</ipVersion>"
                f"<addressingType>static</addressingType><ipAddress>{x(b.host)}</ipAddress>"
                "<subnetMask>255.255.255.0</subnetMask></IPAddress>"
                f"<Link><MACAddress>{x(b.spec.macs[0])}</MACAddress><autoNegotiation>true</autoNegotiation>"
                "<speed>100</speed><duplex>full</duplex><MTU>1500</MTU></Link></NetworkInterface>")


def _stream_channel(sid: str, name: str, prof: Any, enabled: bool) -> str:
    fps = int(round(prof.fps * 100))
    return (f"<StreamingChannel><id>{sid}</id><channelName>{x(name)}</channelName><enabled>{str(enabled).lower()}"
            "</enabled><Transport><ControlProtocolList><ControlProtocol><streamingTransport>RTSP</streamingTransport>"
            "</ControlProtocol></ControlProtocolList></Transport><Video><enabled>true</enabled>"
            f"<videoInputChannelID>{sid[:-2]}</videoInputChannelID><videoCodecType>{_CODECS[prof.encoding]}"
            f"</videoCodecType><videoResolutionWidth>{prof.width}</videoResolutionWidth><videoResolutionHeight>"
            f"{prof.height}</videoResolutionHeight><videoQualityControlType>VBR</videoQualityControlType>"
            f"<constantBitRate>{prof.bitrate_kbps}</constantBitRate><vbrUpperCap>{prof.bitrate_kbps}</vbrUpperCap>"
            f"<maxFrameRate>{fps}</maxFrameRate><GovLength>{prof.gov_length}</GovLength></Video></StreamingChannel>")


def _streaming(b: Any) -> str:
    cam = b.spec
    if cam.vendor.kind == "recorder":
        items = [_stream_channel(f"{ch.channel}{i + 1:02d}", ch.name, p, True)
                 for ch in cam.vendor.channels for i, p in enumerate(ch.profiles)]
    else:
        items = [_stream_channel(f"1{i + 1:02d}", cam.scopes.get("name") or cam.name, p, True)
                 for i, p in enumerate(cam.profiles)]
    return _doc(b, "StreamingChannelList", "".join(items))


def _admin_accesses(b: Any) -> str:
    items = [("HTTP", b.onvif_port), ("RTSP", b.rtsp_port), ("HTTPS", 443), ("DEV_MANAGE", 8000)]
    return _doc(b, "AdminAccessProtocolList", "".join(
        f"<AdminAccessProtocol><id>{i + 1}</id><enabled>true</enabled><protocol>{p}</protocol>"
        f"<portNo>{port}</portNo></AdminAccessProtocol>" for i, (p, port) in enumerate(items)))


def _integrate(b: Any) -> str:
    on = str(b.spec.vendor.onvif).lower()
    return _doc(b, "Integrate", f"<CGI><enable>false</enable></CGI><ONVIF><enable>{on}</enable>"
                "<certificateType>digest</certificateType></ONVIF><ISAPI><enable>true</enable></ISAPI>")


def _source(ch: Any) -> str:
    return (f"<sourceInputPortDescriptor><proxyProtocol>HIKVISION</proxyProtocol><addressingFormatType>ipaddress"
            f"</addressingFormatType><ipAddress>{x(ch.address)}</ipAddress><managePortNo>8000</managePortNo>"
            f"<srcInputPort>1</srcInputPort><userName>admin</userName><streamType>auto</streamType>"
            f"<model>{x(ch.model)}</model><serialNumber>{x(ch.serial)}</serialNumber>"
            f"<firmwareVersion>{x(ch.firmware)}</firmwareVersion><macAddress>{x(ch.mac)}</macAddress>"
            "</sourceInputPortDescriptor>")


def _proxy_channels(b: Any) -> str:
    return _doc(b, "InputProxyChannelList", "".join(
        f"<InputProxyChannel><id>{ch.channel}</id><name>{x(ch.name)}</name>{_source(ch)}</InputProxyChannel>"
        for ch in b.spec.vendor.channels))


def _proxy_status(b: Any) -> str:
    return _doc(b, "InputProxyChannelStatusList", "".join(
        f"<InputProxyChannelStatus><id>{ch.channel}</id>{_source(ch)}<online>{str(ch.online).lower()}</online>"
        f"<chanDetectResult>{'connect' if ch.online else 'netUnreachable'}</chanDetectResult>"
        "</InputProxyChannelStatus>" for ch in b.spec.vendor.channels))


def _storage(b: Any) -> str:
    hdds = "".join(
        f"<hdd><id>{d.id}</id><hddName>hdd{d.id}</hddName><hddPath></hddPath><hddType>SATA</hddType>"
        f"<status>{d.status}</status><capacity>{int(d.capacity_gb * 1024)}</capacity>"
        f"<freeSpace>{int(d.free_gb * 1024)}</freeSpace><property>RW</property></hdd>" for d in b.spec.vendor.disks)
    return _doc(b, "storage", f"<hddList>{hdds}</hddList><nasList></nasList>")


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str | None, default: datetime) -> datetime:
    try:
        value = datetime.fromisoformat((text or "").strip().replace("Z", "+00:00"))
    except ValueError:
        return default
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _search(b: Any, body: bytes) -> str | None:
    """CMSearchResult for a CMSearchDescription; None when the request is not one."""
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError:
        return None

    def find(name: str) -> str | None:
        el = next((e for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).localname == name), None)
        return el.text if el is not None else None

    now = camera_now(b)
    track = (find("trackID") or "101").strip()
    start, end = _parse_time(find("startTime"), _EPOCH), _parse_time(find("endTime"), now)
    try:
        limit = max(1, min(int(find("maxResults") or 40), 400))
        position = max(0, int(find("searchResultPostion") or find("searchResultPosition") or 0))
    except ValueError:
        return None
    vendor = b.spec.vendor
    days = vendor.recording_days
    if vendor.kind == "recorder":
        ch = next((c for c in vendor.channels if f"{c.channel}01" == track or f"{c.channel}02" == track), None)
        days = ch.recording_days if ch is not None else None
    segments = day_segments(recording_span(days, now), start, end)
    page = segments[position:position + limit]
    more = position + limit < len(segments)
    state = "MORE" if more else ("OK" if page else "NO MATCHES")
    items = "".join(
        f"<searchMatchItem><sourceID>{{{track}}}</sourceID><trackID>{x(track)}</trackID><timeSpan><startTime>"
        f"{_iso(s)}</startTime><endTime>{_iso(e)}</endTime></timeSpan><mediaSegmentDescriptor><contentType>video"
        f"</contentType><codecType>H.264-BP</codecType><playbackURI>rtsp://{x(b.host)}/Streaming/tracks/{x(track)}"
        f"/?starttime={s:%Y%m%dT%H%M%SZ}&amp;endtime={e:%Y%m%dT%H%M%SZ}</playbackURI></mediaSegmentDescriptor>"
        "</searchMatchItem>" for s, e in page)
    return _doc(b, "CMSearchResult", f"<searchID>{x(find('searchID') or '')}</searchID><responseStatus>true"
                f"</responseStatus><responseStatusStrg>{state}</responseStatusStrg><numOfMatches>{len(page)}"
                f"</numOfMatches><matchList>{items}</matchList>")


_GET = {
    "/ISAPI/System/deviceInfo": _device_info,
    "/ISAPI/System/time": _time,
    "/ISAPI/System/Network/interfaces": _interfaces,
    "/ISAPI/Streaming/channels": _streaming,
    "/ISAPI/Security/adminAccesses": _admin_accesses,
    "/ISAPI/System/Network/Integrate": _integrate,
}
_RECORDER_GET = {
    "/ISAPI/ContentMgmt/InputProxy/channels": _proxy_channels,
    "/ISAPI/ContentMgmt/InputProxy/channels/status": _proxy_status,
}


def _user_check(b: Any, denied: Any) -> web.Response:
    lock = "lock" if denied.locked else "unlock"
    body = _doc(b, "userCheck", f"<statusValue>401</statusValue><statusString>Unauthorized</statusString>"
                f"<lockStatus>{lock}</lockStatus><unlockTime>{int(denied.locked)}</unlockTime>"
                f"<retryLoginTime>{denied.remaining}</retryLoginTime>")
    return _xml(b, body, 401, {"WWW-Authenticate": denied.challenge})


async def handle(request: web.Request, b: Any) -> web.StreamResponse:
    """Answer one ``/ISAPI/...`` request for binding ``b``."""
    vendor = b.spec.vendor
    if "isapi" not in vendor.protocols:
        return web.Response(status=404, text="Not Found")
    denied = check_digest(request, b, b.vendor_digest)
    if denied is not None:
        return _user_check(b, denied)
    path = request.path.rstrip("/")
    if vendor.quirk("html_login") is not None:
        return web.Response(text=HTML_LOGIN, content_type="text/html", headers={"Server": "App-webs/"})
    if request.method == "POST" and path == "/ISAPI/ContentMgmt/search":
        text = _search(b, await request.read())
        if text is None:
            return response_status(b, path, 6, "Invalid XML Content", "badXmlContent", 400)
    elif request.method != "GET":
        return response_status(b, path, 4, "Invalid Operation", "methodNotAllowed", 405)
    elif path in _GET:
        text = _GET[path](b)
    elif path in _RECORDER_GET and vendor.kind == "recorder":
        text = _RECORDER_GET[path](b)
    elif path == "/ISAPI/ContentMgmt/Storage" and (vendor.disks or vendor.kind == "recorder"):
        text = _storage(b)
    else:
        return response_status(b, path, 4, "Invalid Operation", "notSupport", 403)
    if vendor.quirk("xxe") is not None:
        text = text.replace("\n", "\n" + XXE_DOCTYPE, 1)
    if (q := vendor.quirk("huge_reply")) is not None and path == "/ISAPI/System/deviceInfo":
        head, _, tail = text.encode().partition(b"<model>")
        return await huge_reply(request, head + b"<!--", b"-->" + b"<model>" + tail,
                                float(q.get("size_mb", 64)), "application/xml")
    return _xml(b, text)
