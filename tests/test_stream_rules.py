"""The stream rules added with packet-level measurement: stream_gop (measured keyframe interval against the
ONVIF GovLength) and image_blur (sharpness below the profile's threshold; dark as well = covered lens)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from cctv_monitor.compliance import Severity, Spec, evaluate_device
from cctv_monitor.compliance.stream_rules import DEFAULT_MIN_SHARPNESS
from test_compliance_rules import check, ids, obs, spec

PROFILES = Path(__file__).resolve().parent.parent / "config" / "profiles"
GOOD = {"width": 1920, "height": 1080, "fps": 25.0, "codec": "H264", "sharpness": 600.0, "brightness": 120.0}


def with_gov(o, gov=50, encoding="H264"):
    """The observation with the main profile claiming ``gov`` (GovLength) and ``encoding``."""
    main = replace(o.profiles[0], gov_length=gov, encoding=encoding)
    return o.with_updates(profiles=(main, *o.profiles[1:]))


@pytest.mark.parametrize("measured,at_least,fires", [
    (50, None, False),  # exactly as claimed
    (25, None, True),  # a GOP the camera does not deliver
    (100, None, True),
    (None, 30, False),  # "at least 30 frames": not judged
    (None, 80, False),  # a lower bound is never judged, even above the claim
])
def test_stream_gop_judges_only_an_exact_interval(measured, at_least, fires):
    """Only an interval seen between two keyframes is compared with GovLength; the finding names both."""
    o = with_gov(obs(checks=[check(**GOOD, keyframe_interval=measured, keyframe_interval_min=at_least)]))
    findings = evaluate_device(o, spec())
    assert ids(findings) == (["stream_gop"] if fires else [])
    if fires:
        assert findings[0].expected == "50 frames" and findings[0].observed == f"{measured} frames"
        assert findings[0].severity is Severity.MAJOR and findings[0].subject == "Profile_1"


def test_stream_gop_tolerance_mjpeg_and_missing_govlength():
    """gop_tolerance is data; MJPEG (every frame a keyframe) and a missing GovLength are not judged."""
    o = with_gov(obs(checks=[check(**GOOD, keyframe_interval=48)]))
    assert ids(evaluate_device(o, spec())) == ["stream_gop"]
    assert ids(evaluate_device(o, spec(stream_match={"gop_tolerance": 2}))) == []
    jpeg = with_gov(obs(encoding="JPEG", checks=[check(**{**GOOD, "codec": "JPEG"}, keyframe_interval=1)]),
                    encoding="JPEG")
    assert "stream_gop" not in ids(evaluate_device(jpeg, spec(codec={"allowed": ["JPEG"]})))
    missing = with_gov(obs(checks=[check(**GOOD, keyframe_interval=25)]), gov=None)
    assert ids(evaluate_device(missing, spec())) == []


@pytest.mark.parametrize("sharpness,brightness,observed", [
    (600.0, 120.0, None),  # a sharp picture
    (7.0, 127.0, "7"),  # out of focus
    (0.7, 26.0, "0.7 (dark: covered lens)"),  # covered
    (DEFAULT_MIN_SHARPNESS, 120.0, None),  # at the threshold
])
def test_image_blur_and_covered_lens(sharpness, brightness, observed):
    """Below min_sharpness the picture is blurred, and with a dark mean a covered lens; low detail is then
    not reported a second time."""
    o = obs(checks=[check(**{**GOOD, "sharpness": sharpness, "brightness": brightness},
                          low_detail=sharpness < 15)])
    findings = evaluate_device(o, spec())
    if observed is None:
        assert ids(findings) == []
    else:
        assert ids(findings) == ["image_blur"] and findings[0].observed == observed
        assert findings[0].expected == f"sharpness >= {DEFAULT_MIN_SHARPNESS:g}"


def test_image_blur_threshold_is_profile_data():
    """min_sharpness and covered_brightness come from the spec profile; 0 turns the check off; a black
    picture is reported as black only."""
    o = obs(checks=[check(**{**GOOD, "sharpness": 40.0})])
    assert ids(evaluate_device(o, spec())) == []
    assert ids(evaluate_device(o, spec(image={"min_sharpness": 50}))) == ["image_blur"]
    blurred = obs(checks=[check(**{**GOOD, "sharpness": 5.0})])
    assert ids(evaluate_device(blurred, spec(image={"min_sharpness": 0}))) == []
    black = obs(checks=[check(**{**GOOD, "sharpness": 0.0, "brightness": 0.0}, black=True)])
    assert ids(evaluate_device(black, spec())) == ["image_black"]


def test_shipped_profiles_carry_the_blur_threshold():
    """Every shipped camera profile states the image_blur thresholds as data (the NVR profile has no picture
    of its own and leaves the always-on image rule at its defaults)."""
    stated = 0
    for path in sorted(PROFILES.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        profile = Spec.from_mapping(raw, code=path.stem)
        if "image" not in raw["requirements"]:
            continue
        image = profile.requirements["image"]
        assert image.params["min_sharpness"] == DEFAULT_MIN_SHARPNESS, path.name
        assert image.params["covered_brightness"] == 50, path.name
        stated += 1
    assert stated == 4
