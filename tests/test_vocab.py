"""probes.vocab: one redaction for every credential form inside URIs, one control-character stripper."""

from __future__ import annotations

import logging

import pytest

from probes.results import DeviceIdentity, MediaProfile, Observation, ProbeStatus
from probes.vocab import RedactingFilter, redact_text, redact_uri, strip_control

SECRET = "S3cr#t9"


@pytest.mark.parametrize("uri", [
    f"rtsp://admin:{SECRET}@10.0.0.1:554/live",
    f"rtsp://admin:{SECRET}@x@10.0.0.1/live",  # '@' inside the password
    f"http://admin:{SECRET}@10.0.0.1/onvif-http/snapshot",
    f"rtmp://u:{SECRET}@10.0.0.1/app",
    f"http://10.0.0.1/snapshot.cgi?loginuse=admin&loginpas={SECRET}",
    f"http://10.0.0.1/cgi-bin/snap?AuthBasic={SECRET}",
    f"rtsp://10.0.0.1/live/ch0;user=admin;pass={SECRET}",
    f"rtsp://10.0.0.1:554/user=admin_password={SECRET}_channel=1_stream=0.sdp",
    f"http://10.0.0.1/videostream.cgi?user=admin&pwd={SECRET}",
    f"http://10.0.0.1/videostream.cgi?PWD={SECRET}&resolution=32",
    f"http://10.0.0.1/cgi?passwd={SECRET}",
    f"http://10.0.0.1/api?token={SECRET}",
    f"http://10.0.0.1/api?Password={SECRET}&x=1",
    f"rtsp://10.0.0.1/h264?PASS={SECRET}",
])
def test_every_vendor_form_is_redacted(uri):
    shown = redact_uri(uri)
    assert SECRET not in shown, shown
    assert "***" in shown
    assert shown.split("://")[0] == uri.split("://")[0]  # still recognisably the same URI


def test_redaction_keeps_what_is_no_secret():
    assert redact_uri("rtsp://10.0.0.1:554/cam/Profile_1?channel=1&subtype=0") == \
        "rtsp://10.0.0.1:554/cam/Profile_1?channel=1&subtype=0"
    assert redact_uri(None) is None
    # Inside free text (an error message, a log line) as well.
    assert SECRET not in redact_text(f"stream rtsp://a:{SECRET}@h/x did not open; retry with pwd={SECRET}")


def test_observations_are_sanitised_at_the_boundary():
    obs = Observation(
        address="127.0.0.1:80", status=ProbeStatus.OK,
        error=f"stream at rtsp://admin:{SECRET}@127.0.0.1/x did not open",
        device=DeviceIdentity(name="Gate\x01\x1b[2J cam", model="M\u202eX", macs=("aa:bb:cc:dd:ee:01",)),
        profiles=(MediaProfile("p1", stream_uri=f"rtsp://127.0.0.1/x?loginpas={SECRET}"),),
        warnings=(f"snapshot http://127.0.0.1/s?authbasic={SECRET}",))
    clean = obs.sanitised()
    text = clean.to_json()
    assert SECRET not in text
    assert clean.device.name == "Gate[2J cam"
    assert clean.device.model == "MX"
    # Imports (a field laptop's JSON) pass through the same door.
    again = Observation.from_json(obs.to_json())
    assert SECRET not in again.to_json() and "\x1b" not in again.device.name


def test_sanitising_strips_then_redacts_every_text():
    # One walk does both (Observation.from_dict): a control character must not hide a credential from it.
    data = Observation(address="127.0.0.1:80", status=ProbeStatus.OK).to_dict()
    data["raw_errors"] = [f"line1\nu=admin&pass\x00word={SECRET}"]
    data["field_sources"] = {"identity": f"rtsp://a:{SECRET}\x01@h/x"}
    obs = Observation.from_dict(data)
    assert obs.raw_errors[0].startswith("line1\n") and SECRET not in obs.to_json()
    assert obs.field_sources["identity"] == "rtsp://***@h/x"


def test_strip_control():
    assert strip_control("a\x00b\x01c\x1b[31md\x7f\x9fe") == "abc[31mde"
    assert strip_control("line1\nline2\tx") == "line1 line2 x"
    assert strip_control("line1\nline2", keep_newlines=True) == "line1\nline2"
    assert strip_control("กล้อง ๑") == "กล้อง ๑"  # Thai is text, not control


def test_log_lines_are_redacted(caplog):
    logger = logging.getLogger("test_vocab")
    handler = logging.Handler()
    records: list[str] = []
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    try:
        logger.warning("%s: stream did not open", f"rtsp://admin:{SECRET}@10.0.0.1/live\x1b[2J")
    finally:
        logger.removeHandler(handler)
    assert records == ["rtsp://***@10.0.0.1/live[2J: stream did not open"]
