"""RTSP streams of the simulated fleet: pre-encoded clips (ffmpeg, cached) served by gst-rtsp-server.

A live encoder costs about a third of a core per 1080p stream on these machines; a looped clip costs
about 2 % (LAB.md), so every (codec, size, fps, image mode, bitrate) is encoded once and reused.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cctv_monitor.simulator.fleet import ProfileSpec, StreamSpec

LOGGER = logging.getLogger(__name__)

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).with_name("gst_rtsp_server.py")
CLIP_SECONDS = 10  # long enough that a measurement rarely crosses the loop point
CLIP_VERSION = 4  # part of the cache name: bump when the encoder settings change


def clip_dir() -> Path:
    """Where encoded clips are cached (``CCTV_SIM_CLIP_DIR`` or ``~/.cache/cctv-monitor/clips``)."""
    path = Path(os.environ.get("CCTV_SIM_CLIP_DIR") or Path.home() / ".cache" / "cctv-monitor" / "clips")
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.lru_cache(maxsize=1)
def rtsp_unavailable_reason() -> str:
    """Empty when RTSP can be served here, else why not (missing package, no gi bindings)."""
    if shutil.which("ffmpeg") is None:
        return "ffmpeg is not installed (Debian package ffmpeg)"
    if not os.path.exists(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} not found (GStreamer's Python bindings live there)"
    probe = ("import gi; gi.require_version('GstRtspServer','1.0'); from gi.repository import Gst, GstRtspServer;"
             "Gst.init(None); import sys; missing=[e for e in sys.argv[1:] if Gst.ElementFactory.find(e) is None];"
             "print(' '.join(missing))")
    elements = ["multifilesrc", "qtdemux", "h264parse", "rtph264pay", "rtpjpegpay"]
    try:
        out = subprocess.run([SYSTEM_PYTHON, "-c", probe, *elements], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {SYSTEM_PYTHON}: {exc}"
    if out.returncode != 0:
        detail = (out.stderr.strip().splitlines() or ["unknown error"])[-1]
        return f"GStreamer RTSP server bindings missing (Debian: gir1.2-gst-rtsp-server-1.0 python3-gi): {detail}"
    if out.stdout.strip():
        return f"GStreamer elements missing: {out.stdout.strip()} (Debian gstreamer1.0-plugins-*)"
    return ""


@functools.lru_cache(maxsize=1)
def h265_available() -> bool:
    """True when ffmpeg has libx265 and GStreamer has the H.265 payloader."""
    enc = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    if "libx265" not in enc:
        return False
    probe = ("import gi; from gi.repository import Gst; Gst.init(None);"
             "print(all(Gst.ElementFactory.find(e) for e in ('h265parse','rtph265pay')))")
    out = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True)
    return out.stdout.strip() == "True"


_ENCODERS = {
    "H264": ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-bf", "0", "-pix_fmt", "yuv420p"],
    "H265": ["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-tag:v", "hvc1"],
    # Rate-controlled like the others, so an MJPEG camera delivers about the bitrate it reports (a fixed
    # quality gave 40+ Mbit/s at 1080p, which a bitrate check rightly flags).
    "JPEG": ["-c:v", "mjpeg", "-huffman", "default", "-pix_fmt", "yuvj420p"],
}
_clip_lock = threading.Lock()


def clip_path(stream: StreamSpec, bitrate_kbps: int) -> Path:
    """Cache path of the clip for ``stream``."""
    ext = "mov" if stream.codec == "JPEG" else "mp4"
    return clip_dir() / (f"{stream.codec}_{stream.width}x{stream.height}_{stream.fps}_{stream.image}_{bitrate_kbps}k"
                         f"_g{stream.gop}_v{CLIP_VERSION}.{ext}")


def clip_frames(stream: StreamSpec) -> int:
    """Frames in the clip: about CLIP_SECONDS, a whole number of GOPs so the loop keeps the interval exact."""
    frames = CLIP_SECONDS * stream.fps
    return -(-frames // stream.gop) * stream.gop


def _source(stream: StreamSpec) -> tuple[str, list[str]]:
    """lavfi source and video filters of an image mode."""
    size = f"{stream.width}x{stream.height}"
    if stream.image == "black":
        return f"color=c=black:s={size}:r={stream.fps}", []
    if stream.image == "covered":
        # A hand or tape over the lens: dark and nearly uniform, yet not black and not still (slow gradient).
        # A fixed seed: the source places its gradient at random otherwise, and some placements barely moved.
        return f"gradients=s={size}:r={stream.fps}:c0=0x0c0c0c:c1=0x2a2a2a:nb_colors=2:speed=0.02:seed=1", []
    pattern = f"testsrc2=size={size}:rate={stream.fps}"
    if stream.image == "frozen":
        return pattern, ["-vf", "trim=end_frame=1,tpad=stop_mode=clone:stop=-1"]
    if stream.image == "blurred":
        # Out of focus or a fogged dome: the moving pattern under a blur that scales with the picture.
        return pattern, ["-vf", f"gblur=sigma={max(2.0, stream.width / 90):.1f}"]
    return pattern, []


def _keyframes(stream: StreamSpec) -> list[str]:
    """Encoder options for a keyframe exactly every ``stream.gop`` frames (no scene-cut keyframes)."""
    if stream.codec == "H264":
        return ["-g", str(stream.gop), "-keyint_min", str(stream.gop), "-sc_threshold", "0"]
    if stream.codec == "H265":
        return ["-x265-params", f"log-level=error:bframes=0:keyint={stream.gop}:min-keyint={stream.gop}"
                                ":scenecut=0:open-gop=0"]
    return []  # MJPEG: every frame is a keyframe


def make_clip(stream: StreamSpec, bitrate_kbps: int) -> Path:
    """Encode (once) the clip for ``stream``; the file appears atomically, so parallel runs are safe."""
    target = clip_path(stream, bitrate_kbps)
    if target.exists():
        return target
    source, vf = _source(stream)
    rate = ["-b:v", f"{bitrate_kbps}k", "-maxrate", f"{bitrate_kbps}k", "-bufsize", f"{2 * bitrate_kbps}k"]
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=target.suffix, prefix=".tmp-")
    os.close(fd)
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", source, *vf,
           "-frames:v", str(clip_frames(stream)), *_ENCODERS[stream.codec], *_keyframes(stream), "-r", str(stream.fps),
           *rate,
           "-movflags", "+faststart", tmp]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"ffmpeg could not make {target.name}: {exc.stderr.strip()[-500:]}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    LOGGER.info("encoded clip %s", target.name)
    return target


def launch_line(stream: StreamSpec, clip: Path) -> str:
    """gst-launch description serving ``clip`` in a loop."""
    src = f'multifilesrc location="{clip}" loop=true ! qtdemux'
    if stream.codec == "H264":
        return f"( {src} ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )"
    if stream.codec == "H265":
        return f"( {src} ! h265parse ! rtph265pay name=pay0 pt=96 config-interval=1 )"
    return f"( {src} ! jpegparse ! rtpjpegpay name=pay0 pt=26 )"


class RtspFleet:
    """One gst-rtsp-server subprocess serving every camera's streams on its own address and port."""

    def __init__(self, bindings: list[Any], *, netns: Any = None, port_fallback: bool = False) -> None:
        self.bindings = bindings
        self.netns = netns
        self.port_fallback = port_fallback
        self.proc: subprocess.Popen | None = None
        self._config_file: str | None = None
        self.skipped: list[str] = []

    def _streams(self) -> list[tuple[Any, ProfileSpec]]:
        out = []
        h265 = None
        for b in self.bindings:
            for prof in b.spec.profiles:
                if prof.stream is None:
                    continue
                if prof.stream.codec == "H265":
                    h265 = h265_available() if h265 is None else h265
                    if not h265:
                        self.skipped.append(f"{b.spec.name}/{prof.token} (no H.265 encoder)")
                        continue
                out.append((b, prof))
        return out

    def start(self) -> None:
        """Encode missing clips, start the server, wait until it listens (raises with its message)."""
        streams = self._streams()
        if not streams:
            return
        needed = {(p.stream, p.bitrate_kbps) for _, p in streams}
        with _clip_lock, ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda item: make_clip(*item), needed))
        servers: dict[tuple[str, int], dict[str, Any]] = {}
        for b, prof in streams:
            entry = servers.setdefault((b.host, b.rtsp_port), {
                "address": b.host, "port": b.rtsp_port, "mounts": [], "port_fallback": self.port_fallback,
                "netns": getattr(b, "netns_name", None), "tcp_only": bool(getattr(b, "netns_name", None)),
                "bindings": [b]})
            if b not in entry["bindings"]:
                entry["bindings"].append(b)
            # gst-rtsp-server matches the path only, so Dahua's ?channel=&subtype= variants share a mount.
            path = b.spec.rtsp_path(prof).partition("?")[0]
            if any(m["path"] == path for m in entry["mounts"]):
                continue
            entry["mounts"].append({"path": path,
                                    "launch": launch_line(prof.stream, clip_path(prof.stream, prof.bitrate_kbps))})
        config = {"servers": [{k: v for k, v in e.items() if k != "bindings"} for e in servers.values()]}
        fd, self._config_file = tempfile.mkstemp(prefix="cctvsim-rtsp-", suffix=".json")
        with os.fdopen(fd, "w") as fh:
            json.dump(config, fh)
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(SERVER_SCRIPT), self._config_file], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        try:
            reply = json.loads(line) if line else {"error": (self.proc.stderr.read() if self.proc.stderr else "")[-800:]}
        except json.JSONDecodeError:
            reply = {"error": line.strip()}
        if not reply.get("ready"):
            self.stop()
            raise RuntimeError(f"RTSP server failed to start: {reply.get('error') or 'no reply'}")
        for entry, port in zip(servers.values(), reply["ports"]):
            for b in entry["bindings"]:
                b.rtsp_port = port
        LOGGER.info("RTSP server pid %s serving %d streams on %d addresses", self.proc.pid, len(streams), len(servers))

    def stop(self) -> None:
        """Stop the server subprocess (closing its stdin is enough; terminate/kill as fallbacks)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                if proc.stdin:
                    proc.stdin.close()
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            for stream in (proc.stdout, proc.stderr):
                if stream:
                    stream.close()
        if self._config_file and os.path.exists(self._config_file):
            os.unlink(self._config_file)
            self._config_file = None
