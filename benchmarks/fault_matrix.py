"""Benchmark: one ONVIF scan (no streams) over a fleet where every quirk and every hostile behaviour is
present several times, against the same scan of its healthy cameras alone.

    .venv/bin/python benchmarks/fault_matrix.py [--healthy 440] [--copies 3] [--timeout-s 5]
                                                [--concurrency 64] [--database URL]

1. Builds the fault matrix (``cctv_monitor.simulator.faults``): ``--healthy`` generated cameras, plus
   ``--copies`` of every camera of config/fleets/quirks.yaml and of every hostile wire behaviour (a reply
   that never ends, a reset mid-reply, garbage bytes with and without HTTP, a drip of one byte a second,
   entity payloads, 64 MB replies with and without a Content-Length), spread through the address range.
2. Scans the healthy cameras alone (their fleet in a process of its own, the scan in a child process), then
   the whole matrix the same way: ``run_scan`` over the /24 blocks holding the fleet, recording into a
   database (SQLite in a temporary folder unless --database; use an empty database each run).
3. Prints the cameras, the outcome of every behaviour (expected against seen), whether every healthy camera
   was read correctly (status ok, the fleet's serial, model and two profiles), the scan time against the
   bound (healthy scan + two probe timeouts), the scanning process's peak RSS, and whether each target is met.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from harness import FleetProcess, child_main, log, run_measured  # benchmarks/ is on sys.path when a script here runs

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RSS_TARGET_MB = 400.0


def child_scan(spec: dict) -> dict:
    """run_scan over the fleet's /24 blocks, every camera already known; each outcome, wall time, peak RSS."""
    from sqlalchemy import select

    from cctv_monitor import create_app
    from cctv_monitor.db import get_db
    from cctv_monitor.models import Observation, ScanRun
    from cctv_monitor.scanning import run_scan
    from probes.targets import Credential

    workdir = Path(spec["workdir"])
    url = spec["database"] or f"sqlite:///{workdir / (spec['label'] + '.sqlite')}"
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "benchmark", "INSTANCE_PATH": str(workdir / "instance"),
                      "ONVIF_PORTS": spec["ports"], "PROBE_CONCURRENCY": spec["concurrency"],
                      "PROBE_TIMEOUT_S": spec["timeout_s"], "SCHEDULER_ENABLED": False})
    from cctv_monitor.models import Device

    with get_db(app).session_scope() as session:
        # The inventory already knows every camera (a previous scan found them before they turned hostile):
        # so every outcome is stored, also a timeout or a reset, which a first sweep would not keep.
        for cam in spec["known"]:
            session.add(Device(address=cam["address"], mac=cam["mac"], macs=[cam["mac"]], serial=cam["serial"],
                               status="unknown"))
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    run_id = run_scan(app, "range", ",".join(spec["ranges"]), credentials=[Credential(*spec["credential"])],
                      deliver_alerts=False, trigger="benchmark")
    wall = time.monotonic() - started
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    seen: dict[str, dict[str, Any]] = {}
    with get_db(app).session_scope() as session:
        state = session.get(ScanRun, run_id).state
        for obs in session.scalars(select(Observation).where(Observation.scan_run_id == run_id)):
            device = (obs.data or {}).get("device") or {}
            seen[obs.address.rsplit(":", 1)[0]] = {
                "status": obs.probe_status, "error": (obs.error or "")[:160], "serial": device.get("serial"),
                "model": device.get("model"), "profiles": len((obs.data or {}).get("profiles") or []),
                "duration_s": (obs.data or {}).get("duration_s")}
    get_db(app).dispose()
    return {"wall_s": wall, "cpu_s": (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime),
            "peak_rss_mb": usage1.ru_maxrss / 1024, "run_state": state, "seen": seen,
            "database": url.split(":", 1)[0]}


def scan(label: str, fleet_map: dict, args: argparse.Namespace, workdir: Path) -> tuple[dict, list[dict]]:
    """Serve ``fleet_map`` in its own process and scan it from a child process; (figures, cameras)."""
    from cctv_monitor.simulator.faults import address_ranges

    sub = workdir / label
    sub.mkdir()
    spec_of = {c["name"]: c for c in fleet_map["cameras"]}
    with FleetProcess(fleet_map, sub) as fleet:
        spec = sub / "spec.json"
        spec.write_text(json.dumps({
            "label": label, "workdir": str(sub), "database": args.database, "concurrency": args.concurrency,
            "timeout_s": args.timeout_s, "ranges": address_ranges(fleet_map),
            "ports": sorted({int(c["port"]) for c in fleet.cameras}),
            "credential": [fleet.cameras[0]["username"], fleet.cameras[0]["password"]],
            "known": [{"address": f"{c['host']}:{c['port']}", "mac": spec_of[c["name"]]["macs"][0],
                       "serial": spec_of[c["name"]]["serial"]} for c in fleet.cameras]}))
        log(f"scanning {label}: {len(fleet.cameras)} cameras ...")
        figures = run_measured(f"scan of {label}", [sys.executable, str(Path(__file__).resolve()), "--child",
                                                    "scan", str(spec)], fleet, cwd=REPO)
        return figures, fleet.cameras


def judge(fleet_map: dict, expected: dict[str, dict[str, str]], seen: dict[str, dict]) -> dict[str, Any]:
    """Outcomes per behaviour and the healthy cameras read correctly, from the scan's observations."""
    specs = {c["name"]: c for c in fleet_map["cameras"]}
    outcomes: dict[str, Counter] = defaultdict(Counter)
    wrong: list[str] = []
    healthy_ok = healthy = 0
    for name, exp in expected.items():
        cam = specs[name]
        got = seen.get(cam["host"])
        status = got["status"] if got else "missing"
        outcomes[exp["kind"]][status] += 1
        if exp["kind"] == "healthy":
            healthy += 1
            if got and status == "ok" and got["serial"] == cam["serial"] and got["model"] == cam["model"] \
                    and got["profiles"] == len(cam["profiles"]):
                healthy_ok += 1
            else:
                wrong.append(f"{name} ({cam['host']}): {got}")
        elif status != exp["expect"]:
            wrong.append(f"{name} ({cam['host']}, {exp['kind']}): expected {exp['expect']}, got {status} "
                         f"{(got or {}).get('error', '')}")
    return {"outcomes": {k: dict(v) for k, v in outcomes.items()}, "healthy": healthy, "healthy_ok": healthy_ok,
            "wrong": wrong}


def main() -> int:
    """Parse arguments, run both scans, print the figures and the targets."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--healthy", type=int, default=440, help="healthy cameras (default 440)")
    parser.add_argument("--copies", type=int, default=3, help="copies of every quirk and behaviour (default 3)")
    parser.add_argument("--timeout-s", type=float, default=5.0, help="probe timeout per request (default 5, as a scan)")
    parser.add_argument("--concurrency", type=int, default=64, help="probe concurrency (default 64, as a scan)")
    parser.add_argument("--database", default=None, help="SQLAlchemy URL of an empty database (default: temp SQLite)")
    parser.add_argument("--base", default="127.90.0.0", help="first fleet address (default 127.90.0.0)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(args.child, {"scan": child_scan})
    if args.database:
        parser.error("--database: both scans would write into one database; not supported yet")
    from cctv_monitor.simulator.faults import HOSTILE, fault_matrix_fleet, healthy_only

    fleet_map, expected = fault_matrix_fleet(args.healthy, args.copies, base=args.base)
    kinds = Counter(e["kind"] for e in expected.values())
    print(f"fault matrix: {len(fleet_map['cameras'])} cameras ({kinds['healthy']} healthy, "
          f"{len(kinds) - 1} quirks and behaviours x {args.copies}), probe timeout {args.timeout_s:g} s, "
          f"concurrency {args.concurrency}, {os.cpu_count()} CPUs, fleet on the same machine")
    with tempfile.TemporaryDirectory(prefix="cctv-faults-") as tmp:
        base_fig, _ = scan("healthy", healthy_only(fleet_map, expected), args, Path(tmp))
        full_fig, _ = scan("matrix", fleet_map, args, Path(tmp))
    verdict = judge(fleet_map, expected, full_fig["seen"])
    print(f"{'behaviour':<22} {'expected':<16} seen")
    for kind in sorted(verdict["outcomes"], key=lambda k: (k != "healthy", k not in HOSTILE, k)):
        exp = "ok" if kind == "healthy" else next(e["expect"] for e in expected.values() if e["kind"] == kind)
        seen = ", ".join(f"{n} {s}" for s, n in sorted(verdict["outcomes"][kind].items()))
        mark = "" if set(verdict["outcomes"][kind]) == {exp} else "   <-- differs"
        print(f"{kind:<22} {exp:<16} {seen}{mark}")
    for line in verdict["wrong"][:20]:
        print(f"    wrong: {line}")
    bound = base_fig["wall_s"] + 2 * args.timeout_s
    slowest = sorted(((v.get("duration_s") or 0, host, v["status"]) for host, v in full_fig["seen"].items()),
                     reverse=True)[:3]
    print(f"healthy alone: {base_fig['wall_s']:.1f} s ({base_fig['run_state']}); whole matrix: "
          f"{full_fig['wall_s']:.1f} s ({full_fig['run_state']}); bound {bound:.1f} s "
          f"(healthy + 2 x {args.timeout_s:g} s)")
    print("slowest probes: " + ", ".join(f"{h} {d:.1f} s {s}" for d, h, s in slowest))
    print(f"peak RSS of the scanning process: {full_fig['peak_rss_mb']:.0f} MB "
          f"(healthy alone {base_fig['peak_rss_mb']:.0f} MB); CPU {full_fig['cpu_s']:.1f} s")
    every_ok = verdict["healthy_ok"] == verdict["healthy"]
    outcomes_ok = not [w for w in verdict["wrong"] if "expected" in w]
    print(f"target every healthy camera read correctly: {'met' if every_ok else 'NOT met'} "
          f"({verdict['healthy_ok']}/{verdict['healthy']})")
    print(f"target every faulty camera with its documented outcome: {'met' if outcomes_ok else 'NOT met'}")
    print(f"target scan time <= healthy + 2 probe timeouts: {'met' if full_fig['wall_s'] <= bound else 'NOT met'} "
          f"({full_fig['wall_s']:.1f} s <= {bound:.1f} s)")
    print(f"target peak RSS < {RSS_TARGET_MB:.0f} MB: "
          f"{'met' if full_fig['peak_rss_mb'] < RSS_TARGET_MB else 'NOT met'} ({full_fig['peak_rss_mb']:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
