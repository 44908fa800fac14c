"""Benchmark: the dashboard under load from signed-in users while 1,000-camera scans run back to back.

    .venv/bin/python benchmarks/dashboard_load.py [--users 50] [--duration 60] [--think-s 1] [--cameras 1000]
                                                  [--database URL] [--delay-ms 20]

1. Fills a database (SQLite in a temporary folder unless --database, which must be empty) with the demo
   data of ``cctv_monitor.simulator.sampledata`` and ``--users`` admin users (admins see everything: the worst case).
2. Starts ``cctv-monitor serve --no-scheduler`` on a free 127.0.0.1 port (waitress, as in production), a
   simulated fleet of ``--cameras`` cameras (ONVIF only) in a process of its own, and a scanner process that
   runs ``run_scan`` over the fleet's range back to back into the same database until the load ends.
3. Each user signs in through the log-in form, then for ``--duration`` seconds issues one request, waits
   ``--think-s``, and so on, cycling through the kinds: overview, device table with filters, device detail,
   a CSV export, an API call (``/api/v1/devices`` with the session). Traffic goes only to 127.0.0.1, at most
   one request in flight per user, each with a 30 s limit.
4. Prints requests/s and p50/p90/p99 per kind, errors, the scans completed meanwhile, and whether the
   targets are met: 0 errors, p90 of every kind under 500 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness import FleetProcess, child_main, log  # benchmarks/ is on sys.path when a script here runs

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CLI = Path(sys.executable).with_name("cctv-monitor")
KINDS = ("overview", "devices", "device", "export", "api")
P90_TARGET_MS = 500.0
# away from the demo (127.0.x), the tests and the other benchmarks; third octets 16+ so that the generated
# MACs (OUI + 3rd and 4th octet) never equal those of the sample data's register (127.0.1-4.x)
FLEET_BASE = "127.66.16.0"


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, int(round(pct / 100 * len(ordered) + 0.5)) - 1))
    return ordered[index]


def seed(url: str, instance: Path, users: int) -> tuple[list[int], str]:
    """Demo data and ``users`` admin users; (device ids, the users' password)."""
    from sqlalchemy import select

    from cctv_monitor import create_app
    from cctv_monitor.db import get_db
    from cctv_monitor.models import Device
    from cctv_monitor.simulator import sampledata
    from dashboards.security import save_user

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "benchmark", "INSTANCE_PATH": str(instance),
                      "SCHEDULER_ENABLED": False})
    password = "load-pass-2567"
    with get_db(app).session_scope() as session:
        sampledata.seed(session)
        for i in range(users + 1):  # the last one warms the server up
            save_user(session, f"load-{i:03d}", password=password, role="admin", language="en")
    with get_db(app).session_scope() as session:
        ids = list(session.scalars(select(Device.id)))
    get_db(app).dispose()
    return ids, password


def child_scans(spec: dict) -> dict:
    """``run_scan`` over the fleet's range, back to back, until the file ``spec["stop_file"]`` exists."""
    from cctv_monitor import create_app
    from cctv_monitor.db import get_db
    from cctv_monitor.scanning import run_scan
    from probes.targets import Credential

    app = create_app({"DATABASE_URL": spec["database"], "SECRET_KEY": "benchmark",
                      "INSTANCE_PATH": spec["instance"], "ONVIF_PORTS": spec["ports"], "SCHEDULER_ENABLED": False})
    walls = []
    while not Path(spec["stop_file"]).exists():
        started = time.monotonic()
        run_scan(app, "range", spec["ranges"], credentials=[Credential(*spec["credential"])],
                 deliver_alerts=False, trigger="benchmark")
        walls.append(time.monotonic() - started)
    get_db(app).dispose()
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"scans": len(walls), "walls": walls, "cpu_s": usage.ru_utime + usage.ru_stime}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _url_for(kind: str, rng: random.Random, device_ids: list[int]) -> str:
    """One request of ``kind`` with varied filters."""
    if kind == "overview":
        return "/"
    if kind == "devices":
        status = rng.choice(["", "compliant", "non_compliant", "unregistered", "offline"])
        sort = rng.choice(["address", "name", "last_seen", "status"])
        return f"/devices?status={status}&sort={sort}&direction={rng.choice(['asc', 'desc'])}&page={rng.randint(1, 3)}"
    if kind == "device":
        return f"/devices/{rng.choice(device_ids)}"
    if kind == "export":
        return f"/exports/devices.csv?status={rng.choice(['', 'non_compliant', 'compliant'])}"
    return f"/api/v1/devices?per_page=50&page={rng.randint(1, 3)}"


async def sign_in(http: Any, index: int, password: str) -> str | None:
    """Log user ``index`` in through the form (CSRF token included); None, or what went wrong."""
    import aiohttp

    try:
        async with http.get("/login") as resp:
            page = await resp.text()
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        form = {"username": f"load-{index:03d}", "password": password, "csrf_token": token.group(1) if token else ""}
        async with http.post("/login", data=form, allow_redirects=False) as resp:
            return None if resp.status == 302 else f"user {index}: log-in answered {resp.status}"
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        return f"user {index}: log-in failed: {type(exc).__name__} {exc}"


async def user(index: int, http: Any, until: float, think_s: float, device_ids: list[int],
               samples: dict[str, list[float]], errors: dict[str, list[str]]) -> None:
    """Request / think until ``until`` (monotonic), cycling through the kinds."""
    import aiohttp

    rng = random.Random(index)
    await asyncio.sleep(rng.uniform(0, think_s))  # users do not all start in the same instant
    turn = index
    while time.monotonic() < until:
        kind = KINDS[turn % len(KINDS)]
        turn += 1
        url = _url_for(kind, rng, device_ids)
        started = time.perf_counter()
        try:
            async with http.get(url, allow_redirects=False) as resp:
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            errors[kind].append(f"{url}: {type(exc).__name__} {exc}")
            continue
        samples[kind].append((time.perf_counter() - started) * 1000)
        if status != 200:
            errors[kind].append(f"{url}: HTTP {status}")
        await asyncio.sleep(think_s)


async def load(base: str, users: int, password: str, duration: float, think_s: float,
               device_ids: list[int]) -> tuple[dict[str, list[float]], dict[str, list[str]], float]:
    """Sign everyone in (a few at a time: password hashing is meant to be slow), warm the server up, then
    all users at once; (latencies per kind in ms, errors per kind, seconds of load)."""
    import aiohttp

    samples: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, list[str]] = defaultdict(list)
    limit = aiohttp.ClientTimeout(total=30)
    # unsafe: the server is an IP address, whose cookies aiohttp would otherwise drop
    sessions = [aiohttp.ClientSession(base, cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=limit)
                for _ in range(users + 1)]
    try:
        gate = asyncio.Semaphore(4)

        async def signed(i: int) -> None:
            async with gate:
                problem = await sign_in(sessions[i], i, password)
            if problem:
                errors["login"].append(problem)

        await asyncio.gather(*(signed(i) for i in range(users + 1)))
        warm = sessions[users]  # the extra user: each kind once, unmeasured (templates compiled, caches filled)
        rng = random.Random(users)
        for kind in KINDS:
            async with warm.get(_url_for(kind, rng, device_ids), allow_redirects=False) as resp:
                await resp.read()
        started = time.monotonic()
        until = started + duration
        await asyncio.gather(*(user(i, sessions[i], until, think_s, device_ids, samples, errors)
                               for i in range(users)))
        return samples, errors, time.monotonic() - started
    finally:
        for http in sessions:
            await http.close()


def _wait_listening(port: int, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"cctv-monitor serve exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("cctv-monitor serve did not listen in time")


def _cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by process ``pid`` (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> int:
    """Parse arguments, set up, load, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50, help="signed-in users (default 50)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--think-s", type=float, default=1.0, help="wait after each request (default 1)")
    parser.add_argument("--cameras", type=int, default=1000, help="cameras scanned back to back (default 1000)")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="simulated delay per camera request (default 20)")
    parser.add_argument("--database", default=None, help="SQLAlchemy URL of an EMPTY database (default: temp SQLite)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(args.child, {"scans": child_scans})
    for name in ("users", "duration", "cameras"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive")
    import ipaddress
    import platform

    from cctv_monitor.simulator.fleet import generate_fleet

    with tempfile.TemporaryDirectory(prefix="cctv-load-") as tmp:
        work = Path(tmp)
        url = args.database or f"sqlite:///{work / 'load.sqlite'}"
        instance = work / "instance"
        engine = url.split(":", 1)[0].split("+")[0]
        print(f"dashboard load: {args.users} users, {args.duration:g} s, think {args.think_s:g} s, "
              f"{args.cameras}-camera scans back to back, {engine}, {os.cpu_count()} CPUs, Python "
              f"{platform.python_version()}, fleet, scanner, server and users on the same machine")
        print("scans run in a process of their own beside `cctv-monitor serve --no-scheduler` (waitress, one "
              "process), as `cctv-monitor worker` runs them in production (README: serve + worker)")
        device_ids, password = seed(url, instance, args.users)
        fleet_map = generate_fleet(args.cameras, base=FLEET_BASE, delay_ms=args.delay_ms, name="load")
        ranges = sorted({str(ipaddress.ip_network(f"{c['host']}/24", strict=False)) for c in fleet_map["cameras"]})
        port = _free_port()
        env = dict(os.environ, CCTV_DATABASE_URL=url, CCTV_INSTANCE_PATH=str(instance))
        server = scanner = None
        server_cpu0 = server_cpu1 = None
        with FleetProcess(fleet_map, work) as fleet:
            try:
                server = subprocess.Popen([str(CLI), "serve", "--no-scheduler", "--port", str(port)], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True)
                _wait_listening(port, server)
                spec = work / "scans.json"
                spec.write_text(json.dumps({
                    "database": url, "instance": str(instance), "ports": [int(fleet.cameras[0]["port"])],
                    "ranges": ",".join(ranges), "stop_file": str(work / "stop"),
                    "credential": [fleet.cameras[0]["username"], fleet.cameras[0]["password"]]}))
                scanner = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", "scans",
                                            str(spec)], cwd=REPO, stdout=subprocess.PIPE, text=True,
                                           start_new_session=True)
                log(f"load: {args.users} users for {args.duration:g} s against http://127.0.0.1:{port}/ ...")
                server_cpu0 = _cpu_s(server.pid)
                samples, errors, wall = asyncio.run(load(f"http://127.0.0.1:{port}", args.users, password,
                                                         args.duration, args.think_s, device_ids))
                server_cpu1 = _cpu_s(server.pid)
                (work / "stop").touch()
                log("waiting for the scan in progress to finish ...")
                out, _ = scanner.communicate(timeout=1800)
                scans = json.loads(out.strip().splitlines()[-1]) if scanner.returncode == 0 else None
            finally:
                _stop(scanner)
                _stop(server)
    total = sum(len(v) for v in samples.values())
    print(f"{'kind':<10} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'errors':>7}")
    met = True
    for kind in KINDS:
        values = samples.get(kind) or []
        errs = len(errors.get(kind, []))
        if values:
            p50, p90, p99 = (percentile(values, p) for p in (50, 90, 99))
            print(f"{kind:<10} {len(values):>8} {len(values) / wall:>7.1f} {p50:>8.0f} {p90:>8.0f} {p99:>8.0f} {errs:>7}")
        else:
            p90 = float("inf")
            print(f"{kind:<10} {0:>8} {0:>7.1f} {'-':>8} {'-':>8} {'-':>8} {errs:>7}")
        met = met and p90 < P90_TARGET_MS
    all_errors = [e for v in errors.values() for e in v]
    print(f"all       {total:>8} {total / wall:>7.1f} requests/s over {wall:.1f} s; errors {len(all_errors)}")
    for line in all_errors[:10]:
        print(f"    error: {line}")
    if scans:
        walls = ", ".join(f"{w:.1f}" for w in scans["walls"])
        print(f"scans meanwhile: {scans['scans']} of {args.cameras} cameras (seconds each: {walls}); scanner CPU "
              f"{scans['cpu_s']:.0f} s over {sum(scans['walls']):.0f} s ({scans['cpu_s'] / sum(scans['walls']):.2f} cores)")
    else:
        print("scans meanwhile: the scanner failed (see its output above)")
    if server_cpu0 is not None and server_cpu1 is not None:
        used = server_cpu1 - server_cpu0
        print(f"server CPU during the load: {used:.0f} s over {wall:.0f} s ({used / wall:.2f} cores), "
              f"{1000 * used / max(total, 1):.0f} ms per request (log-ins excluded)")
    print("load average at the end (1, 5, 15 min): " + ", ".join(f"{v:.1f}" for v in os.getloadavg()))
    print(f"target 0 errors: {'met' if not all_errors and scans else 'NOT met'} ({len(all_errors)})")
    print(f"target p90 < {P90_TARGET_MS:.0f} ms for every kind: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
