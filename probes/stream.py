"""Stream probe: read the real RTSP stream's compressed packets (PyAV) and decode only two pictures.

fps comes from packet timestamps, bitrate from packet sizes, the keyframe interval from the keyframe flags
and the codec and its profile from the stream parameters, all without decoding. The image checks (black,
frozen, low detail, sharpness for the blur / covered-lens rule) need pictures: only a keyframe near the
start and one near the end are decoded, in a small process-wide pool of decoders (:class:`DecoderPool`),
so many cheap packet readers can run at once while at most a few full-size pictures exist at a time.

H.264 and H.265 over RTSP are read by :mod:`probes.rtp_reader` (the same measurements at a third of
FFmpeg's reading CPU: FFmpeg polls and reads three times per RTP packet); it hands anything else back
before reading media, and that is read with PyAV as below.

Why PyAV and not OpenCV's raw mode (``CAP_PROP_FORMAT=-1``): reading the packets of 2.5 s of 1080p25 H.264
cost the same in both (0.05 CPU-s, measured here), but PyAV also gives each packet's keyframe flag and the
codec profile, takes probe options per open (``probesize=32``/``analyzeduration=0``: the SDP already names
the codec and size, so an open takes 0.06 s and 0.008 CPU-s instead of 0.6 s and 0.035 CPU-s), and lets a
keyframe packet be decoded on its own by a separate decoder; OpenCV cannot decode a packet it handed out.

The sample ends at the second keyframe (the interval is then exact) or at a cap (``sample_s``, default
2.5 s) once a first keyframe arrived. A camera starts a session with a keyframe, which FFmpeg hands over
without a timestamp (:meth:`PacketSample.add_pts` keeps it), so a check takes one GOP plus the open; a
camera that lets a session join mid-GOP needs up to two GOPs for two keyframes.
Credentials enter the URI only in memory, at open time (:func:`with_credentials`); everything stored or
logged uses :func:`probes.results.redact_uri`.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from urllib.parse import quote, urlsplit, urlunsplit

import av
import cv2
import numpy as np

from probes.results import StreamCheck, redact_uri
from probes.rtp_reader import read_rtp
from probes.stream_budget import DECODER_MB, DEFAULT_DECODERS, DEFAULT_SAMPLE_S, READER_MB, stream_concurrency

LOGGER = logging.getLogger(__name__)

__all__ = ["check_stream", "ImageChecks", "DecoderPool", "PacketSample", "image_checks", "codec_name",
           "stream_concurrency", "with_credentials", "DEFAULT_SAMPLE_S", "READER_MB", "DECODER_MB",
           "SHARED_DECODERS"]

THUMBNAIL_WIDTH = 240
CHECK_WIDTH = 320  # the image checks work on a grey copy this wide
BLACK_MEAN = 16.0  # mean grey level below which a frame reads as black (0-255)
BLACK_STD = 8.0
FROZEN_DIFF = 0.5  # mean absolute difference between the two pictures below which the image is frozen
#: With one keyframe in the sample, "frozen" can compare it with the picture ``frozen_run_s`` later, by
#: decoding the inter frames between; off by default because it is the costliest part of a check (0.3 s
#: of 1080p: 45 ms CPU for H.264, 100 ms for H.265, against 6 ms for one keyframe), so by default
#: "frozen" is judged only when two keyframes arrived (every check of a GOP up to 1.25 s, about one in
#: four of a 2 s GOP, so repeated scans catch it) and is None otherwise. Packet sizes alone cannot tell:
#: rate control spends kilobytes refining a frozen picture after each keyframe (the simulator's clips).
DEFAULT_FROZEN_RUN_S = 0.0
LOW_DETAIL_VAR = 15.0  # variance of the Laplacian below which the image is blurred or featureless

# FFmpeg options of every open. probesize/analyzeduration: the SDP already names the codec, its
# parameters and (H.264/H.265) the picture size, so nothing needs to be read ahead before packets flow.
_OPEN_OPTIONS = {"rtsp_transport": "tcp", "probesize": "32", "analyzeduration": "0",
                 "allowed_media_types": "video"}
# Options of the decoder FFmpeg opens inside the open (avformat_find_stream_info) to learn the stream's
# parameters. Left alone, it decodes the session's first H.264 keyframe only to learn the pixel format,
# which nothing here uses (the decoder pool decodes the keyframes it needs): 8.7 ms and about 1,000 page
# faults (a fresh 1080p frame pool) of an open, against 3.1 ms and 32 with ``skip_frame=all`` (measured
# here; codec name, size and profile come from the SDP and the parser all the same).
_OPEN_STREAM_OPTIONS = {"skip_frame": "all"}

_CODECS = {"h264": "H264", "hevc": "H265", "mjpeg": "JPEG", "mpeg4": "MPEG4"}
_FOURCC = {"h264": "H264", "avc1": "H264", "x264": "H264", "hevc": "H265", "h265": "H265", "hev1": "H265",
           "hvc1": "H265", "mjpg": "JPEG", "jpeg": "JPEG", "mjpa": "JPEG", "mp4v": "MPEG4", "fmp4": "MPEG4",
           "xvid": "MPEG4", "mpg4": "MPEG4"}


def codec_name(fourcc: float | int | str) -> str | None:
    """Normalised codec ("H264", "H265", "JPEG", "MPEG4") from an FFmpeg codec name or an OpenCV FOURCC."""
    if isinstance(fourcc, str):
        name = fourcc.strip().lower()
        return _CODECS.get(name, _FOURCC.get(name, name.upper() or None))
    value = int(fourcc)
    if value <= 0:
        return None
    raw = value.to_bytes(4, "little").decode("latin-1").strip("\x00 ").lower()
    return _FOURCC.get(raw, raw.upper() or None)


# ---------------------------------------------------------------------------------------------------
# Image checks on decoded keyframes


@dataclass(frozen=True)
class ImageChecks:
    """Image checks of decoded keyframes."""

    black: bool
    frozen: bool | None
    low_detail: bool
    sharpness: float
    brightness: float


def image_checks(first: np.ndarray, last: np.ndarray | None) -> ImageChecks:
    """Verdicts from the first and last decoded pictures (grey, :data:`CHECK_WIDTH` wide)."""
    mean, std = float(first.mean()), float(first.std())
    frozen = None
    if last is not None:
        frozen = float(np.abs(first.astype(np.int16) - last.astype(np.int16)).mean()) < FROZEN_DIFF
    sharpness = float(cv2.Laplacian(first, cv2.CV_64F).var())
    return ImageChecks(black=mean < BLACK_MEAN and std < BLACK_STD, frozen=frozen,
                       low_detail=sharpness < LOW_DETAIL_VAR, sharpness=round(sharpness, 2),
                       brightness=round(mean, 1))


def thumbnail_jpeg(frame: np.ndarray) -> bytes | None:
    """A small JPEG of a BGR ``frame``."""
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 70])
    return buf.tobytes() if ok else None


@dataclass
class Decoded:
    """What the decoder pool returns: grey check copies of the first and last pictures, a thumbnail."""

    greys: list[np.ndarray] = field(default_factory=list)
    thumbnail: np.ndarray | None = None
    width: int | None = None
    height: int | None = None
    profile: str | None = None


class DecoderPool:
    """At most ``size`` keyframe decodes at once, process-wide: decoding is the costly part of a check
    (memory for full-size pictures, CPU), while readers mostly wait for packets.

    Decoder contexts are kept and reused (flushed between checks): opening one per check cost about 3 ms
    of a check's 9 ms of decoding (1080p H.264, measured here), mostly allocating and zeroing its tables and
    frame pool. A reused context gets the stream's parameter sets in-band, ahead of the first keyframe
    (RTSP extradata is Annex B: start codes, as the packets); other extradata gets a context of its own.
    Up to ``size`` idle contexts are kept per codec: with one cap over all codecs, a fleet of H.264 with
    some H.265 and MJPEG dropped and reopened a context in 27 of 96 checks (benchmarks/stream_checks.py),
    with a cap per codec in about 3 (the first of each codec and decode slot)."""

    def __init__(self, size: int | None = None) -> None:
        self.size = max(1, size or DEFAULT_DECODERS)
        self._slots = threading.BoundedSemaphore(self.size)
        self._idle: dict[str, list[av.CodecContext]] = {}
        self._lock = threading.Lock()

    def decode(self, codec: str, extradata: bytes | None, packets: list[bytes], thumbnail: bool) -> Decoded:
        """Decode ``packets`` (a decodable sequence: keyframes, or a keyframe and the frames after it) and
        keep grey check copies of the first and last pictures, and a thumbnail of the last."""
        with self._slots:
            if extradata and not extradata.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")):
                return _decode(_new_context(codec, extradata), packets, thumbnail)  # e.g. avcC: not in-band
            with self._lock:
                idle = self._idle.get(codec)
                ctx = idle.pop() if idle else None
            if ctx is None:
                ctx = _new_context(codec, None)
            if extradata and packets:
                packets = [extradata + packets[0], *packets[1:]]
            out = _decode(ctx, packets, thumbnail)  # raises only on a broken context: then it is dropped
            ctx.flush_buffers()
            with self._lock:
                idle = self._idle.setdefault(codec, [])
                if len(idle) < self.size:
                    idle.append(ctx)
            return out


SHARED_DECODERS = DecoderPool()


def _new_context(codec: str, extradata: bytes | None) -> av.CodecContext:
    ctx = av.CodecContext.create(codec, "r")
    if extradata:
        ctx.extradata = extradata
    ctx.thread_count = 1  # one picture at a time: more threads only add frame buffers
    # The checks look at a 320-pixel copy: the deblocking filter changes nothing visible there.
    ctx.options = {"skip_loop_filter": "all"}
    return ctx


def _decode(ctx: av.CodecContext, packets: list[bytes], thumbnail: bool) -> Decoded:
    frames = []
    for payload in packets:
        try:
            frames.extend(ctx.decode(av.Packet(payload)))
        except av.error.FFmpegError as exc:  # a damaged packet: judge the picture from the others
            LOGGER.debug("packet did not decode: %s", exc)
        if len(frames) > 2:
            del frames[1:-1]  # only the first and the latest picture are kept
    try:
        frames.extend(ctx.decode(None))
    except av.error.FFmpegError:
        pass
    out = Decoded(profile=ctx.profile)
    for frame in (frames[0], frames[-1]) if len(frames) > 1 else frames:
        out.width, out.height = frame.width, frame.height
        h = max(1, round(frame.height * CHECK_WIDTH / frame.width))
        out.greys.append(frame.reformat(width=CHECK_WIDTH, height=h, format="gray", interpolation="AREA")
                         .to_ndarray())
    if thumbnail and frames:
        last = frames[min(len(frames), 2) - 1]
        th = max(1, round(last.height * THUMBNAIL_WIDTH / last.width))
        out.thumbnail = last.reformat(width=THUMBNAIL_WIDTH, height=th, format="bgr24",
                                      interpolation="AREA").to_ndarray()
    return out


# ---------------------------------------------------------------------------------------------------
# Packet reading


@dataclass
class PacketSample:
    """What the packets of one sample say, before any decoding."""

    codec: str | None = None  # FFmpeg decoder name: h264, hevc, mjpeg
    profile: str | None = None
    width: int | None = None
    height: int | None = None
    extradata: bytes | None = None
    time_base: Fraction | None = None
    pts: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    key_index: list[int] = field(default_factory=list)  # packet positions of keyframes
    keyframes: list[bytes] = field(default_factory=list)  # payload of the first and the latest keyframe
    run: list[bytes] = field(default_factory=list)  # the inter frames right after the first keyframe
    run_s: float = DEFAULT_FROZEN_RUN_S  # stream time of that run "frozen" needs when no second keyframe comes
    run_frames: int = 0
    first_key_s: float | None = None  # wall time from the open to the first keyframe
    stalled: bool = False  # the read ended on a timeout or an error, not on the sample rule

    def add_pts(self, pts: int | None) -> None:
        """Record a packet's timestamp. FFmpeg's RTSP demuxer hands over a session's first packet, the
        keyframe the server sends first, without one (pts None, seen here with PyAV 18 / FFmpeg 7): it is
        kept and given the time one frame before the next (constant frame rate); a gap later in the
        stream is filled one frame after the last."""
        known = [p for p in self.pts[-2:] if p is not None]
        if pts is None and len(known) == 2:
            pts = 2 * known[1] - known[0]
        self.pts.append(pts)
        if self.pts[0] is None and len(self.pts) >= 3 and None not in self.pts[1:3]:
            self.pts[0] = 2 * self.pts[1] - self.pts[2]

    def _known_pts(self) -> list[int]:
        return [p for p in self.pts if p is not None]

    @property
    def span_s(self) -> float:
        """Stream time from the first to the last packet."""
        known = self._known_pts()
        if len(known) < 2 or not self.time_base:
            return 0.0
        return float((max(known) - min(known)) * self.time_base)

    def fps(self) -> float | None:
        """Frames per second from timestamps (frames arrive in bursts, so never from wall clock)."""
        span = self.span_s
        return round((len(self._known_pts()) - 1) / span, 2) if span > 0 else None

    def bitrate_kbps(self) -> int | None:
        """kbit/s the packets carry: over exactly one GOP when two keyframes arrived, else over the sample."""
        if len(self.key_index) >= 2 and self.time_base:
            a, b = self.key_index[-2], self.key_index[-1]
            pa, pb = self.pts[a], self.pts[b]
            span = float((pb - pa) * self.time_base) if pa is not None and pb is not None else 0.0
            if span > 0:
                return round(sum(self.sizes[a:b]) * 8 / span / 1000)
        span = self.span_s
        return round(sum(self.sizes[:-1]) * 8 / span / 1000) if span > 0 else None

    def keyframe_interval(self) -> tuple[int | None, int | None]:
        """(exact interval, lower bound): exact from the last two keyframes, else frames without one."""
        if len(self.key_index) >= 2:
            return self.key_index[-1] - self.key_index[-2], None
        if self.key_index:
            return None, len(self.pts) - self.key_index[0]
        return None, len(self.pts) or None

    def to_decode(self) -> list[bytes]:
        """The packets the decoder pool gets: two keyframes, or the only keyframe and the run after it."""
        if len(self.keyframes) >= 2:
            return self.keyframes[:2]
        return self.keyframes[:1] + self.run

    def done(self, sample_s: float) -> bool:
        """The sample rule: a second keyframe (exact interval), or the cap once a keyframe and its run came."""
        if len(self.key_index) >= 2 and self.codec != "mjpeg":  # MJPEG: all keyframes, read to the cap for fps
            return True
        return bool(self.key_index) and self.span_s >= sample_s and (
            len(self.key_index) >= 2 or len(self.run) >= self.run_frames)


def read_packets(open_uri: str, sample_s: float, timeout_s: float, run_s: float = DEFAULT_FROZEN_RUN_S
                 ) -> PacketSample:
    """Read compressed packets until the second keyframe, or ``sample_s`` of stream time after a first one.

    Raises ``av.error.FFmpegError`` (or ``OSError``) when the stream cannot be opened or read at all.
    """
    sample = PacketSample(run_s=run_s)
    # H.264 / H.265 over RTSP: our own lean reader (probes/rtp_reader.py: a third of FFmpeg's reading CPU);
    # anything it does not handle, and the frozen run, which it does not collect, is read by FFmpeg below.
    if run_s <= 0 and read_rtp(open_uri, sample, sample_s, timeout_s):
        return sample
    started = time.monotonic()
    deadline = started + timeout_s
    # FFmpeg's own socket timeout, not PyAV's ``timeout=``: PyAV's interrupt callback takes the GIL on
    # every poll, which cost a quarter of a check's CPU with many readers at once (measured here).
    options = {**_OPEN_OPTIONS, "timeout": str(int(timeout_s * 1_000_000))}
    try:
        container = av.open(open_uri, options=options, stream_options=[_OPEN_STREAM_OPTIONS])
    except ValueError as exc:  # PyAV: per-stream options, but the SDP described no (video) stream
        raise av.error.InvalidDataError(1094995529, f"the stream has no video track ({exc})") from None
    try:
        if not container.streams.video:
            raise av.error.InvalidDataError(1094995529, "the stream has no video track")
        stream = container.streams.video[0]
        cc = stream.codec_context
        sample.codec, sample.profile = cc.name, cc.profile
        sample.width, sample.height = cc.width or None, cc.height or None
        sample.extradata = bytes(cc.extradata) if cc.extradata else None
        sample.time_base = stream.time_base
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if packet.is_keyframe:
                    sample.key_index.append(len(sample.pts))
                    if sample.first_key_s is None:
                        sample.first_key_s = time.monotonic() - started
                    # Keep the first keyframe and the latest one only: readers stay a few hundred KB.
                    if len(sample.keyframes) == 2:
                        sample.keyframes.pop()
                    sample.keyframes.append(bytes(packet))
                elif run_s > 0 and len(sample.key_index) == 1 and len(sample.run) < max(1, sample.run_frames):
                    sample.run.append(bytes(packet))
                sample.add_pts(packet.pts)
                sample.sizes.append(packet.size)
                if run_s > 0 and not sample.run_frames and sample.fps():
                    sample.run_frames = max(1, round(run_s * (sample.fps() or 25)))
                if sample.done(sample_s):
                    break
                if time.monotonic() > deadline:
                    sample.stalled = True
                    break
        except (av.error.FFmpegError, OSError) as exc:
            if not sample.pts:
                raise
            LOGGER.debug("stream read ended early: %s", exc)
            sample.stalled = True
    finally:
        container.close()
    return sample


# ---------------------------------------------------------------------------------------------------
# The check


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
                 sample_s: float = DEFAULT_SAMPLE_S, timeout_s: float = 10.0, thumbnail: bool = True,
                 decoders: DecoderPool | None = None, frozen_run_s: float = DEFAULT_FROZEN_RUN_S) -> StreamCheck:
    """Measure ``uri`` from its packets (size, fps, codec, profile, bitrate, keyframe interval) and check
    two decoded keyframes' pictures; never raises."""
    shown = redact_uri(uri) or ""
    try:
        parts = urlsplit(uri)
        if parts.scheme.lower() not in ("rtsp", "rtsps") or not parts.hostname:
            return StreamCheck(profile_token, ok=False, error=f"not an RTSP URI: {shown[:200]}")
    except ValueError:
        return StreamCheck(profile_token, ok=False, error=f"unreadable stream URI: {shown[:200]}")
    try:
        try:
            sample = read_packets(with_credentials(uri, username, password), sample_s, timeout_s, frozen_run_s)
        except (av.error.ExitError, TimeoutError):
            return StreamCheck(profile_token, ok=False, error=_timeout_reason(uri, timeout_s))
        except (av.error.FFmpegError, OSError) as exc:
            # The open already waited its timeout: a live RTSP server answers DESCRIBE within milliseconds.
            reason = diagnose_open_failure(uri, bool(username), min(1.0, timeout_s))
            LOGGER.info("%s: stream did not open: %s (%s)", shown, reason, type(exc).__name__)
            return StreamCheck(profile_token, ok=False, error=reason)
        return _judge(sample, profile_token, sample_s, timeout_s, thumbnail, decoders or SHARED_DECODERS)
    except Exception as exc:  # noqa: BLE001 - one broken stream must never stop a scan
        LOGGER.exception("%s: unexpected error in the stream check", shown)
        return StreamCheck(profile_token, ok=False, error=f"unexpected {type(exc).__name__}: {exc}")


def _judge(sample: PacketSample, token: str, sample_s: float, timeout_s: float, thumbnail: bool,
           decoders: DecoderPool) -> StreamCheck:
    """Turn a packet sample (plus its two decoded keyframes) into a StreamCheck."""
    codec = codec_name(sample.codec) if sample.codec else None
    base = {"codec": codec, "codec_profile": sample.profile, "width": sample.width, "height": sample.height,
            "sample_s": round(sample.span_s, 3)}
    if not sample.pts:
        return StreamCheck(token, ok=False, error=f"stream opened but sent no video within {timeout_s:g} s", **base)
    exact, at_least = sample.keyframe_interval()
    base.update(fps=sample.fps(), bitrate_kbps=sample.bitrate_kbps(), keyframe_interval=exact,
                keyframe_interval_min=at_least)
    if not sample.keyframes:
        return StreamCheck(token, ok=False, error=f"no keyframe within {timeout_s:g} s ({len(sample.pts)} frames): "
                                                  "no picture can be decoded", **base)
    decoded = decoders.decode(sample.codec or "", sample.extradata, sample.to_decode(), thumbnail)
    if not decoded.greys:
        return StreamCheck(token, ok=False, error=f"the {codec} keyframe could not be decoded", **base)
    # The decoded picture is the truth about the size (MJPEG over RTP does not carry it in the SDP).
    base.update(width=decoded.width, height=decoded.height, codec_profile=sample.profile or decoded.profile)
    last = decoded.greys[1] if len(decoded.greys) > 1 else None
    checks = image_checks(decoded.greys[0], last)
    error = None
    if sample.stalled and sample.span_s < sample_s / 2 and len(sample.key_index) < 2:
        error = f"stream stalled after {sample.span_s:.1f} s of video"
    return StreamCheck(token, ok=error is None, first_frame_s=round(sample.first_key_s or 0.0, 3),
                       black=checks.black, frozen=checks.frozen, low_detail=checks.low_detail,
                       sharpness=checks.sharpness, brightness=checks.brightness, error=error,
                       thumbnail_jpeg=thumbnail_jpeg(decoded.thumbnail) if decoded.thumbnail is not None else None,
                       **base)


def _timeout_reason(uri: str, timeout_s: float) -> str:
    """Why an open timed out, from one short TCP connect (no second wait of the full timeout)."""
    parts = urlsplit(uri)
    host, port = parts.hostname or "", parts.port or (322 if parts.scheme == "rtsps" else 554)
    try:
        with socket.create_connection((host, port), timeout=min(1.0, timeout_s)):
            pass
    except ConnectionRefusedError:
        return f"RTSP port {host}:{port} refused the connection (RTSP off, or another port)"
    except OSError:
        return f"no answer from RTSP port {host}:{port} within {timeout_s:g} s (host down or filtered)"
    return f"RTSP server at {host}:{port} accepted the connection but sent no video within {timeout_s:g} s"


def diagnose_open_failure(uri: str, had_credentials: bool, timeout_s: float = 3.0) -> str:
    """Why a stream did not open, from a bare RTSP DESCRIBE (FFmpeg's own error says little)."""
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
    if not status_line.startswith("RTSP/"):
        return f"RTSP port {where} answered something that is not RTSP: {status_line[:60]!r}"
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
