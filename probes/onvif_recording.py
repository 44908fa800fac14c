"""ONVIF Profile G retention: GetRecordingSummary of the search service, where the device offers one.

Two authenticated calls with the credential the ONVIF probe already used (never another one):
GetServices for the search service's address, then GetRecordingSummary, whose ``DataFrom`` is the
oldest recorded moment. It is compared with the device's own clock (our clock plus the offset the
probe measured), so a camera whose clock is off still gets the right number of days.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from probes.errors import ProbeError
from probes.soap import CameraSession, envelope, find_any, text, wsse_header
from probes.targets import Credential, Target

DEVICE_NS = "http://www.onvif.org/ver10/device/wsdl"
SEARCH_NS = "http://www.onvif.org/ver10/search/wsdl"


async def _call(session: CameraSession, url: str, cred: Credential, offset: float, ns: str, op: str,
                body: str) -> Any:
    header = wsse_header(cred.username, cred.password, offset)
    reply = await session.post(url, envelope(body, header, {"x": ns}), action=f"{ns}/{op}")
    return reply.xml.root


async def recording_summary_days(target: Target, credential: Credential, *, clock_offset_s: float | None,
                                 timeout_s: float = 5.0, limiter: Any = None) -> tuple[float | None, str | None]:
    """(days between the oldest recording and the device's now, None) or (None, why not)."""
    offset = clock_offset_s or 0.0
    session = CameraSession(target.host, timeout_s=timeout_s, limiter=limiter)
    session.use_credentials(credential.username, credential.password)
    try:
        root = await _call(session, target.url, credential, offset, DEVICE_NS, "GetServices",
                           "<x:GetServices><x:IncludeCapability>false</x:IncludeCapability></x:GetServices>")
        url = next((text(svc, "XAddr") for svc in root.iter() if _local(svc.tag) == "Service"
                    and text(svc, "Namespace") == SEARCH_NS), None)
        if not url:
            return None, "no ONVIF search service (Profile G) offered"
        root = await _call(session, url, credential, offset, SEARCH_NS, "GetRecordingSummary",
                           "<x:GetRecordingSummary/>")
    except ProbeError as exc:
        return None, f"GetRecordingSummary: {exc.message}"
    finally:
        await session.close()
    node = find_any(root, "DataFrom")
    raw = node.text.strip() if node is not None and node.text else ""
    try:
        oldest = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None, f"GetRecordingSummary: DataFrom {raw[:40]!r} is not a time"
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=timezone.utc)
    device_now = datetime.now(timezone.utc) + timedelta(seconds=offset)
    return round(max(0.0, (device_now - oldest).total_seconds() / 86400), 1), None


def _local(tag: Any) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""
