"""ONVIF first, then the vendor API: recognise Hikvision/Dahua web servers and read them with the same credential.

Order of a probe (issue: cameras ONVIF cannot see): ONVIF always goes first. When ONVIF is off, absent
or refuses the credential and the web server at the same address identifies itself as Hikvision (a
Digest challenge on ``/ISAPI/System/deviceInfo``) or Dahua (on ``/cgi-bin/magicBox.cgi``), the same
facts are read through ISAPI or the Dahua CGI with the credentials the ONVIF probe was given: the one
ONVIF accepted, else each in the given order, once, stopping at the first that works and at the first
reply that names a lock (lock-outs: PITFALLS.md). A recorder that ONVIF did read is asked for its
channels, disks and recordings the same way. Every field group records the protocol it came from.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Sequence

from probes.dahua import read_dahua
from probes.errors import AuthFailed, Locked, ProbeError
from probes.isapi import read_isapi
from probes.onvif import OnvifReadout
from probes.onvif_recording import recording_summary_days
from probes.results import Observation, ProbeStatus
from probes.targets import Credential, Target
from probes.vendor_http import IDENTIFY_PATHS, HttpReply, VendorReadout, VendorSession, auth_error, says_vendor

LOGGER = logging.getLogger(__name__)

#: ONVIF outcomes after which the vendor API is tried (a device answered, but ONVIF gave no data).
FALLBACK_STATUSES = frozenset({ProbeStatus.ONVIF_DISABLED, ProbeStatus.NOT_ONVIF, ProbeStatus.AUTH_FAILED,
                               ProbeStatus.NOT_SUPPORTED})
_RECORDER_PREFIXES = ("DS-7", "DS-8", "DS-9", "IDS-7", "IDS-9", "DS-6")
_RECORDER_WORDS = ("NVR", "XVR", "DVR", "HCVR", "IVSS")
_ONVIF_FIELDS = ("identity", "clock", "network", "profiles", "stream_uris")


async def identify(host: str, port: int, *, timeout_s: float = 3.0,
                   limiter: Any = None) -> tuple[str | None, HttpReply | None]:
    """("isapi" or "dahua", the challenge reply) when the web server identifies as Hikvision or Dahua.

    Two unauthenticated GETs at most; they carry no credential, so they count towards no lock-out. The
    challenge is kept: a device that already names a lock in it gets no credential at all.
    """
    session = VendorSession(host, port, timeout_s=timeout_s, limiter=limiter, max_reply_bytes=64 * 1024)
    try:
        for brand, path in IDENTIFY_PATHS:
            try:
                reply = await session.request("GET", path, authenticated=False)
            except ProbeError:
                continue  # a too-large or broken reply identifies nothing
            if says_vendor(brand, reply.status, reply.headers, reply.body):
                return brand, reply
    except Exception:  # noqa: BLE001 - identification is a hint; never let it break the probe
        LOGGER.debug("%s:%s: vendor identification failed", host, port, exc_info=True)
    finally:
        await session.close()
    return None, None


def names_lock(reply: HttpReply | None) -> bool:
    """True when an unauthenticated 401 already says that our address or the account is locked."""
    if reply is None or reply.status != 401:
        return False
    body = reply.body[:4096].lower()
    return b"<lockstatus>lock</lockstatus>" in body or (body.startswith(b"error") and b"lock" in body)


def looks_like_recorder(manufacturer: str | None, model: str | None) -> bool:
    """True for Hikvision/Dahua recorder model names (DS-76xx, iDS-9xxx, DHI-NVR..., XVR...)."""
    upper = (model or "").upper()
    return upper.startswith(_RECORDER_PREFIXES) or any(w in upper for w in _RECORDER_WORDS)


def brand_of(manufacturer: str | None) -> str | None:
    """Vendor API of a manufacturer name ONVIF reported."""
    name = (manufacturer or "").lower()
    if "hikvision" in name or name.startswith("hik"):
        return "isapi"
    if "dahua" in name:
        return "dahua"
    return None


async def _read(brand: str, target: Target, credentials: Sequence[Credential], *, timeout_s: float,
                limiter: Any) -> tuple[VendorReadout | None, Credential | None, ProbeError | None, int]:
    """Try ``credentials`` in order, each once; stop at the first success, a lock or a non-auth failure."""
    session = VendorSession(target.host, target.port, timeout_s=timeout_s, limiter=limiter,
                            scheme="https" if target.port == 443 else "http")
    error: ProbeError | None = None
    try:
        for cred in credentials:
            session.use_credentials(cred.username, cred.password)
            try:
                reader = read_isapi if brand == "isapi" else read_dahua
                return await reader(session, host=target.host), cred, None, session.attempts
            except Locked as exc:
                return None, None, exc, session.attempts
            except AuthFailed as exc:
                error = exc
                continue
            except ProbeError as exc:
                return None, None, exc, session.attempts
        return None, None, error, session.attempts
    finally:
        await session.close()


def _sources(brand: str, *fields: str) -> dict[str, str]:
    return {name: brand for name in fields}


def _vendor_observation(obs: Observation, brand: str, data: VendorReadout) -> Observation:
    """The observation of a device ONVIF could not read, built from the vendor API."""
    onvif_note = f"ONVIF not used ({obs.status.value}): {obs.error}" if obs.error else f"ONVIF: {obs.status.value}"
    return obs.with_updates(
        status=ProbeStatus.OK, error=None, device=data.device, clock_offset_s=data.clock_offset_s,
        profiles=data.profiles, protocols=(brand,), onvif_status=obs.status.value, onvif_enabled=data.onvif_enabled,
        channels=data.channels, storage=data.storage, retention_days=data.retention_days,
        field_sources=_sources(brand, "identity", "clock", "network", "profiles", "stream_uris",
                               *(("channels", "storage", "retention") if data.channels or data.storage else ())),
        warnings=(onvif_note, *obs.warnings, *data.warnings), raw_errors=(*obs.raw_errors, *data.raw_errors))


def _recorder_extras(obs: Observation, brand: str, data: VendorReadout) -> Observation:
    """An ONVIF observation with the recorder's channels, disks and retention from the vendor API added."""
    # Per-channel retention from the vendor API is finer than Profile G's one summary for the whole device.
    retention = data.retention_days if data.retention_days is not None else obs.retention_days
    fields = ("channels", "storage", "retention") if data.retention_days is not None else ("channels", "storage")
    return obs.with_updates(
        protocols=("onvif", brand), onvif_enabled=True, channels=data.channels, storage=data.storage,
        retention_days=retention, field_sources={**obs.field_sources, **_sources(brand, *fields)},
        warnings=(*obs.warnings, *data.warnings))


async def _profile_g_retention(target: Target, cred: Credential, obs: Observation, *, timeout_s: float,
                               limiter: Any) -> Observation:
    """Retention from ONVIF GetRecordingSummary (Profile G) when the device offers the search service."""
    days, why = await recording_summary_days(target, cred, clock_offset_s=obs.clock_offset_s, timeout_s=timeout_s,
                                             limiter=limiter)
    if days is None:
        return obs.with_updates(warnings=(*obs.warnings, why or "GetRecordingSummary gave nothing"))
    return obs.with_updates(retention_days=days, field_sources={**obs.field_sources, "retention": "onvif"})


async def vendor_fallback(target: Target, credentials: Sequence[Credential], readout: OnvifReadout, *,
                          timeout_s: float = 5.0, limiter: Any = None) -> OnvifReadout:
    """The hook after the ONVIF probe: fill in from ISAPI/Dahua where ONVIF could not, or add recorder data."""
    obs = readout.observation
    if obs.status is ProbeStatus.OK:
        obs = obs.with_updates(protocols=obs.protocols or ("onvif",),
                               field_sources=obs.field_sources or _sources("onvif", *_ONVIF_FIELDS))
        if "search" in obs.services and readout.credential is not None:
            obs = await _profile_g_retention(target, readout.credential, obs, timeout_s=timeout_s, limiter=limiter)
        dev = obs.device
        brand = brand_of(dev.manufacturer if dev else None)
        if brand is None or readout.credential is None or not looks_like_recorder(dev.manufacturer, dev.model):
            return replace(readout, observation=obs)
        data, _, error, _ = await _read(brand, target, [readout.credential], timeout_s=timeout_s, limiter=limiter)
        if data is None:
            note = f"{brand}: recorder channels not read: {error.message if error else 'no answer'}"
            return replace(readout, observation=obs.with_updates(warnings=(*obs.warnings, note)))
        return OnvifReadout(_recorder_extras(obs, brand, data), readout.credential,
                            {**readout.stream_uris})
    if obs.status not in FALLBACK_STATUSES:
        return readout
    brand, challenge = await identify(target.host, target.port, timeout_s=min(timeout_s, 3.0), limiter=limiter)
    if brand is None:
        return readout
    creds = [readout.credential] if readout.credential is not None else list(credentials)
    if names_lock(challenge):
        data, cred, attempts = None, None, 0
        error: ProbeError | None = auth_error(challenge, IDENTIFY_PATHS[0 if brand == "isapi" else 1][1], True)
    else:
        data, cred, error, attempts = await _read(brand, target, creds, timeout_s=timeout_s, limiter=limiter)
    LOGGER.info("%s: %s read after ONVIF %s: %s (%d authenticated request(s))", target.address, brand,
                obs.status.value, "ok" if data else (error.status.value if error else "no credential"), attempts)
    if data is not None:
        return OnvifReadout(_vendor_observation(obs, brand, data), cred, dict(data.stream_uris))
    if error is None:
        return readout
    message = (f"ONVIF: {obs.error or obs.status.value}; {brand.upper() if brand == 'isapi' else 'Dahua API'}: "
               f"{error.message}")
    failed = obs.with_updates(status=error.status, error=message, onvif_status=obs.status.value,
                              raw_errors=(*obs.raw_errors, *((error.excerpt,) if error.excerpt else ())))
    return replace(readout, observation=failed)
