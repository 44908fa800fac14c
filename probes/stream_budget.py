"""Stream-check sizing without importing PyAV or OpenCV (the scan process only plans; a child checks).

The memory figures are measured with benchmarks/stream_checks.py (1080p, 4 Mbit/s, 96 checks in flight):
peak RSS grew from 285 MB at 32 checks in flight to 305 MB at 96, about 0.3 MB per packet reader, with
FFmpeg reading; with probes/rtp_reader.py (256 KB socket reads, a buffer of up to about 0.5 MB) from
236-250 MB to 266-270 MB, about 0.3-0.5 MB per reader, at a lower total.
"""

from __future__ import annotations

import os

__all__ = ["DEFAULT_SAMPLE_S", "READER_MB", "DECODER_MB", "CHECKER_BASE_MB", "DEFAULT_DECODERS", "stream_concurrency",
           "current_rss_mb"]

#: Stream time read per check when no second keyframe ends the sample earlier (a setting in the app).
DEFAULT_SAMPLE_S = 2.5
#: Memory of one packet reader in flight (RTSP session and read buffer, packet list, two keyframe payloads):
#: 0.3-0.5 MB measured at 1080p 4 Mbit/s; 1 MB leaves room for 4K keyframes and higher bitrates.
READER_MB = 1.0
#: Memory of one decoder at work (decoder context and frame pool for a 4K keyframe, check copies).
DECODER_MB = 40.0
#: Resident memory of the stream checker process before any check (Python, PyAV, OpenCV, NumPy), measured.
CHECKER_BASE_MB = 130.0
#: Decoders at once: one per core, at most 4 (decoding is the CPU-heavy part of a check).
DEFAULT_DECODERS = max(1, min(4, os.cpu_count() or 2))


def stream_concurrency(memory_mb: float, cap: int, *, base_mb: float, decoders: int = DEFAULT_DECODERS) -> int:
    """Packet readers that fit in ``memory_mb`` beside ``base_mb`` already used and the decoder pool."""
    spare = memory_mb - base_mb - decoders * DECODER_MB
    return max(1, min(cap, int(spare // READER_MB)))


def current_rss_mb(pid: int | None = None) -> float:
    """Resident memory in MB now of process ``pid`` (this process by default); 0 when it is gone or off Linux."""
    try:
        with open(f"/proc/{pid or os.getpid()}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
