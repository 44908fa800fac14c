"""Cameras behind a recorder: each channel a recorder reports becomes an observation (and a device) of its own.

Cameras on a recorder's PoE ports live on an internal network (192.168.254.x on Hikvision) the office LAN
cannot reach, so the recorder is the only witness. :func:`expand` turns one recorder observation into the
recorder's own plus one per channel; each channel's address is the recorder's plus ``/ch<n>``
(:func:`probes.vocab.channel_address`), so the site range rules and the per-site limits apply to the
recorder's address, never to the internal one. :func:`expand` is pure (no database, no I/O): the scan
core's ingest applies it before identity (``cctv_monitor.scan.ingest.expanders``), and its recorder links
each channel's device to the recorder's device and silences them with it.
"""

from __future__ import annotations

from typing import Any

from probes.results import ChannelInfo, DeviceIdentity, Observation, ProbeStatus
from probes.vocab import channel_address, is_placeholder_serial, is_valid_mac, normalise_mac

__all__ = ["expand", "is_recorder", "RECORDER_TYPES"]

#: Device types (ISAPI ``deviceType``, Dahua ``deviceType``) that record other cameras.
RECORDER_TYPES = frozenset({"NVR", "DVR", "HVR", "XVR", "NVS", "IPDOME_NVR"})


def is_recorder(obs: Observation) -> bool:
    """True when the observation is of a recorder (it reports channels, or calls itself an NVR/DVR)."""
    if obs.channels:
        return True
    kind = (obs.device.device_type or "").upper() if obs.device else ""
    return any(kind.startswith(t) for t in RECORDER_TYPES)


def expand(observation: Observation) -> list[Observation]:
    """The observation itself, then one observation per channel it reports (recorders only)."""
    if observation.recorder is not None or not observation.channels:
        return [observation]
    return [observation, *(_channel_observation(observation, ch) for ch in observation.channels)]


def _channel_observation(rec: Observation, ch: ChannelInfo) -> Observation:
    """One camera behind ``rec`` as an observation of its own, at the recorder's address plus the channel."""
    rec_ident = rec.device or DeviceIdentity()
    mac = normalise_mac(ch.mac) if ch.mac else None
    macs = (mac,) if mac and is_valid_mac(mac) else ()
    serial = ch.serial if ch.serial and not is_placeholder_serial(ch.serial) else None
    if not macs and not serial and rec_ident.serial and not is_placeholder_serial(rec_ident.serial):
        # No identity of its own from the recorder: the recorder's serial and the channel are stable enough.
        serial = f"{rec_ident.serial}/ch{ch.channel}"
    ident = DeviceIdentity(manufacturer=ch.manufacturer, model=ch.model, firmware=ch.firmware, serial=serial,
                           macs=macs, name=ch.name, location=rec_ident.location, device_type="IPCamera")
    source = ch.source or (rec.protocols[0] if rec.protocols else "")
    online = ch.online is not False
    detail = f" ({ch.status_detail})" if ch.status_detail else ""
    return Observation(
        address=channel_address(rec.address, ch.channel),
        status=ProbeStatus.OK if online else ProbeStatus.UNREACHABLE,
        error=None if online else f"the recorder {rec.address} reports the camera on channel {ch.channel} "
                                  f"offline{detail}",
        observed_at=rec.observed_at, device=ident, clock_offset_s=rec.clock_offset_s,
        profiles=ch.profiles, stream_checks=_channel_checks(rec, ch),
        protocols=(source,) if source else (),
        field_sources={"identity": source, "profiles": source, "retention": source} if source else {},
        onvif_status=None, onvif_enabled=None, retention_days=ch.retention_days,
        credential_ref=rec.credential_ref, recorder=rec.address, channel=ch.channel,
        # Traceable to the observation as sent (its receipt is kept for the parent only).
        observation_id=f"{rec.observation_id}#ch{ch.channel}" if rec.observation_id else None)


def _channel_checks(rec: Observation, ch: ChannelInfo) -> tuple[Any, ...]:
    """Stream checks the recorder's probe made of this channel's streams (matched by profile token)."""
    tokens = {p.token for p in ch.profiles}
    return tuple(c for c in rec.stream_checks if c.profile_token in tokens)
