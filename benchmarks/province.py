"""Benchmark: a generated province scanned with streams, end to end into SQLite and PostgreSQL.

    .venv/bin/python benchmarks/province.py [--sites 200] [--per-site 10] [--databases sqlite,postgresql]
                                            [--postgres-url URL] [--profile]

1. Generates a province: ``--sites`` sites of ``--per-site`` cameras, each site its own /24 (127.70.S.x),
   main streams 1920x1080 H.264 25 fps GOP 50 at 4 Mbit/s; 10 % faulty: one camera per site (site s: its
   camera s mod N) is offline, has another password, or has a stream that never starts (its RTSP port
   accepts and never answers), in turn. Serves it with the simulator in a process of its own.
2. For each database, in a fresh child process: ``cctv_monitor.scanning.run_scan`` over the sites' ranges
   with streams (sweep, ONVIF, stream checks from the memory budget, identity, evaluation, one commit per
   camera), with the application's default settings. PostgreSQL runs in a database of its own, created
   for the run and dropped afterwards (``--postgres-url`` names the server, default ``CCTV_TEST_PG_URL``).
   The sites' /24s are passed as listed (200 sites: about 3,000 characters of scan target).
3. Prints per database: total time, cameras/s, streams measured, faults found as expected, the CPU of the
   scan process, the stream checker and the simulator, peak RSS, where the time went (sweep done, first
   camera recorded, 50 % and 90 % recorded), and the projected time for 20,000 cameras (target: under 20
   minutes). ``--profile`` prints the scan process's top functions (cProfile) to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import selectors
import socket
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from harness import FleetProcess, child_main, log, run_measured  # benchmarks/ is on sys.path when a script here runs

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PASSWORD = "Demo#2567"
FAULTS = ("offline", "wrong_password", "stream_never_starts")
PROVINCE_CAMERAS = 20_000
TARGET_MIN = 20.0


def province_fleet(sites: int, per_site: int) -> tuple[dict, dict[str, str]]:
    """The fleet mapping and the fault of each faulty camera, by host."""
    from cctv_monitor.simulator.fleet import demo_mac, generate_fleet

    fleet = generate_fleet(sites * per_site, base="127.70.0.0", media2_every=0, name="province")
    faults: dict[str, str] = {}
    for i, cam in enumerate(fleet["cameras"]):
        site, index = divmod(i, per_site)
        cam["host"] = f"127.70.{site}.{index + 1}"
        cam["macs"] = [demo_mac(cam["manufacturer"], cam["host"])]
        # One faulty camera per site, at a different place in each site (site s: its camera s mod N): a
        # scan's order does not then put every fault in one round (a stream that never starts holds its slot
        # for the whole stream timeout, so faults all in the last round made a tail of one timeout).
        if index == site % per_site:
            fault = FAULTS[site % len(FAULTS)]
            faults[cam["host"]] = fault
            if fault == "offline":
                cam["online"] = False
            elif fault == "wrong_password":
                cam["password"] = "Another#2567"
            else:
                cam["profiles"][0]["stream"] = False  # not served: our silent listener holds its RTSP port
    return fleet, faults


class SilentRtsp:
    """Accepts on each address's RTSP port and never answers: a stream that never starts."""

    def __init__(self, hosts: list[str], port: int = 8554) -> None:
        self.selector = selectors.DefaultSelector()
        self.socks, self.conns = [], []
        for host in hosts:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(16)
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ)
            self.socks.append(sock)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            for key, _ in self.selector.select(0.2):
                sock = key.fileobj
                if sock in self.socks:
                    conn, _ = sock.accept()  # type: ignore[union-attr]
                    conn.setblocking(False)
                    self.conns.append(conn)
                    self.selector.register(conn, selectors.EVENT_READ)
                else:
                    try:
                        data = sock.recv(4096)  # type: ignore[union-attr]
                    except OSError:
                        data = b""
                    if not data:  # read and drop requests; close when the client does
                        self.selector.unregister(sock)
                        sock.close()  # type: ignore[union-attr]

    def close(self) -> None:
        """Stop and close every socket."""
        self.stop.set()
        self.thread.join(5)
        for sock in self.socks + self.conns:
            sock.close()
        self.selector.close()


def child_scan(spec: dict) -> dict:
    """run_scan with streams over the province's ranges into ``spec['database']``."""
    from sqlalchemy import func, select

    from cctv_monitor import create_app
    from cctv_monitor.db import get_db
    from cctv_monitor.models import Observation, ScanRun
    from cctv_monitor.scanning import run_scan
    from probes.targets import Credential

    workdir = Path(spec["workdir"])
    app = create_app({"DATABASE_URL": spec["database"], "SECRET_KEY": "benchmark",
                      "INSTANCE_PATH": str(workdir / f"instance-{spec['label']}"), "ONVIF_PORTS": [8000],
                      "SCHEDULER_ENABLED": False})
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    marks: dict[str, float] = {}

    class SweepDone(logging.Handler):
        """The pipeline logs the number of targets once the sweep is over: the end of the discovery phase."""

        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                logging.getLogger().handle(record)  # what the child prints anyway
            elif "targets" in record.getMessage():
                marks.setdefault("sweep_s", time.monotonic() - started)

    def progress(done: int, total: int, _address: str) -> None:
        now = time.monotonic() - started
        marks.setdefault("first_s", now)
        for share in (50, 90):
            if done * 100 >= share * total:
                marks.setdefault(f"p{share}_s", now)

    pipeline_log = logging.getLogger("cctv_monitor.scan.pipeline")
    handler = SweepDone(logging.INFO)
    pipeline_log.addHandler(handler)
    pipeline_log.setLevel(logging.INFO)
    pipeline_log.propagate = False  # its INFO lines (the whole target text) stay out of the output
    try:
        run_id = run_scan(app, "range", spec["ranges"], with_streams=True, credentials=[Credential("admin", PASSWORD)],
                          deliver_alerts=False, trigger="benchmark", progress=progress)
    finally:
        pipeline_log.removeHandler(handler)
        pipeline_log.propagate = True
    wall = time.monotonic() - started
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # the stream checker process
    with get_db(app).session_scope() as session:
        run = session.get(ScanRun, run_id)
        rows = session.execute(select(Observation.address, Observation.probe_status, Observation.data)
                               .where(Observation.scan_run_id == run_id)).all()
        stored = session.scalar(select(func.count()).select_from(Observation).where(Observation.scan_run_id == run_id))
        state = run.state
    get_db(app).dispose()
    by_host: dict[str, dict] = {}
    for address, status, data in rows:
        checks = (data if isinstance(data, dict) else json.loads(data or "{}")).get("stream_checks") or []
        by_host[address.rsplit(":", 1)[0]] = {"status": status, "stream_ok": [bool(c.get("ok")) for c in checks],
                                              "stream_errors": [c.get("error") for c in checks if not c.get("ok")]}
    scan_cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    return {"wall_s": wall, "cpu_s": scan_cpu + kids.ru_utime + kids.ru_stime, "scan_cpu_s": scan_cpu, "peak_rss_mb": (usage1.ru_maxrss + kids.ru_maxrss) / 1024,
            "observations": stored, "state": state, "by_host": by_host, "marks": marks}


def judge(fig: dict, hosts: list[str], faults: dict[str, str]) -> dict:
    """Cameras read, streams measured, and faults reported as what they are."""
    by_host = fig["by_host"]
    healthy = [h for h in hosts if h not in faults]
    streams_ok = sum(1 for h in healthy if by_host.get(h, {}).get("stream_ok") == [True])
    errors: dict[str, int] = {}
    for host in healthy:
        for error in by_host.get(host, {}).get("stream_errors") or []:
            key = (error or "no error text")[:120]
            errors[key] = errors.get(key, 0) + 1
    found = {kind: 0 for kind in FAULTS}
    for host, kind in faults.items():
        got = by_host.get(host, {})
        if kind == "offline" and got.get("status") in (None, "unreachable", "timeout"):
            found[kind] += 1
        elif kind == "wrong_password" and got.get("status") == "auth_failed":
            found[kind] += 1
        elif kind == "stream_never_starts" and got.get("status") == "ok" and got.get("stream_ok") == [False]:
            found[kind] += 1
    return {"healthy": len(healthy), "streams_ok": streams_ok, "found": found, "errors": errors,
            "expected": {k: sum(1 for v in faults.values() if v == k) for k in FAULTS}}


def phases(fig: dict) -> str:
    """Sweep, first camera recorded, 50 % and 90 % recorded, the end: seconds from the start of the run."""
    marks = fig.get("marks") or {}
    names = (("sweep_s", "sweep done"), ("first_s", "first camera recorded"), ("p50_s", "50 %"), ("p90_s", "90 %"))
    return ", ".join(f"{label} {marks[key]:.1f} s" for key, label in names if key in marks) + \
        f", all {fig['wall_s']:.1f} s"


def postgres_database(server_url: str) -> tuple[str, callable]:
    """A fresh database on ``server_url``'s server for this run; returns its URL and a drop function."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    name = f"cctv_province_{uuid.uuid4().hex[:8]}"
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)

    def admin(sql: str) -> None:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql)

    admin(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False), lambda: admin(
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    """Parse arguments, serve the province, scan it into each database, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=200, help="sites (default 200; at most 250)")
    parser.add_argument("--per-site", type=int, default=10, help="cameras per site (default 10; at most 250)")
    parser.add_argument("--databases", default="sqlite,postgresql", help="sqlite, postgresql or both (default)")
    parser.add_argument("--postgres-url", default=os.environ.get("CCTV_TEST_PG_URL"),
                        help="PostgreSQL server (SQLAlchemy URL; a database of its own is created and dropped)")
    parser.add_argument("--profile", action="store_true",
                        help="run each scan under cProfile (main thread) and print its top functions to stderr")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(args.child, {"scan": child_scan})
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if set(databases) - {"sqlite", "postgresql"}:
        parser.error("--databases takes sqlite and/or postgresql")
    if not 1 <= args.sites <= 250 or not 2 <= args.per_site <= 250:
        parser.error("--sites must be 1-250 and --per-site 2-250")
    if "postgresql" in databases and not args.postgres_url:
        parser.error("postgresql needs --postgres-url (or CCTV_TEST_PG_URL)")
    fleet_map, faults = province_fleet(args.sites, args.per_site)
    hosts = [c["host"] for c in fleet_map["cameras"]]
    # Every site's /24 as it is listed (200 sites: about 3,000 characters of target text, stored whole).
    ranges = ",".join(f"127.70.{s}.0/24" for s in range(args.sites))
    print(f"province: {args.sites} sites x {args.per_site} cameras = {len(hosts)} cameras, {len(faults)} faulty "
          f"({', '.join(FAULTS)} in turn), main streams 1920x1080 H.264 25 fps GOP 50, {os.cpu_count()} CPUs, "
          "cameras on the same machine", flush=True)
    silent_hosts = [h for h, kind in faults.items() if kind == "stream_never_starts"]
    with tempfile.TemporaryDirectory(prefix="cctv-province-") as tmp, FleetProcess(
            fleet_map, Path(tmp), streams=True) as fleet:
        silent = SilentRtsp(silent_hosts)
        try:
            for label in databases:
                drop = None
                url = f"sqlite:///{Path(tmp) / 'province.sqlite'}"
                if label == "postgresql":
                    url, drop = postgres_database(args.postgres_url)
                spec = Path(tmp) / f"{label}.json"
                spec.write_text(json.dumps({"database": url, "workdir": tmp, "ranges": ranges, "label": label,
                                            "profile": args.profile}))
                log(f"scanning the province into {label} ...")
                try:
                    fig = run_measured(f"scan into {label}", [sys.executable, str(Path(__file__).resolve()),
                                                              "--child", "scan", str(spec)], fleet, cwd=REPO)
                finally:
                    if drop is not None:
                        drop()
                result = judge(fig, hosts, faults)
                rate = len(hosts) / fig["wall_s"]
                projected_min = PROVINCE_CAMERAS / rate / 60
                found = ", ".join(f"{k} {result['found'][k]}/{result['expected'][k]}" for k in FAULTS)
                print(f"{label:<11} {len(hosts)} cameras in {fig['wall_s']:.1f} s = {rate:.1f} cameras/s; "
                      f"{fig['observations']} observations stored (run {fig['state']}); streams measured "
                      f"{result['streams_ok']}/{result['healthy']} healthy; faults found: {found}\n"
                      f"{'':<11} CPU {fig['cpu_s'] / len(hosts):.3f} s/camera (scan {fig['scan_cpu_s'] / len(hosts):.3f}"
                      f" + checker {(fig['cpu_s'] - fig['scan_cpu_s']) / len(hosts):.3f}) + simulator "
                      f"{fig['onvif_cpu_s'] / len(hosts):.3f} (ONVIF) + {fig['rtsp_cpu_s'] / len(hosts):.3f} (RTSP); "
                      f"peak RSS {fig['peak_rss_mb']:.0f} MB\n"
                      f"{'':<11} where the time went: {phases(fig)}\n"
                      f"{'':<11} projected for {PROVINCE_CAMERAS:,} cameras: {projected_min:.1f} min "
                      f"(target < {TARGET_MIN:g} min: {'met' if projected_min < TARGET_MIN else 'NOT met'})"
                      + "".join(f"\n    {n} healthy stream(s) failed: {e}" for e, n in sorted(result["errors"].items())),
                      flush=True)
        finally:
            silent.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
