"""Stream probe: open the real RTSP stream with OpenCV (FFmpeg backend) and measure what it delivers.

Cheap by design (a scan checks many streams on two cores): a few frames are decoded for the image checks
and the thumbnail, then OpenCV's raw mode counts encoded packets without decoding them, which gives fps
from packet timestamps and the real bitrate from packet sizes (LAB.md). Credentials are put into the URL
only in memory, at open time; everything stored or logged uses :func:`probes.results.redact_uri`.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from probes.results import StreamCheck, redact_uri

LOGGER = logging.getLogger(__name__)

# FFmpeg reads this when a capture opens: RTSP over TCP (UDP loses packets through NAT and firewalls).
_OPTIONS = os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS", "")
if "rtsp_transport" not in _OPTIONS:
    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "|".join(p for p in (_OPTIONS, "rtsp_transport;tcp") if p)

# FFmpeg's own log lines would end up on the technician's terminal; our results carry the reasons instead.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

# OpenCV holds one process-wide lock around the whole FFmpeg open (avformat_open_input plus
# avformat_find_stream_info, about one second of video on an RTSP stream, up to the open timeout on a
# dead one) unless told that FFmpeg is thread-safe, which it is since FFmpeg 4 (the wheels bundle 5.x).
# With the lock, parallel stream checks open one after another: 8 checks waited 1.1 s per stream ahead
# of them (benchmarks/stream_checks.py). OpenCV reads this at every open.
os.environ.setdefault("OPENCV_FFMPEG_IS_THREAD_SAFE", "1")

import cv2  # noqa: E402 - must come after the environment variables above
import numpy as np  # noqa: E402

cv2.setLogLevel(2)  # errors only: "can't be used to capture by name" warnings say nothing a result does not

__all__ = ["check_stream", "ImageChecks", "codec_name"]

#: Stream time decoded for the image checks (first and last decoded frames are compared for "frozen").
DECODE_WINDOW_S = 0.5
MAX_DECODED_FRAMES = 15
THUMBNAIL_WIDTH = 240
BLACK_MEAN = 16.0  # mean grey level below which a frame reads as black (0-255)
BLACK_STD = 8.0
FROZEN_DIFF = 0.5  # mean absolute difference between frames below which the image is frozen
LOW_DETAIL_VAR = 15.0  # variance of the Laplacian below which the image is blurred or featureless

_FOURCC = {"h264": "H264", "avc1": "H264", "x264": "H264", "hevc": "H265", "h265": "H265", "hev1": "H265",
           "hvc1": "H265", "mjpg": "JPEG", "jpeg": "JPEG", "mjpa": "JPEG", "mp4v": "MPEG4", "fmp4": "MPEG4",
           "xvid": "MPEG4", "mpg4": "MPEG4"}


def codec_name(fourcc: float | int) -> str | None:
    """Normalised codec ("H264", "H265", "JPEG", "MPEG4") from an OpenCV FOURCC value."""
    value = int(fourcc)
    if value <= 0:
        return None
    raw = value.to_bytes(4, "little").decode("latin-1").strip("\x00 ").lower()
    return _FOURCC.get(raw, raw.upper() or None)


@dataclass(frozen=True)
class ImageChecks:
    """Image checks of decoded frames."""

    black: bool
    frozen: bool | None
    low_detail: bool


def image_checks(first: np.ndarray, last: np.ndarray | None) -> ImageChecks:
    """Black / frozen / low-detail verdicts from the first and last decoded frames (BGR)."""
    g1 = _small_grey(first)
    mean, std = float(g1.mean()), float(g1.std())
    black = mean < BLACK_MEAN and std < BLACK_STD
    frozen = None
    if last is not None:
        g2 = _small_grey(last)
        frozen = float(np.abs(g1.astype(np.int16) - g2.astype(np.int16)).mean()) < FROZEN_DIFF
    low_detail = float(cv2.Laplacian(g1, cv2.CV_64F).var()) < LOW_DETAIL_VAR
    return ImageChecks(black=black, frozen=frozen, low_detail=low_detail)


def _shrink(frame: np.ndarray, width: int = 320) -> np.ndarray:
    """A copy of ``frame`` at most ``width`` pixels wide (what the image checks and the thumbnail use)."""
    h, w = frame.shape[:2]
    if w <= width:
        return frame.copy()
    return cv2.resize(frame, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)


def _small_grey(frame: np.ndarray) -> np.ndarray:
    small = _shrink(frame)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small


def thumbnail_jpeg(frame: np.ndarray, width: int = THUMBNAIL_WIDTH) -> bytes | None:
    """A small JPEG of ``frame``."""
    h, w = frame.shape[:2]
    if w > width:
        frame = cv2.resize(frame, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 70])
    return buf.tobytes() if ok else None


def with_credentials(uri: str, username: str | None, password: str | None) -> str:
    """The URI with userinfo set (percent-encoded); kept in memory only, never stored or printed."""
    if not username:
        return uri
    parts = urlsplit(uri)
    host = parts.netloc.rpartition("@")[2]
    userinfo = quote(username, safe="")
    if password:
        userinfo += ":" + quote(password, safe="")
    return urlunsplit((parts.scheme, f"{userinfo}@{host}", parts.path, parts.query, parts.fragment))


def check_stream(uri: str, *, username: str | None, password: str | None, profile_token: str,
                 sample_s: float = 2.0, timeout_s: float = 10.0, thumbnail: bool = True) -> StreamCheck:
    """Open ``uri``, measure size/fps/codec/bitrate/first-frame time and check the image; never raises."""
    shown = redact_uri(uri) or ""
    try:
        parts = urlsplit(uri)
        if parts.scheme.lower() not in ("rtsp", "rtsps") or not parts.hostname:
            return StreamCheck(profile_token, ok=False, error=f"not an RTSP URI: {shown[:200]}")
    except ValueError:
        return StreamCheck(profile_token, ok=False, error=f"unreadable stream URI: {shown[:200]}")
    started = time.monotonic()
    try:
        return _measure(uri, shown, username, password, profile_token, sample_s, timeout_s, thumbnail, started)
    except cv2.error as exc:
        LOGGER.info("%s: OpenCV error: %s", shown, exc)
        return StreamCheck(profile_token, ok=False, error=f"OpenCV/FFmpeg failed on the stream: {str(exc)[:200]}")
    except Exception as exc:  # noqa: BLE001 - one broken stream must never stop a scan
        LOGGER.exception("%s: unexpected error in the stream check", shown)
        return StreamCheck(profile_token, ok=False, error=f"unexpected {type(exc).__name__}: {exc}")


def _measure(uri: str, shown: str, username: str | None, password: str | None, token: str, sample_s: float,
             timeout_s: float, thumbnail: bool, started: float) -> StreamCheck:
    timeout_ms = int(timeout_s * 1000)
    # One decoder thread: FFmpeg's default (one per core, each with its own frame buffers) costs memory and
    # CPU that parallel checks need more; a check decodes only half a second of video.
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, min(timeout_ms, 5000),
              cv2.CAP_PROP_N_THREADS, 1]
    cap = cv2.VideoCapture(with_credentials(uri, username, password), cv2.CAP_FFMPEG, params)
    try:
        if not cap.isOpened():
            reason = diagnose_open_failure(uri, bool(username), min(3.0, timeout_s))
            LOGGER.info("%s: stream did not open: %s", shown, reason)
            return StreamCheck(token, ok=False, error=reason)
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) or None
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) or None
        codec = codec_name(cap.get(cv2.CAP_PROP_FOURCC))
        deadline = started + timeout_s
        ok, frame = cap.read()
        first_frame_s = time.monotonic() - started
        if not ok or frame is None:
            return StreamCheck(token, ok=False, width=width, height=height, codec=codec,
                               error=f"stream opened but no frame could be decoded within {timeout_s:g} s "
                                     "(no keyframe, unsupported codec, or the stream stalled)")
        if not width or not height:
            height, width = frame.shape[:2]
        stamps = [cap.get(cv2.CAP_PROP_POS_MSEC)]
        # Only small copies are kept (the checks and the thumbnail need no more) and every frame is decoded
        # into the same buffer: full 1080p frames are 6 MB each and a scan runs many checks at once.
        first, last = _shrink(frame), None
        decoded = 1
        # Decode a short stretch for the image checks ...
        while (len(stamps) < MAX_DECODED_FRAMES and stamps[-1] - stamps[0] < DECODE_WINDOW_S * 1000
               and time.monotonic() < deadline):
            ok, out = cap.read(frame)
            if not ok or out is None:
                break
            frame, decoded = out, decoded + 1
            stamps.append(cap.get(cv2.CAP_PROP_POS_MSEC))
        if decoded > 1:
            last = _shrink(frame)
        del frame
        # ... then count packets without decoding them (raw mode) for fps and bitrate.
        raw_bytes, raw_first = 0, None
        stalled = False
        if cap.set(cv2.CAP_PROP_FORMAT, -1):
            raw_first = stamps[-1]
            while stamps[-1] - stamps[0] < sample_s * 1000 and time.monotonic() < deadline:
                if not cap.grab():
                    stalled = True
                    break
                ok, packet = cap.retrieve()
                if ok and packet is not None:
                    raw_bytes += int(packet.size)
                stamps.append(cap.get(cv2.CAP_PROP_POS_MSEC))
        fps, bitrate = _rates(stamps, raw_first, raw_bytes)
        checks = image_checks(first, last)
        thumb = thumbnail_jpeg(last if last is not None else first) if thumbnail else None
        span = (max(stamps) - min(stamps)) / 1000 if len(stamps) > 1 else 0.0
        error = None
        if stalled and span < sample_s / 2:
            error = f"stream stalled after {span:.1f} s of video"
        elif span < sample_s * 0.5:
            error = f"only {span:.1f} s of video arrived within {timeout_s:g} s (stream too slow or stalling)"
        return StreamCheck(token, ok=error is None, width=width, height=height, fps=fps, codec=codec,
                           first_frame_s=round(first_frame_s, 3), bitrate_kbps=bitrate, black=checks.black,
                           frozen=checks.frozen, low_detail=checks.low_detail, error=error, thumbnail_jpeg=thumb)
    finally:
        cap.release()


def _rates(stamps: list[float], raw_first: float | None, raw_bytes: int) -> tuple[float | None, int | None]:
    """fps from frame timestamps (not wall clock: frames arrive in bursts) and kbps from raw packet sizes."""
    fps = None
    if len(stamps) > 1:
        span = (max(stamps) - min(stamps)) / 1000
        if span > 0:
            fps = round((len(stamps) - 1) / span, 2)
    bitrate = None
    if raw_first is not None and raw_bytes:
        raw_span = (stamps[-1] - raw_first) / 1000
        if raw_span > 0:
            bitrate = int(raw_bytes * 8 / raw_span / 1000)
    return fps, bitrate


def diagnose_open_failure(uri: str, had_credentials: bool, timeout_s: float = 3.0) -> str:
    """Why a stream did not open, from a bare RTSP DESCRIBE (OpenCV itself gives no reason)."""
    parts = urlsplit(uri)
    host, port = parts.hostname or "", parts.port or (322 if parts.scheme == "rtsps" else 554)
    where = f"{host}:{port}"
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except ConnectionRefusedError:
        return f"RTSP port {where} refused the connection (RTSP off, or another port)"
    except TimeoutError:
        return f"no answer from RTSP port {where} within {timeout_s:g} s (host down or filtered)"
    except OSError as exc:
        return f"cannot reach RTSP port {where}: {exc.strerror or exc}"
    if parts.scheme == "rtsps":
        sock.close()
        return f"RTSPS stream at {where} did not open (TLS or codec problem)"
    clean = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, parts.query, ""))
    try:
        with sock:
            sock.settimeout(timeout_s)
            sock.sendall(f"DESCRIBE {clean} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n"
                         "User-Agent: cctv-monitor-probe\r\n\r\n".encode("utf-8", "replace"))
            status_line = sock.recv(512).split(b"\r\n", 1)[0].decode("latin-1", "replace")
    except OSError:
        return f"RTSP server at {where} accepted the connection but did not answer DESCRIBE"
    fields = status_line.split(" ", 2)
    code = fields[1] if len(fields) > 1 else ""
    if code == "404":
        return f"RTSP server at {where} has no stream at this path (404 Not Found): wrong stream URI"
    if code == "401":
        if had_credentials:
            return (f"RTSP server at {where} rejected the credentials (401): the RTSP user differs from the "
                    "ONVIF user, or its password does")
        return f"RTSP server at {where} needs credentials (401) and none were given"
    if code == "200":
        return (f"RTSP server at {where} describes the stream, but no video could be opened (unsupported codec, "
                "no keyframe within the timeout, or the RTP session failed)")
    return f"RTSP server at {where} answered {status_line[:80]!r}; stream not opened"

