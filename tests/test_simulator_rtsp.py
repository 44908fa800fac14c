"""OpenCV reads every simulated RTSP stream of the demo fleet at the size, fps and codec the fleet file says
the stream really delivers (which may differ from the ONVIF claim)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from cctv_monitor.simulator.rtsp import rtsp_unavailable_reason
from cctv_monitor.simulator.testing import running_fleet

pytestmark = [pytest.mark.rtsp, pytest.mark.slow]
RAW = yaml.safe_load((Path(__file__).resolve().parents[1] / "config/fleets/demo.yaml").read_text(encoding="utf-8"))
FOURCC = {"H264": "h264", "H265": "hevc", "JPEG": "MJPG"}


def delivered(profile: dict) -> tuple[int, int, int, str]:
    """(width, height, fps, codec) the stream delivers according to the fleet file."""
    stream = profile.get("stream") or {}
    return (stream.get("width", profile["width"]), stream.get("height", profile["height"]),
            stream.get("fps", profile["fps"]), stream.get("codec", profile["encoding"]))


def measure(url: str, frames: int = 30) -> dict:
    """Open with OpenCV (FFmpeg, TCP), read ``frames`` packets, fps from frame timestamps."""
    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "rtsp_transport;tcp"
    import cv2

    cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 15000,
                                                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, 15000])
    try:
        assert cap.isOpened(), url
        stamps = []
        for _ in range(frames):
            assert cap.grab(), url
            stamps.append(cap.get(cv2.CAP_PROP_POS_MSEC))
        ok, image = cap.retrieve()
        return {"width": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), "height": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                "fps": (len(stamps) - 1) * 1000 / (stamps[-1] - stamps[0]),
                "fourcc": int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode(errors="replace"),
                "mean": float(image.mean()) if ok else None}
    finally:
        cap.release()


@pytest.fixture(scope="module")
def demo_streams():
    """The demo fleet with its RTSP streams (skips with the reason when GStreamer is missing)."""
    reason = rtsp_unavailable_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with running_fleet("demo", streams=True) as fleet:
        assert fleet.streams, fleet.streams_reason
        yield fleet


def test_every_demo_stream_delivers_what_the_fleet_file_says(demo_streams):
    """Size, fps (from timestamps, within 5 %) and codec of every served stream."""
    checked = 0
    for raw in RAW["cameras"]:
        if not raw.get("online", True) or raw.get("quirks"):
            continue
        for prof in raw["profiles"]:
            if prof.get("stream") is False:
                continue
            width, height, fps, codec = delivered(prof)
            got = measure(demo_streams[raw["name"]].rtsp_urls[prof["token"]])
            assert (got["width"], got["height"], got["fourcc"]) == (width, height, FOURCC[codec]), raw["name"]
            assert got["fps"] == pytest.approx(fps, rel=0.05), raw["name"]
            checked += 1
    assert checked >= 28


def test_black_and_frozen_image_modes():
    """``image: black`` gives black frames; ``frozen`` repeats one frame; pattern moves."""
    reason = rtsp_unavailable_reason()
    if reason:
        pytest.skip(reason)
    base = {"token": "P1", "encoding": "H264", "width": 320, "height": 240, "fps": 10, "bitrate_kbps": 256}
    fleet = {"fleet": "modes", "cameras": [
        {"name": f"m-{mode}", "host": f"127.0.8.{i + 11}", "macs": [f"00:12:41:00:08:{i + 11:02x}"],
         "profiles": [{**base, "stream": {"image": mode}}]} for i, mode in enumerate(["pattern", "black", "frozen"])]}
    import cv2

    with running_fleet(fleet, streams=True) as running:
        frames = {}
        for cam in running:
            os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "rtsp_transport;tcp"
            cap = cv2.VideoCapture(cam.rtsp_urls["P1"], cv2.CAP_FFMPEG)
            try:
                shots = []
                for i in range(12):
                    ok, img = cap.read()
                    assert ok, cam.name
                    if i in (1, 11):
                        shots.append(img.astype(int))
            finally:
                cap.release()
            frames[cam.name] = shots
    assert frames["m-black"][1].mean() < 20
    assert abs(frames["m-frozen"][0] - frames["m-frozen"][1]).mean() < 2 < frames["m-frozen"][1].mean()
    assert abs(frames["m-pattern"][0] - frames["m-pattern"][1]).mean() > 2


def _need_rtsp() -> None:
    reason = rtsp_unavailable_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def test_parallel_stream_checks_are_not_serialised():
    """Six 1080p streams checked at once each reach their first frame about as fast as one alone.

    Before OPENCV_FFMPEG_IS_THREAD_SAFE was set in probes.stream, OpenCV's process-wide open lock made the
    k-th of parallel checks wait k times a single open (1.2, 2.3, 3.4, 4.5, 5.7, 6.8 s here), so the last
    ones broke a bound of three single opens.
    """
    _need_rtsp()
    from concurrent.futures import ThreadPoolExecutor

    from cctv_monitor.simulator.fleet import generate_fleet
    from probes.stream import check_stream

    def check(cam):
        return check_stream(cam.rtsp_urls["Profile_1"], username=cam.username, password=cam.password,
                            profile_token="Profile_1", sample_s=1.0, timeout_s=30, thumbnail=False)

    with running_fleet(generate_fleet(7, base="127.0.12.0", media2_every=0), streams=True) as fleet:
        assert fleet.streams, fleet.streams_reason
        cams = list(fleet)
        alone = check(cams[0])
        assert alone.ok, alone.error
        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(check, cams[1:]))
    # The stream check's own RTSP reader (probes/rtp_reader.py) has a first keyframe in 15-25 ms alone,
    # where thread scheduling alone varies by tens of ms: a floor of 0.25 s keeps the bound about noise,
    # while a serialised open of six 1080p checks (the OpenCV lock: 1.2 s to 6.8 s) would still break it.
    bound = max(3 * alone.first_frame_s, 0.25)
    firsts = [r.first_frame_s for r in results]
    assert all(r.ok and (r.width, r.height, r.codec) == (1920, 1080, "H264") for r in results), results
    assert max(firsts) < bound, f"first frames {firsts} s; one stream alone {alone.first_frame_s} s"


def test_busy_rtsp_port_falls_back_to_a_free_port():
    """A planned RTSP port held by someone else: with port_fallback the camera streams from a free port
    (and says so in its URL); without it the fleet refuses to start and names the address."""
    _need_rtsp()
    import socket

    from probes.stream import check_stream

    host = "127.0.13.1"
    fleet = {"fleet": "busy", "cameras": [{"name": "busy-1", "host": host, "macs": ["00:12:41:00:0d:01"],
                                            "profiles": [{"token": "P1", "encoding": "H264", "width": 640,
                                                          "height": 360, "fps": 10, "bitrate_kbps": 256}]}]}
    with socket.socket() as blocker:
        blocker.bind((host, 8554))
        blocker.listen()
        with running_fleet(fleet, streams=True, port_fallback=True) as running:
            url = running["busy-1"].rtsp_urls["P1"]
            port = int(url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
            assert port not in (8554, 0)
            got = check_stream(url, username=None, password=None, profile_token="P1", sample_s=0.5, thumbnail=False)
            assert got.ok and (got.width, got.height) == (640, 360), got
        with pytest.raises(RuntimeError, match=f"cannot listen on {host}:8554"):
            with running_fleet(fleet, streams=True, port_fallback=False):
                pass
