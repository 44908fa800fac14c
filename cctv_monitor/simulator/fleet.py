"""Fleet files: load and validate the YAML that describes simulated cameras (see config/fleets/FORMAT.md).

Every error names the file, the camera and the key, so a typo in a fleet file is fixed in one go.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote

import yaml

from cctv_monitor.simulator.vendor_spec import VendorSpec, parse_vendor, vendor_path

LOGGER = logging.getLogger(__name__)

ENCODINGS = ("H264", "H265", "JPEG")
IMAGE_MODES = ("pattern", "black", "frozen", "blurred", "covered")
#: Quirks of real cameras (PITFALLS.md): config/fleets/quirks.yaml has one camera for each.
REAL_QUIRKS = (
    "onvif_disabled", "http_digest", "html_401", "clock_skew", "xaddrs_multi", "duplicated_port",
    "unescaped_amp", "invalid_utf8", "placeholder_bitrate", "missing_govlength", "slow", "hang", "reset",
    "huge_reply", "malformed_xml", "fault_on", "garbage_mac", "hostile_strings", "xxe", "hardcoded_fps",
    "foreign_host", "lockout",
)
#: Hostile wire behaviours of the fault matrix (simulator/faults.py): replies that never end, break off,
#: are noise or drip.
HOSTILE_QUIRKS = ("endless_reply", "reset_mid_reply", "garbage", "drip", "gzip_bomb")
QUIRKS = REAL_QUIRKS + HOSTILE_QUIRKS
HOSTILE_NAME = '<script>alert(1)</script>'
HOSTILE_LOCATION = '"><img src=x onerror=alert(2)>'
HOSTILE_MODEL = "<b>DS</b>' OR '1'='1"
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

OUIS = {"hikvision": "c0:56:e3", "dahua": "3c:ef:8c", "uniview": "24:28:fd", "shenzhen": "00:12:41"}


class FleetError(ValueError):
    """A fleet file is invalid; the message names the camera and the key."""


@dataclass(frozen=True)
class StreamSpec:
    """What the RTSP stream of a profile really delivers."""

    width: int
    height: int
    fps: int
    codec: str
    image: str = "pattern"
    gop: int = 50  # keyframe interval in frames the clip really has (JPEG: every frame is a keyframe)


@dataclass(frozen=True)
class ProfileSpec:
    """One media profile as ONVIF claims it, plus what its stream delivers."""

    token: str
    name: str
    encoding: str
    width: int
    height: int
    fps: float
    bitrate_kbps: int
    gov_length: int
    quality: float = 5.0
    stream: StreamSpec | None = None
    path: str | None = None  # RTSP path (vendor style, e.g. /Streaming/Channels/101); None: /<camera>/<token>


@dataclass(frozen=True)
class Quirk:
    """A misbehaviour of real cameras, with its parameters."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class CameraSpec:
    """One simulated camera, fully resolved (defaults merged, quirks applied to identity)."""

    name: str
    host: str
    onvif_port: int
    rtsp_port: int
    manufacturer: str
    model: str
    firmware: str
    serial: str
    hardware_id: str
    macs: list[str]
    scopes: dict[str, Any]
    username: str
    password: str
    clock_offset_s: float
    ntp: dict[str, Any]
    media2: bool
    profiles: list[ProfileSpec]
    quirks: list[Quirk]
    online: bool = True
    hostname: str = ""
    delay_ms: float = 0.0
    expect: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    vendor: VendorSpec = field(default_factory=VendorSpec)

    def quirk(self, name: str) -> Mapping[str, Any] | None:
        """Parameters of quirk ``name`` when the camera has it, else None."""
        for q in self.quirks:
            if q.name == name:
                return q.params
        return None

    def has(self, name: str) -> bool:
        """True when the camera has quirk ``name``."""
        return self.quirk(name) is not None

    @property
    def device_url(self) -> str:
        """ONVIF device service URL."""
        return f"http://{self.host}:{self.onvif_port}/onvif/device_service"

    def rtsp_path(self, profile: ProfileSpec) -> str:
        """RTSP path (and query) of ``profile``: the vendor's style when set, else ``/<camera>/<token>``."""
        return profile.path or f"/{self.name}/{profile.token}"

    def rtsp_url(self, profile: ProfileSpec) -> str:
        """RTSP URL of ``profile`` (without credentials)."""
        return f"rtsp://{self.host}:{self.rtsp_port}{self.rtsp_path(profile)}"

    @property
    def rtsp_urls(self) -> dict[str, str]:
        """RTSP URL per profile token, for profiles that serve a stream."""
        return {p.token: self.rtsp_url(p) for p in self.profiles if p.stream is not None}

    def scope_uris(self) -> list[str]:
        """ONVIF scope URIs (name/location URL-encoded)."""
        uris = ["onvif://www.onvif.org/type/video_encoder", "onvif://www.onvif.org/type/Network_Video_Transmitter"]
        for prof in self.scopes.get("profiles") or ["S"]:
            uris.append(f"onvif://www.onvif.org/Profile/{quote(str(prof), safe='')}")
        for key in ("name", "location", "hardware"):
            if self.scopes.get(key):
                uris.append(f"onvif://www.onvif.org/{key}/{quote(str(self.scopes[key]), safe='')}")
        return uris


@dataclass
class Fleet:
    """A named list of cameras."""

    name: str
    cameras: list[CameraSpec]
    source: str = "<dict>"

    def camera(self, name: str) -> CameraSpec:
        """The camera called ``name``."""
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(name)

    @property
    def online(self) -> list[CameraSpec]:
        """Cameras that are served (``online: true``)."""
        return [c for c in self.cameras if c.online]


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``over`` into a copy of ``base`` (mappings merged recursively, everything else replaced)."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class _Ctx:
    """Error context: file and camera, prefixed to every message."""

    def __init__(self, source: str, camera: str) -> None:
        self.prefix = f"{source}: camera {camera!r}"

    def fail(self, key: str, msg: str) -> FleetError:
        return FleetError(f"{self.prefix}: {key}: {msg}")

    def int(self, data: Mapping[str, Any], key: str, default: Any = None, *, lo: int = 0,
            hi: int = 2**31 - 1) -> int:
        value = data.get(key, default)
        if value is None:
            raise self.fail(key, "is required")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise self.fail(key, f"must be an integer, got {value!r}")
        if not lo <= int(value) <= hi:
            raise self.fail(key, f"must be between {lo} and {hi}, got {value!r}")
        return int(value)

    def num(self, data: Mapping[str, Any], key: str, default: Any = None) -> float:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"must be a number, got {value!r}")
        return float(value)

    def str(self, data: Mapping[str, Any], key: str, default: Any = None) -> str:
        value = data.get(key, default)
        if value is None:
            raise self.fail(key, "is required")
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise self.fail(key, f"must be a string, got {type(value).__name__}")
        return str(value)


def _parse_quirks(ctx: _Ctx, raw: Any) -> list[Quirk]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ctx.fail("quirks", "must be a list of names or {name: ..., params} mappings")
    quirks = []
    for item in raw:
        if isinstance(item, str):
            name, params = item, {}
        elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
            name, params = item["name"], {k: v for k, v in item.items() if k != "name"}
        else:
            raise ctx.fail("quirks", f"entry {item!r} must be a name or a mapping with 'name'")
        if name not in QUIRKS:
            raise ctx.fail("quirks", f"unknown quirk {name!r}; known: {', '.join(QUIRKS)}")
        if name == "fault_on" and not isinstance(params.get("operation"), str):
            raise ctx.fail("quirks", "fault_on needs 'operation' (e.g. GetProfiles)")
        quirks.append(Quirk(name, params))
    return quirks


def _parse_profile(ctx: _Ctx, raw: Any, index: int, media2: bool) -> ProfileSpec:
    key = f"profiles[{index}]"
    if not isinstance(raw, Mapping):
        raise ctx.fail(key, "must be a mapping")
    token = ctx.str(raw, "token", f"Profile_{index + 1}")
    if not _TOKEN_RE.match(token):
        raise ctx.fail(f"{key}.token", f"{token!r} must be letters, digits, '_', '.', '-'")
    encoding = ctx.str(raw, "encoding", "H264").upper()
    if encoding not in ENCODINGS:
        raise ctx.fail(f"{key}.encoding", f"{encoding!r} is not one of {', '.join(ENCODINGS)}")
    if encoding == "H265" and not media2:
        raise ctx.fail(f"{key}.encoding", "H265 is only reported through Media2: set 'media2: true'")
    width = ctx.int(raw, "width", lo=16, hi=8192)
    height = ctx.int(raw, "height", lo=16, hi=8192)
    fps = ctx.num(raw, "fps", 25)
    if not 0 < fps <= 120:
        raise ctx.fail(f"{key}.fps", f"must be in (0, 120], got {fps}")
    stream_raw = raw.get("stream", {})
    stream: StreamSpec | None
    if stream_raw is False or stream_raw is None:
        stream = None
    elif isinstance(stream_raw, Mapping):
        codec = ctx.str(stream_raw, "codec", encoding).upper()
        if codec not in ENCODINGS:
            raise ctx.fail(f"{key}.stream.codec", f"{codec!r} is not one of {', '.join(ENCODINGS)}")
        image = ctx.str(stream_raw, "image", "pattern")
        if image not in IMAGE_MODES:
            raise ctx.fail(f"{key}.stream.image", f"{image!r} is not one of {', '.join(IMAGE_MODES)}")
        s_fps = stream_raw.get("fps", fps)
        gov_length = ctx.int(raw, "gov_length", 50, lo=1)
        stream = StreamSpec(
            width=ctx.int(stream_raw, "width", width, lo=16, hi=8192),
            height=ctx.int(stream_raw, "height", height, lo=16, hi=8192),
            fps=ctx.int({"fps": s_fps}, "fps", lo=1, hi=120),
            codec=codec, image=image,
            # What the encoder really does: the claimed GovLength unless the stream says otherwise (a
            # camera claiming a GOP it does not deliver); intra-only MJPEG has a keyframe every frame.
            gop=1 if codec == "JPEG" else ctx.int(stream_raw, "gop", gov_length, lo=1, hi=10000))
        if stream.codec == "H264" and (stream.width % 2 or stream.height % 2):
            raise ctx.fail(f"{key}.stream", "H.264 needs an even width and height")
    else:
        raise ctx.fail(f"{key}.stream", "must be a mapping or false")
    return ProfileSpec(
        token=token, name=ctx.str(raw, "name", token), encoding=encoding, width=width, height=height, fps=fps,
        bitrate_kbps=ctx.int(raw, "bitrate_kbps", 4096, lo=1), gov_length=ctx.int(raw, "gov_length", 50, lo=1),
        quality=ctx.num(raw, "quality", 5.0), stream=stream)


def _parse_camera(source: str, raw: Any, defaults: Mapping[str, Any], index: int) -> CameraSpec:
    if not isinstance(raw, Mapping):
        raise FleetError(f"{source}: cameras[{index}] must be a mapping, got {type(raw).__name__}")
    data = _deep_merge(defaults, raw)
    name = data.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise FleetError(f"{source}: cameras[{index}]: name {name!r} must be 1-63 letters, digits, '.', '_', '-'")
    ctx = _Ctx(source, name)
    host = ctx.str(data, "host")
    try:
        addr = ipaddress.IPv4Address(host)
    except ValueError:
        raise ctx.fail("host", f"{host!r} is not an IPv4 address") from None
    if not addr.is_loopback:
        raise ctx.fail("host", f"{host} is not a 127.x address; loopback mode binds only 127.0.0.0/8")
    media2 = bool(data.get("media2", False))
    vendor = parse_vendor(ctx, data, lambda raw, i: _parse_profile(ctx, raw, i, media2))
    profiles_raw = data.get("profiles")
    if vendor.kind == "recorder" and not profiles_raw:
        # A recorder's own media profiles are its channels' streams, served at its own address.
        profiles = [p for ch in vendor.channels for p in ch.profiles]
    elif not isinstance(profiles_raw, list) or not profiles_raw:
        raise ctx.fail("profiles", "at least one profile is required")
    else:
        profiles = [_parse_profile(ctx, p, i, media2) for i, p in enumerate(profiles_raw)]
        if (path_of := vendor_path(vendor)) is not None:
            profiles = [replace(p, path=path_of(1, i)) for i, p in enumerate(profiles)]
    tokens = [p.token for p in profiles]
    if len(set(tokens)) != len(tokens):
        raise ctx.fail("profiles", f"duplicate tokens in {tokens}")
    quirks = _parse_quirks(ctx, data.get("quirks"))
    if not vendor.onvif and not any(q.name == "onvif_disabled" for q in quirks):
        quirks.append(Quirk("onvif_disabled"))  # ONVIF off: 403 page, no WS-Discovery, as the firmware does
    macs_raw = data.get("macs") or []
    if isinstance(macs_raw, str):
        macs_raw = [macs_raw]
    macs = []
    for mac in macs_raw:
        mac_s = str(mac).strip().lower().replace("-", ":")
        if not _MAC_RE.match(mac_s):
            raise ctx.fail("macs", f"{mac!r} is not a MAC address like c0:56:e3:00:01:0b")
        macs.append(mac_s)
    if not macs:
        raise ctx.fail("macs", "at least one MAC is required")
    scopes = data.get("scopes") or {}
    if not isinstance(scopes, Mapping):
        raise ctx.fail("scopes", "must be a mapping (name, location, profiles, hardware)")
    scopes = dict(scopes)
    clock = ctx.num(data, "clock_offset_s", 0)
    model = ctx.str(data, "model", "IPC")
    cam = CameraSpec(
        name=name, host=host, onvif_port=ctx.int(data, "onvif_port", 8000, lo=1, hi=65535),
        rtsp_port=ctx.int(data, "rtsp_port", 8554, lo=1, hi=65535),
        manufacturer=ctx.str(data, "manufacturer", "Generic"), model=model,
        firmware=ctx.str(data, "firmware", "V1.0.0"), serial=ctx.str(data, "serial", f"SN-{name}"),
        hardware_id=ctx.str(data, "hardware_id", "1.0"), macs=macs, scopes=scopes,
        username=ctx.str(data, "username", "admin"), password=ctx.str(data, "password", "admin"),
        clock_offset_s=clock, ntp=dict(data.get("ntp") or {"from_dhcp": False, "servers": ["pool.ntp.org"]}),
        media2=media2, profiles=profiles, quirks=quirks, online=bool(data.get("online", True)),
        hostname=ctx.str(data, "hostname", name), delay_ms=ctx.num(data, "delay_ms", 0),
        expect=dict(data.get("expect") or {}), raw=dict(raw), vendor=vendor)
    # Quirks that change what the wire says about identity are applied once, here.
    if (q := cam.quirk("clock_skew")) is not None:
        cam.clock_offset_s = float(q.get("offset_s", 300))
    if (q := cam.quirk("garbage_mac")) is not None:
        cam.macs = [str(q.get("mac", "00:00:00:00:00:00")).lower()]
    if (q := cam.quirk("hostile_strings")) is not None:
        cam.scopes["name"] = q.get("name", HOSTILE_NAME)
        cam.scopes["location"] = q.get("location", HOSTILE_LOCATION)
        cam.model = q.get("model", HOSTILE_MODEL)
    return cam


def load_fleet(source: str | Path | Mapping[str, Any]) -> Fleet:
    """Load and validate a fleet from a YAML file path or an already-parsed mapping."""
    if isinstance(source, Mapping):
        data, label = source, "<dict>"
    else:
        path = Path(source)
        label = str(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FleetError(f"fleet file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise FleetError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise FleetError(f"{label}: top level must be a mapping with 'fleet' and 'cameras'")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        raise FleetError(f"{label}: defaults must be a mapping")
    cams_raw = data.get("cameras")
    if not isinstance(cams_raw, list) or not cams_raw:
        raise FleetError(f"{label}: 'cameras' must be a non-empty list")
    cameras = [_parse_camera(label, raw, defaults, i) for i, raw in enumerate(cams_raw)]
    seen: dict[str, str] = {}
    endpoints: dict[tuple[str, int], str] = {}
    for cam in cameras:
        if cam.name in seen:
            raise FleetError(f"{label}: camera name {cam.name!r} is used twice")
        seen[cam.name] = cam.name
        for port in {cam.onvif_port, cam.rtsp_port}:
            other = endpoints.get((cam.host, port))
            if other and cam.online:
                raise FleetError(f"{label}: cameras {other!r} and {cam.name!r} both use {cam.host}:{port}")
            if cam.online:
                endpoints[(cam.host, port)] = cam.name
        if cam.onvif_port == cam.rtsp_port:
            raise FleetError(f"{label}: camera {cam.name!r}: onvif_port and rtsp_port are both {cam.onvif_port}")
    return Fleet(name=str(data.get("fleet", "fleet")), cameras=cameras, source=label)


def demo_mac(manufacturer: str, host: str) -> str:
    """MAC of the demo address plan: manufacturer OUI + ':00:XX:YY' from the last two octets of ``host``."""
    oui = OUIS.get(manufacturer.lower(), OUIS["shenzhen"])
    octets = [int(x) for x in host.split(".")]
    return f"{oui}:00:{octets[2]:02x}:{octets[3]:02x}"


def generate_fleet(n: int, base: str = "127.1.0.0", *, delay_ms: float = 0.0, media2_every: int = 5,
                   name: str = "generated") -> dict[str, Any]:
    """A fleet mapping of ``n`` cameras on consecutive addresses from ``base`` (for benchmarks)."""
    if n < 1:
        raise FleetError("generate_fleet: n must be at least 1")
    start = int(ipaddress.IPv4Address(base))
    cameras = []
    brands = [("Hikvision", "DS-2CD2143G2-I"), ("Dahua", "IPC-HFW2431S"), ("Uniview", "IPC2124LB")]
    for i in range(n):
        addr = ipaddress.IPv4Address(start + 1 + i + (i // 254) * 2)  # skip .0 and .255 of each /24
        if not addr.is_loopback:
            raise FleetError(f"generate_fleet: {addr} left 127.0.0.0/8; pick a lower base or fewer cameras")
        brand, model = brands[i % len(brands)]
        media2 = media2_every > 0 and i % media2_every == 0
        main = {"token": "Profile_1", "name": "mainStream", "encoding": "H265" if media2 else "H264",
                "width": 1920, "height": 1080, "fps": 25, "bitrate_kbps": 4096, "gov_length": 50}
        sub = {"token": "Profile_2", "name": "subStream", "encoding": "H264", "width": 640, "height": 360,
               "fps": 15, "bitrate_kbps": 512, "gov_length": 30, "stream": False}
        cameras.append({
            "name": f"gen-{i + 1:04d}", "host": str(addr), "manufacturer": brand, "model": model,
            "serial": f"GEN{i + 1:08d}", "macs": [demo_mac(brand, str(addr))], "media2": media2,
            "scopes": {"name": f"Generated camera {i + 1}", "location": "Benchmark",
                       "profiles": ["S", "T"] if media2 else ["S"]},
            "profiles": [main, sub], "delay_ms": delay_ms,
        })
    return {"fleet": name, "defaults": {"username": "admin", "password": "Demo#2567"}, "cameras": cameras}
