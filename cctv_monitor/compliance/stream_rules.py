"""Rules of the camera against itself (always on): the stream matches the ONVIF claim, opens, and shows a
usable picture. Registered into :data:`cctv_monitor.compliance.rules.RULES` when the package is imported.

The image thresholds are data: ``requirements.image.min_sharpness`` (variance of the Laplacian of the
320-pixel grey keyframe the stream check decodes) and ``covered_brightness`` in a spec profile.
"""

from __future__ import annotations

from typing import Iterator

from probes.results import MediaProfile, StreamCheck

from cctv_monitor.compliance.findings import FindingResult
from cctv_monitor.compliance.params import number, switch
from cctv_monitor.compliance.rules import DeviceContext, Rule, fmt_num, normalise_codec, register
from cctv_monitor.statuses import Severity

#: Sharpness below which a picture reads as blurred or covered. Measured on the simulator: the moving test
#: pattern scores about 900, the same pattern out of focus (Gaussian blur of width/90) about 7, a covered
#: lens under 1; real daytime scenes score in the hundreds.
DEFAULT_MIN_SHARPNESS = 20.0
#: Mean grey level below which a picture without sharpness reads as a covered lens rather than a blurred one.
DEFAULT_COVERED_BRIGHTNESS = 50.0



@register
class StreamMatchRule(Rule):
    """What the stream delivers matches what ONVIF claims (size, frame rate, codec), per profile."""

    key = "stream_match"
    always = True
    rule_ids = {"stream_resolution": Severity.MAJOR, "stream_fps": Severity.MAJOR,
                "stream_codec": Severity.MAJOR, "stream_gop": Severity.MAJOR}
    title_en, title_th = "Measured stream matches the ONVIF claim", "สตรีมจริงตรงกับที่ ONVIF แจ้ง"
    params = {"fps_tolerance": number(float, minimum=0, default=0.15,
                                     help="relative tolerance, 0.15 = 15 %"),
              "fps_tolerance_abs": number(float, minimum=0, default=1.0),
              "gop_tolerance": number(int, minimum=0, default=0,
                                     help="frames the keyframe interval may differ from GovLength")}

    def evaluate(self, ctx: DeviceContext) -> Iterator[FindingResult]:
        """Compare each successful stream check with its profile's claim."""
        for profile in ctx.obs.profiles:
            check = ctx.checks.get(profile.token)
            if check is None or not check.ok:
                continue
            if profile.width and profile.height and check.width and check.height \
                    and (profile.width, profile.height) != (check.width, check.height):
                claim, got = f"{profile.width}x{profile.height}", f"{check.width}x{check.height}"
                yield self.finding(
                    "stream_resolution", expected=claim, observed=got, subject=profile.token,
                    th=f"ONVIF แจ้งความละเอียด {claim} แต่สตรีมจริงของ {profile.token} ส่งภาพ {got}",
                    en=f"ONVIF claims {claim} but the {profile.token} stream delivers {got}")
            if profile.fps and check.fps:
                allowed = max(profile.fps * self.p["fps_tolerance"], self.p["fps_tolerance_abs"])
                if abs(check.fps - profile.fps) > allowed:
                    claim, got = fmt_num(profile.fps), fmt_num(round(check.fps, 2))
                    yield self.finding(
                        "stream_fps", expected=f"{claim} fps", observed=f"{got} fps", subject=profile.token,
                        th=f"ONVIF แจ้งอัตราเฟรม {claim} fps แต่สตรีมจริงของ {profile.token} ได้ {got} fps",
                        en=f"ONVIF claims {claim} fps but the {profile.token} stream delivers {got} fps")
            claimed, measured = normalise_codec(profile.encoding), normalise_codec(check.codec)
            if claimed and measured and claimed != measured:
                yield self.finding(
                    "stream_codec", expected=claimed, observed=measured, subject=profile.token,
                    th=f"ONVIF แจ้งการบีบอัดภาพ {claimed} แต่สตรีมจริงของ {profile.token} เป็น {measured}",
                    en=f"ONVIF claims {claimed} but the {profile.token} stream is {measured}")
            yield from self._gop(profile, check)

    def _gop(self, profile: MediaProfile, check: StreamCheck) -> Iterator[FindingResult]:
        """Only an exact interval (two keyframes seen) is judged; a lower bound ("at least N") is not."""
        if not profile.gov_length or check.keyframe_interval is None or normalise_codec(check.codec) == "JPEG":
            return
        if abs(check.keyframe_interval - profile.gov_length) > self.p["gop_tolerance"]:
            claim, got = profile.gov_length, check.keyframe_interval
            yield self.finding(
                "stream_gop", expected=f"{claim} frames", observed=f"{got} frames", subject=profile.token,
                th=f"ONVIF แจ้งระยะห่างคีย์เฟรม (GovLength) {claim} เฟรม แต่สตรีมจริงของ {profile.token} "
                   f"มีคีย์เฟรมทุก {got} เฟรม",
                en=f"ONVIF claims a keyframe every {claim} frames (GovLength) but the {profile.token} stream "
                   f"has one every {got} frames")


@register
class StreamRule(Rule):
    """Streams that were checked open: a dead main stream is major, a dead secondary stream minor."""

    key = "stream"
    always = True
    rule_ids = {"stream_unreachable": Severity.MAJOR, "stream_unreachable_secondary": Severity.MINOR}
    title_en, title_th = "Stream reachable", "เปิดสตรีมได้"
    params = {}

    def evaluate(self, ctx: DeviceContext) -> Iterator[FindingResult]:
        """One finding per failed stream check."""
        main_token = ctx.main.token if ctx.main else None
        for check in ctx.obs.stream_checks:
            if check.ok:
                continue
            rule_id = "stream_unreachable" if check.profile_token == main_token or main_token is None \
                else "stream_unreachable_secondary"
            error = check.error or "no frames"
            yield self.finding(
                rule_id, expected="stream opens and delivers frames", observed=error, subject=check.profile_token,
                th=f"เปิดสตรีม RTSP ของ {check.profile_token} ไม่ได้: {error}",
                en=f"The RTSP stream of {check.profile_token} could not be read: {error}")


@register
class ImageRule(Rule):
    """The main stream's picture is not black, not frozen (and, as a hint, not blurred or covered)."""

    key = "image"
    always = True
    rule_ids = {"image_black": Severity.MAJOR, "image_frozen": Severity.MAJOR,
                "image_blur": Severity.MAJOR, "image_low_detail": Severity.MINOR}
    title_en, title_th = "Usable picture", "ภาพใช้งานได้"
    params = {"black": switch(default=True), "frozen": switch(default=True),
              "low_detail": switch(default=True),
              "min_sharpness": number(float, minimum=0, default=DEFAULT_MIN_SHARPNESS,
                                     help="sharpness below which the picture is blurred or covered (0: off)"),
              "covered_brightness": number(float, minimum=0, default=DEFAULT_COVERED_BRIGHTNESS,
                                          help="mean grey level below which an unsharp picture is a covered lens")}

    def evaluate(self, ctx: DeviceContext) -> Iterator[FindingResult]:
        """Report the image problems the stream check flagged on successful checks."""
        for check in ctx.obs.stream_checks:
            if not check.ok:
                continue
            token = check.profile_token
            if self.p["black"] and check.black:
                yield self.finding("image_black", expected="picture", observed="black", subject=token,
                                   th=f"ภาพจากสตรีม {token} เป็นภาพดำ (กล้องอาจถูกปิดบังหรือเสีย)",
                                   en=f"The {token} stream shows a black picture (covered or broken camera)")
            if self.p["frozen"] and check.frozen:
                yield self.finding("image_frozen", expected="moving picture", observed="frozen", subject=token,
                                   th=f"ภาพจากสตรีม {token} ค้าง ไม่มีการเปลี่ยนแปลง",
                                   en=f"The {token} stream shows a frozen picture")
            blur = self._blur(check)
            if blur is not None:
                yield blur
            if self.p["low_detail"] and check.low_detail and not check.black and blur is None:
                yield self.finding("image_low_detail", expected="detailed picture", observed="low detail",
                                   subject=token,
                                   th=f"ภาพจากสตรีม {token} มีรายละเอียดต่ำ (อาจหลุดโฟกัสหรือถูกบัง)",
                                   en=f"The {token} stream shows little detail (out of focus or obstructed)")

    def _blur(self, check: StreamCheck) -> FindingResult | None:
        """image_blur: sharpness under the profile's threshold; dark as well reads as a covered lens."""
        limit = self.p["min_sharpness"]
        if not limit or check.sharpness is None or check.black or check.sharpness >= limit:
            return None
        token, got = check.profile_token, fmt_num(round(check.sharpness, 1))
        if check.brightness is not None and check.brightness < self.p["covered_brightness"]:
            return self.finding(
                "image_blur", expected=f"sharpness >= {fmt_num(limit)}", observed=f"{got} (dark: covered lens)",
                subject=token, th=f"ภาพจากสตรีม {token} มืดและไม่มีรายละเอียด (เลนส์อาจถูกปิดบัง) ความคมชัด {got}",
                en=f"The {token} stream shows a dark picture without detail (covered lens), sharpness {got}")
        return self.finding(
            "image_blur", expected=f"sharpness >= {fmt_num(limit)}", observed=got, subject=token,
            th=f"ภาพจากสตรีม {token} พร่ามัว (หลุดโฟกัสหรือโดมเป็นฝ้า) ความคมชัด {got}",
            en=f"The {token} stream shows a blurred picture (out of focus or fogged dome), sharpness {got}")
