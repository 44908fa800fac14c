"""Rule classes, one per requirement key, and the registry mapping keys to them (NetBox style).

A spec profile's ``requirements.<key>`` mapping selects the rule class ``RULES[key]``; the class validates
its parameters (:meth:`Rule.parse_params`) when the profile is loaded and turns one observation into
zero or more :class:`FindingResult`. Rules marked ``always`` also run with their defaults when a profile
leaves their key out, because they check the camera against itself (ONVIF claim vs measured stream,
dead or black stream), not against a purchase threshold.

Which stream is "main": the media profile with the largest picture (ties: the first one listed, which is
the ONVIF convention for the main stream). Thresholds of resolution, frame rate, codec and bitrate apply
to the main stream; the measured value wins over the ONVIF claim when the stream was measured.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Mapping

from probes.results import MediaProfile, Observation, StreamCheck

from cctv_monitor.compliance.findings import FindingResult
from cctv_monitor.compliance.params import Param, codes, number
from cctv_monitor.compliance.requirement import Requirement, SpecError
from cctv_monitor.statuses import Severity

#: BitrateLimit values that are placeholders, not configuration (agsh/onvif#233: 2147483647).
PLACEHOLDER_BITRATE_KBPS = 2_000_000_000

_CODEC_ALIASES = {
    "H264": "H264", "H.264": "H264", "AVC": "H264", "AVC1": "H264", "X264": "H264",
    "H265": "H265", "H.265": "H265", "HEVC": "H265", "HVC1": "H265", "HEV1": "H265",
    "JPEG": "JPEG", "MJPEG": "JPEG", "MJPG": "JPEG", "M-JPEG": "JPEG",
    "MPEG4": "MPEG4", "MPEG-4": "MPEG4", "MP4V": "MPEG4",
}


def normalise_codec(value: str | None) -> str | None:
    """Upper-case codec name in the form probes use: H264, H265, JPEG, MPEG4 (others as given)."""
    if value is None:
        return None
    text = str(value).strip().upper()
    return _CODEC_ALIASES.get(text, _CODEC_ALIASES.get(text.replace(" ", ""), text)) or None


def version_key(version: str) -> tuple[int, ...]:
    """Comparable key of a vendor firmware string: its digit groups in order ("V5.7.11 build 230428")."""
    # Vendors share no version syntax (Hikvision "V5.7.11 build 230428", Dahua "2.840.0000000.18.R",
    # Uniview "IPC_Q1207-B0007P12D2111"); the digit groups in order compare correctly within one vendor.
    parts = [int(part) for part in re.findall(r"\d+", version)]
    while parts and parts[-1] == 0:  # 4.1 == 4.1.0.0
        parts.pop()
    return tuple(parts)


def main_profile(obs: Observation) -> MediaProfile | None:
    """The main stream: the profile with the largest picture; ties go to the first listed."""
    best: MediaProfile | None = None
    best_area = -1
    for profile in obs.profiles:
        area = (profile.width or 0) * (profile.height or 0)
        if area > best_area:
            best, best_area = profile, area
    return best


def own_streams(obs: Observation) -> Observation:
    """``obs`` without the streams of the cameras behind it (a recorder lists them as its own profiles).

    Each channel's streams are judged once, on the channel's device (:func:`cctv_monitor.recorders.expand`
    gives it those profiles and checks); the recorder keeps what is left, often nothing.
    """
    if obs.recorder is not None or not obs.channels:
        return obs
    theirs = {p.token for ch in obs.channels for p in ch.profiles}
    if not theirs:
        return obs
    return obs.with_updates(profiles=tuple(p for p in obs.profiles if p.token not in theirs),
                            stream_checks=tuple(c for c in obs.stream_checks if c.profile_token not in theirs))


def fmt_num(value: float | int | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class DeviceContext:
    """One device's observation with the views rules need (main profile, checks by profile token)."""

    obs: Observation
    main: MediaProfile | None
    checks: Mapping[str, StreamCheck] = field(default_factory=dict)

    @classmethod
    def build(cls, obs: Observation) -> "DeviceContext":
        """Derive the main profile and index the stream checks (a recorder keeps only its own streams)."""
        obs = own_streams(obs)
        return cls(obs=obs, main=main_profile(obs), checks={c.profile_token: c for c in obs.stream_checks})

    @property
    def main_check(self) -> StreamCheck | None:
        """The stream check of the main profile, if one was made."""
        return self.checks.get(self.main.token) if self.main else None

    def measured_main(self) -> StreamCheck | None:
        """The main stream check when it succeeded (so its values are measurements)."""
        check = self.main_check
        return check if check is not None and check.ok else None


# ---------------------------------------------------------------------------------------------------
# Parameter parsing


def _codec_list(value: Any, where: str) -> tuple[str, ...]:
    return tuple(normalise_codec(c) or c for c in codes(value, where))


def _version_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not value:
        raise SpecError(where, "expected a mapping of model (glob allowed) to minimum firmware version")
    out = {}
    for model, version in value.items():
        if not isinstance(version, (str, int, float)) or not version_key(str(version)):
            raise SpecError(f"{where}.{model}", f"expected a version with digits, got {version!r}")
        out[str(model)] = str(version)
    return out


# ---------------------------------------------------------------------------------------------------
# Base class and registry


RULES: dict[str, type["Rule"]] = {}


def register(cls: type["Rule"]) -> type["Rule"]:
    """Class decorator: add a rule class to :data:`RULES` under its ``key``."""
    if cls.key in RULES:
        raise RuntimeError(f"duplicate rule key {cls.key!r}")
    RULES[cls.key] = cls
    return cls


class Rule:
    """A check of one requirement key; subclasses set the class attributes and ``evaluate``."""

    key: ClassVar[str]
    #: Rule ids this class can emit, with their default severity.
    rule_ids: ClassVar[dict[str, Severity]]
    params: ClassVar[dict[str, Param]] = {}
    #: Run with default parameters when a profile leaves the key out.
    always: ClassVar[bool] = False
    title_en: ClassVar[str] = ""
    title_th: ClassVar[str] = ""

    def __init__(self, requirement: Requirement) -> None:
        """Bind the rule to one profile's requirement (validated parameters, source, severity)."""
        self.requirement = requirement
        self.p = requirement.params

    @classmethod
    def parse_params(cls, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
        """Validate the parameters of a requirement entry; raise :class:`SpecError` naming the field."""
        unknown = sorted(set(raw) - set(cls.params))
        if unknown:
            allowed = ", ".join(sorted(cls.params)) or "none"
            raise SpecError(f"{where}.{unknown[0]}", f"unknown parameter (allowed: {allowed})")
        values: dict[str, Any] = {}
        for name, param in cls.params.items():
            if raw.get(name) is None:
                if param.required:
                    raise SpecError(f"{where}.{name}", "missing")
                values[name] = param.default
                continue
            values[name] = param.parse(raw[name], f"{where}.{name}")
        cls.check_params(values, where)
        return values

    @classmethod
    def check_params(cls, values: dict[str, Any], where: str) -> None:
        """Cross-field checks (e.g. at least one threshold given); default: none."""

    @classmethod
    def default_requirement(cls, source: str | None) -> Requirement:
        """The requirement used when an ``always`` rule's key is not in the profile."""
        return Requirement(key=cls.key, params=cls.parse_params({}, f"requirements.{cls.key}"), source=source,
                           verified=True)

    def finding(self, rule_id: str, *, expected: Any, observed: Any, th: str, en: str,
                subject: str | None = None) -> FindingResult:
        """Build a finding with this requirement's source and (possibly overridden) severity."""
        severity = self.rule_ids[rule_id]
        if self.requirement.severity is not None and severity is not Severity.INFO:
            severity = self.requirement.severity
        return FindingResult(rule_id=rule_id, severity=severity,
                             expected=None if expected is None else str(expected),
                             observed=None if observed is None else str(observed),
                             source=self.requirement.source, message_th=th, message_en=en, subject=subject)

    def evaluate(self, ctx: DeviceContext) -> Iterator[FindingResult]:
        """Yield the findings for one device."""
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------------
# Spec thresholds


@register
class ResolutionRule(Rule):
    """Main stream picture at least ``min_width`` x ``min_height`` and/or ``min_megapixels``."""

    key = "resolution"
    rule_ids = {"resolution": Severity.MAJOR}
    title_en, title_th = "Minimum resolution", "ความละเอียดภาพขั้นต่ำ"
    params = {"min_width": number(int, minimum=1), "min_height": number(int, minimum=1),
              "min_megapixels": number(float, minimum=0)}

    @classmethod
    def check_params(cls, values: dict[str, Any], where: str) -> None:
        """Width and height go together; at least one threshold."""
        if (values["min_width"] is None) != (values["min_height"] is None):
            raise SpecError(f"{where}.min_height" if values["min_height"] is None else f"{where}.min_width",
                            "min_width and min_height must be given together")
        if values["min_width"] is None and values["min_megapixels"] is None:
            raise SpecError(where, "give min_width/min_height or min_megapixels")

    def expected(self) -> str:
        """Human text of the threshold, e.g. '1920x1080 (2 MP)'."""
        parts = []
        if self.p["min_width"]:
            parts.append(f"{self.p['min_width']}x{self.p['min_height']}")
        if self.p["min_megapixels"] is not None:
            parts.append(f"{fmt_num(self.p['min_megapixels'])} MP")
        return " / ".join(parts)

    def evaluate(self, ctx: DeviceContext) -> Iterator[FindingResult]:
        """Compare the (measured, else claimed) main stream size with the minimum."""
        if ctx.main is None:
            return
        measured = ctx.measured_main()
        if measured is not None and measured.width and measured.height:
            width, height, how_en, how_th = measured.width, measured.height, "measured stream", "วัดจากสตรีมจริง"
        elif ctx.main.width and ctx.main.height:
            width, height, how_en, how_th = ctx.main.width, ctx.main.height, "ONVIF", "ตามที่ ONVIF แจ้ง"
        else:
            return
        # Corridor (portrait) mode rotates the picture; compare long side with long side.
        long_side, short_side = max(width, height), min(width, height)
        too_small = False
        if self.p["min_width"]:
            need_long, need_short = max(self.p["min_width"], self.p["min_height"]), min(self.p["min_width"],
                                                                                         self.p["min_height"])
            too_small = long_side < need_long or short_side < need_short
        megapixels = width * height / 1_000_000
        # 1920x1080 is 2.07 MP; allow rounding so "2 MP" means what vendors mean by it.
        if self.p["min_megapixels"] is not None and megapixels + 0.005 < self.p["min_megapixels"]:
            too_small = True
        if too_small:
            observed = f"{width}x{height} ({megapixels:.2f} MP, {how_en})"
            yield self.finding(
                "resolution", expected=self.expected(), observed=observed, subject=ctx.main.token,
                th=f"ความละเอียดภาพ {width}x{height} ({how_th}) ต่ำกว่าที่กำหนด (ไม่น้อยกว่า {self.expected()})",
                en=f"Resolution {width}x{height} ({how_en}) is below the required {self.expected()}")


@register
class FrameRateRule(Rule):
    """Main stream frame rate at least ``min`` fps (measured values get ``measured_tolerance``)."""

    key = "fps"
    rule_ids = {"fps": Severity.MAJOR}
    title_en, title_th = "Minimum frame rate", "อัตราเฟรมขั้นต่ำ"
    params = {"min": number(float, minimum=0, required=True),
              # Frame timestamps of a 25 fps stream measure 24.6-25.4 over a few seconds.
              "measured_tolerance": number(float, minimum=0, default=1.0)}

    def evaluate(self, ctx: DeviceContext) -> Iterator[FindingResult]:
        """Compare the (measured, else claimed) main stream frame rate with the minimum."""
        if ctx.main is None:
            return
        measured = ctx.measured_main()
        if measured is not None and measured.fps:
            fps, limit, how_en, how_th = measured.fps, self.p["min"] - self.p["measured_tolerance"], \
                "measured stream", "วัดจากสตรีมจริง"
        elif ctx.main.fps:
            fps, limit, how_en, how_th = ctx.main.fps, self.p["min"], "ONVIF", "ตามที่ ONVIF แจ้ง"
        else:
            return
        if fps < limit:
            need = fmt_num(self.p["min"])
            got = fmt_num(round(fps, 2))
            yield self.finding(
                "fps", expected=f"≥ {need} fps", observed=f"{got} fps ({how_en})", subject=ctx.main.token,
                th=f"อัตราเฟรม {got} fps ({how_th}) ต่ำกว่าที่กำหนด (ไม่น้อยกว่า {need} fps)",
                en=f"Frame rate {got} fps ({how_en}) is below the required {need} fps")


@register
class CodecRule(Rule):
    """Main stream codec is one of ``allowed``."""

    key = "codec"
    rule_ids = {"codec": Severity.MAJOR}
    title_en, title_th = "Allowed codecs", "มาตรฐานการบีบอัดภาพที่อนุญาต"
    params = {"allowed": Param(_codec_list, required=True)}

    def evaluate(self, ctx: DeviceContext) -> Iterator[FindingResult]:
        """Check the claimed and (when measured) the delivered main stream codec."""
        if ctx.main is None:
            return
        allowed = self.p["allowed"]
        seen = []
        claimed = normalise_codec(ctx.main.encoding)
        if claimed:
            seen.append((claimed, "ONVIF", "ตามที่ ONVIF แจ้ง"))
        measured = ctx.measured_main()
        if measured is not None and measured.codec:
            codec = normalise_codec(measured.codec)
            if codec != claimed:
                seen.append((codec, "measured stream", "วัดจากสตรีมจริง"))
        for codec, how_en, how_th in seen:
            if codec not in allowed:
                names = ", ".join(allowed)
                yield self.finding(
                    "codec", expected=names, observed=f"{codec} ({how_en})", subject=ctx.main.token,
                    th=f"การบีบอัดภาพ {codec} ({how_th}) ไม่อยู่ในรายการที่อนุญาต ({names})",
                    en=f"Codec {codec} ({how_en}) is not one of the allowed codecs ({names})")
                return


@register
class StreamCountRule(Rule):
    """At least ``min`` media profiles (streams)."""

    key = "stream_count"
    rule_ids = {"stream_count": Severity.MAJOR}
    title_en, title_th = "Minimum number of streams", "จำนวนสตรีมขั้นต่ำ"
    params = {"min": number(int, minimum=1, required=True)}

    def evaluate(self, ctx: DeviceContext) -> Iterator[FindingResult]:
        """Count the media profiles the device offers."""
        count = len(ctx.obs.profiles)
        if count < self.p["min"]:
            yield self.finding(
                "stream_count", expected=f"≥ {self.p['min']}", observed=str(count),
                th=f"กล้องมีสตรีมภาพ {count} สตรีม น้อยกว่าที่กำหนด (ไม่น้อยกว่า {self.p['min']} สตรีม)",
                en=f"The camera offers {count} stream(s), fewer than the required {self.p['min']}")


@register
class OnvifProfileRule(Rule):
    """The device supports every ONVIF profile in ``required`` (S, T, G...)."""

    key = "onvif_profiles"
    rule_ids = {"onvif_profile": Severity.MAJOR, "onvif_off": Severity.INFO}
    title_en, title_th = "Required ONVIF profiles", "ONVIF Profile ที่ต้องรองรับ"
    params = {"required": Param(codes, required=True)}

    @staticmethod
    def supported(obs: Observation) -> tuple[set[str], bool]:
        """Profiles the device supports, and whether they were inferred from its services."""
        advertised = {p.strip().upper() for p in (obs.device.onvif_profiles if obs.device else ())}
        if advertised:
            return advertised, False
        # Many cameras omit the Profile scopes; Media (ver10) is Profile S, Media2 (ver20) Profile T.
        services = {s.lower() for s in obs.services}
        inferred = ({"S"} if "media" in services else set()) | ({"T"} if "media2" in services else set())
        return inferred, True

    def evaluate(self, ctx: DeviceContext) -> Iterator[FindingResult]:
        """Report the required profiles the device does not advertise (judged on what it supports)."""
        if ctx.obs.recorder is not None:
            return  # a camera behind a recorder: its own ONVIF service is out of our reach
        if ctx.obs.onvif_status is not None and ctx.obs.protocols and "onvif" not in ctx.obs.protocols:
            # Read through ISAPI/Dahua: the device has ONVIF but it is off or has no user; a fix, not a failure.
            yield self.finding(
                "onvif_off", expected=", ".join(self.p["required"]), observed=f"ONVIF {ctx.obs.onvif_status}",
                th="ปิด ONVIF ไว้หรือไม่มีผู้ใช้ ONVIF: เปิดใช้งาน ONVIF และเพิ่มผู้ใช้สำหรับสื่อ (media user) ที่หน้าเว็บของอุปกรณ์",
                en="ONVIF is off or has no user: enable ONVIF and add a media user on the device's web page")
            return
        have, inferred = self.supported(ctx.obs)
        missing = [p for p in self.p["required"] if p not in have]
        if missing:
            names = ", ".join(missing)
            observed = ", ".join(sorted(have)) or "none"
            if inferred:
                observed += " (inferred from services)"
            yield self.finding(
                "onvif_profile", expected=", ".join(self.p["required"]), observed=observed,
                th=f"อุปกรณ์ไม่รองรับ ONVIF Profile {names} ตามที่กำหนด",
                en=f"The device does not support the required ONVIF Profile {names}")


@register
class ClockRule(Rule):
    """Camera clock within ``max_drift_s`` seconds of ours (evidence timestamps, WS-Security)."""

    key = "clock"
    rule_ids = {"clock": Severity.MAJOR}
    title_en, title_th = "Maximum clock drift", "ความคลาดเคลื่อนของนาฬิกาสูงสุด"
    params = {"max_drift_s": number(float, minimum=0, required=True)}

    def evaluate(self, ctx: DeviceContext) -> Iterator[FindingResult]:
        """Compare the absolute clock offset with the limit."""
        offset = ctx.obs.clock_offset_s
        if offset is None:
            return
        if abs(offset) > self.p["max_drift_s"]:
            limit = fmt_num(self.p["max_drift_s"])
            got = f"{offset:+.0f}" if abs(offset) >= 10 else f"{offset:+.1f}"
            yield self.finding(
                "clock", expected=f"≤ {limit} s", observed=f"{got} s",
                th=f"นาฬิกาของกล้องคลาดเคลื่อน {got} วินาที เกินกว่าที่ยอมรับได้ ({limit} วินาที)",
                en=f"The camera clock is off by {got} s, more than the allowed {limit} s")


@register
class FirmwareRule(Rule):
    """Firmware at least ``minimum[model]`` (model patterns may use * and ?)."""

    key = "firmware"
    rule_ids = {"firmware": Severity.MAJOR}
    title_en, title_th = "Minimum firmware per model", "เฟิร์มแวร์ขั้นต่ำตามรุ่น"
    params = {"minimum": Param(_version_map, required=True)}

    def minimum_for(self, model: str) -> tuple[str, str] | None:
        """(pattern, minimum version) for ``model``: exact match first, then the longest matching glob."""
        lowered = model.strip().lower()
        for pattern, version in self.p["minimum"].items():
            if pattern.lower() == lowered:
                return pattern, version
        for pattern in sorted(self.p["minimum"], key=len, reverse=True):
            if fnmatch.fnmatchcase(lowered, pattern.lower()):
                return pattern, self.p["minimum"][pattern]
        return None

    def evaluate(self, ctx: DeviceContext) -> Iterator[FindingResult]:
        """Compare the firmware's digit groups with the model's minimum."""
        ident = ctx.obs.device
        if ident is None or not ident.model or not ident.firmware:
            return
        match = self.minimum_for(ident.model)
        if match is None:
            return
        _, minimum = match
        have = version_key(ident.firmware)
        if have and have < version_key(minimum):
            yield self.finding(
                "firmware", expected=f"≥ {minimum} ({ident.model})", observed=ident.firmware,
                th=f"เฟิร์มแวร์ {ident.firmware} เก่ากว่ารุ่นขั้นต่ำ {minimum} ที่กำหนดสำหรับรุ่น {ident.model}",
                en=f"Firmware {ident.firmware} is older than the minimum {minimum} set for model {ident.model}")


@register
class BitrateRule(Rule):
    """Main stream bitrate within ``min_kbps``..``max_kbps`` (measured, else configured)."""

    key = "bitrate"
    rule_ids = {"bitrate": Severity.MAJOR, "bitrate_placeholder": Severity.INFO}
    title_en, title_th = "Bitrate bounds", "ช่วงอัตราบิต"
    params = {"min_kbps": number(int, minimum=0), "max_kbps": number(int, minimum=1)}

    @classmethod
    def check_params(cls, values: dict[str, Any], where: str) -> None:
        """At least one bound; min not above max."""
        if values["min_kbps"] is None and values["max_kbps"] is None:
            raise SpecError(where, "give min_kbps and/or max_kbps")
        if values["min_kbps"] is not None and values["max_kbps"] is not None \
                and values["min_kbps"] > values["max_kbps"]:
            raise SpecError(f"{where}.min_kbps", f"{values['min_kbps']} is above max_kbps {values['max_kbps']}")

    def expected(self) -> str:
        """Human text of the bounds."""
        low, high = self.p["min_kbps"], self.p["max_kbps"]
        if low is not None and high is not None:
            return f"{low}-{high} kbps"
        return f"≥ {low} kbps" if low is not None else f"≤ {high} kbps"

    def evaluate(self, ctx: DeviceContext) -> Iterator[FindingResult]:
        """Check the main stream bitrate; a placeholder value is reported as info, not judged."""
        if ctx.main is None:
            return
        measured = ctx.measured_main()
        if measured is not None and measured.bitrate_kbps:
            kbps, how_en, how_th = measured.bitrate_kbps, "measured stream", "วัดจากสตรีมจริง"
        elif ctx.main.bitrate_kbps:
            kbps, how_en, how_th = ctx.main.bitrate_kbps, "ONVIF", "ตามที่ ONVIF แจ้ง"
            if kbps >= PLACEHOLDER_BITRATE_KBPS:
                yield self.finding(
                    "bitrate_placeholder", expected=self.expected(), observed=f"{kbps} kbps (ONVIF)",
                    subject=ctx.main.token,
                    th=f"กล้องแจ้งอัตราบิตเป็นค่าตัวยึด {kbps} ซึ่งไม่ใช่ค่าจริง จึงตรวจอัตราบิตไม่ได้",
                    en=f"The camera reports the placeholder bitrate {kbps}; the real bitrate is unknown")
                return
        else:
            return
        low, high = self.p["min_kbps"], self.p["max_kbps"]
        if low is not None and kbps < low:
            yield self.finding(
                "bitrate", expected=self.expected(), observed=f"{kbps} kbps ({how_en})", subject=ctx.main.token,
                th=f"อัตราบิต {kbps} kbps ({how_th}) ต่ำกว่าที่กำหนด ({self.expected()})",
                en=f"Bitrate {kbps} kbps ({how_en}) is below the required {self.expected()}")
        elif high is not None and kbps > high:
            yield self.finding(
                "bitrate", expected=self.expected(), observed=f"{kbps} kbps ({how_en})", subject=ctx.main.token,
                th=f"อัตราบิต {kbps} kbps ({how_th}) สูงกว่าที่กำหนด ({self.expected()})",
                en=f"Bitrate {kbps} kbps ({how_en}) is above the allowed {self.expected()}")


@register
class ChannelsRule(Rule):
    """At least ``min`` video sources (NVR/encoder channels)."""

    key = "channels"
    rule_ids = {"channels": Severity.MAJOR}
    title_en, title_th = "Minimum video channels", "จำนวนช่องสัญญาณภาพขั้นต่ำ"
    params = {"min": number(int, minimum=1, required=True)}

    def evaluate(self, ctx: DeviceContext) -> Iterator[FindingResult]:
        """Count distinct video sources over the media profiles."""
        sources = {p.video_source_token for p in ctx.obs.profiles if p.video_source_token}
        count = max(len(sources), len(ctx.obs.channels))  # a recorder read through its vendor API lists channels
        if count < self.p["min"]:
            yield self.finding(
                "channels", expected=f"≥ {self.p['min']}", observed=str(count),
                th=f"อุปกรณ์มีช่องสัญญาณภาพ {count} ช่อง น้อยกว่าที่กำหนด (ไม่น้อยกว่า {self.p['min']} ช่อง)",
                en=f"The device has {count} video channel(s), fewer than the required {self.p['min']}")


# The camera-against-itself rules (stream_match, stream, image) live in stream_rules.py, registered into
# RULES when the package is imported.

#: Rule ids produced outside the rule classes (engine-level), with their severity.
ENGINE_RULES: dict[str, Severity] = {
    "onvif_unreachable": Severity.CRITICAL,
    "not_activated": Severity.CRITICAL,  # SADP: a Hikvision device with no admin password yet (take-over risk)
    "unregistered": Severity.MAJOR,
    "registered_missing": Severity.MAJOR,
    "count_shortfall": Severity.MAJOR,
    "foreign_media_host": Severity.MINOR,
}


def rule_catalogue() -> list[tuple[str, str, Severity]]:
    """(rule id, requirement key or 'engine', default severity) for every rule id, for docs and UIs."""
    rows = [(rule_id, key, severity) for key, cls in RULES.items() for rule_id, severity in cls.rule_ids.items()]
    rows += [(rule_id, "engine", severity) for rule_id, severity in ENGINE_RULES.items()]
    return rows
