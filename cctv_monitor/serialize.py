"""What pages, the API and exports may show of stored camera data: the app-side point of redaction.

The web UI reads the inventory and never imports probes/; it takes the redaction and the control-character
stripping of the shared vocabulary (:mod:`probes.vocab`) from here, so there is one function for each
whether a value is stored, shown, exported or served. Devices and their profiles reach pages and the API
through the serializers below (one ``to_dict`` per shape), which redact stream and snapshot URIs and drop
anything that looks like a credential.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping

from probes.vocab import redact_text, redact_uri, strip_control

__all__ = ["redact_text", "redact_uri", "strip_control", "SECRET_KEYS", "PROFILE_KEYS", "profile_dict",
           "observation_profiles", "device_summary", "device_to_dict"]

#: Keys never shown from a stored observation, whatever their value.
SECRET_KEYS = frozenset({"password", "passwd", "pwd", "username", "user", "credentials", "auth"})
#: The profile fields the API serves.
PROFILE_KEYS = frozenset({"token", "name", "encoding", "width", "height", "fps", "bitrate_kbps", "gov_length",
                          "quality", "stream_uri", "snapshot_uri", "media_service", "video_source_token"})


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def profile_dict(profile: Mapping[str, Any], keys: Iterable[str] | None = None) -> dict[str, Any]:
    """A stored media profile safe to show: credential-like keys dropped, stream and snapshot URIs redacted."""
    wanted = set(keys) if keys is not None else None
    out = {k: v for k, v in profile.items() if k.lower() not in SECRET_KEYS and (wanted is None or k in wanted)}
    for key in ("stream_uri", "snapshot_uri"):
        if key in out or wanted is None:
            out[key] = redact_uri(out.get(key))
    return out


def observation_profiles(data: Any) -> list[dict[str, Any]]:
    """Claimed profiles beside their measured streams (``{"claimed", "measured"}``) of an observation's data."""
    if not isinstance(data, dict):
        return []
    checks = {c.get("profile_token"): c for c in data.get("stream_checks") or [] if isinstance(c, dict)}
    out = []
    for p in data.get("profiles") or []:
        if not isinstance(p, dict):
            continue
        check = checks.get(p.get("token")) or {}
        measured = {k: v for k, v in check.items() if k != "thumbnail_jpeg" and k.lower() not in SECRET_KEYS}
        out.append({"claimed": profile_dict(p), "measured": measured})
    return out


def device_summary(d: Mapping[str, Any]) -> dict[str, Any]:
    """One row of a device list (the dashboard query's mapping) as the API serves it."""
    return {
        "id": d["id"], "name": d["name"], "address": d["address"], "mac": d["mac"], "serial": d["serial"],
        "manufacturer": d["manufacturer"], "model": d["model"], "firmware": d["firmware"], "status": d["status"],
        "registered": bool(d["registered"]), "agency": d["agency_code"], "project": d["project_code"],
        "encoding": d["encoding"], "width": d["measured_width"] or d["width"],
        "height": d["measured_height"] or d["height"],
        "fps": d["measured_fps"] if d["measured_fps"] is not None else d["fps"],
        "first_seen": _iso(d["first_seen"]), "last_seen": _iso(d["last_seen"]),
    }


def device_to_dict(device: Any, observation_data: Any = None) -> dict[str, Any]:
    """One device (a ``Device`` row) with the redacted profiles of its latest observation's data."""
    profiles = []
    if isinstance(observation_data, dict):
        profiles = [profile_dict(p, PROFILE_KEYS) for p in observation_data.get("profiles") or []
                    if isinstance(p, dict)]
    return {
        "id": device.id, "name": device.name, "address": device.address, "mac": device.mac,
        "macs": device.macs or [], "serial": device.serial, "manufacturer": device.manufacturer,
        "model": device.model, "firmware": device.firmware, "hardware_id": device.hardware_id,
        "location": device.location_text, "status": device.status, "registered": device.registered,
        "agency": device.agency.code if device.agency else None,
        "project": device.project.code if device.project else None,
        "site": device.site.code if device.site else None,
        "first_seen": _iso(device.first_seen), "last_seen": _iso(device.last_seen), "last_ok": _iso(device.last_ok),
        "profiles": profiles,
    }
