"""Benchmark: RTSP stream checks per second over simulated 1080p H.264 cameras, against one-at-a-time checks.

    .venv/bin/python benchmarks/stream_checks.py [N=48] [--workers 8] [--sample-s 2.0] [--baseline-streams 6]
                                                 [--phases scan,streams,locked,sequential]

1. Starts N simulated cameras (``generate_fleet``, every main stream 1920x1080 H.264 25 fps 4 Mbit/s, served by
   the simulator's gst-rtsp-server from a pre-encoded clip) on loopback, in a process of its own.
2. Runs each phase in a fresh child process, so its CPU time and peak RSS are its own:
   - ``scan``: ``probes.scan.probe_many(..., with_streams=True)``, what a scan runs: ONVIF read, stream URI,
     then ``probes.stream.check_stream`` of the main stream in a pool of ``--workers`` threads;
   - ``streams``: only ``check_stream`` of every main stream, in a pool of ``--workers`` threads;
   - ``locked``: the same with ``OPENCV_FFMPEG_IS_THREAD_SAFE=0``, i.e. OpenCV's process-wide open lock back
     on (how stream checks ran before probes.stream switched it off);
   - ``sequential`` (the baseline): ``check_stream`` one stream at a time over ``--baseline-streams`` cameras.
3. Prints per phase: streams checked per second, CPU seconds per stream of the checking process (threads
   included) and, separately, of the simulator (ONVIF process and RTSP server), streams ok, first-frame
   times, peak RSS; then the ratios to the sequential baseline. Target (issue 7, 2-core machine, cameras on
   the same machine): at least 4 streams per second.

A check samples ``--sample-s`` seconds of video and video arrives in real time, so a pool of W workers can
never pass W / (sample_s + set-up) streams per second: the benchmark prints that bound too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness import FleetProcess, child_main, log, run_measured  # benchmarks/ is on sys.path when a script here runs

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FLEET_BASE = "127.66.0.0"  # away from the demo (127.0.x), the tests (127.0.x, 127.1.x) and the scan benchmark
MAIN = "Profile_1"  # generate_fleet's main stream: 1920x1080 H.264 (media2_every=0: no H.265 cameras)
PHASES = ("scan", "streams", "locked", "sequential")


def run_child(phase: str, args: argparse.Namespace, cameras: list[dict], fleet: FleetProcess, workdir: Path) -> dict:
    """Run one phase in a fresh process; return its figures plus the simulator's CPU during it."""
    spec = workdir / f"{phase}.json"
    spec.write_text(json.dumps({"cameras": cameras, "workers": args.workers, "sample_s": args.sample_s,
                                "timeout_s": args.timeout_s}))
    env = dict(os.environ)
    env.pop("OPENCV_FFMPEG_IS_THREAD_SAFE", None)  # measure what probes.stream sets ...
    if phase == "locked":
        env["OPENCV_FFMPEG_IS_THREAD_SAFE"] = "0"  # ... or OpenCV's own default (one open at a time)
    return run_measured(f"phase {phase}", [sys.executable, str(Path(__file__).resolve()), "--child", phase,
                                           str(spec)], fleet, cwd=REPO, env=env)


# -- child phases (run in their own process) --------------------------------------------------------------

def _figures(checks: list, wall: float, usage0: resource.struct_rusage, check_walls: list[float]) -> dict:
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    errors: dict[str, int] = {}
    for c in checks:
        if not c.ok:
            key = (c.error or "no error text")[:120]
            errors[key] = errors.get(key, 0) + 1
    firsts = [c.first_frame_s for c in checks if c.first_frame_s is not None]
    return {"streams": len(checks), "ok": sum(1 for c in checks if c.ok), "wall_s": wall,
            "cpu_s": (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime),
            "peak_rss_mb": usage1.ru_maxrss / 1024, "errors": errors,
            "first_frame_median_s": statistics.median(firsts) if firsts else None,
            "first_frame_max_s": max(firsts) if firsts else None,
            "check_wall_mean_s": statistics.fmean(check_walls) if check_walls else None,
            "full_hd": sum(1 for c in checks if (c.width, c.height, c.codec) == (1920, 1080, "H264"))}


def child_scan(spec: dict) -> dict:
    """probes.scan.probe_many with streams: ONVIF, stream URI, then the main stream's check."""
    from probes.scan import probe_many_sync
    from probes.stream import check_stream  # noqa: F401 - import OpenCV before the clock starts
    from probes.targets import Credential, Target

    cams = spec["cameras"]
    targets = [Target(c["host"], int(c["port"])) for c in cams]
    creds = [Credential(cams[0]["username"], cams[0]["password"])]
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    observations = probe_many_sync(targets, creds, with_streams=True, stream_workers=spec["workers"],
                                   sample_s=spec["sample_s"], stream_timeout_s=spec["timeout_s"])
    wall = time.monotonic() - started
    checks = [c for o in observations for c in o.stream_checks]
    figures = _figures(checks, wall, usage0, [])
    figures["onvif_ok"] = sum(1 for o in observations if o.status.value == "ok")
    figures["cameras"] = len(cams)
    return figures


def _check_all(spec: dict, workers: int) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    from probes.stream import check_stream

    cams = spec["cameras"]
    check_walls: list[float] = []

    def one(cam: dict):
        started = time.monotonic()
        result = check_stream(cam["rtsp_urls"][MAIN], username=cam["username"], password=cam["password"],
                              profile_token=MAIN, sample_s=spec["sample_s"], timeout_s=spec["timeout_s"])
        check_walls.append(time.monotonic() - started)
        return result

    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stream-check") as pool:
            checks = list(pool.map(one, cams))
    else:
        checks = [one(cam) for cam in cams]
    return _figures(checks, time.monotonic() - started, usage0, check_walls)


def child_streams(spec: dict) -> dict:
    """check_stream of every main stream in a pool of ``workers`` threads."""
    return _check_all(spec, spec["workers"])


def child_sequential(spec: dict) -> dict:
    """The baseline: check_stream one stream at a time."""
    return _check_all(spec, 1)


# -- report ---------------------------------------------------------------------------------------------------

def rate(fig: dict) -> float:
    """Streams checked per second."""
    return fig["streams"] / fig["wall_s"] if fig["wall_s"] else float("inf")


def report(label: str, fig: dict) -> str:
    """Result lines of one phase."""
    n = max(fig["streams"], 1)
    first = (f"first frame median {fig['first_frame_median_s']:.2f} s, max {fig['first_frame_max_s']:.2f} s"
             if fig["first_frame_median_s"] is not None else "no first frame")
    per_check = f", {fig['check_wall_mean_s']:.2f} s per check" if fig.get("check_wall_mean_s") else ""
    onvif = f", ONVIF {fig['onvif_ok']}/{fig['cameras']} ok" if "onvif_ok" in fig else ""
    text = (f"{label:<44} {fig['streams']:>4} streams {fig['ok']:>4} ok ({fig['full_hd']} at 1920x1080 H264)"
            f"{onvif}  {fig['wall_s']:6.2f} s  {rate(fig):5.2f} streams/s\n"
            f"{'':<44} CPU {fig['cpu_s'] / n:.3f} s/stream (checker) + simulator {fig['onvif_cpu_s'] / n:.3f} "
            f"(ONVIF) + {fig['rtsp_cpu_s'] / n:.3f} (RTSP server)  peak RSS {fig['peak_rss_mb']:.0f} MB\n"
            f"{'':<44} {first}{per_check}")
    for key, count in sorted(fig.get("errors", {}).items()):
        text += f"\n    {count} x {key}"
    return text


def main() -> int:
    """Parse arguments, run the phases, print the figures."""
    from probes.scan import DEFAULT_STREAM_WORKERS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=48, help="simulated cameras (default 48)")
    parser.add_argument("--workers", type=int, default=DEFAULT_STREAM_WORKERS,
                        help=f"stream checks at once (default {DEFAULT_STREAM_WORKERS}, probes.scan's default)")
    parser.add_argument("--sample-s", type=float, default=2.0, help="seconds of video each check samples (2.0)")
    parser.add_argument("--timeout-s", type=float, default=10.0, help="stream open/read timeout (10, as a scan)")
    parser.add_argument("--baseline-streams", type=int, default=6,
                        help="streams the sequential baseline checks (default 6; its rate does not depend on N)")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"phases to run (default {','.join(PHASES)})")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(args.child, {"scan": child_scan, "streams": child_streams, "locked": child_streams,
                                       "sequential": child_sequential})
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if unknown := set(phases) - set(PHASES):
        parser.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    if args.n < 1 or args.workers < 1:
        parser.error("N and --workers must be at least 1")

    print(f"stream checks: {args.n} simulated cameras, 1920x1080 H.264 25 fps main streams, {args.workers} workers, "
          f"{args.sample_s:g} s sampled per check, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          "cameras on the same machine", flush=True)
    labels = {"scan": f"scan: probe_many ONVIF + stream ({args.workers} workers)",
              "streams": f"stream checks only ({args.workers} threads)",
              "locked": "stream checks, OpenCV open lock (before)",
              "sequential": "baseline: one check at a time"}
    from cctv_monitor.simulator.fleet import generate_fleet

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="cctv-stream-bench-") as tmp, FleetProcess(
            generate_fleet(args.n, base=FLEET_BASE, media2_every=0, name="stream-bench"), Path(tmp),
            streams=True) as fleet:
        for phase in phases:
            cameras = fleet.cameras[:args.baseline_streams] if phase == "sequential" else fleet.cameras
            log(f"running phase {phase} over {len(cameras)} streams ...")
            results[phase] = run_child(phase, args, cameras, fleet, Path(tmp))
            print(report(labels[phase], results[phase]), flush=True)
            time.sleep(1)  # let the server tear the previous phase's sessions down
    if "streams" in results and results["streams"].get("check_wall_mean_s"):
        per = results["streams"]["check_wall_mean_s"]
        print(f"bound for {args.workers} workers: {args.workers} / {per:.2f} s per check = "
              f"{args.workers / per:.2f} streams/s (video arrives in real time; {args.sample_s:g} s are sampled)")
    if "sequential" in results:
        base = rate(results["sequential"])
        for phase in phases:
            if phase != "sequential":
                print(f"ratio {phase} / sequential: {rate(results[phase]) / base:.1f}x streams per second")
    for phase in ("scan", "streams"):
        if phase in results:
            print(f"target >= 4 streams/s ({phase}): {'met' if rate(results[phase]) >= 4 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
