"""Benchmark: RTSP stream checks per second measured from packets, against the decoder path and one at a time.

    .venv/bin/python benchmarks/stream_checks.py [N=96] [--in-flight 32,64,96] [--sample-s 2.5]
                                                 [--phases curve,scan,decoder,sequential] [--baseline-streams 6]

1. Starts N simulated cameras in a process of its own: mostly 1920x1080 H.264 25 fps GOP 50 at 4 Mbit/s,
   every 8th H.265 (same size and GOP), every 12th MJPEG 1280x720 10 fps; four cameras per /24, so a
   site's limit of 4 streams at once (``CCTV_STREAM_PER_SITE``) does not cap the run.
2. Runs each phase in a fresh child process, so its CPU time and peak RSS are its own:
   - ``curve``: ``probes.stream.check_stream`` of every main stream with 32, 64 and 96 (``--in-flight``)
     checks at once: streams/s against peak RSS;
   - ``scan``: ``probes.scan.probe_many(..., with_streams=True)``, what a scan runs (ONVIF read, stream URI,
     stream check), with its concurrency planned from the memory budget (``--memory-mb``, default 600);
   - ``decoder``: today's decoder path before this change (OpenCV decodes half a second of every frame,
     then counts packets in raw mode; ``benchmarks/decoder_path.py``) with 12 checks at once, its default;
   - ``sequential`` (the baseline): ``check_stream`` one stream at a time over ``--baseline-streams``.
3. Prints per phase: streams/s, checker CPU seconds per stream (threads included), the simulator's CPU per
   stream (ONVIF process, RTSP server), streams ok and measured as served, peak RSS; then the ratios and
   the targets (2-core machine, cameras on the same machine): 20 streams/s, < 0.03 CPU-s per stream (the
   checker), < 600 MB peak RSS.
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
MAIN = "Profile_1"
PHASES = ("curve", "scan", "decoder", "sequential")
TARGET_RATE, TARGET_CPU, TARGET_RSS = 20.0, 0.03, 600.0


def bench_fleet(n: int) -> dict:
    """The benchmark's fleet mapping: mostly H.264 1080p GOP 50, some H.265 and MJPEG, 4 cameras per /24."""
    from cctv_monitor.simulator.fleet import demo_mac, generate_fleet

    fleet = generate_fleet(n, base=FLEET_BASE, media2_every=8, name="stream-bench")
    for i, cam in enumerate(fleet["cameras"]):
        cam["host"] = f"127.66.{i // 4}.{i % 4 + 1}"
        cam["macs"] = [demo_mac(cam["manufacturer"], cam["host"])]
        main = cam["profiles"][0]
        if i % 12 == 11 and main["encoding"] == "H264":
            main.update(encoding="JPEG", width=1280, height=720, fps=10, bitrate_kbps=4096)
    return fleet


def expected_streams(fleet: dict) -> dict[str, tuple]:
    """(width, height, codec) each camera's main stream serves, by camera name."""
    return {c["name"]: (c["profiles"][0]["width"], c["profiles"][0]["height"], c["profiles"][0]["encoding"])
            for c in fleet["cameras"]}


def run_child(phase: str, spec: dict, fleet: FleetProcess, workdir: Path) -> dict:
    """Run one phase in a fresh process; return its figures plus the simulator's CPU during it."""
    path = workdir / f"{phase}-{spec.get('in_flight', 0)}.json"
    path.write_text(json.dumps(spec))
    return run_measured(f"phase {phase}", [sys.executable, str(Path(__file__).resolve()), "--child", phase,
                                           str(path)], fleet, cwd=REPO, env=dict(os.environ))


# -- child phases (run in their own process) --------------------------------------------------------------

def _figures(results: list[dict], wall: float, usage0: resource.struct_rusage, expected: dict) -> dict:
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    # The scan's stream checker process (probes/stream_worker.py) has ended by now: its CPU and peak RSS
    # count as the checker's (the two processes run side by side, so their peaks are added).
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    errors: dict[str, int] = {}
    for r in results:
        if not r["ok"]:
            key = (r.get("error") or "no error text")[:120]
            errors[key] = errors.get(key, 0) + 1
    firsts = [r["first_frame_s"] for r in results if r.get("first_frame_s") is not None]
    return {"streams": len(results), "ok": sum(1 for r in results if r["ok"]), "wall_s": wall,
            "cpu_s": (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
            + kids.ru_utime + kids.ru_stime,
            "peak_rss_mb": (usage1.ru_maxrss + kids.ru_maxrss) / 1024, "errors": errors,
            "first_frame_median_s": statistics.median(firsts) if firsts else None,
            "as_served": sum(1 for r in results if r["ok"] and list(expected.get(r["name"]) or ()) == [
                r.get("width"), r.get("height"), r.get("codec")]),
            "exact_gop": sum(1 for r in results if r.get("keyframe_interval") is not None)}


def _as_dict(name: str, check) -> dict:
    return {"name": name, "ok": check.ok, "error": check.error, "width": check.width, "height": check.height,
            "codec": check.codec, "first_frame_s": check.first_frame_s, "keyframe_interval": check.keyframe_interval}


def _check_all(spec: dict, workers: int, decoder_path: bool = False) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    from probes.stream import check_stream

    if decoder_path:
        from decoder_path import decoder_check
    cams = spec["cameras"]

    def one(cam: dict) -> dict:
        if decoder_path:
            got = decoder_check(cam["rtsp_urls"][MAIN], cam["username"], cam["password"], 2.0, spec["timeout_s"])
            return {"name": cam["name"], **got}
        check = check_stream(cam["rtsp_urls"][MAIN], username=cam["username"], password=cam["password"],
                             profile_token=MAIN, sample_s=spec["sample_s"], timeout_s=spec["timeout_s"])
        return _as_dict(cam["name"], check)

    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stream-check") as pool:
        results = list(pool.map(one, cams))
    return _figures(results, time.monotonic() - started, usage0, spec["expected"])


def child_curve(spec: dict) -> dict:
    """check_stream of every main stream, ``in_flight`` at once."""
    return _check_all(spec, spec["in_flight"])


def child_decoder(spec: dict) -> dict:
    """The decoder path (before this change), 12 at once (its default)."""
    return _check_all(spec, 12, decoder_path=True)


def child_sequential(spec: dict) -> dict:
    """The baseline: check_stream one stream at a time."""
    return _check_all(spec, 1)


def child_scan(spec: dict) -> dict:
    """probes.scan.probe_many with streams, concurrency from the memory budget."""
    from probes.scan import plan_stream_checks, probe_many_sync
    from probes.targets import Credential, Target

    cams = spec["cameras"]
    by_host = {c["host"]: c["name"] for c in cams}
    targets = [Target(c["host"], int(c["port"])) for c in cams]
    creds = [Credential(cams[0]["username"], cams[0]["password"])]
    from probes.stream_budget import CHECKER_BASE_MB

    planned = plan_stream_checks(spec["memory_mb"], None, other_mb=CHECKER_BASE_MB)  # what probe_many plans
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    observations = probe_many_sync(targets, creds, with_streams=True, sample_s=spec["sample_s"],
                                   stream_timeout_s=spec["timeout_s"], stream_memory_mb=spec["memory_mb"],
                                   concurrency=64)
    wall = time.monotonic() - started
    results = [_as_dict(by_host[o.host], c) for o in observations for c in o.stream_checks]
    figures = _figures(results, wall, usage0, spec["expected"])
    figures["onvif_ok"] = sum(1 for o in observations if o.status.value == "ok")
    figures["cameras"] = len(cams)
    figures["planned"] = planned
    return figures


# -- report ---------------------------------------------------------------------------------------------------

def rate(fig: dict) -> float:
    """Streams checked per second."""
    return fig["streams"] / fig["wall_s"] if fig["wall_s"] else float("inf")


def report(label: str, fig: dict) -> str:
    """Result lines of one phase."""
    n = max(fig["streams"], 1)
    first = (f"first keyframe median {fig['first_frame_median_s']:.2f} s"
             if fig["first_frame_median_s"] is not None else "no first frame")
    onvif = f", ONVIF {fig['onvif_ok']}/{fig['cameras']} ok" if "onvif_ok" in fig else ""
    text = (f"{label:<46} {fig['streams']:>4} streams {fig['ok']:>4} ok ({fig['as_served']} as served, "
            f"{fig['exact_gop']} exact GOP){onvif}  {fig['wall_s']:6.2f} s  {rate(fig):5.2f} streams/s\n"
            f"{'':<46} CPU {fig['cpu_s'] / n:.3f} s/stream (checker) + simulator {fig['onvif_cpu_s'] / n:.3f} "
            f"(ONVIF) + {fig['rtsp_cpu_s'] / n:.3f} (RTSP server)  peak RSS {fig['peak_rss_mb']:.0f} MB  {first}")
    for key, count in sorted(fig.get("errors", {}).items()):
        text += f"\n    {count} x {key}"
    return text


def verdicts(results: dict) -> list[str]:
    """The three targets, each met or not, from the best curve point and the scan."""
    lines = []
    best = max((f for k, f in results.items() if k.startswith("curve") and f["peak_rss_mb"] < TARGET_RSS),
               key=rate, default=None)
    for label, fig in (("stream checks, best point under 600 MB", best), ("scan", results.get("scan"))):
        if fig is None:
            continue
        n = max(fig["streams"], 1)
        checks = [(f"{rate(fig):.1f} streams/s >= {TARGET_RATE:g}", rate(fig) >= TARGET_RATE),
                  (f"{fig['cpu_s'] / n:.3f} CPU-s/stream < {TARGET_CPU}", fig["cpu_s"] / n < TARGET_CPU),
                  (f"peak {fig['peak_rss_mb']:.0f} MB < {TARGET_RSS:g}", fig["peak_rss_mb"] < TARGET_RSS)]
        lines.append(f"targets ({label}): " + "; ".join(f"{t} {'met' if ok else 'NOT met'}" for t, ok in checks))
    return lines


def main() -> int:
    """Parse arguments, run the phases, print the figures."""
    from probes.scan import DEFAULT_STREAM_MEMORY_MB
    from probes.stream import DEFAULT_SAMPLE_S

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=96, help="simulated cameras (default 96)")
    parser.add_argument("--in-flight", default="32,64,96", help="checks at once for the curve (default 32,64,96)")
    parser.add_argument("--memory-mb", type=float, default=DEFAULT_STREAM_MEMORY_MB,
                        help=f"the scan's memory budget (default {DEFAULT_STREAM_MEMORY_MB:g}, CCTV_STREAM_MEMORY_MB)")
    parser.add_argument("--sample-s", type=float, default=DEFAULT_SAMPLE_S,
                        help=f"stream time cap per check (default {DEFAULT_SAMPLE_S:g})")
    parser.add_argument("--timeout-s", type=float, default=10.0, help="stream open/read timeout (10, as a scan)")
    parser.add_argument("--baseline-streams", type=int, default=6,
                        help="streams the sequential baseline checks (default 6; its rate does not depend on N)")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"phases to run (default {','.join(PHASES)})")
    parser.add_argument("--profile", action="store_true",
                        help="run each phase under cProfile (main thread) and print its top functions to stderr")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(args.child, {"curve": child_curve, "scan": child_scan, "decoder": child_decoder,
                                       "sequential": child_sequential})
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if unknown := set(phases) - set(PHASES):
        parser.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    try:
        in_flight = [int(x) for x in args.in_flight.split(",") if x.strip()]
    except ValueError:
        parser.error("--in-flight takes comma-separated integers, e.g. 32,64,96")
    if args.n < 1 or not in_flight or min(in_flight) < 1:
        parser.error("N and every --in-flight value must be at least 1")

    fleet_map = bench_fleet(args.n)
    expected = expected_streams(fleet_map)
    kinds = {}
    for width, height, codec in expected.values():
        kinds[f"{codec} {width}x{height}"] = kinds.get(f"{codec} {width}x{height}", 0) + 1
    print(f"stream checks: {args.n} simulated cameras ({', '.join(f'{v} {k}' for k, v in kinds.items())}), "
          f"sample cap {args.sample_s:g} s or the second keyframe, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, cameras on the same machine", flush=True)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="cctv-stream-bench-") as tmp, FleetProcess(
            fleet_map, Path(tmp), streams=True) as fleet:
        base = {"sample_s": args.sample_s, "timeout_s": args.timeout_s, "expected": expected,
                "memory_mb": args.memory_mb, "profile": args.profile}
        for phase in phases:
            if phase == "curve":
                for k in in_flight:
                    log(f"running phase curve with {k} in flight over {len(fleet.cameras)} streams ...")
                    fig = run_child("curve", {**base, "cameras": fleet.cameras, "in_flight": k}, fleet, Path(tmp))
                    results[f"curve@{k}"] = fig
                    print(report(f"stream checks, {k} in flight", fig), flush=True)
                    time.sleep(1)
                continue
            cameras = fleet.cameras[:args.baseline_streams] if phase == "sequential" else fleet.cameras
            log(f"running phase {phase} over {len(cameras)} streams ...")
            results[phase] = run_child(phase, {**base, "cameras": cameras}, fleet, Path(tmp))
            label = {"scan": f"scan: probe_many ONVIF + stream ({results[phase].get('planned')} at once)",
                     "decoder": "decoder path (before), 12 at once",
                     "sequential": "baseline: one check at a time"}[phase]
            print(report(label, results[phase]), flush=True)
            time.sleep(1)  # let the server tear the previous phase's sessions down
    curve = [(k, results[f"curve@{k}"]) for k in in_flight if f"curve@{k}" in results]
    if curve:
        print("curve: " + "; ".join(f"{k} in flight: {rate(f):.1f} streams/s at {f['peak_rss_mb']:.0f} MB"
                                    for k, f in curve))
    for ref in ("sequential", "decoder"):
        if ref in results:
            for key, fig in results.items():
                if key not in ("sequential", ref):
                    print(f"ratio {key} / {ref}: {rate(fig) / rate(results[ref]):.1f}x streams per second")
    for line in verdicts(results):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
