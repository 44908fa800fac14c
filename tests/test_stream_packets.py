"""Packet-level stream measurement (probes.stream) against the simulator's ground truth.

Every codec the simulator serves (H.264, H.265, MJPEG) and every image mode: the values measured from
packets must agree with what the served clip's own packets carry (fps within 5 %, bitrate within 15 %,
keyframe interval exact when reported, resolution exact), and the image checks must catch black, frozen,
blurred and covered pictures without flagging the moving pattern.
"""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import av
import pytest

from cctv_monitor.simulator.fleet import load_fleet
from probes.stream import DecoderPool, check_stream

pytestmark = [pytest.mark.rtsp, pytest.mark.slow]

BASE = {"encoding": "H264", "width": 1920, "height": 1080, "fps": 25, "bitrate_kbps": 4096, "gov_length": 50}
#: (camera name, profile overrides, stream overrides); hosts 127.0.14.x.
CASES = [
    ("h264-1080p-gop50", {}, {}),
    ("h264-720p-gop25", {"width": 1280, "height": 720, "gov_length": 25, "bitrate_kbps": 2048}, {}),
    ("h264-360p-15fps", {"width": 640, "height": 360, "fps": 15, "gov_length": 30, "bitrate_kbps": 512}, {}),
    ("h265-1080p-gop50", {"encoding": "H265"}, {}),
    ("mjpeg-640", {"encoding": "JPEG", "width": 640, "height": 360, "fps": 10, "bitrate_kbps": 3000}, {}),
    ("gop-claim-50-real-25", {}, {"gop": 25}),
    ("img-black", {"width": 640, "height": 360, "bitrate_kbps": 512}, {"image": "black"}),
    ("img-frozen", {"width": 640, "height": 360, "bitrate_kbps": 512}, {"image": "frozen"}),
    ("img-frozen-gop25", {"width": 640, "height": 360, "bitrate_kbps": 512, "gov_length": 25}, {"image": "frozen"}),
    ("img-blurred", {}, {"image": "blurred"}),
    ("img-covered", {}, {"image": "covered"}),
]


def fleet_mapping() -> dict:
    cameras = []
    for i, (name, prof, stream) in enumerate(CASES):
        profile = {"token": "P1", **BASE, **prof}
        if stream:
            profile["stream"] = stream
        cameras.append({"name": name, "host": f"127.0.14.{i + 1}", "macs": [f"00:12:41:00:0e:{i + 1:02x}"],
                        "media2": True, "profiles": [profile]})
    return {"fleet": "packets", "cameras": cameras}


def clip_truth(path) -> dict:
    """What the clip's own packets carry: fps, kbit/s, keyframe interval(s), size."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [(p.pts, p.size, p.is_keyframe) for p in container.demux(stream) if p.pts is not None]
        packets.sort()
        span = float((packets[-1][0] - packets[0][0]) * stream.time_base)
        keys = [i for i, (_, _, key) in enumerate(packets) if key]
        # kbit/s of each whole GOP: a check that saw two keyframes measured exactly one of them.
        gops = [sum(s for _, s, _ in packets[a:b]) * 8 / float((packets[b][0] - packets[a][0]) * stream.time_base)
                / 1000 for a, b in zip(keys, keys[1:])]
        return {"fps": (len(packets) - 1) / span, "kbps": sum(s for _, s, _ in packets[:-1]) * 8 / span / 1000,
                "gop_kbps": gops or [sum(s for _, s, _ in packets[:-1]) * 8 / span / 1000],
                "intervals": {b - a for a, b in zip(keys, keys[1:])}, "width": stream.codec_context.width,
                "height": stream.codec_context.height}


@pytest.fixture(scope="module")
def packet_fleet():
    """The fleet above, served by the simulator's RTSP server (H.265 cases skipped without x265)."""
    from cctv_monitor.simulator.rtsp import clip_path, rtsp_unavailable_reason
    from cctv_monitor.simulator.testing import running_fleet

    reason = rtsp_unavailable_reason()
    if reason:
        pytest.skip(reason)
    mapping = fleet_mapping()
    specs = {c.name: c.profiles[0] for c in load_fleet(mapping).cameras}
    with running_fleet(mapping, streams=True) as fleet:
        assert fleet.streams, fleet.streams_reason
        truths = {name: clip_truth(clip_path(p.stream, p.bitrate_kbps)) for name, p in specs.items()
                  if clip_path(p.stream, p.bitrate_kbps).exists()}
        yield fleet, specs, truths


def _check(cam, **kw):
    return check_stream(cam.rtsp_urls["P1"], username=cam.username, password=cam.password, profile_token="P1",
                        **kw)


@pytest.fixture(scope="module")
def measured(packet_fleet):
    """Every stream checked once, in parallel (as a scan does), with a 4.5 s cap so that two keyframes
    of a 2 s GOP always arrive; the default-cap behaviour has its own test."""
    fleet, _specs, truths = packet_fleet
    cams = [c for c in fleet if c.name in truths]
    with ThreadPoolExecutor(len(cams)) as pool:
        results = list(pool.map(lambda c: _check(c, sample_s=4.5, timeout_s=15), cams))
    return {c.name: r for c, r in zip(cams, results)}


def test_measured_values_match_the_clips_packets(packet_fleet, measured):
    """fps within 5 %, bitrate within 15 %, keyframe interval exact, resolution exact, codec as served."""
    _fleet, specs, truths = packet_fleet
    assert {"h264-1080p-gop50", "mjpeg-640"} <= set(measured)
    table = {n: (g.fps, truths[n]["fps"], g.bitrate_kbps, [round(k) for k in truths[n]["gop_kbps"]], g.keyframe_interval,
                 truths[n]["intervals"], g.sample_s) for n, g in measured.items()}
    for name, got in measured.items():
        truth, stream = truths[name], specs[name].stream
        assert got.ok, (name, got.error, table)
        assert (got.width, got.height) == (truth["width"], truth["height"]) == (stream.width, stream.height), name
        assert got.codec == stream.codec, name
        assert got.fps == pytest.approx(truth["fps"], rel=0.05), name
        # Rate control gives each GOP of the clip its own size (the first is larger): compare with the
        # clip's GOP nearest to what was measured (MJPEG: the clip average); abs=2 for an 8 kbit/s black picture.
        nearest = min(truth["gop_kbps"], key=lambda kbps: abs(kbps - got.bitrate_kbps))
        assert got.bitrate_kbps == pytest.approx(nearest, rel=0.15, abs=2), (name, table)
        assert min(truth["gop_kbps"]) * 0.85 <= got.bitrate_kbps <= max(truth["gop_kbps"]) * 1.15 + 2
        assert got.keyframe_interval is not None and got.keyframe_interval_min is None, name
        assert {got.keyframe_interval} == truth["intervals"] == {stream.gop}, name
        assert got.sample_s is not None and got.first_frame_s is not None and got.thumbnail_jpeg, name
    assert measured["h264-1080p-gop50"].codec_profile  # e.g. "Constrained Baseline" (x264 ultrafast)
    if "h265-1080p-gop50" in measured:
        assert measured["h265-1080p-gop50"].codec_profile == "Main"


def test_image_checks_catch_black_frozen_blurred_and_covered(measured):
    """Each broken picture is flagged for what it is; the moving pattern is clean."""
    from cctv_monitor.compliance.stream_rules import DEFAULT_MIN_SHARPNESS

    clean = measured["h264-1080p-gop50"]
    assert (clean.black, clean.frozen, clean.low_detail) == (False, False, False)
    assert clean.sharpness > 10 * DEFAULT_MIN_SHARPNESS
    assert measured["img-black"].black is True
    assert measured["img-frozen"].frozen is True and measured["img-frozen"].black is False
    assert measured["img-frozen-gop25"].frozen is True
    blurred, covered = measured["img-blurred"], measured["img-covered"]
    assert blurred.sharpness < DEFAULT_MIN_SHARPNESS and blurred.brightness > 60 and not blurred.frozen
    assert covered.sharpness < DEFAULT_MIN_SHARPNESS and covered.brightness < 50
    assert covered.black is False and covered.frozen is False


def test_default_cap_gives_the_exact_interval_from_the_first_keyframe(packet_fleet):
    """A new session starts at a keyframe (the simulator plays the clip from its start for each session,
    and the first packet FFmpeg hands over, that keyframe without a timestamp, is kept), so with the default
    2.5 s cap a 2 s GOP is exact, the sample ends at the second keyframe (2.0 s) and the first keyframe comes
    at once, also for a session opened while another one on the same stream is running."""
    fleet, _specs, _truths = packet_fleet
    cam = fleet["h264-1080p-gop50"]
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(_check, cam)
        time.sleep(0.7)  # joins 0.7 s into the first session: a shared pipeline would be mid-GOP here
        late = pool.submit(_check, cam)
        got = [first.result(), late.result()]
    for check in got:
        assert check.ok, check.error
        assert (check.keyframe_interval, check.keyframe_interval_min) == (50, None)
        assert check.sample_s == pytest.approx(2.0, abs=0.05) and check.fps == pytest.approx(25, rel=0.05)
        assert check.first_frame_s < 1.0
    short = _check(fleet["gop-claim-50-real-25"])  # claims 50 over ONVIF, delivers 25
    assert short.keyframe_interval == 25 and short.sample_s < 1.1


def test_frozen_is_caught_with_one_keyframe(packet_fleet):
    """A cap that admits only one keyframe: by default "frozen" is not judged (None, like the interval's
    lower bound); with ``frozen_run_s`` the keyframe is compared with the picture that much after it."""
    fleet, _specs, _truths = packet_fleet
    unjudged = _check(fleet["img-frozen"], sample_s=0.6)
    assert unjudged.ok and unjudged.keyframe_interval is None and unjudged.frozen is None
    frozen = _check(fleet["img-frozen"], sample_s=0.6, frozen_run_s=0.3)
    moving = _check(fleet["h264-360p-15fps"], sample_s=0.6, frozen_run_s=0.3)
    covered = _check(fleet["img-covered"], sample_s=0.6, frozen_run_s=0.3)
    assert frozen.ok and frozen.keyframe_interval is None and frozen.frozen is True
    assert moving.ok and moving.keyframe_interval is None and moving.frozen is False
    assert covered.frozen is False  # dark and featureless, but it changes


def _silent_server(behaviour: str):
    """A TCP server on 127.0.14.200 that accepts and then never answers, or answers garbage."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.14.200", 0))
    sock.listen(16)
    conns = []
    stop = threading.Event()

    def serve():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            conns.append(conn)
            if behaviour == "garbage":
                try:
                    conn.sendall(b"\x00\xffHELLO garbage \x13\x37" * 64)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return sock, conns, stop, thread


@pytest.mark.parametrize("behaviour", ["silent", "garbage"])
def test_dead_rtsp_server_costs_one_slot_for_its_timeout_only(packet_fleet, behaviour):
    """A server that accepts and never sends (or sends garbage) ends in its own timeout with a clear error,
    while healthy checks beside it finish as fast as alone."""
    fleet, _specs, _truths = packet_fleet
    sock, conns, stop, thread = _silent_server(behaviour)
    try:
        port = sock.getsockname()[1]
        started = time.monotonic()
        with ThreadPoolExecutor(3) as pool:
            dead = pool.submit(check_stream, f"rtsp://127.0.14.200:{port}/x", username="admin", password="pw",
                               profile_token="P1", timeout_s=3.0, thumbnail=False)
            good = [pool.submit(_check, fleet[n], sample_s=1.0, thumbnail=False)
                    for n in ("h264-360p-15fps", "gop-claim-50-real-25")]
            good_results = [f.result() for f in good]
            good_done = time.monotonic() - started
            result = dead.result()
        dead_done = time.monotonic() - started
    finally:
        stop.set()
        thread.join(2)
        for conn in conns:
            conn.close()
        sock.close()
    assert all(r.ok for r in good_results), good_results
    assert good_done < 6.0
    assert not result.ok and result.error
    assert "password" not in result.error and "pw@" not in result.error
    if behaviour == "silent":
        assert "no video within 3 s" in result.error or "did not answer DESCRIBE" in result.error, result.error
        assert 2.5 < dead_done < 3.0 + 3.0 + 2.0  # its own timeout (plus the DESCRIBE diagnosis), no more
    else:
        assert "not RTSP" in result.error or "did not answer" in result.error, result.error
        assert dead_done < 3.0 + 3.0 + 2.0


def test_decoder_pool_bounds_decodes_at_once(packet_fleet):
    """Six parallel checks through a pool of one decoder all succeed (decodes wait their turn)."""
    fleet, _specs, _truths = packet_fleet
    pool = DecoderPool(1)
    names = ["h264-360p-15fps", "img-black", "img-frozen", "mjpeg-640", "gop-claim-50-real-25", "img-covered"]
    with ThreadPoolExecutor(6) as ex:
        results = list(ex.map(lambda n: _check(fleet[n], sample_s=1.0, decoders=pool, thumbnail=False), names))
    assert all(r.ok for r in results), [(r.profile_token, r.error) for r in results]
    assert results[1].black and not results[0].black
