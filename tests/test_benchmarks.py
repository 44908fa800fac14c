"""The benchmark scripts run end to end on a small fleet (their figures are read by people, not asserted:
speed targets live in the scripts' output, never in timed tests)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from process_helpers import run

pytestmark = pytest.mark.slow
BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _run(*args: str) -> str:
    # its own session: a benchmark's fleet and server processes end with it, also on a timeout
    result = run([sys.executable, *args], timeout_s=600, cwd=str(BENCH.parent))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_scan_throughput_benchmark_runs_every_phase_and_the_baseline():
    """Every phase reads all 12 cameras; the onvif-zeep 0.2.12 baseline runs in its own venv (created on
    first use from the package registry) and the ratios are printed, also the scan's with and without the
    Hikvision/Dahua code path."""
    out = _run(str(BENCH / "scan_throughput.py"), "--cameras", "12", "--delay-ms", "5", "--baseline-cameras", "2",
               "--phases", "probe,record,scan-onvif,scan,library")
    for label in ("probe engine", "recording only", "full scan + sqlite", "full scan, no vendor path",
                  "onvif-zeep-async as documented"):
        line = next(li for li in out.splitlines() if label in li)
        assert re.search(r"\b12 cameras\s+12 ok\b", line), line
    assert "12 devices, 12 observations stored" in out
    assert re.search(r"onvif-zeep 0\.2\.12 \(seq\.\)\s+2 cameras\s+2 ok", out), out
    assert re.search(r"ratio scan / baseline: [\d.]+x cameras per second", out), out
    assert re.search(r"ratio scan / scan-onvif \(vendor path on / off\): [\d.]+x cameras per second, [\d.]+x CPU "
                     r"per camera: (within|NOT within) 10 %", out), out
    assert re.search(r"target >= 20x the baseline \(scan\): (met|NOT met)", out), out


@pytest.mark.rtsp
def test_stream_check_benchmark_measures_every_stream():
    from cctv_monitor.simulator.rtsp import rtsp_unavailable_reason

    reason = rtsp_unavailable_reason()
    if reason:
        pytest.skip(reason)
    out = _run(str(BENCH / "stream_checks.py"), "12", "--sample-s", "1", "--baseline-streams", "1",
               "--in-flight", "4,12", "--phases", "curve,scan,decoder,sequential")
    # 12 cameras: 10 H.264, one H.265 (camera 1), one MJPEG (camera 12); all measured as served.
    assert re.search(r"12 streams\s+12 ok \(12 as served, \d+ exact GOP\), ONVIF 12/12 ok", out), out
    assert re.search(r"stream checks, 12 in flight\s+12 streams\s+12 ok \(12 as served", out), out
    assert re.search(r"decoder path \(before\), 12 at once\s+12 streams\s+12 ok", out), out
    assert re.search(r"1 streams\s+1 ok", out), out
    assert re.search(r"curve: 4 in flight: [\d.]+ streams/s at \d+ MB; 12 in flight", out), out
    assert "ratio scan / sequential" in out and "ratio curve@12 / decoder" in out
    assert re.search(r"targets \(scan\): [\d.]+ streams/s >= 20 (met|NOT met); [\d.]+ CPU-s/stream < 0.03 "
                     r"(met|NOT met); peak \d+ MB < 600 (met|NOT met)", out), out


@pytest.mark.rtsp
def test_province_benchmark_finds_every_fault_in_both_databases():
    """A small province (3 sites of 4 cameras, one of each faulty) end to end into SQLite and
    PostgreSQL: every healthy stream measured, each fault reported as what it is, a projection printed."""
    import os

    from cctv_monitor.simulator.rtsp import rtsp_unavailable_reason

    reason = rtsp_unavailable_reason()
    if reason:
        pytest.skip(reason)
    if not os.environ.get("CCTV_TEST_PG_URL"):
        pytest.skip("CCTV_TEST_PG_URL is not set")
    out = _run(str(BENCH / "province.py"), "--sites", "3", "--per-site", "4")
    for label in ("sqlite", "postgresql"):
        line = next(li for li in out.splitlines() if li.startswith(label))
        found = re.search(r"12 cameras in [\d.]+ s = [\d.]+ cameras/s; (\d+) observations stored \(run completed\); "
                          r"streams measured (\d+)/9 healthy; faults found: offline 1/1, wrong_password 1/1, "
                          r"stream_never_starts 1/1", line)
        assert found, out
        # 11 answering cameras; on a heavily loaded machine the address sweep (1.5 s per address) has missed
        # a camera of the first scan: every camera that was found and is healthy had its stream measured.
        stored, measured = int(found.group(1)), int(found.group(2))
        assert stored >= 8 and measured == stored - 2, out
    assert len(re.findall(r"projected for 20,000 cameras: [\d.]+ min \(target < 20 min: (met|NOT met)\)", out)) == 2


@pytest.mark.postgres
def test_distributed_benchmark_counts_every_camera_once():
    """Three small zones through RabbitMQ: both worker layouts and ingest alone run; nothing lost or doubled."""
    import os

    from tests.zone_lab import rabbit_reachable

    bridge = os.environ.get("CCTV_TEST_AMQP_UNIX")
    if not (bridge or rabbit_reachable()):
        pytest.skip("RabbitMQ on 127.0.0.1:5672 is not reachable and CCTV_TEST_AMQP_UNIX names no bridge to it")
    out = _run(str(BENCH / "distributed.py"), "--cameras", "8", "--delay-ms", "20", "--concurrency", "8",
               *(["--amqp-unix", bridge] if bridge else []))
    assert re.search(r"one worker, 3 queues\s+24 cameras in\s+[\d.]+ s\s+[\d.]+ cameras/s", out), out
    assert re.search(r"three workers, one a zone\s+24 cameras in", out), out
    assert re.search(r"ratio three / one: [\d.]+x", out), out
    assert re.search(r"ingest alone: \d+ observations/s into PostgreSQL", out), out
    assert "lost: 0" in out.splitlines() and "duplicated: 0" in out.splitlines(), out
    assert re.search(r"targets: three workers >= 2.5x one: (met|NOT met); ingest >= 2000 observations/s: "
                     r"(met|NOT met); lost 0: met; duplicated 0: met", out), out


def test_dashboard_load_benchmark_runs_on_both_databases(db_url):
    """A short load (5 users, 8 s, 12-camera scans): every request kind measured, no error, targets printed."""
    out = _run(str(BENCH / "dashboard_load.py"), "--users", "5", "--duration", "8", "--think-s", "0.2",
               "--cameras", "12", "--delay-ms", "5", "--database", db_url)
    for kind in ("overview", "devices", "device", "export", "api"):
        line = next(li for li in out.splitlines() if li.startswith(kind + " "))
        requests, errors = int(line.split()[1]), int(line.split()[-1])
        assert requests >= 1 and errors == 0, line
    assert re.search(r"scans meanwhile: [1-9]\d* of 12 cameras", out), out
    assert "target 0 errors: met (0)" in out, out
    assert re.search(r"target p90 < 500 ms for every kind: (met|NOT met)", out), out
