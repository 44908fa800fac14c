"""Rules about recording: days of video kept, recorder disks, channels that record (registered like rules.py).

A recorder's observation lists its channels (the cameras behind it) with the days of video each keeps,
and its disks; a camera with its own card reports its retention alone. Thresholds are data in the spec
profile (``retention.min_retention_days``); the shipped values are examples (``verified: false``) until
someone supplies the TOR text ("not less than 30 days" is common).
"""

from __future__ import annotations

from typing import Iterator

from cctv_monitor.compliance.findings import FindingResult
from cctv_monitor.compliance.params import number
from cctv_monitor.compliance.rules import DeviceContext, Rule, fmt_num, register
from cctv_monitor.statuses import Severity

__all__ = ["RetentionRule", "DisksRule", "RecordingRule", "kept_days"]

#: Disk states that are healthy (probes normalise the vendor words to ok, failed, unformatted, missing).
_HEALTHY = frozenset({"ok"})


def kept_days(ctx: DeviceContext) -> float | None:
    """Days of video kept: the shortest over the recorder's online channels, else the device's own figure."""
    online = [c.retention_days for c in ctx.obs.channels if c.online is not False and c.retention_days is not None]
    if online:
        return min(online)
    return ctx.obs.retention_days


@register
class RetentionRule(Rule):
    """At least ``min_retention_days`` days of video are kept (per channel on a recorder)."""

    key = "retention"
    rule_ids = {"retention": Severity.MAJOR}
    title_en, title_th = "Days of video kept", "จำนวนวันที่เก็บบันทึกภาพ"
    params = {"min_retention_days": number(float, minimum=0, required=True)}

    def evaluate(self, ctx: DeviceContext) -> Iterator[FindingResult]:
        """Compare the days kept with the threshold; unknown retention is not judged."""
        days = kept_days(ctx)
        need = self.p["min_retention_days"]
        if days is None or days >= need:
            return
        short = [str(c.channel) for c in ctx.obs.channels
                 if c.online is not False and c.retention_days is not None and c.retention_days < need]
        where_th = f" (ช่อง {', '.join(short)})" if short else ""
        where_en = f" (channel {', '.join(short)})" if short else ""
        yield self.finding(
            "retention", expected=f">= {fmt_num(need)} days", observed=f"{days:.1f} days",
            th=f"เก็บบันทึกภาพได้ {days:.1f} วัน น้อยกว่าที่กำหนด (ไม่น้อยกว่า {fmt_num(need)} วัน){where_th}",
            en=f"{days:.1f} days of video are kept, fewer than the required {fmt_num(need)}{where_en}")


@register
class DisksRule(Rule):
    """Every disk of the recorder is healthy, and it has at least ``min_disks`` of them."""

    key = "disks"
    rule_ids = {"disk_failed": Severity.MAJOR, "disk_missing": Severity.MAJOR}
    title_en, title_th = "Recorder disks healthy", "ฮาร์ดดิสก์ของเครื่องบันทึกอยู่ในสภาพใช้งานได้"
    params = {"min_disks": number(int, minimum=0, default=1)}

    def evaluate(self, ctx: DeviceContext) -> Iterator[FindingResult]:
        """One finding per unhealthy disk; one when fewer disks than required are reported."""
        if "storage" not in ctx.obs.field_sources and not ctx.obs.storage:
            return  # the disks were not read (e.g. a camera, or the recorder refused): nothing to judge
        for disk in ctx.obs.storage:
            if (disk.status or "").lower() not in _HEALTHY:
                yield self.finding(
                    "disk_failed", expected="ok", observed=disk.status or "unknown", subject=disk.name,
                    th=f"ฮาร์ดดิสก์ {disk.name} ของเครื่องบันทึกอยู่ในสถานะ {disk.status or 'ไม่ทราบ'} (ต้องเป็น ok)",
                    en=f"Recorder disk {disk.name} is {disk.status or 'in an unknown state'} (expected ok)")
        if len(ctx.obs.storage) < self.p["min_disks"]:
            yield self.finding(
                "disk_missing", expected=f">= {self.p['min_disks']}", observed=str(len(ctx.obs.storage)),
                th=f"เครื่องบันทึกรายงานฮาร์ดดิสก์ {len(ctx.obs.storage)} ลูก น้อยกว่าที่กำหนด ({self.p['min_disks']})",
                en=f"The recorder reports {len(ctx.obs.storage)} disk(s), fewer than the required {self.p['min_disks']}")


@register
class RecordingRule(Rule):
    """Every online channel of a recorder records (it has video to show); a camera behind it likewise."""

    key = "recording"
    rule_ids = {"channel_not_recording": Severity.MAJOR}
    title_en, title_th = "Channel recording enabled", "เปิดการบันทึกภาพทุกช่อง"
    params = {}

    def evaluate(self, ctx: DeviceContext) -> Iterator[FindingResult]:
        """A channel that is online but has nothing recorded is not recording."""
        if "retention" not in ctx.obs.field_sources:
            return  # recordings were not searched: nothing to judge
        for ch in ctx.obs.channels:
            if ch.online is not False and ch.retention_days is None:
                yield self.finding(
                    "channel_not_recording", expected="recording", observed="no recordings", subject=f"ch{ch.channel}",
                    th=f"ช่อง {ch.channel} ({ch.name or '-'}) ออนไลน์แต่ไม่มีภาพที่บันทึกไว้: เปิดตารางการบันทึกของช่องนี้",
                    en=f"Channel {ch.channel} ({ch.name or '-'}) is online but has no recordings: enable its "
                       "recording schedule")
        if ctx.obs.recorder is not None and ctx.obs.retention_days is None:
            yield self.finding(
                "channel_not_recording", expected="recording", observed="no recordings",
                subject=f"ch{ctx.obs.channel}",
                th=f"เครื่องบันทึก {ctx.obs.recorder} ไม่มีภาพที่บันทึกจากกล้องนี้: เปิดตารางการบันทึกของช่อง {ctx.obs.channel}",
                en=f"The recorder {ctx.obs.recorder} has no recordings of this camera: enable the recording schedule "
                   f"of channel {ctx.obs.channel}")

