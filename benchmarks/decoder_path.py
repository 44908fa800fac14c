"""The stream check as it was before packet-level measurement, kept only as the benchmark's comparison:
OpenCV opens the stream, decodes about half a second of frames (every frame, full size), then counts the
rest of the sample in raw mode. Not used by the application.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_FFMPEG_IS_THREAD_SAFE", "1")

import cv2  # noqa: E402

from probes.stream import codec_name, with_credentials  # noqa: E402

DECODE_WINDOW_S = 0.5
MAX_DECODED_FRAMES = 15


def decoder_check(uri: str, username: str, password: str, sample_s: float, timeout_s: float) -> dict:
    """Open, decode ~0.5 s, count packets to ``sample_s``; the figures the old check reported."""
    started = time.monotonic()
    timeout_ms = int(timeout_s * 1000)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, min(timeout_ms, 5000),
              cv2.CAP_PROP_N_THREADS, 1]
    cap = cv2.VideoCapture(with_credentials(uri, username, password), cv2.CAP_FFMPEG, params)
    try:
        if not cap.isOpened():
            return {"ok": False, "error": "did not open"}
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        codec = codec_name(cap.get(cv2.CAP_PROP_FOURCC))
        ok, frame = cap.read()
        first_frame_s = time.monotonic() - started
        if not ok:
            return {"ok": False, "error": "no frame"}
        stamps = [cap.get(cv2.CAP_PROP_POS_MSEC)]
        while len(stamps) < MAX_DECODED_FRAMES and stamps[-1] - stamps[0] < DECODE_WINDOW_S * 1000:
            ok, out = cap.read(frame)
            if not ok:
                break
            frame = out
            stamps.append(cap.get(cv2.CAP_PROP_POS_MSEC))
        del frame
        if cap.set(cv2.CAP_PROP_FORMAT, -1):
            while stamps[-1] - stamps[0] < sample_s * 1000 and time.monotonic() < started + timeout_s:
                if not cap.grab():
                    break
                cap.retrieve()
                stamps.append(cap.get(cv2.CAP_PROP_POS_MSEC))
        span = (max(stamps) - min(stamps)) / 1000
        return {"ok": span >= sample_s * 0.5, "width": width, "height": height, "codec": codec,
                "first_frame_s": first_frame_s,
                "fps": (len(stamps) - 1) / span if span else None, "error": None}
    finally:
        cap.release()
