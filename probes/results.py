"""The observation contract: what a probe saw, as frozen dataclasses with a JSON round-trip.

Probes fill these; only ``cctv_monitor`` turns them into database rows. Nothing here imports Flask,
SQLAlchemy, zeep or OpenCV, so a field laptop can run the probes alone and ship the JSON.

Every string in here may come from a camera: treat it as hostile when rendering (escape it) and never
put credentials in it (stream URIs are stored redacted, see :func:`redact_uri`).
"""

from __future__ import annotations

import base64
import enum
import json
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import datetime, timezone
from typing import Any

from probes.vocab import redact_text, redact_uri, split_channel, strip_control

__all__ = [
    "ProbeStatus",
    "DeviceIdentity",
    "MediaProfile",
    "StreamCheck",
    "ChannelInfo",
    "StorageInfo",
    "Observation",
    "redact_uri",
    "SCHEMA_VERSION",
]

#: Bumped when a field changes meaning; stored with every observation.
#: 2: protocols, field_sources, onvif_status, channels, storage, retention_days, device_type;
#: 3: statuses ``discovered`` and ``not_activated`` (discovery results as observations, probes.discovered)
SCHEMA_VERSION = 3



class ProbeStatus(str, enum.Enum):
    """Outcome class of one probe of one address; each maps to an action for the technician."""

    OK = "ok"
    UNREACHABLE = "unreachable"  # nothing answers: host down, port closed, no route
    TIMEOUT = "timeout"  # something accepted the connection but did not answer in time
    AUTH_FAILED = "auth_failed"  # wrong ONVIF user/password, or clock skew broke the digest
    ONVIF_DISABLED = "onvif_disabled"  # an HTTP server answers, but ONVIF is switched off
    NOT_ONVIF = "not_onvif"  # an HTTP server answers that is not an ONVIF device at all
    NOT_SUPPORTED = "not_supported"  # a required ONVIF service/operation is missing
    MALFORMED_REPLY = "malformed_reply"  # the device answered with XML/SOAP we cannot read
    ERROR = "error"  # anything else (bug, unexpected library error); message says what
    #: found by a discovery broadcast (WS-Discovery, SADP, Dahua) or a sweep and not probed: identity only
    DISCOVERED = "discovered"
    #: a Hikvision device that SADP reports as never activated (no admin password yet): nothing can be read
    NOT_ACTIVATED = "not_activated"


@dataclass(frozen=True)
class DeviceIdentity:
    """Who the device says it is (GetDeviceInformation, GetNetworkInterfaces, GetScopes, GetHostname)."""

    manufacturer: str | None = None
    model: str | None = None
    firmware: str | None = None
    serial: str | None = None
    hardware_id: str | None = None
    macs: tuple[str, ...] = ()  # normalised lower-case aa:bb:cc:dd:ee:ff, in the order reported
    hostname: str | None = None
    name: str | None = None  # from onvif://www.onvif.org/name/ scope, URL-decoded
    location: str | None = None  # from onvif://www.onvif.org/location/ scope, URL-decoded
    scopes: tuple[str, ...] = ()
    onvif_profiles: tuple[str, ...] = ()  # "S", "T", "G"... from onvif://www.onvif.org/Profile/ scopes
    device_type: str | None = None  # vendor API: "IPCamera", "NVR", "DVR"... (ISAPI deviceType, Dahua type)


@dataclass(frozen=True)
class MediaProfile:
    """One media profile with its video encoder configuration, as ONVIF claims it."""

    token: str
    name: str | None = None
    encoding: str | None = None  # normalised: "H264", "H265", "JPEG", "MPEG4"
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    bitrate_kbps: int | None = None  # as claimed; may be a placeholder such as 2147483647
    gov_length: int | None = None
    quality: float | None = None
    stream_uri: str | None = None  # credentials redacted
    snapshot_uri: str | None = None  # credentials redacted
    media_service: str = "media"  # "media" (ver10), "media2" (ver20), "isapi" or "dahua" (vendor APIs)
    video_source_token: str | None = None


@dataclass(frozen=True)
class StreamCheck:
    """What the RTSP stream of one profile really delivers, measured from its packets (probes.stream)."""

    profile_token: str
    ok: bool
    width: int | None = None
    height: int | None = None
    fps: float | None = None  # from packet timestamps, not wall clock
    codec: str | None = None  # normalised like MediaProfile.encoding
    first_frame_s: float | None = None  # wall time from the open until the first keyframe arrived
    bitrate_kbps: int | None = None  # from packet sizes
    black: bool | None = None
    frozen: bool | None = None
    low_detail: bool | None = None
    error: str | None = None
    thumbnail_jpeg: bytes | None = field(default=None, repr=False)  # small JPEG; base64 in JSON
    codec_profile: str | None = None  # e.g. "High", "Main", "Baseline" (None for MJPEG)
    #: Frames from one keyframe to the next, when two keyframes arrived within the sample (exact) ...
    keyframe_interval: int | None = None
    #: ... else a lower bound: no keyframe followed for this many frames (not judged against GovLength).
    keyframe_interval_min: int | None = None
    sharpness: float | None = None  # variance of the Laplacian of a 320-pixel-wide grey keyframe
    brightness: float | None = None  # mean grey level (0-255) of that keyframe
    sample_s: float | None = None  # stream time covered by the packets read


@dataclass(frozen=True)
class ChannelInfo:
    """One camera behind a recorder, as the recorder reports it (its address is often internal only)."""

    channel: int
    name: str | None = None
    address: str | None = None  # the camera's own address on the recorder's network (e.g. 192.168.254.2)
    protocol: str | None = None  # how the recorder reaches it: HIKVISION, ONVIF, Private...
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    mac: str | None = None
    firmware: str | None = None
    online: bool | None = None
    status_detail: str | None = None  # the recorder's words: connect, netUnreachable, Disconnected...
    profiles: tuple[MediaProfile, ...] = ()  # the channel's streams, served through the recorder
    stream_uri: str | None = None  # main stream through the recorder's address, credentials redacted
    retention_days: float | None = None  # days between the oldest recording and now
    source: str = ""  # protocol that reported the channel: "isapi", "dahua", "onvif"


@dataclass(frozen=True)
class StorageInfo:
    """One disk of a recorder (or a camera's card)."""

    name: str
    status: str | None = None  # normalised: ok, failed, unformatted, missing, or the device's word
    capacity_gb: float | None = None
    free_gb: float | None = None
    source: str = ""


@dataclass(frozen=True)
class Observation:
    """Everything one probe of one address saw. A partial read keeps what was read."""

    address: str  # "host:port" as probed
    status: ProbeStatus
    error: str | None = None  # actionable message for the technician when status is not ok
    observed_at: str = ""  # ISO 8601 UTC
    duration_s: float | None = None
    device: DeviceIdentity | None = None
    clock_offset_s: float | None = None  # camera clock minus our clock, seconds
    ntp_servers: tuple[str, ...] = ()
    ntp_from_dhcp: bool | None = None
    services: tuple[str, ...] = ()  # "device", "media", "media2", ...
    xaddrs: tuple[str, ...] = ()  # as discovered (may be several)
    profiles: tuple[MediaProfile, ...] = ()
    stream_checks: tuple[StreamCheck, ...] = ()
    warnings: tuple[str, ...] = ()  # non-fatal problems: a failed optional call, a placeholder value
    raw_errors: tuple[str, ...] = ()  # short diagnostic excerpts of bad replies (already redacted)
    #: Hosts other than the probed one that the camera named for its streams, snapshots or services; they
    #: were never sent a credential (the probe used the probed host instead).
    foreign_hosts: tuple[str, ...] = ()
    credential_ref: str | None = None  # fingerprint (Credential.ref) of the credential the device accepted
    rejected_refs: tuple[str, ...] = ()  # fingerprints the device rejected as wrong (not when locked)
    auth_locked: bool = False  # the device said the account or our address is locked: nothing more tried
    credential_user: str | None = None  # the ONVIF user the device accepted (never the password)
    credential_source: str | None = None  # where that credential came from: "--user", "site market"
    rejected_credentials: tuple[str, ...] = ()  # "user (source)" the device refused, in the order tried
    schema_version: int = SCHEMA_VERSION
    protocols: tuple[str, ...] = ()  # what answered with data: "onvif", "isapi", "dahua"
    field_sources: dict[str, str] = field(default_factory=dict)  # field group -> protocol it came from
    onvif_status: str | None = None  # the ONVIF outcome when another protocol read the device instead
    onvif_enabled: bool | None = None  # as the vendor API reports it (None: unknown)
    channels: tuple[ChannelInfo, ...] = ()  # recorders: the cameras behind them
    storage: tuple[StorageInfo, ...] = ()
    retention_days: float | None = None  # shortest retention over the recording channels
    #: A camera seen only through a recorder (cctv_monitor.recorders.expand): the recorder's address and the
    #: channel number; ``address`` is then the recorder's plus "/ch<n>" (probes.vocab.channel_address).
    recorder: str | None = None
    channel: int | None = None
    #: Made where the observation was made (a UUID, or the prober's run id and a sequence number); the
    #: application skips an observation whose id it already stored, so sending a file twice is harmless.
    observation_id: str | None = None

    @property
    def ok(self) -> bool:
        """True when the device was read (over ONVIF, or a vendor API when ONVIF could not)."""
        return self.status is ProbeStatus.OK

    @property
    def host(self) -> str:
        """Host part of ``address`` (IPv6 brackets stripped)."""
        host, _, port = split_channel(self.address)[0].rpartition(":")
        if not host or not port.isdigit():
            return self.address.strip("[]")
        return host.strip("[]")

    def with_updates(self, **changes: Any) -> "Observation":
        """Return a copy with some fields replaced."""
        return replace(self, **changes)

    def sanitised(self) -> "Observation":
        """A copy safe to store and show: control characters stripped, credentials in any text redacted.

        Applied where observations enter the product (the probe boundary, JSON imports): camera strings
        are hostile (a name with ``\x01`` broke XLSX exports, ``\x1b`` reached terminals).
        """
        return Observation.from_dict(_clean(self.to_dict()), sanitise=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (enums as values, tuples as lists, thumbnails base64)."""
        data = _plain(self)
        data["status"] = self.status.value
        for check in data["stream_checks"]:
            thumb = check.get("thumbnail_jpeg")
            check["thumbnail_jpeg"] = base64.b64encode(thumb).decode("ascii") if thumb else None
        return data  # tuples are lists already

    def to_json(self, **kwargs: Any) -> str:
        """JSON text of :meth:`to_dict`."""
        kwargs.setdefault("ensure_ascii", False)
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, sanitise: bool = True) -> "Observation":
        """Rebuild an observation from :meth:`to_dict` output; unknown keys are ignored; strings sanitised."""
        if sanitise:
            data = _clean(data)
        values = _known(cls, data)
        values["status"] = ProbeStatus(values.get("status", "error"))
        if values.get("device") is not None:
            values["device"] = DeviceIdentity(**_tuples(_known(DeviceIdentity, values["device"])))
        values["profiles"] = tuple(MediaProfile(**_known(MediaProfile, p)) for p in values.get("profiles") or ())
        values["channels"] = tuple(
            ChannelInfo(**{**_known(ChannelInfo, c), "profiles": tuple(MediaProfile(**_known(MediaProfile, p))
                                                                      for p in c.get("profiles") or ())})
            for c in values.get("channels") or ())
        values["storage"] = tuple(StorageInfo(**_known(StorageInfo, d)) for d in values.get("storage") or ())
        values["field_sources"] = dict(values.get("field_sources") or {})
        checks = []
        for raw in values.get("stream_checks") or ():
            check = _known(StreamCheck, raw)
            if check.get("thumbnail_jpeg"):
                check["thumbnail_jpeg"] = base64.b64decode(check["thumbnail_jpeg"])
            checks.append(StreamCheck(**check))
        values["stream_checks"] = tuple(checks)
        return cls(**_tuples(values))

    @classmethod
    def from_json(cls, text: str) -> "Observation":
        """Rebuild an observation from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))


def utc_now_iso() -> str:
    """Current UTC time as ISO 8601 with offset."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


#: Fields whose line breaks are kept (diagnostic excerpts of replies).
_MULTILINE = frozenset({"raw_errors"})
#: Fields that are binary or our own enum values (never credentials, never redacted).
_NOT_TEXT = frozenset({"thumbnail_jpeg", "status", "observed_at", "schema_version", "credential_ref",
                       "rejected_refs", "observation_id"})


def _clean(value: Any, key: str = "") -> Any:
    """Control characters stripped (:func:`probes.vocab.strip_control`) and credentials redacted
    (:func:`probes.vocab.redact_text`) in every text of a to_dict() structure, in one walk.

    Every entry point sanitises what it is given (the probe boundary, files, the API, the ingest worker's
    batches), so this runs for every observation: a string is redacted only when it holds ``=`` or ``@``
    (the redaction patterns match nothing else) and stripped only when it is not printable.
    """
    if isinstance(value, str):
        if value.isprintable() and "=" not in value and "@" not in value:
            return value  # most strings: nothing to strip, nothing to redact (checked in C, no call)
        value = strip_control(value, keep_newlines=key in _MULTILINE)
        if key in _NOT_TEXT or ("=" not in value and "@" not in value):
            return value
        return redact_text(value)
    # Numbers, booleans, None and plain text (most leaves) are settled here, without a call each.
    if isinstance(value, dict):
        return {k: v if (t := type(v)) in _NUMBERS or t is str and v.isprintable() and "=" not in v and "@" not in v
                else _clean(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [v if (t := type(v)) in _NUMBERS or t is str and v.isprintable() and "=" not in v and "@" not in v
                else _clean(v, key) for v in value]
    return value


_NUMBERS = frozenset({int, float, bool, type(None)})


_KNOWN_NAMES: dict[type, frozenset[str]] = {}


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = _KNOWN_NAMES.get(cls)
    if names is None:
        names = _KNOWN_NAMES[cls] = frozenset(f.name for f in fields(cls))
    return {k: v for k, v in (data if isinstance(data, dict) else dict(data)).items() if k in names}


def _tuples(values: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_LEAVES = (str, int, float, bytes, type(None))  # bool is an int; str enums (ProbeStatus) stay as they are
#: The exact types of most leaves: a set lookup settles them without a call (to_dict runs for every
#: observation, in the zone worker and again in the ingest; most of an observation's nodes are leaves).
_LEAF_TYPES = frozenset({str, int, float, bool, bytes, type(None)})


def _plain(value: Any) -> Any:
    """``dataclasses.asdict`` without its deep copies (the leaves here are immutable): dicts, lists, leaves."""
    kind = type(value)
    if kind in _LEAF_TYPES:
        return value
    if kind is tuple or kind is list:
        return [v if type(v) in _LEAF_TYPES else _plain(v) for v in value]
    if kind is dict:
        return {k: v if type(v) in _LEAF_TYPES else _plain(v) for k, v in value.items()}
    names = _FIELD_NAMES.get(kind)
    if names is None:
        if isinstance(value, _LEAVES):
            return value
        if isinstance(value, (list, tuple)):
            return [_plain(v) for v in value]
        if isinstance(value, dict):
            return {k: _plain(v) for k, v in value.items()}
        if not is_dataclass(value) or isinstance(value, type):
            return value
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(value))
    out = {}
    for name in names:
        item = getattr(value, name)
        out[name] = item if type(item) in _LEAF_TYPES else _plain(item)
    return out
