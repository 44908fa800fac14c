"""Fleet-file keys for vendor APIs: protocols, recorders with channels and disks, lock-out (FORMAT.md).

A leaf module: :mod:`cctv_monitor.simulator.fleet` calls :func:`parse_vendor` with its error context and
its profile parser, so the two never import each other. :class:`AuthGuard` keeps the failed-login count
per client address that both the ONVIF and the vendor servers consult (a lock-out spans protocols, as on
Hikvision's "Illegal Login Lock").
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

PROTOCOLS = ("onvif", "isapi", "dahua")
KINDS = ("camera", "recorder")
DISK_STATES = ("ok", "error", "unformatted", "idle", "offline", "smartFailed")
VENDOR_QUIRKS = ("xxe", "huge_reply", "html_login", "error_200")
ISAPI_NAMESPACES = {"ver10": "http://www.hikvision.com/ver10/XMLSchema",
                    "ver20": "http://www.hikvision.com/ver20/XMLSchema"}


@dataclass(frozen=True)
class ChannelSpec:
    """One camera behind a recorder: reachable only by the recorder, streamed through it."""

    channel: int
    name: str
    address: str
    manufacturer: str
    model: str
    serial: str
    firmware: str
    mac: str
    online: bool
    recording_days: float | None
    profiles: tuple[Any, ...]  # ProfileSpec of fleet.py, tokens as the recorder names them


@dataclass(frozen=True)
class DiskSpec:
    """One recorder disk."""

    id: int
    capacity_gb: float
    free_gb: float
    status: str = "ok"


@dataclass(frozen=True)
class VendorSpec:
    """Vendor-API side of one simulated device."""

    protocols: tuple[str, ...] = ("onvif",)
    onvif_users: bool = True  # False: ONVIF answers but has no user, every credential is refused
    kind: str = "camera"
    isapi_namespace: str = "ver20"
    channels: tuple[ChannelSpec, ...] = ()
    disks: tuple[DiskSpec, ...] = ()
    recording_days: float | None = None  # the device's own recording (SD card / camera) when set
    lockout_attempts: int = 0  # 0: never locks
    lockout_seconds: float = 600.0
    quirks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    activated: bool = True  # Hikvision: False = never activated (SADP says so)

    @property
    def onvif(self) -> bool:
        """True when ONVIF is switched on."""
        return "onvif" in self.protocols

    def quirk(self, name: str) -> Mapping[str, Any] | None:
        """Parameters of vendor quirk ``name`` when set."""
        return self.quirks.get(name)


class AuthGuard:
    """Failed credential attempts per client address, and the lock-out they cause (server side)."""

    def __init__(self, attempts: int, seconds: float) -> None:
        self.attempts = attempts
        self.seconds = seconds
        self.credentialed = 0  # every request that carried a credential, for tests
        self.failures = 0
        self._failed: dict[str, int] = {}
        self._until: dict[str, float] = {}

    def locked_for(self, client: str) -> float:
        """Seconds left on ``client``'s lock (0: not locked)."""
        left = self._until.get(client, 0.0) - time.monotonic()
        return max(0.0, left)

    def record(self, client: str, ok: bool) -> None:
        """Count one credentialed attempt by ``client``; lock it after ``attempts`` failures in a row."""
        self.credentialed += 1
        if ok:
            self._failed.pop(client, None)
            return
        self.failures += 1
        self._failed[client] = self._failed.get(client, 0) + 1
        if self.attempts and self._failed[client] >= self.attempts:
            self._until[client] = time.monotonic() + self.seconds

    def remaining(self, client: str) -> int:
        """Attempts ``client`` has left before the lock (Hikvision's ``retryLoginTime``)."""
        if not self.attempts:
            return 99
        return max(0, self.attempts - self._failed.get(client, 0))


def _choice(ctx: Any, data: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = data.get(key, default)
    if value not in allowed:
        raise ctx.fail(key, f"{value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _protocols(ctx: Any, raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ("onvif",)
    if not isinstance(raw, list) or not raw:
        raise ctx.fail("protocols", f"must be a non-empty list of {', '.join(PROTOCOLS)}")
    for item in raw:
        if item not in PROTOCOLS:
            raise ctx.fail("protocols", f"unknown protocol {item!r}; known: {', '.join(PROTOCOLS)}")
    if "isapi" in raw and "dahua" in raw:
        raise ctx.fail("protocols", "a device speaks either isapi (Hikvision) or dahua, not both")
    return tuple(dict.fromkeys(raw))


def _quirks(ctx: Any, raw: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in raw or []:
        name, params = (item, {}) if isinstance(item, str) else (
            (item.get("name"), {k: v for k, v in item.items() if k != "name"}) if isinstance(item, Mapping)
            else (None, {}))
        if name not in VENDOR_QUIRKS:
            raise ctx.fail("vendor_quirks", f"unknown vendor quirk {name!r}; known: {', '.join(VENDOR_QUIRKS)}")
        out[str(name)] = params
    return out


def _disks(ctx: Any, raw: Any) -> tuple[DiskSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ctx.fail("disks", "must be a list of {id, capacity_gb, free_gb, status}")
    disks = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise ctx.fail(f"disks[{i}]", "must be a mapping")
        capacity = ctx.num(item, "capacity_gb", 2000)
        free = ctx.num(item, "free_gb", 0)
        if not 0 <= free <= capacity:
            raise ctx.fail(f"disks[{i}].free_gb", f"must be between 0 and capacity_gb ({capacity:g})")
        disks.append(DiskSpec(id=ctx.int(item, "id", i + 1, lo=1, hi=64), capacity_gb=capacity, free_gb=free,
                              status=_choice(ctx, item, "status", DISK_STATES, "ok")))
    return tuple(disks)


def _channel(ctx: Any, raw: Any, index: int, defaults: Mapping[str, Any],
             parse_profile: Callable[[Any, int], Any], kind_paths: Callable[[int, int], str]) -> ChannelSpec:
    key = f"channels[{index}]"
    if not isinstance(raw, Mapping):
        raise ctx.fail(key, "must be a mapping")
    number = ctx.int(raw, "channel", index + 1, lo=1, hi=256)
    address = ctx.str(raw, "address", f"192.168.254.{number + 1}")
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        raise ctx.fail(f"{key}.address", f"{address!r} is not an IPv4 address") from None
    profiles_raw = raw.get("profiles") or defaults.get("profiles")
    if not isinstance(profiles_raw, list) or not profiles_raw:
        raise ctx.fail(f"{key}.profiles", "at least one profile is required (or channel_defaults.profiles)")
    online = bool(raw.get("online", True))
    profiles = []
    for i, prof_raw in enumerate(profiles_raw):
        prof = parse_profile(prof_raw, i)
        prof = replace(prof, token=f"Ch{number}_{prof.token}", path=kind_paths(number, i),
                       stream=prof.stream if online else None)
        profiles.append(prof)
    merged = {**defaults, **raw}
    days = merged.get("recording_days")
    return ChannelSpec(
        channel=number, name=ctx.str(merged, "name", f"Camera {number:02d}"), address=address,
        manufacturer=ctx.str(merged, "manufacturer", "Hikvision"), model=ctx.str(merged, "model", "IPC"),
        serial=ctx.str(merged, "serial", f"CH{number:02d}-SN"), firmware=ctx.str(merged, "firmware", "V5.7.3"),
        mac=ctx.str(merged, "mac", f"c0:56:e3:fe:00:{number:02x}"), online=online,
        recording_days=None if days is None else ctx.num(merged, "recording_days"), profiles=tuple(profiles))


def isapi_path(channel: int, index: int) -> str:
    """Hikvision RTSP path: ``/Streaming/Channels/101`` (channel 1 main), ``102`` (sub), ``201``..."""
    return f"/Streaming/Channels/{channel}{index + 1:02d}"


def dahua_path(channel: int, index: int) -> str:
    """Dahua RTSP path: ``/cam/realmonitor?channel=1&subtype=0`` (main), ``subtype=1`` (extra)."""
    return f"/cam/realmonitor?channel={channel}&subtype={index}"


def parse_vendor(ctx: Any, data: Mapping[str, Any], parse_profile: Callable[[Any, int], Any]) -> VendorSpec:
    """Read the vendor keys of one camera entry (already merged with the fleet defaults)."""
    protocols = _protocols(ctx, data.get("protocols"))
    kind = _choice(ctx, data, "kind", KINDS, "camera")
    paths = dahua_path if "dahua" in protocols else isapi_path
    channels: tuple[ChannelSpec, ...] = ()
    if kind == "recorder":
        raw = data.get("channels")
        if not isinstance(raw, list) or not raw:
            raise ctx.fail("channels", "a recorder needs at least one channel")
        defaults = data.get("channel_defaults") or {}
        if not isinstance(defaults, Mapping):
            raise ctx.fail("channel_defaults", "must be a mapping")
        channels = tuple(_channel(ctx, c, i, defaults, parse_profile, paths) for i, c in enumerate(raw))
        numbers = [c.channel for c in channels]
        if len(set(numbers)) != len(numbers):
            raise ctx.fail("channels", f"duplicate channel numbers in {numbers}")
    elif data.get("channels"):
        raise ctx.fail("channels", "only 'kind: recorder' has channels")
    lockout = data.get("lockout") or {}
    if not isinstance(lockout, Mapping):
        raise ctx.fail("lockout", "must be a mapping {attempts, seconds}")
    days = data.get("recording_days")
    return VendorSpec(
        protocols=protocols, onvif_users=bool(data.get("onvif_users", True)), kind=kind,
        isapi_namespace=_choice(ctx, data, "isapi_namespace", tuple(ISAPI_NAMESPACES), "ver20"),
        channels=channels, disks=_disks(ctx, data.get("disks")),
        recording_days=None if days is None else ctx.num(data, "recording_days"),
        lockout_attempts=ctx.int(lockout, "attempts", 0, lo=0, hi=100) if lockout else 0,
        lockout_seconds=ctx.num(lockout, "seconds", 600) if lockout else 600.0,
        quirks=_quirks(ctx, data.get("vendor_quirks")), activated=bool(data.get("activated", True)))


def vendor_path(vendor: VendorSpec) -> Callable[[int, int], str] | None:
    """Path function for a standalone camera's own profiles (None: keep the simulator's default paths)."""
    if "isapi" in vendor.protocols:
        return isapi_path
    if "dahua" in vendor.protocols:
        return dahua_path
    return None
