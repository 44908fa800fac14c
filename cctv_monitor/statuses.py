"""Choice classes shared by the tables, the charts, the API and the CLI.

Each value carries a Thai and an English label and a colour, so every view says the same thing the same
way (NetBox's ChoiceSet idea).
"""

from __future__ import annotations

import enum


class DeviceStatus(str, enum.Enum):
    """Verdict on one device after a scan, derived from its findings."""

    COMPLIANT = "compliant"
    NON_COMPLIANT = "non_compliant"
    UNREGISTERED = "unregistered"
    MISSING = "missing"
    OFFLINE = "offline"
    UNREACHABLE = "unreachable"  # answers, but auth/ONVIF problems stop us reading it
    UNKNOWN = "unknown"  # never evaluated yet

    @property
    def label_th(self) -> str:
        """Thai label."""
        return _LABELS[self][0]

    @property
    def label_en(self) -> str:
        """English label."""
        return _LABELS[self][1]

    @property
    def color(self) -> str:
        """Hex colour used by tiles, badges and charts."""
        return _LABELS[self][2]

    def label(self, lang: str = "th") -> str:
        """Label in ``lang`` ("th" or "en")."""
        return self.label_th if lang == "th" else self.label_en

    @classmethod
    def choices(cls) -> list[tuple[str, str, str, str]]:
        """(value, Thai label, English label, colour) for every status, in display order."""
        return [(s.value, s.label_th, s.label_en, s.color) for s in cls]

    @classmethod
    def group(cls, name: str) -> tuple[str, ...]:
        """The values of a named group of statuses, in display order (see ``_GROUPS``)."""
        return _GROUPS[name]


_LABELS = {
    DeviceStatus.COMPLIANT: ("ตรงตามข้อกำหนด", "Compliant", "#2e7d32"),
    DeviceStatus.NON_COMPLIANT: ("ไม่ตรงตามข้อกำหนด", "Non-compliant", "#c62828"),
    DeviceStatus.UNREGISTERED: ("ไม่ได้ลงทะเบียน", "Unregistered", "#6a1b9a"),
    DeviceStatus.MISSING: ("ไม่พบอุปกรณ์", "Missing", "#ef6c00"),
    DeviceStatus.OFFLINE: ("ออฟไลน์", "Offline", "#546e7a"),
    DeviceStatus.UNREACHABLE: ("เข้าถึงไม่ได้ (ONVIF/สิทธิ์)", "Unreachable (ONVIF/auth)", "#f9a825"),
    DeviceStatus.UNKNOWN: ("ยังไม่ตรวจ", "Not evaluated", "#9e9e9e"),
}


#: Status groups that views and queries share (one place, not string tuples in each query):
#: ``charted`` the per-agency stacked bars, in stacking order; ``evaluated`` counted in the compliance rate
#: (judged against a project); ``found`` answered a scan (counted as found against the approved number).
_GROUPS = {
    "charted": ("compliant", "non_compliant", "unregistered", "missing", "offline", "unreachable"),
    "evaluated": ("compliant", "non_compliant", "missing", "offline", "unreachable"),
    "found": ("compliant", "non_compliant", "unreachable", "offline"),
}
assert all(v in {s.value for s in DeviceStatus} for group in _GROUPS.values() for v in group)


class Severity(str, enum.Enum):
    """Severity of a finding."""

    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    INFO = "info"

    @property
    def label_th(self) -> str:
        """Thai label."""
        return {"critical": "วิกฤต", "major": "สำคัญ", "minor": "เล็กน้อย", "info": "ข้อมูล"}[self.value]

    @property
    def label_en(self) -> str:
        """English label."""
        return self.value.capitalize()


class ScanState(str, enum.Enum):
    """Life cycle of a scan run (start -> run -> terminate), failures recorded, never raised."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


class Role(str, enum.Enum):
    """Dashboard user roles."""

    ADMIN = "admin"  # everything
    AUDITOR = "auditor"  # read all
    TECHNICIAN = "technician"  # read and scan only their own agency's devices
