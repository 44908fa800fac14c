"""Benchmark: serve N simulated cameras (ONVIF only) from one process; print start-up time, RSS and CPU
while an onvif-zeep-async client reads every camera once.

    .venv/bin/python benchmarks/simulator_fleet.py [N=500] [CONCURRENCY=50]
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time

from cctv_monitor.simulator.fleet import generate_fleet
from cctv_monitor.simulator.testing import running_fleet


def rss_mb() -> float:
    """Current resident set size of this process in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def read_all(cameras, concurrency: int) -> tuple[int, int]:
    """GetDeviceInformation + GetProfiles from every camera with onvif-zeep-async; (ok, failed)."""
    from onvif import ONVIFCamera

    sem = asyncio.Semaphore(concurrency)
    ok = failed = 0

    async def one(sim):
        nonlocal ok, failed
        async with sem:
            cam = ONVIFCamera(sim.host, sim.port, sim.username, sim.password, adjust_time=True)
            try:
                await cam.update_xaddrs()
                await (await cam.create_devicemgmt_service()).GetDeviceInformation()
                await (await cam.create_media_service()).GetProfiles()
                ok += 1
            except Exception as exc:  # noqa: BLE001 - counted and shown
                failed += 1
                print("failed:", sim.name, type(exc).__name__, exc, file=sys.stderr)
            finally:
                await cam.close()

    await asyncio.gather(*(one(c) for c in cameras))
    return ok, failed


def main() -> None:
    """Run the benchmark and print its figures."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    rss0 = rss_mb()
    cpu0 = time.process_time()
    started = time.monotonic()
    with running_fleet(generate_fleet(n, base="127.1.0.0")) as fleet:
        startup = time.monotonic() - started
        rss_fleet = rss_mb() - rss0
        print(f"{n} cameras listening after {startup:.2f} s; fleet RSS +{rss_fleet:.1f} MB "
              f"(process {rss_mb():.0f} MB); start-up CPU {time.process_time() - cpu0:.2f} s")
        t0, c0 = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
        ok, failed = asyncio.run(read_all(list(fleet), concurrency))
        t1, c1 = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
        cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
        print(f"read {ok} cameras ({failed} failed) in {t1 - t0:.1f} s, concurrency {concurrency}; "
              f"CPU {cpu:.1f} s for client + server together (one process); RSS now {rss_mb():.0f} MB")
        idle0 = resource.getrusage(resource.RUSAGE_SELF)
        time.sleep(5)
        idle1 = resource.getrusage(resource.RUSAGE_SELF)
        idle = (idle1.ru_utime - idle0.ru_utime) + (idle1.ru_stime - idle0.ru_stime)
        print(f"idle CPU while serving: {idle / 5 * 100:.1f} % of a core")
    print(f"stopped after {time.monotonic() - started:.1f} s total")


if __name__ == "__main__":
    main()
