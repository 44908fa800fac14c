"""What closing a run that covers a target does: registered cameras not seen, project findings, counts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from cctv_monitor.compliance import DeviceStatus, FindingResult, derive_status, evaluate_project
from cctv_monitor.models import Device, Finding, Project, RegisterEntry, utcnow
from cctv_monitor.scan.findings import clip, sync_findings
from cctv_monitor.scan.recorder import Recorder

__all__ = ["finish_registers", "counts"]


def finish_registers(recorder: Recorder) -> None:
    """Registered devices of the scope not seen: missing (never answered) or offline (answered before)."""
    scope = recorder.scope
    if scope.kind not in ("site", "project", "agency"):
        return  # a range or a run without target has no register to account for
    site_ids = {s.id for s in scope.sites}
    project_ids = {p.id for p in scope.projects}
    seen = recorder.seen_this_run
    seen_entries = {recorder.devices[d].register_entry_id for d in seen if d in recorder.devices}
    for entry in recorder.register.values():
        in_scope = entry.project_id in project_ids or (entry.site_id in site_ids if entry.site_id else False)
        if not in_scope or entry.id in seen_entries:
            continue
        device = recorder.ident.device_for_entry(entry)
        if device is not None and device.id in seen:
            continue
        _mark_not_seen(recorder, entry, device)
    for project in scope.projects:
        _project_findings(recorder, project)
    recorder.session.commit()


def _mark_not_seen(recorder: Recorder, entry: RegisterEntry, device: Device | None) -> None:
    session = recorder.session
    now = utcnow()
    is_new = device is None
    if device is None:
        # A placeholder so the inventory lists the registered camera the scan could not find.
        device = Device(mac=clip(entry.mac.lower(), 17) if entry.mac else None, serial=entry.serial,
                        macs=[entry.mac.lower()] if entry.mac else [], address=entry.address,
                        name=entry.label, location_text=entry.location, status=DeviceStatus.UNKNOWN.value)
        session.add(device)
    device.registered = True
    device.register_entry_id = entry.id
    device.project_id = entry.project_id
    device.agency_id = entry.project.agency_id
    device.site_id = entry.site_id
    status = derive_status(None, [], registered=True, seen_before=device.last_seen is not None)
    session.flush()
    if is_new:
        recorder.devices[device.id] = device
        recorder.ident.index(device)
    old = device.status
    label = entry.label or entry.mac or entry.serial or f"#{entry.id}"
    finding = FindingResult(rule_id="registered_missing", severity=_severity("registered_missing"),
                            expected="seen in the scan", observed="not found", source=None,
                            message_th=f"ไม่พบกล้อง {label} ที่ลงทะเบียนไว้ในการสแกน",
                            message_en=f"Registered camera {label} was not found by the scan")
    key = ("registered_missing", None)
    current = recorder.active.setdefault(device.id, {})
    # Only a missing camera gets the finding; an offline one keeps (and refreshes) one it already has.
    wanted = {key: finding} if status is DeviceStatus.MISSING or key in current else {}

    def make(_key: Any, f: FindingResult) -> Finding:
        return Finding(device_id=device.id, project_id=device.project_id, register_entry_id=entry.id,
                       scan_run_id=recorder.run.id, rule_id=f.rule_id, severity=f.severity.value,
                       expected=f.expected, observed=f.observed, message_th=f.message_th, message_en=f.message_en)

    sync_findings(session, current, wanted, now=now, make=make, refresh=lambda row, f: None, resolve_gone=False)
    recorder._set_status(device, old, status.value, now, is_new=is_new, new_blocking=[])


def _project_findings(recorder: Recorder, project: Project) -> None:
    """Count shortfall of the project (approved cameras vs registered cameras that answered)."""
    session = recorder.session
    now = utcnow()
    spec = recorder.spec_for(project)
    found = recorder.answered_by_project.get(project.id, 0)
    results = evaluate_project(spec, approved_count=project.approved_count or 0, found_count=found)
    existing = {(f.rule_id, f.subject): f for f in session.scalars(
        select(Finding).where(Finding.project_id == project.id, Finding.device_id.is_(None),
                              Finding.active.is_(True)))}

    def make(key: Any, f: FindingResult) -> Finding:
        return Finding(project_id=project.id, rule_id=f.rule_id, severity=f.severity.value, subject=f.subject,
                       message_th=f.message_th, message_en=f.message_en)

    def refresh(row: Finding, f: FindingResult) -> None:
        row.scan_run_id = recorder.run.id
        row.expected, row.observed, row.source = f.expected, f.observed, f.source
        row.message_th, row.message_en = f.message_th, f.message_en

    sync_findings(session, existing, {(f.rule_id, f.subject): f for f in results}, now=now, make=make,
                  refresh=refresh)


def counts(recorder: Recorder, *, whole_scope: bool) -> dict[str, int]:
    """Devices per status among those this run touched (and, covering a target, those of its scope)."""
    scope = recorder.scope
    ids = set(recorder.seen_this_run)
    project_ids = {p.id for p in scope.projects} if whole_scope and scope.kind != "range" else set()
    site_ids = {s.id for s in scope.sites} if whole_scope else set()
    out: dict[str, int] = {}
    for device in recorder.devices.values():
        if device.id in ids or device.project_id in project_ids or device.site_id in site_ids:
            out[device.status] = out.get(device.status, 0) + 1
    return dict(sorted(out.items()))


def _severity(rule_id: str) -> Any:
    from cctv_monitor.compliance.rules import ENGINE_RULES

    return ENGINE_RULES[rule_id]
