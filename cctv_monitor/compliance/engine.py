"""Pure evaluation: (observation, spec, registration) -> findings -> device status.

No database and no Flask here, so the same verdict comes out of the scan pipeline, the CLI ``check``
and the tests.
"""

from __future__ import annotations

from typing import Any, Sequence

from probes.results import Observation, ProbeStatus

from cctv_monitor.compliance.findings import BLOCKING, FindingResult
from cctv_monitor.compliance.rules import ENGINE_RULES, RULES, DeviceContext
from cctv_monitor.compliance.spec import Spec
from cctv_monitor.statuses import DeviceStatus

#: Where registration and count requirements come from (not a threshold of the spec profile).
PROJECT_SOURCE = "Approved project: device register and approved camera count (ทะเบียนครุภัณฑ์และจำนวนที่อนุมัติ)"

#: Probe outcomes meaning "nothing answered" (the device is gone or off).
SILENT = frozenset({ProbeStatus.UNREACHABLE, ProbeStatus.TIMEOUT})

_UNREACHABLE_TEXT = {
    ProbeStatus.UNREACHABLE: ("ไม่มีการตอบสนองจากอุปกรณ์ (ปิดเครื่อง พอร์ตปิด หรือเส้นทางเครือข่ายขาด)",
                              "Nothing answers (device off, port closed or no route)"),
    ProbeStatus.TIMEOUT: ("อุปกรณ์รับการเชื่อมต่อแต่ไม่ตอบภายในเวลาที่กำหนด",
                          "The device accepted the connection but did not answer in time"),
    ProbeStatus.AUTH_FAILED: ("ชื่อผู้ใช้หรือรหัสผ่าน ONVIF ไม่ถูกต้อง หรือเวลาของกล้องคลาดเคลื่อนจนการยืนยันตัวตนล้มเหลว",
                              "Wrong ONVIF user or password, or the camera clock broke the digest"),
    ProbeStatus.ONVIF_DISABLED: ("อุปกรณ์ตอบ HTTP แต่ปิดการใช้งาน ONVIF ไว้ (เปิด ONVIF และสร้างผู้ใช้ ONVIF ที่หน้าเว็บกล้อง)",
                                 "HTTP answers but ONVIF is switched off (enable ONVIF and add an ONVIF user)"),
    ProbeStatus.NOT_ONVIF: ("อุปกรณ์ที่ตอบไม่ใช่อุปกรณ์ ONVIF", "What answers is not an ONVIF device"),
    ProbeStatus.NOT_SUPPORTED: ("อุปกรณ์ไม่มีบริการ ONVIF ที่จำเป็น", "A required ONVIF service is missing"),
    ProbeStatus.MALFORMED_REPLY: ("อุปกรณ์ตอบกลับด้วยข้อมูล XML/SOAP ที่อ่านไม่ได้",
                                  "The device replied with XML/SOAP we cannot read"),
    ProbeStatus.ERROR: ("เกิดข้อผิดพลาดระหว่างตรวจอุปกรณ์", "Probing the device failed"),
    ProbeStatus.DISCOVERED: ("พบอุปกรณ์จากการค้นหาในเครือข่าย แต่ยังไม่ได้ตรวจ (ตรวจในการสแกนครั้งถัดไปที่ครอบคลุมที่อยู่นี้)",
                             "Found by network discovery, not probed yet (the next scan covering its address reads it)"),
    ProbeStatus.NOT_ACTIVATED: (
        "อุปกรณ์ Hikvision นี้ยังไม่เคยเปิดใช้งาน (ยังไม่ได้ตั้งรหัสผ่านผู้ดูแลระบบ) ผู้ใดในเครือข่ายก็ตั้งรหัสผ่านและยึดอุปกรณ์ได้: "
        "เปิดใช้งาน (Activate) ด้วยรหัสผ่านที่รัดกุมผ่านโปรแกรม SADP หรือหน้าเว็บของอุปกรณ์ แล้วตั้งที่อยู่ IP ให้ตรงกับไซต์",
        "This Hikvision device was never activated (no admin password set), so anyone on the network can set one "
        "and take it over: activate it with a strong password using the SADP tool or its web page, then give it "
        "the site's IP address"),
}

#: A few words per probe outcome for one-line tables (scan summary, ``devices``, the dashboard's device table).
_SHORT_REASON = {
    ProbeStatus.UNREACHABLE: ("ไม่ตอบ (ปิดเครื่องหรือพอร์ตปิด)", "no answer (off or port closed)"),
    ProbeStatus.TIMEOUT: ("หมดเวลารอคำตอบ", "timeout"),
    ProbeStatus.AUTH_FAILED: ("รหัสผ่านไม่ถูกต้อง", "wrong user or password"),
    ProbeStatus.ONVIF_DISABLED: ("ปิด ONVIF อยู่", "ONVIF switched off"),
    ProbeStatus.NOT_ONVIF: ("ไม่ใช่อุปกรณ์ ONVIF", "not an ONVIF device"),
    ProbeStatus.NOT_SUPPORTED: ("ไม่มีบริการ ONVIF ที่จำเป็น", "ONVIF service missing"),
    ProbeStatus.MALFORMED_REPLY: ("คำตอบอ่านไม่ได้", "unreadable reply"),
    ProbeStatus.ERROR: ("ตรวจไม่สำเร็จ", "probe error"),
    ProbeStatus.DISCOVERED: ("พบจากการค้นหา ยังไม่ได้ตรวจ", "discovered, not probed yet"),
    ProbeStatus.NOT_ACTIVATED: ("ยังไม่เปิดใช้งาน (ไม่มีรหัสผ่าน)", "not activated (no password)"),
}


def unreachable_reason(status: ProbeStatus | str, *, short: bool = True) -> tuple[str, str]:
    """(Thai, English) reason for a probe outcome that is not ok: a few words, or the full sentence."""
    try:
        key = ProbeStatus(status)
    except ValueError:
        key = ProbeStatus.ERROR
    table = _SHORT_REASON if short else _UNREACHABLE_TEXT
    return table.get(key, table[ProbeStatus.ERROR])


def evaluate_device(obs: Observation, spec: Spec, *, registered: bool = True) -> list[FindingResult]:
    """Findings for one device: probe failure alone, else the profile's rules plus registration.

    A device only discovered (not probed) gets no verdict; one SADP reports as never activated gets the
    critical ``not_activated`` finding with the fix.
    """
    if obs.status is ProbeStatus.DISCOVERED:
        return []
    if obs.status is ProbeStatus.NOT_ACTIVATED:
        th, en = _UNREACHABLE_TEXT[ProbeStatus.NOT_ACTIVATED]
        return [FindingResult(rule_id="not_activated", severity=ENGINE_RULES["not_activated"],
                              expected="activated with a strong admin password", observed="not activated (SADP)",
                              source=None, message_th=th, message_en=en)]
    if not obs.ok:
        th, en = _UNREACHABLE_TEXT.get(obs.status, _UNREACHABLE_TEXT[ProbeStatus.ERROR])
        if obs.auth_locked:  # not a wrong password: say so, or someone "fixes" the right one
            th, en = ("อุปกรณ์ล็อกบัญชีหรือที่อยู่ของเครื่องตรวจไว้หลังการเข้าสู่ระบบผิดหลายครั้ง (ไม่ใช่รหัสผ่านผิด)",
                      "The device locked the account or our address after failed log-ins (not a wrong password)")
        detail = f": {obs.error}" if obs.error else ""
        return [FindingResult(rule_id="onvif_unreachable", severity=ENGINE_RULES["onvif_unreachable"],
                              expected="ONVIF read succeeds", observed=obs.status.value, source=None,
                              message_th=f"{th}{detail}", message_en=f"{en}{detail}")]
    findings: list[FindingResult] = []
    if not registered:
        findings.append(FindingResult(
            rule_id="unregistered", severity=ENGINE_RULES["unregistered"], expected="in the project register",
            observed=_identity_text(obs), source=PROJECT_SOURCE,
            message_th="อุปกรณ์นี้ไม่อยู่ในทะเบียนของโครงการที่ได้รับอนุมัติ",
            message_en="This device is not in the register of any approved project"))
    for host in obs.foreign_hosts:
        # The camera pointed us at another machine; the probe kept the credential on the probed host.
        findings.append(FindingResult(
            rule_id="foreign_media_host", severity=ENGINE_RULES["foreign_media_host"], subject=host,
            expected=f"stream, snapshot and service URIs on {obs.host}", observed=host, source=None,
            message_th=f"กล้องระบุที่อยู่สตรีม/บริการเป็นเครื่องอื่น ({host}) ไม่ใช่ {obs.host}; ระบบไม่ได้ส่งรหัสผ่านไปยัง {host}",
            message_en=f"The camera names another host ({host}) than {obs.host} for its streams or services; "
                       f"no credential was sent to {host}"))
    ctx = DeviceContext.build(obs)
    for rule in _bound_rules(spec):
        findings.extend(rule.evaluate(ctx))
    return findings


def _bound_rules(spec: Spec) -> tuple[Any, ...]:
    """The rules ``spec`` applies, bound to its requirements; made once per spec (a scan evaluates every
    camera of a project against the same one). Rules keep nothing between evaluations."""
    bound = spec.__dict__.get("_bound_rules")
    if bound is None:
        rules = []
        for key, rule_cls in RULES.items():
            requirement = spec.requirement(key)
            if requirement is None:
                if not rule_cls.always:
                    continue
                requirement = rule_cls.default_requirement(spec.source)
            rules.append(rule_cls(requirement))
        bound = tuple(rules)
        object.__setattr__(spec, "_bound_rules", bound)  # a cache beside the frozen fields, not one of them
    return bound


def evaluate_project(spec: Spec, *, approved_count: int, found_count: int,
                     missing_register: Sequence[str] = ()) -> list[FindingResult]:
    """Project findings: fewer cameras found than approved, and each register entry not seen."""
    findings: list[FindingResult] = []
    if found_count < approved_count:
        findings.append(FindingResult(
            rule_id="count_shortfall", severity=ENGINE_RULES["count_shortfall"], expected=str(approved_count),
            observed=str(found_count), source=PROJECT_SOURCE,
            message_th=f"พบกล้อง {found_count} ตัว น้อยกว่าจำนวนที่ได้รับอนุมัติ {approved_count} ตัว "
                       f"(ขาด {approved_count - found_count} ตัว)",
            message_en=f"{found_count} camera(s) found, fewer than the {approved_count} approved "
                       f"({approved_count - found_count} short)"))
    for label in missing_register:
        findings.append(FindingResult(
            rule_id="registered_missing", severity=ENGINE_RULES["registered_missing"], expected="seen in the scan",
            observed="not found", source=PROJECT_SOURCE, subject=label,
            message_th=f"ไม่พบกล้อง {label} ที่ลงทะเบียนไว้ในการสแกน",
            message_en=f"Registered camera {label} was not found by the scan"))
    return findings


def derive_status(obs: Observation | None, findings: Sequence[FindingResult], *, registered: bool,
                  seen_before: bool) -> DeviceStatus:
    """One status per device; the first matching line wins.

    1. no observation, or nothing answered (unreachable/timeout): OFFLINE if the device was seen before
       (or its recorder lists it),
       else MISSING if registered (it never showed up), else UNKNOWN;
    2. it answered but we could not read it (auth failed, ONVIF disabled, not ONVIF, not supported,
       malformed reply, probe error, never activated): UNREACHABLE (only discovered, not probed: UNKNOWN);
    3. not in any register: UNREGISTERED (even when otherwise compliant; its findings still say so);
    4. any critical or major finding: NON_COMPLIANT;
    5. otherwise COMPLIANT (minor and info findings do not change the status).
    """
    if obs is not None and obs.status is ProbeStatus.DISCOVERED:
        return DeviceStatus.UNKNOWN  # present, never judged: the next scan covering its address reads it
    if obs is None or obs.status in SILENT:
        # A camera its recorder lists but reports offline has been there: offline, not unknown.
        if seen_before or (obs is not None and obs.recorder is not None):
            return DeviceStatus.OFFLINE
        return DeviceStatus.MISSING if registered else DeviceStatus.UNKNOWN
    if not obs.ok:
        return DeviceStatus.UNREACHABLE
    if not registered:
        return DeviceStatus.UNREGISTERED
    if any(f.severity in BLOCKING for f in findings):
        return DeviceStatus.NON_COMPLIANT
    return DeviceStatus.COMPLIANT


def _identity_text(obs: Observation) -> str:
    ident = obs.device
    if ident is None:
        return obs.address
    parts = [p for p in (ident.manufacturer, ident.model, ident.macs[0] if ident.macs else None,
                         ident.serial) if p]
    return " / ".join(parts) or obs.address
