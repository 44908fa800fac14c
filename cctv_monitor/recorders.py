"""Cameras behind a recorder: each channel a recorder reports becomes an observation (and a device) of its own.

Cameras on a recorder's PoE ports live on an internal network (192.168.254.x on Hikvision) the office LAN
cannot reach, so the recorder is the only witness. :func:`expand` turns one recorder observation into the
recorder's own plus one per channel; each channel's address is the recorder's plus ``/ch<n>``
(:func:`probes.vocab.channel_address`), so the site range rules and the per-site limits apply to the
recorder's address, never to the internal one. :func:`expand` is pure; :func:`record_expanded` is the
small piece of the scan pipeline that records the parts in order and links the channel devices.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy import select

from cctv_monitor.compliance import Spec
from cctv_monitor.models import Device, Project
from probes.results import DeviceIdentity, Observation, ProbeStatus
from probes.vocab import channel_address, is_placeholder_serial, is_valid_mac, normalise_mac

if TYPE_CHECKING:
    from probes.results import ChannelInfo

LOGGER = logging.getLogger(__name__)

__all__ = ["expand", "is_recorder", "record_expanded", "recorder_spec", "RECORDER_TYPES"]

#: Device types (ISAPI ``deviceType``, Dahua ``deviceType``) that record other cameras.
RECORDER_TYPES = frozenset({"NVR", "DVR", "HVR", "XVR", "NVS", "IPDOME_NVR"})
#: The silent outcomes (nothing answered), as in the compliance engine.
_SILENT = frozenset({ProbeStatus.UNREACHABLE, ProbeStatus.TIMEOUT})


def recorder_spec(project: Project) -> Spec:
    """The parsed spec profile ``project`` names for its recorders (:class:`SpecError` names a bad field)."""
    profile = project.recorder_spec_profile
    return Spec.from_mapping(profile.requirements, code=profile.code)


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


def _channel_observation(rec: Observation, ch: "ChannelInfo") -> Observation:
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
        credential_ref=rec.credential_ref, recorder=rec.address, channel=ch.channel)


def _channel_checks(rec: Observation, ch: "ChannelInfo") -> tuple[Any, ...]:
    """Stream checks the recorder's probe made of this channel's streams (matched by profile token)."""
    tokens = {p.token for p in ch.profiles}
    return tuple(c for c in rec.stream_checks if c.profile_token in tokens)


def record_expanded(scan: Any, record: Callable[[Observation], Any], obs: Observation,
                    record_one: Callable[[Any, Callable[[Observation], Any], Observation], Any]) -> None:
    """Record ``obs`` and the cameras behind it; link each channel's device to the recorder's device.

    ``scan`` is the run's :class:`cctv_monitor.scanning.ScanRecorder`; ``record_one`` records one observation
    and isolates its failure (one broken camera never stops a scan). A recorder that did not answer takes
    the cameras it was last seen with along: they are silent too.
    """
    items = expand(obs)
    parent = record_one(scan, record, items[0])
    parent_id = getattr(parent, "device_id", None)
    if obs.status in _SILENT:
        parent_id = parent_id or scan.by_address.get(obs.address)
        if parent_id is not None:
            for child in scan.session.scalars(select(Device).where(Device.recorder_id == parent_id)).all():
                if child.address and child.id not in scan.seen_this_run:
                    record_one(scan, scan.record_silent, obs.with_updates(address=child.address))
        return
    for item in items[1:]:
        result = record_one(scan, scan.record_answering, item)
        device_id = getattr(result, "device_id", None)
        if device_id is None or parent_id is None:
            continue
        device = scan.session.get(Device, device_id)
        if device is not None and (device.recorder_id, device.channel) != (parent_id, item.channel):
            device.recorder_id, device.channel = parent_id, item.channel
            scan.session.commit()
