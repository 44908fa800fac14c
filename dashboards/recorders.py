"""What the device page shows about recorders: a recorder's channels and disks, a camera's recorder.

Cameras on a recorder's PoE ports are devices of their own (:mod:`cctv_monitor.recorders`); their facts
(name, online, days kept) come from the recorder's latest observation, their verdicts from their own rows.
Every string here came from a device: the templates escape it.
"""

from __future__ import annotations

from typing import Any

from flask_login import current_user
from sqlalchemy.orm import Session

from cctv_monitor.models import Device, Observation
from dashboards import queries


def recorder_view(session: Session, device: Device, last_obs: Observation | None) -> dict[str, Any] | None:
    """Channels, disks and retention of a recorder, or the recorder and channel of a camera; None otherwise."""
    data = last_obs.data if last_obs is not None and isinstance(last_obs.data, dict) else {}
    reported = {c.get("channel"): c for c in data.get("channels") or [] if isinstance(c, dict)}
    children = queries.recorder_channels(session, device.id, current_user)
    if not reported and not children and device.recorder_id is None:
        return None
    parent = session.get(Device, device.recorder_id) if device.recorder_id is not None else None
    rows = []
    by_channel = {c.channel: c for c in children}
    for number in sorted({*reported, *by_channel} - {None}, key=int):
        info = reported.get(number) or {}
        rows.append({"channel": number, "device": by_channel.get(number), "name": info.get("name"),
                     "model": info.get("model"), "online": info.get("online"),
                     "status_detail": info.get("status_detail"), "retention_days": info.get("retention_days")})
    disks = [d for d in data.get("storage") or [] if isinstance(d, dict)]
    # As the retention rule judges it: the shortest over the cameras that are online (an offline camera's
    # old recordings age out and say nothing about the recorder's settings).
    kept = [r["retention_days"] for r in rows if r["online"] is not False and isinstance(r["retention_days"], (int, float))]
    retention = min(kept) if kept else data.get("retention_days")
    return {"parent": parent, "channel": device.channel, "channels": rows, "disks": disks,
            "retention_days": retention, "is_recorder": bool(rows or disks)}
