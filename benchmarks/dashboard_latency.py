"""Dashboard latency at fleet scale: overview and device pages with 10,000 devices and a year of daily
observations (3.65 million observation rows) on SQLite.

Builds the data with bulk inserts (the demo agencies and projects from ``cctv_monitor.simulator.sampledata``, then
``--devices`` cameras, one observation per camera per day for ``--days`` days, a ``status_daily`` history),
then times real requests through the Flask app (routing, queries, templates, plotly JSON) as an admin, who
sees everything (the worst case). In the same run it times a naive baseline, the way an ORM-per-row view is
often written (load every Device, follow ``device.agency`` / ``device.project`` and fetch each current
observation one by one, filter, sort and count in Python), and prints the ratio.

    .venv/bin/python benchmarks/dashboard_latency.py                    # 10,000 devices, 365 days
    .venv/bin/python benchmarks/dashboard_latency.py --devices 2000 --days 30 --requests 10   # quick
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import select  # noqa: E402

from cctv_monitor import create_app  # noqa: E402
from cctv_monitor.db import get_db  # noqa: E402
from cctv_monitor.models import Device, Finding, Observation, Project  # noqa: E402
from cctv_monitor.simulator import sampledata  # noqa: E402


def build(app, devices: int, days: int) -> dict[str, float]:
    """Fill the database; returns seconds per step."""
    timings: dict[str, float] = {}
    now = datetime.now(timezone.utc).replace(microsecond=0)
    rng = random.Random(7)
    database = get_db(app)
    start = time.perf_counter()
    with database.session_scope() as session:
        data = sampledata.seed(session, days=0, now=now)
        agencies = list(session.scalars(select(sampledata.Agency)))
        projects = list(session.scalars(select(Project)))
        sampledata.add_many_devices(session, devices, agencies, projects, now, rng)
        del data
    timings["devices"] = time.perf_counter() - start

    start = time.perf_counter()
    table = Observation.__table__
    codecs = ["H264"] * 5 + ["H265", "H265", "JPEG"]
    chunk: list[dict] = []
    rows = 0
    with database.engine.begin() as conn:
        device_ids = [r[0] for r in conn.execute(select(Device.id, Device.address).where(Device.id >= 1_000_000))]
        for device_id in device_ids:
            encoding = codecs[device_id % len(codecs)]
            address = f"bulk-{device_id}:8000"
            for back in range(days, 0, -1):  # the current observation (day 0) exists already
                at = now - timedelta(days=back, minutes=device_id % 600)
                chunk.append({"device_id": device_id, "address": address, "observed_at": at, "probe_status": "ok",
                              "encoding": encoding, "width": 1920, "height": 1080, "fps": 25.0, "data": {},
                              "created": at, "updated": at})
                if len(chunk) >= 50_000:
                    conn.execute(table.insert(), chunk)
                    rows += len(chunk)
                    chunk.clear()
        if chunk:
            conn.execute(table.insert(), chunk)
            rows += len(chunk)
    timings["observations"] = time.perf_counter() - start
    timings["observation_rows"] = rows

    start = time.perf_counter()
    with database.session_scope() as session:
        sampledata.add_status_history(session, days=days, today=now.date(), rng=rng)
    with database.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    timings["history"] = time.perf_counter() - start
    return timings


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, int(round(pct / 100 * len(ordered) + 0.5)) - 1))
    return ordered[index]


def time_calls(label: str, calls: list[Callable[[], object]]) -> dict[str, float]:
    """Run each call once, timing it; print p50/p90/max in ms."""
    samples = []
    for call in calls:
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    out = {"n": len(samples), "p50": statistics.median(samples), "p90": percentile(samples, 90), "max": max(samples)}
    print(f"  {label:<44} n={out['n']:<4} p50={out['p50']:8.1f} ms  p90={out['p90']:8.1f} ms  max={out['max']:8.1f} ms")
    return out


def get(client, url: str) -> Callable[[], object]:
    """A call fetching ``url`` and checking it answered 200."""
    def call() -> object:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        return response.data
    return call


# ------------------------------------------------------------------------------------------ naive baseline


def naive_overview(app) -> Callable[[], object]:
    """Overview the ORM-per-row way: every device, its agency and its current observation one by one."""
    def call() -> object:
        with get_db(app).sessionmaker() as session:
            counts: Counter = Counter()
            per_agency: Counter = Counter()
            resolutions: Counter = Counter()
            for device in session.scalars(select(Device)):
                counts[device.status] += 1
                per_agency[(device.agency.name_th if device.agency else None, device.status)] += 1
                obs = session.get(Observation, device.last_observation_id) if device.last_observation_id else None
                if obs is not None:
                    resolutions[(obs.width, obs.height, obs.encoding)] += 1
            findings = Counter(f.rule_id for f in session.scalars(select(Finding).where(Finding.active.is_(True))))
            return counts, per_agency, resolutions, findings
    return call


def naive_devices(app, status: str | None, page: int) -> Callable[[], object]:
    """Device table the naive way: load all, filter and sort in Python, then follow relations per row."""
    def call() -> object:
        with get_db(app).sessionmaker() as session:
            rows = [d for d in session.scalars(select(Device)) if status is None or d.status == status]
            rows.sort(key=lambda d: d.address or "")
            out = []
            for d in rows[(page - 1) * 50: page * 50]:
                obs = session.get(Observation, d.last_observation_id) if d.last_observation_id else None
                out.append((d.name, d.agency.code if d.agency else None, d.project.code if d.project else None,
                            obs.encoding if obs else None))
            return len(rows), out
    return call


def main() -> None:
    """Build, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--requests", type=int, default=30, help="requests per page kind")
    parser.add_argument("--db", help="SQLite file to build into (default: a temporary folder)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="cctv-bench-"))
    db_path = Path(args.db) if args.db else folder / "bench.sqlite3"
    if db_path.exists():
        db_path.unlink()
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{db_path}", "SECRET_KEY": "bench",
                      "INSTANCE_PATH": str(folder / "instance"), "WTF_CSRF_ENABLED": False})
    print(f"Building {args.devices} devices x {args.days} days of observations in {db_path} ...", flush=True)
    built = build(app, args.devices, args.days)
    size_mb = db_path.stat().st_size / 1e6
    print(f"  devices {built['devices']:.1f} s, {int(built['observation_rows']):,} observation rows "
          f"{built['observations']:.1f} s, status history {built['history']:.1f} s, database {size_mb:.0f} MB")

    client = app.test_client()
    response = client.post("/login", data={"username": "admin", "password": sampledata.USERS["admin"][0]})
    assert response.status_code == 302, "log-in failed"
    with get_db(app).sessionmaker() as session:
        ids = list(session.scalars(select(Device.id)))
        agency_ids = [a for a in session.scalars(select(sampledata.Agency.id))]
    rng = random.Random(11)
    n = args.requests

    print("\nOptimised (HTTP through the app: queries + templates + figures), admin user:")
    get(client, "/")()  # first request: template compilation, plotly import
    results = {
        "overview": time_calls("GET / (overview)", [get(client, "/") for _ in range(n)]),
        "overview_filtered": time_calls("GET /?agency=... (overview, filtered)",
                                        [get(client, f"/?agency={rng.choice(agency_ids)}") for _ in range(n)]),
        "devices": time_calls("GET /devices (pages, sorts, filters)", [get(client, url) for url in (
            [f"/devices?page={rng.randint(1, 200)}" for _ in range(n // 3)]
            + [f"/devices?status=non_compliant&sort=last_seen&direction=desc&page={rng.randint(1, 5)}"
               for _ in range(n // 3)]
            + [f"/devices?q=cam-0{rng.randint(100, 999)}&sort=name" for _ in range(n - 2 * (n // 3))])]),
        "device": time_calls("GET /devices/<id> (device detail)",
                             [get(client, f"/devices/{rng.choice(ids)}") for _ in range(n)]),
    }

    print("\nNaive baseline (ORM object per row, lazy relations, Python filtering; no HTTP, no templates):")
    naive_n = max(3, n // 6)
    base = {
        "overview": time_calls("overview, naive", [naive_overview(app) for _ in range(naive_n)]),
        "devices": time_calls("device table page, naive",
                              [naive_devices(app, rng.choice([None, "non_compliant"]), rng.randint(1, 5))
                               for _ in range(naive_n)]),
    }

    print("\nSummary (p90, target < 300 ms):")
    for key in ("overview", "overview_filtered", "devices", "device"):
        p90 = results[key]["p90"]
        print(f"  {key:<18} p90 {p90:7.1f} ms  {'OK' if p90 < 300 else 'OVER 300 ms'}")
    for key in ("overview", "devices"):
        ratio = base[key]["p90"] / results[key]["p90"]
        print(f"  {key:<18} naive p90 {base[key]['p90']:7.1f} ms / optimised p90 {results[key]['p90']:7.1f} ms "
              f"= {ratio:.1f}x faster")


if __name__ == "__main__":
    main()
