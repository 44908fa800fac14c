"""Shared by the benchmarks: a simulated fleet in a process of its own, per-process CPU readings, and the
entry point of the child processes each phase runs in (so its CPU time and peak RSS are its own).

The fleet runs as ``python -m cctv_monitor.simulator.launcher --fleet FILE --json`` (what
``cctv-monitor simulate`` runs), so its CPU is not charged to the process being measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from probes.stream_budget import current_rss_mb  # one RSS reader for probes and benchmarks

REPO = Path(__file__).resolve().parent.parent
CPU_TICKS = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    """Progress on stderr (figures go to stdout)."""
    print(message, file=sys.stderr, flush=True)


def proc_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a running process (its threads included); 0 when it is gone."""
    if not pid:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CPU_TICKS


def children_of(pid: int) -> list[int]:
    """Process ids whose parent is ``pid``."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return out


class FleetProcess:
    """A fleet mapping (e.g. from ``generate_fleet``) served by the simulator in its own process.

    ``cameras`` holds one dict per camera (the launcher's JSON: host, port, username, password, rtsp_urls).
    With ``streams`` the fleet must really serve RTSP (else RuntimeError with the simulator's reason).
    """

    def __init__(self, fleet: dict[str, Any], workdir: Path, *, streams: bool = False) -> None:
        self.path = workdir / "fleet.json"
        self.path.write_text(json.dumps(fleet))  # JSON is YAML: the launcher reads it with its usual loader
        self.streams = streams
        self.cameras: list[dict] = []
        self.proc: subprocess.Popen | None = None
        self.rtsp_pid: int | None = None

    def __enter__(self) -> "FleetProcess":
        started = time.monotonic()
        cmd = [sys.executable, "-m", "cctv_monitor.simulator.launcher", "--fleet", str(self.path), "--json"]
        if not self.streams:
            cmd.append("--no-streams")
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            data = json.loads(line)
            if data.get("ready"):
                if self.streams and not data.get("streams"):
                    self.__exit__()
                    raise RuntimeError(f"the fleet serves no streams: {data.get('streams_reason')}")
                break
            self.cameras.append(data)
        else:
            raise RuntimeError(f"the simulated fleet exited with status {self.proc.wait()} before it was ready")
        if self.streams:
            servers = [pid for pid in children_of(self.proc.pid)
                       if b"gst_rtsp_server" in Path(f"/proc/{pid}/cmdline").read_bytes()]
            self.rtsp_pid = servers[0] if servers else None
        extra = f", RTSP server pid {self.rtsp_pid}" if self.streams else ""
        log(f"fleet: {len(self.cameras)} cameras{' with streams' if self.streams else ''} ready in "
            f"{time.monotonic() - started:.1f} s (pid {self.proc.pid}{extra}, {current_rss_mb(self.proc.pid):.0f} MB)")
        return self

    def cpu_s(self) -> tuple[float, float]:
        """CPU seconds used so far by the ONVIF process and by the RTSP server (0 without streams)."""
        assert self.proc is not None
        return proc_cpu_s(self.proc.pid), proc_cpu_s(self.rtsp_pid)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()


def child_main(child: list[str], runners: dict[str, Callable[[dict], dict]]) -> int:
    """Run phase ``child[0]`` with the JSON spec in file ``child[1]``; print its figures as one JSON line.

    A spec with ``"profile": true`` runs the phase under cProfile and prints the top functions to stderr.
    """
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    phase, spec_path = child
    spec = json.loads(Path(spec_path).read_text())
    func = runners[phase]
    if spec.get("profile"):
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        figures = profiler.runcall(func, spec)
        print(f"--- profile of phase {phase}: top functions by own time ---", file=sys.stderr)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    else:
        figures = func(spec)
    print(json.dumps(figures))
    return 0


def run_measured(what: str, cmd: list[str], fleet: FleetProcess, **kwargs: Any) -> dict:
    """Run ``cmd`` (a child printing its figures as its last JSON line); add the CPU the fleet's ONVIF
    process (``onvif_cpu_s``) and RTSP server (``rtsp_cpu_s``) used meanwhile."""
    onvif0, rtsp0 = fleet.cpu_s()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=3600, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed with exit status {proc.returncode}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    onvif1, rtsp1 = fleet.cpu_s()
    figures["onvif_cpu_s"], figures["rtsp_cpu_s"] = onvif1 - onvif0, rtsp1 - rtsp0
    return figures
