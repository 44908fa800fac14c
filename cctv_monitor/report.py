"""Acceptance check of a new installation: per-camera verdicts and the printable HTML report (Thai).

:func:`build_check_result` turns the observations of a check run into verdicts against the project's spec
(every requirement with expected vs observed and pass/fail); :func:`render_report` writes a self-contained
HTML page (Jinja2 with autoescape, since every camera string is hostile; the Thai font and thumbnails
inline as data: URIs so the file prints the same anywhere) with Buddhist-era dates as official letters
write them (``๒๕ ตุลาคม ๒๕๖๗``).
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from babel.dates import format_date
from jinja2 import Environment, PackageLoader, select_autoescape

from cctv_monitor.compliance import FindingResult, Spec, evaluate_device, evaluate_project, main_profile
from cctv_monitor.compliance.engine import unreachable_reason
from cctv_monitor.compliance.rules import RULES
from probes.results import Observation as ObsData

LOGGER = logging.getLogger(__name__)

__all__ = ["RequirementRow", "CameraVerdict", "CheckResult", "build_check_result", "render_report",
           "thai_date", "thai_digits", "THAI_TZ", "RESULTS", "TYPED"]

THAI_TZ = ZoneInfo("Asia/Bangkok")
_THAI_DIGITS = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")
#: Thai fonts from Debian's fonts-thai-tlwg (Laksaman derives from TH Sarabun New, the official face).
FONT_FILES = {"normal": "/usr/share/fonts/truetype/tlwg/Laksaman.ttf",
              "bold": "/usr/share/fonts/truetype/tlwg/Laksaman-Bold.ttf"}


def thai_digits(text: str) -> str:
    """Arabic digits as Thai digits (๐-๙), as official letters write numbers."""
    return text.translate(_THAI_DIGITS)


def thai_date(value: date | datetime, *, digits: bool = True, with_time: bool = False) -> str:
    """``25 ตุลาคม 2567`` (Buddhist era): babel gives the Thai month name, the era is added here.

    Babel formats Thai month names but only in the Gregorian calendar (even with ``@calendar=buddhist``),
    so the year is written by hand as Gregorian + 543.
    """
    if isinstance(value, datetime):
        local = value.astimezone(THAI_TZ) if value.tzinfo else value
        day = local.date()
    else:
        local, day = None, value
    text = f"{format_date(day, 'd MMMM', locale='th')} {day.year + 543}"
    if with_time and local is not None:
        text += f" เวลา {local:%H:%M} น."
    return thai_digits(text) if digits else text


#: Result of one requirement row: (Thai, English). "not checked": --no-streams; "no minimum": firmware rule
#: without a minimum for the camera's model.
RESULTS = {"pass": ("ผ่าน", "pass"), "fail": ("ไม่ผ่าน", "FAIL"), "not_checked": ("ไม่ได้ตรวจ", "not checked"),
           "no_minimum": ("ไม่มีเกณฑ์ขั้นต่ำสำหรับรุ่นนี้", "no minimum for this model")}
#: Source label of the credential typed with ``check --user`` (see :class:`probes.targets.Credential`).
TYPED = "--user"


@dataclass
class RequirementRow:
    """One requirement of the spec for one camera: expected, observed and the result (see RESULTS)."""

    key: str
    title_th: str
    title_en: str
    expected: str
    observed: str
    result: str
    messages_th: list[str] = field(default_factory=list)
    expected_th: str = ""  # the same in Thai words for the report (units and names stay)
    observed_th: str = ""

    @property
    def passed(self) -> bool | None:
        """True (pass), False (fail) or None (not checked / no minimum for the model)."""
        return {"pass": True, "fail": False}.get(self.result)

    @property
    def result_th(self) -> str:
        """The result in Thai."""
        return RESULTS[self.result][0]

    @property
    def result_en(self) -> str:
        """The result in English."""
        return RESULTS[self.result][1]


@dataclass
class CameraVerdict:
    """One camera found by the check."""

    address: str
    manufacturer: str | None
    model: str | None
    serial: str | None
    mac: str | None
    name: str | None
    reachable: bool
    passed: bool
    registered: bool | None
    rows: list[RequirementRow]
    findings: list[FindingResult]
    thumbnail_jpeg: bytes | None = None
    error: str | None = None
    label: str | None = None  # the register's own name for the camera (e.g. ตลาด-01)
    credential_user: str | None = None  # the ONVIF user it accepted
    credential_source: str | None = None  # where that credential came from ("--user", "site market")
    typed_rejected: bool = False  # the credential typed with --user was refused by this camera
    error_th: str | None = None  # why it could not be read, in Thai

    @property
    def credential_text(self) -> str:
        """``admin (site market)`` or ``-``."""
        if not self.credential_user:
            return "-"
        return f"{self.credential_user} ({self.credential_source})" if self.credential_source else \
            self.credential_user

    @property
    def credential_th(self) -> str:
        """The accepted credential in Thai words."""
        if not self.credential_user:
            return "-"
        source = self.credential_source or ""
        if source == TYPED:
            where = "ที่ระบุในคำสั่งตรวจ"
        elif source.startswith("site "):
            where = f"ที่บันทึกไว้ของจุดติดตั้ง {source[5:]}"
        else:
            where = "ที่บันทึกไว้"
        return f"{self.credential_user} ({where})"

    @property
    def failing(self) -> list[str]:
        """Keys of the requirements that failed (or ``onvif`` when the camera could not be read)."""
        return ["onvif"] if not self.reachable else [r.key for r in self.rows if r.result == "fail"]

    @property
    def thumbnail_uri(self) -> str | None:
        """The thumbnail as a data: URI (inline, so the report is one file)."""
        if not self.thumbnail_jpeg:
            return None
        return "data:image/jpeg;base64," + base64.b64encode(self.thumbnail_jpeg).decode("ascii")


@dataclass
class CheckResult:
    """The acceptance check of one project: cameras, counts, project findings and the verdict."""

    project_code: str
    project_title_th: str
    approval_ref: str | None
    approval_date: date | None
    agency_name_th: str
    agency_name_en: str | None
    spec_code: str
    spec_name_th: str
    checked_at: datetime
    operator: str
    scope_text: str
    approved_count: int
    cameras: list[CameraVerdict]
    project_findings: list[FindingResult]
    run_id: int | None = None
    with_streams: bool = False
    typed_user: str | None = None  # the ONVIF user typed with --user, if any
    scope_text_en: str | None = None  # the scope in English, for the English command-line output

    @property
    def typed_rejected_by(self) -> list[CameraVerdict]:
        """Cameras that refused the typed credential (read with a stored one, or not at all)."""
        return [c for c in self.cameras if c.typed_rejected]

    @property
    def found_count(self) -> int:
        """Cameras that answered."""
        return len(self.cameras)

    @property
    def passed_count(self) -> int:
        """Cameras that meet every requirement."""
        return sum(1 for c in self.cameras if c.passed)

    @property
    def passed(self) -> bool:
        """The installation is accepted: every camera passes and no blocking project finding."""
        return all(c.passed for c in self.cameras) and not any(f.blocking for f in self.project_findings) \
            and self.found_count > 0

    def to_dict(self) -> dict[str, Any]:
        """JSON form for ``check --json``."""
        return {
            "project": self.project_code, "approval_ref": self.approval_ref, "agency": self.agency_name_th,
            "spec_profile": self.spec_code, "checked_at": self.checked_at.isoformat(), "operator": self.operator,
            "scope": self.scope_text, "scope_en": self.scope_text_en or self.scope_text,
            "approved_count": self.approved_count, "found_count": self.found_count,
            "passed_count": self.passed_count, "passed": self.passed, "run_id": self.run_id,
            "typed_user": self.typed_user,
            "typed_credential_rejected_by": [c.address for c in self.typed_rejected_by],
            "project_findings": [f.to_dict() for f in self.project_findings],
            "cameras": [{"address": c.address, "manufacturer": c.manufacturer, "model": c.model, "serial": c.serial,
                         "mac": c.mac, "label": c.label, "reachable": c.reachable, "passed": c.passed,
                         "registered": c.registered, "error": c.error, "credential_user": c.credential_user,
                         "credential_source": c.credential_source, "typed_credential_rejected": c.typed_rejected,
                         "failing": c.failing,
                         "requirements": [{"key": r.key, "expected": r.expected, "observed": r.observed,
                                           "passed": r.passed, "result": r.result_en} for r in c.rows],
                         "findings": [f.to_dict() for f in c.findings]} for c in self.cameras],
        }


# -- expected / observed per requirement ---------------------------------------------------------------------

def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
    return str(value)


_STREAM_KEYS = ("stream_match", "stream", "image")
_EXPECTED_STREAM = {"stream_match": ("ภาพจริงตรงกับที่ ONVIF แจ้ง", "stream matches the ONVIF claim"),
                    "stream": ("เปิดสตรีม RTSP ได้", "RTSP stream opens"),
                    "image": ("ภาพไม่ดำ ไม่ค้าง", "picture neither black nor frozen")}
#: English fragments of rule texts and their Thai words (units, codecs and standard names stay as they are).
_TH_WORDS = [("measured stream", "วัดจากสตรีมจริง"), ("stream opens and delivers frames", "เปิดสตรีมได้และมีภาพ"),
             ("detailed picture", "ภาพมีรายละเอียด"), ("moving picture", "ภาพเคลื่อนไหว"),
             ("low detail", "รายละเอียดภาพน้อย"), ("picture", "มีภาพ"), ("black", "ภาพดำ"), ("frozen", "ภาพค้าง"),
             ("(ONVIF)", "(ตามที่ ONVIF แจ้ง)"), ("Profile ", "โปรไฟล์ "), (">=", "≥"), ("<=", "≤")]


def _th(text: str) -> str:
    """Thai words for the English fragments the rules write into expected/observed values."""
    for en, th in _TH_WORDS:
        text = text.replace(en, th)
    return text


def _expected(key: str, params: dict[str, Any]) -> str:
    p = {k: v for k, v in params.items() if v not in (None, [], {}, ())}
    if key == "resolution" and p.get("min_width"):
        return f"≥ {p['min_width']}x{p.get('min_height', '?')}"
    if key == "resolution" and p.get("min_megapixels"):
        return f"≥ {_fmt(p['min_megapixels'])} MP"
    if key == "fps" and "min" in p:
        return f"≥ {_fmt(p['min'])} fps"
    if key == "codec" and "allowed" in p:
        return _fmt(p["allowed"])
    if key == "bitrate":
        lo, hi = p.get("min_kbps"), p.get("max_kbps")
        return f"{_fmt(lo)}–{_fmt(hi)} kbps" if lo and hi else (f"≥ {lo} kbps" if lo else f"≤ {_fmt(hi)} kbps")
    if key in ("stream_count", "channels") and "min" in p:
        return f"≥ {p['min']}"
    if key == "onvif_profiles" and "required" in p:
        return "Profile " + _fmt(p["required"])
    if key == "clock" and "max_drift_s" in p:
        return f"≤ {_fmt(p['max_drift_s'])} s"
    if key in _STREAM_KEYS:
        return _EXPECTED_STREAM[key][1]
    return _fmt(p)


def _observed(key: str, obs: ObsData) -> str:
    main = main_profile(obs)
    check = None
    if main is not None:
        check = next((c for c in obs.stream_checks if c.profile_token == main.token), None)
    if key == "resolution":
        return f"{main.width}x{main.height}" if main and main.width else "-"
    if key == "fps":
        return f"{_fmt(main.fps)} fps" if main and main.fps is not None else "-"
    if key == "codec":
        return main.encoding or "-" if main else "-"
    if key == "bitrate":
        return f"{main.bitrate_kbps} kbps" if main and main.bitrate_kbps is not None else "-"
    if key == "stream_count":
        return str(len(obs.profiles))
    if key == "channels":
        return str(len({p.video_source_token for p in obs.profiles if p.video_source_token}) or "-")
    if key == "onvif_profiles":
        return "Profile " + _fmt(obs.device.onvif_profiles if obs.device else ())
    if key == "clock":
        return f"{obs.clock_offset_s:+.0f} s" if obs.clock_offset_s is not None else "-"
    if key == "firmware":
        return (obs.device.firmware if obs.device else None) or "-"
    if key in _STREAM_KEYS:
        if check is None:
            return "not checked"
        if not check.ok:
            return f"cannot open: {check.error or '-'}"
        return f"{check.width}x{check.height} {_fmt(check.fps)} fps {check.codec or ''}".strip()
    return "-"


def _firmware_minimum(spec: Spec, obs: ObsData) -> tuple[str, str] | None:
    """(model pattern, minimum) that applies to this camera's model, or None when the profile sets none."""
    req = spec.requirement("firmware")
    model = obs.device.model if obs.device else None
    if req is None or not model:
        return None
    return RULES["firmware"](req).minimum_for(model)  # type: ignore[attr-defined]


def requirement_rows(obs: ObsData, spec: Spec, findings: Sequence[FindingResult]) -> list[RequirementRow]:
    """Every requirement of ``spec`` (plus the always-on stream rules) with expected vs observed."""
    by_key: dict[str, list[FindingResult]] = {}
    key_of = {rid: cls.key for cls in RULES.values() for rid in cls.rule_ids}
    for f in findings:
        by_key.setdefault(key_of.get(f.rule_id, f.rule_id), []).append(f)
    keys = list(spec.requirements)
    for key, cls in RULES.items():
        if cls.always and key not in keys:
            keys.append(key)
    streams_read = bool(obs.stream_checks)
    rows = []
    for key in keys:
        cls = RULES.get(key)
        req = spec.requirement(key)
        params = dict(req.params) if req is not None else {}
        failing = [f for f in by_key.get(key, []) if f.blocking]
        observed = failing[0].observed if failing and failing[0].observed else _observed(key, obs)
        expected = failing[0].expected if failing and failing[0].expected else _expected(key, params)
        result = "fail" if failing else "pass"
        observed_th = _th(observed)
        expected_th = _EXPECTED_STREAM[key][0] if key in _STREAM_KEYS else _th(expected)
        if key in _STREAM_KEYS and not streams_read:
            result, observed, observed_th = "not_checked", "not checked", "ไม่ได้ตรวจสตรีม"
        elif key in _STREAM_KEYS and failing:
            observed_th = "; ".join(dict.fromkeys(f.message_th.split(":")[0] for f in failing))
        elif key in _STREAM_KEYS and observed.startswith("cannot open"):
            observed_th = "เปิดสตรีมไม่ได้"
        if key == "firmware":
            match = _firmware_minimum(spec, obs)
            if match is None:
                result = "no_minimum" if not failing else result
                expected = expected_th = "-"  # the result column says "no minimum for this model"
            else:
                expected = f"≥ {match[1]} ({obs.device.model if obs.device else match[0]})"
                expected_th = expected
        rows.append(RequirementRow(key=key, title_th=getattr(cls, "title_th", "") or key,
                                   title_en=getattr(cls, "title_en", "") or key, expected=_th_symbols(expected),
                                   observed=observed, result=result,
                                   messages_th=[f.message_th for f in by_key.get(key, [])],
                                   expected_th=expected_th, observed_th=observed_th))
    return rows


def _th_symbols(text: str) -> str:
    """One symbol style: ≥ and ≤, never >= and <=."""
    return text.replace(">=", "≥").replace("<=", "≤")


def build_check_result(*, project: Any, spec: Spec, observations: Iterable[ObsData], operator: str,
                       scope_text: str, scope_text_en: str | None = None, registered_macs: Iterable[str] = (), registered_serials: Iterable[str] = (),
                       missing_register: Sequence[str] = (), run_id: int | None = None,
                       with_streams: bool = False, checked_at: datetime | None = None,
                       register_labels: Mapping[str, str] | None = None,
                       typed_user: str | None = None) -> CheckResult:
    """Verdicts of a check: each answering camera against ``spec``, then the approved-count comparison.

    ``register_labels`` maps a registered MAC (lower case) or serial to the register's label of the camera.
    """
    macs = {m.lower() for m in registered_macs if m}
    serials = {s for s in registered_serials if s}
    labels = {k.lower() if ":" in k else k: v for k, v in (register_labels or {}).items() if k and v}
    cameras = []
    for obs in sorted(observations, key=lambda o: _addr_key(o.address)):
        ident = obs.device
        # The acceptance check judges the installation; registration is reported, not failed on.
        findings = evaluate_device(obs, spec, registered=True)
        cam_macs = [m.lower() for m in (ident.macs if ident else ())]
        registered = bool(set(cam_macs) & macs or (ident and ident.serial in serials)) if (macs or serials) else None
        thumb = next((c.thumbnail_jpeg for c in obs.stream_checks if c.thumbnail_jpeg), None)
        cameras.append(CameraVerdict(
            address=obs.address, manufacturer=ident.manufacturer if ident else None,
            model=ident.model if ident else None, serial=ident.serial if ident else None,
            mac=cam_macs[0] if cam_macs else None, name=ident.name if ident else None, reachable=obs.ok,
            passed=obs.ok and not any(f.blocking for f in findings), registered=registered,
            rows=requirement_rows(obs, spec, findings) if obs.ok else [], findings=findings,
            thumbnail_jpeg=thumb, error=obs.error if not obs.ok else None,
            label=next((labels[m] for m in cam_macs if m in labels), None)
            or (labels.get(ident.serial) if ident and ident.serial else None),
            credential_user=obs.credential_user, credential_source=obs.credential_source,
            typed_rejected=bool(typed_user) and f"{typed_user} ({TYPED})" in obs.rejected_credentials,
            error_th=None if obs.ok else unreachable_reason(obs.status, short=False)[0]))
    project_findings = evaluate_project(spec, approved_count=project.approved_count or 0,
                                        found_count=len(cameras), missing_register=missing_register)
    agency = project.agency
    return CheckResult(
        project_code=project.code, project_title_th=project.title_th, approval_ref=project.approval_ref,
        approval_date=project.approval_date, agency_name_th=agency.name_th, agency_name_en=agency.name_en,
        spec_code=spec.code, spec_name_th=spec.name_th, checked_at=checked_at or datetime.now(timezone.utc),
        operator=operator, scope_text=scope_text, approved_count=project.approved_count or 0, cameras=cameras,
        project_findings=project_findings, run_id=run_id, with_streams=with_streams, typed_user=typed_user,
        scope_text_en=scope_text_en)


def _addr_key(address: str) -> tuple[int, ...]:
    host = address.rpartition(":")[0] or address
    try:
        return tuple(int(x) for x in host.split("."))
    except ValueError:
        return (999,)


# -- rendering -----------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("cctv_monitor", "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["thai_date"] = thai_date
    env.filters["thai_digits"] = thai_digits
    return env


@lru_cache(maxsize=1)
def _font_faces() -> list[dict[str, str]]:
    """The Thai font inline (data: URI), so the report prints in Thai on machines without it."""
    faces = []
    for weight, path in FONT_FILES.items():
        try:
            data = Path(path).read_bytes()
        except OSError:
            LOGGER.info("Thai font %s not found; the report falls back to the browser's Thai font", path)
            continue
        faces.append({"weight": weight, "uri": "data:font/ttf;base64," + base64.b64encode(data).decode("ascii")})
    return faces


def render_report(result: CheckResult) -> str:
    """The printable acceptance report (HTML, Thai, Buddhist-era dates)."""
    return _environment().get_template("report/acceptance.html").render(r=result, fonts=_font_faces())
