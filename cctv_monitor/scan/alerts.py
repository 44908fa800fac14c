"""Which alert events a device's state change deserves (changes only, never repeats)."""

from __future__ import annotations

from typing import Sequence

from cctv_monitor.compliance import DeviceStatus, FindingResult
from cctv_monitor.models import Device
from cctv_monitor.scan.findings import clip

__all__ = ["alert_kinds", "device_label"]

_ANSWERING = {DeviceStatus.COMPLIANT.value, DeviceStatus.NON_COMPLIANT.value, DeviceStatus.UNREGISTERED.value,
              DeviceStatus.UNREACHABLE.value}


def device_label(device: Device) -> str:
    """Maker, model and address (or MAC, serial, id) of a device for alert texts."""
    parts = [p for p in (device.manufacturer, device.model) if p]
    return f"{' '.join(parts) or 'camera'} {device.address or device.mac or device.serial or f'#{device.id}'}"


def alert_kinds(device: Device, old: str, new: str, *, is_new: bool,
                new_blocking: Sequence[FindingResult]) -> list[tuple[str, str, str]]:
    """The alert events a state change deserves: (kind, Thai message, English message). Changes only."""
    label = device_label(device)
    events: list[tuple[str, str, str]] = []
    if new == DeviceStatus.OFFLINE.value and old != new:
        events.append(("offline", f"กล้อง {label} ออฟไลน์ (ไม่ตอบสนอง)", f"Camera {label} went offline"))
    elif new == DeviceStatus.MISSING.value and old != new:
        events.append(("missing", f"ไม่พบกล้องที่ลงทะเบียนไว้ {label}", f"Registered camera {label} is missing"))
    elif new in _ANSWERING and old in (DeviceStatus.OFFLINE.value, DeviceStatus.MISSING.value):
        events.append(("online", f"กล้อง {label} กลับมาออนไลน์", f"Camera {label} is back online"))
    if new == DeviceStatus.UNREGISTERED.value and old != new:
        events.append(("unregistered", f"พบกล้องที่ไม่ได้ลงทะเบียน {label}", f"New unregistered camera {label}"))
    if new_blocking and new == DeviceStatus.NON_COMPLIANT.value:  # unregistered ones got their own alert
        rules = ", ".join(sorted({f.rule_id for f in new_blocking}))
        th = "; ".join(f.message_th for f in new_blocking)
        en = "; ".join(f.message_en for f in new_blocking)
        events.append(("non_compliant", f"กล้อง {label} ไม่ตรงตามข้อกำหนด ({rules}): {th}",
                       f"Camera {label} is non-compliant ({rules}): {en}"))
    return [(k, clip(th, 4000), clip(en, 4000)) for k, th, en in events]
