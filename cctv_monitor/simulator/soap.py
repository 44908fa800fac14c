"""SOAP 1.2 replies of a simulated camera, written from string templates (never zeep).

Every value from the fleet file goes through :func:`x` (XML escaping), so hostile strings reach the
client as text, exactly like a camera whose user typed ``<script>`` into the camera name. Quirks that
must break the XML (unescaped ``&``, invalid UTF-8) are applied on purpose by the server afterwards.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable
from xml.sax.saxutils import escape

from cctv_monitor.simulator.fleet import CameraSpec, ProfileSpec

NS = {
    "env": "http://www.w3.org/2003/05/soap-envelope",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tr2": "http://www.onvif.org/ver20/media/wsdl",
    "tt": "http://www.onvif.org/ver10/schema",
    "ter": "http://www.onvif.org/ver10/error",
    "tse": "http://www.onvif.org/ver10/search/wsdl",
}
DEVICE_NS, MEDIA_NS, MEDIA2_NS, SEARCH_NS = NS["tds"], NS["trt"], NS["tr2"], NS["tse"]
PLACEHOLDER_BITRATE = 2147483647
LOCAL_TZ = "ICT-7"  # Thailand, UTC+7, no daylight saving
INVALID_UTF8_MARK = "\ue000"  # private-use char swapped for raw invalid bytes after encoding


def x(value: object) -> str:
    """XML-escape a value for text or a double-quoted attribute."""
    return escape(str(value), {'"': "&quot;"})


def envelope(body: str, header: str = "") -> str:
    """Wrap a body in a SOAP 1.2 envelope declaring the ONVIF namespaces."""
    decl = " ".join(f'xmlns:{k}="{v}"' for k, v in NS.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<env:Envelope {decl}><env:Header>{header}</env:Header>'
            f"<env:Body>{body}</env:Body></env:Envelope>")


def fault(code: str, subcode: str, reason: str, subsubcode: str | None = None) -> str:
    """A SOAP 1.2 fault body (``code`` is Sender or Receiver, subcodes are ter: names)."""
    inner = f"<env:Subcode><env:Value>{subsubcode}</env:Value></env:Subcode>" if subsubcode else ""
    return (f"<env:Fault><env:Code><env:Value>env:{code}</env:Value><env:Subcode><env:Value>{subcode}"
            f"</env:Value>{inner}</env:Subcode></env:Code><env:Reason><env:Text xml:lang=\"en\">{x(reason)}"
            "</env:Text></env:Reason></env:Fault>")


def _datetime(tag: str, moment: datetime) -> str:
    return (f"<tt:{tag}><tt:Time><tt:Hour>{moment.hour}</tt:Hour><tt:Minute>{moment.minute}</tt:Minute>"
            f"<tt:Second>{moment.second}</tt:Second></tt:Time><tt:Date><tt:Year>{moment.year}</tt:Year>"
            f"<tt:Month>{moment.month}</tt:Month><tt:Day>{moment.day}</tt:Day></tt:Date></tt:{tag}>")


def system_date_and_time(cam: CameraSpec, camera_now: datetime) -> str:
    """GetSystemDateAndTimeResponse body for the camera clock ``camera_now`` (UTC)."""
    kind = "NTP" if cam.ntp.get("servers") or cam.ntp.get("from_dhcp") else "Manual"
    local = camera_now + timedelta(hours=7)
    return (f"<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>{kind}</tt:DateTimeType>"
            f"<tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>{LOCAL_TZ}</tt:TZ></tt:TimeZone>"
            f"{_datetime('UTCDateTime', camera_now)}{_datetime('LocalDateTime', local)}"
            "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>")


def device_information(cam: CameraSpec, invalid_utf8: bool = False) -> str:
    """GetDeviceInformationResponse body."""
    bad = INVALID_UTF8_MARK if invalid_utf8 else ""
    return (f"<tds:GetDeviceInformationResponse><tds:Manufacturer>{x(cam.manufacturer)}{bad}</tds:Manufacturer>"
            f"<tds:Model>{x(cam.model)}{bad}</tds:Model><tds:FirmwareVersion>{x(cam.firmware)}</tds:FirmwareVersion>"
            f"<tds:SerialNumber>{x(cam.serial)}</tds:SerialNumber><tds:HardwareId>{x(cam.hardware_id)}"
            "</tds:HardwareId></tds:GetDeviceInformationResponse>")


def capabilities(base: str, media2: bool) -> str:
    """GetCapabilitiesResponse body; ``base`` is ``http://host:port``.

    Media2 has no slot in ver10 capabilities (``media2`` is unused here on purpose): Profile T devices
    advertise it through GetServices.
    """
    return ("<tds:GetCapabilitiesResponse><tds:Capabilities>"
            f"<tt:Device><tt:XAddr>{x(base)}/onvif/device_service</tt:XAddr>"
            "<tt:Network><tt:IPFilter>false</tt:IPFilter><tt:ZeroConfiguration>false</tt:ZeroConfiguration>"
            "<tt:IPVersion6>false</tt:IPVersion6><tt:DynDNS>false</tt:DynDNS></tt:Network>"
            "<tt:System><tt:DiscoveryResolve>true</tt:DiscoveryResolve><tt:DiscoveryBye>true</tt:DiscoveryBye>"
            "<tt:RemoteDiscovery>false</tt:RemoteDiscovery><tt:SystemBackup>false</tt:SystemBackup>"
            "<tt:SystemLogging>false</tt:SystemLogging><tt:FirmwareUpgrade>false</tt:FirmwareUpgrade>"
            "<tt:SupportedVersions><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tt:SupportedVersions>"
            "</tt:System></tt:Device>"
            f"<tt:Media><tt:XAddr>{x(base)}/onvif/media_service</tt:XAddr><tt:StreamingCapabilities>"
            "<tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP>"
            "<tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>"
            "</tds:Capabilities></tds:GetCapabilitiesResponse>")


def services(base: str, media2: bool, search: bool = False) -> str:
    """GetServicesResponse body: device and media, plus media2 (ver20) for Profile T, search for Profile G."""
    entries = [(DEVICE_NS, "device_service", 2, 60), (MEDIA_NS, "media_service", 2, 60)]
    if media2:
        entries.append((MEDIA2_NS, "media2_service", 2, 60))
    if search:
        entries.append((SEARCH_NS, "search_service", 2, 42))
    items = "".join(
        f"<tds:Service><tds:Namespace>{ns}</tds:Namespace><tds:XAddr>{x(base)}/onvif/{path}</tds:XAddr>"
        f"<tds:Version><tt:Major>{major}</tt:Major><tt:Minor>{minor}</tt:Minor></tds:Version></tds:Service>"
        for ns, path, major, minor in entries)
    return f"<tds:GetServicesResponse>{items}</tds:GetServicesResponse>"


def network_interfaces(cam: CameraSpec, address: str) -> str:
    """GetNetworkInterfacesResponse body: one interface per MAC, the first carries the address."""
    items = []
    for i, mac in enumerate(cam.macs):
        ipv4 = ""
        if i == 0:
            ipv4 = ("<tt:IPv4><tt:Enabled>true</tt:Enabled><tt:Config><tt:Manual>"
                    f"<tt:Address>{x(address)}</tt:Address><tt:PrefixLength>24</tt:PrefixLength></tt:Manual>"
                    "<tt:DHCP>false</tt:DHCP></tt:Config></tt:IPv4>")
        items.append(
            f'<tds:NetworkInterfaces token="eth{i}"><tt:Enabled>true</tt:Enabled><tt:Info><tt:Name>eth{i}</tt:Name>'
            f"<tt:HwAddress>{x(mac)}</tt:HwAddress><tt:MTU>1500</tt:MTU></tt:Info>{ipv4}</tds:NetworkInterfaces>")
    return f"<tds:GetNetworkInterfacesResponse>{''.join(items)}</tds:GetNetworkInterfacesResponse>"


def scopes(cam: CameraSpec) -> str:
    """GetScopesResponse body (name and location are Configurable, the rest Fixed)."""
    items = []
    for uri in cam.scope_uris():
        kind = "Configurable" if "/name/" in uri or "/location/" in uri else "Fixed"
        items.append(f"<tds:Scopes><tt:ScopeDef>{kind}</tt:ScopeDef><tt:ScopeItem>{x(uri)}</tt:ScopeItem></tds:Scopes>")
    return f"<tds:GetScopesResponse>{''.join(items)}</tds:GetScopesResponse>"


def hostname(cam: CameraSpec) -> str:
    """GetHostnameResponse body."""
    return (f"<tds:GetHostnameResponse><tds:HostnameInformation><tt:FromDHCP>false</tt:FromDHCP>"
            f"<tt:Name>{x(cam.hostname)}</tt:Name></tds:HostnameInformation></tds:GetHostnameResponse>")


def ntp(cam: CameraSpec) -> str:
    """GetNTPResponse body."""
    servers = []
    for server in cam.ntp.get("servers") or []:
        if all(p.isdigit() for p in str(server).split(".")) and str(server).count(".") == 3:
            servers.append(f"<tt:NTPManual><tt:Type>IPv4</tt:Type><tt:IPv4Address>{x(server)}</tt:IPv4Address>"
                           "</tt:NTPManual>")
        else:
            servers.append(f"<tt:NTPManual><tt:Type>DNS</tt:Type><tt:DNSname>{x(server)}</tt:DNSname></tt:NTPManual>")
    from_dhcp = "true" if cam.ntp.get("from_dhcp") else "false"
    return (f"<tds:GetNTPResponse><tds:NTPInformation><tt:FromDHCP>{from_dhcp}</tt:FromDHCP>{''.join(servers)}"
            "</tds:NTPInformation></tds:GetNTPResponse>")


def _claimed(cam: CameraSpec, prof: ProfileSpec) -> tuple[float, int]:
    """(fps, bitrate) as the camera claims them, with placeholder quirks applied."""
    fps = 30 if cam.has("hardcoded_fps") else prof.fps
    bitrate = PLACEHOLDER_BITRATE if cam.has("placeholder_bitrate") else prof.bitrate_kbps
    return fps, bitrate


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _max_source(cam: CameraSpec) -> tuple[int, int, float]:
    main = max(cam.profiles, key=lambda p: p.width * p.height)
    return main.width, main.height, main.fps


def video_source_configuration(cam: CameraSpec, tag: str = "tt:VideoSourceConfiguration") -> str:
    """The single video source configuration all profiles share (one sensor)."""
    width, height, _ = _max_source(cam)
    return (f'<{tag} token="VideoSourceConfig_1"><tt:Name>VideoSourceConfig_1</tt:Name>'
            f"<tt:UseCount>{len(cam.profiles)}</tt:UseCount><tt:SourceToken>VideoSource_1</tt:SourceToken>"
            f'<tt:Bounds x="0" y="0" width="{width}" height="{height}"/></{tag}>')


def video_encoder_configuration(cam: CameraSpec, prof: ProfileSpec, tag: str = "tt:VideoEncoderConfiguration") -> str:
    """Media ver10 VideoEncoderConfiguration (H264 / JPEG; never called for H.265 encoders)."""
    fps, bitrate = _claimed(cam, prof)
    h264 = ""
    if prof.encoding == "H264":
        gov = "" if cam.has("missing_govlength") else f"<tt:GovLength>{prof.gov_length}</tt:GovLength>"
        h264 = f"<tt:H264>{gov}<tt:H264Profile>Main</tt:H264Profile></tt:H264>"
    return (f'<{tag} token="VideoEncoder_{x(prof.token)}"><tt:Name>{x(prof.name)}</tt:Name><tt:UseCount>1</tt:UseCount>'
            f"<tt:Encoding>{prof.encoding}</tt:Encoding><tt:Resolution><tt:Width>{prof.width}</tt:Width>"
            f"<tt:Height>{prof.height}</tt:Height></tt:Resolution><tt:Quality>{_num(prof.quality)}</tt:Quality>"
            f"<tt:RateControl><tt:FrameRateLimit>{int(round(fps))}</tt:FrameRateLimit>"
            f"<tt:EncodingInterval>1</tt:EncodingInterval><tt:BitrateLimit>{bitrate}</tt:BitrateLimit>"
            f"</tt:RateControl>{h264}<tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type>"
            "<tt:IPv4Address>0.0.0.0</tt:IPv4Address></tt:Address><tt:Port>0</tt:Port><tt:TTL>0</tt:TTL>"
            "<tt:AutoStart>false</tt:AutoStart></tt:Multicast><tt:SessionTimeout>PT60S</tt:SessionTimeout>"
            f"</{tag}>")


def media1_profile(cam: CameraSpec, prof: ProfileSpec, tag: str = "trt:Profiles") -> str:
    """A Media ver10 profile. An H.265 profile is listed without its encoder configuration.

    Why: the ver10 schema's VideoEncoding enum has no H265. Dahua firmware (see
    GuilhermeC18/node-onvif#78) lists the profile but leaves out the VideoEncoderConfiguration when the
    stream is H.265; others mislabel it H264 (quatanium/python-onvif#96), which would be a lie we do not
    want the compliance engine to learn from. Clients must read Media2 for the codec.
    """
    enc = video_encoder_configuration(cam, prof) if prof.encoding != "H265" else ""
    return (f'<{tag} token="{x(prof.token)}" fixed="true"><tt:Name>{x(prof.name)}</tt:Name>'
            f"{video_source_configuration(cam)}{enc}</{tag}>")


def media1_profiles(cam: CameraSpec) -> str:
    """Media ver10 GetProfilesResponse body."""
    return f"<trt:GetProfilesResponse>{''.join(media1_profile(cam, p) for p in cam.profiles)}</trt:GetProfilesResponse>"


def media1_get_profile(cam: CameraSpec, prof: ProfileSpec) -> str:
    """Media ver10 GetProfileResponse body."""
    return f"<trt:GetProfileResponse>{media1_profile(cam, prof, 'trt:Profile')}</trt:GetProfileResponse>"


def media1_encoder_configurations(cam: CameraSpec) -> str:
    """Media ver10 GetVideoEncoderConfigurationsResponse body (H.265 encoders left out, see above)."""
    items = "".join(video_encoder_configuration(cam, p, "trt:Configurations") for p in cam.profiles
                    if p.encoding != "H265")
    return f"<trt:GetVideoEncoderConfigurationsResponse>{items}</trt:GetVideoEncoderConfigurationsResponse>"


def media1_video_sources(cam: CameraSpec) -> str:
    """Media ver10 GetVideoSourcesResponse body."""
    width, height, fps = _max_source(cam)
    return (f'<trt:GetVideoSourcesResponse><trt:VideoSources token="VideoSource_1"><tt:Framerate>{_num(fps)}'
            f"</tt:Framerate><tt:Resolution><tt:Width>{width}</tt:Width><tt:Height>{height}</tt:Height>"
            "</tt:Resolution></trt:VideoSources></trt:GetVideoSourcesResponse>")


def media_uri(tag: str, uri: str, raw_uri: bool = False) -> str:
    """Media ver10 GetStreamUri/GetSnapshotUri response body; ``raw_uri`` skips escaping (a quirk)."""
    text = uri if raw_uri else x(uri)
    return (f"<trt:{tag}Response><trt:MediaUri><tt:Uri>{text}</tt:Uri>"
            "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false"
            "</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:" + tag + "Response>")


def media2_profiles(cam: CameraSpec, profiles: Iterable[ProfileSpec]) -> str:
    """Media2 (ver20) GetProfilesResponse body with encoders (H265 reported as such)."""
    items = []
    for prof in profiles:
        fps, bitrate = _claimed(cam, prof)
        gov = "" if cam.has("missing_govlength") else f' GovLength="{prof.gov_length}"'
        codec_profile = {"H264": ' Profile="Main"', "H265": ' Profile="Main"'}.get(prof.encoding, "")
        encoder = (f'<tr2:VideoEncoder token="VideoEncoder_{x(prof.token)}"{gov}{codec_profile}>'
                   f"<tt:Name>{x(prof.name)}</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>{prof.encoding}"
                   f"</tt:Encoding><tt:Resolution><tt:Width>{prof.width}</tt:Width><tt:Height>{prof.height}"
                   '</tt:Height></tt:Resolution><tt:RateControl ConstantBitRate="false">'
                   f"<tt:FrameRateLimit>{_num(float(fps))}</tt:FrameRateLimit><tt:BitrateLimit>{bitrate}"
                   "</tt:BitrateLimit></tt:RateControl><tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type>"
                   "<tt:IPv4Address>0.0.0.0</tt:IPv4Address></tt:Address><tt:Port>0</tt:Port><tt:TTL>0</tt:TTL>"
                   f"<tt:AutoStart>false</tt:AutoStart></tt:Multicast><tt:Quality>{_num(prof.quality)}</tt:Quality>"
                   "</tr2:VideoEncoder>")
        items.append(f'<tr2:Profiles token="{x(prof.token)}" fixed="true"><tr2:Name>{x(prof.name)}</tr2:Name>'
                     f"<tr2:Configurations>{video_source_configuration(cam, 'tr2:VideoSource')}{encoder}"
                     "</tr2:Configurations></tr2:Profiles>")
    return f"<tr2:GetProfilesResponse>{''.join(items)}</tr2:GetProfilesResponse>"


def media2_stream_uri(uri: str, raw_uri: bool = False) -> str:
    """Media2 GetStreamUriResponse body."""
    text = uri if raw_uri else x(uri)
    return f"<tr2:GetStreamUriResponse><tr2:Uri>{text}</tr2:Uri></tr2:GetStreamUriResponse>"


def media2_snapshot_uri(uri: str) -> str:
    """Media2 GetSnapshotUriResponse body."""
    return f"<tr2:GetSnapshotUriResponse><tr2:Uri>{x(uri)}</tr2:Uri></tr2:GetSnapshotUriResponse>"


XXE_DOCTYPE = (
    '<!DOCTYPE env:Envelope [\n'
    '  <!ENTITY xxe SYSTEM "file:///etc/passwd">\n'
    '  <!ENTITY lol "lol">\n'
    '  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
    '  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">\n'
    '  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">\n'
    '  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">\n'
    '  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">\n'
    '  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">\n'
    '  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">\n'
    '  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">\n'
    '  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">\n'
    ']>\n'
)


def recording_summary(data_from: datetime, data_until: datetime, count: int) -> str:
    """GetRecordingSummaryResponse body (Profile G search service)."""
    def stamp(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    return (f"<tse:GetRecordingSummaryResponse><tse:Summary><tt:DataFrom>{stamp(data_from)}</tt:DataFrom>"
            f"<tt:DataUntil>{stamp(data_until)}</tt:DataUntil><tt:NumberRecordings>{count}</tt:NumberRecordings>"
            "</tse:Summary></tse:GetRecordingSummaryResponse>")
