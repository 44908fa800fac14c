"""`cctv-monitor demo` brings the dashboard up with scanned demo data and Ctrl-C stops everything."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from process_helpers import end, port_closed, session_members, start

pytestmark = pytest.mark.slow
EXE = Path(sys.executable).with_name("cctv-monitor")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, CCTV_INSTANCE_PATH=str(tmp_path / "instance"))
    env.pop("CCTV_DATABASE_URL", None)
    return env


def _start(tmp_path: Path, *args: str, ignore_sigint: bool = False) -> subprocess.Popen:
    return start([str(EXE), *args], _env(tmp_path), ignore_sigint=ignore_sigint)


def _wait_for_line(proc: subprocess.Popen, prefix: str, timeout_s: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(prefix):
            return lines
    pytest.fail(f"no line starting with {prefix!r}:\n" + "".join(lines))


def _wait_for_page(url: str) -> None:
    for _ in range(100):
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                assert reply.status == 200
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{url} did not answer")


_closed = port_closed


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (whichever of its threads started them)."""
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as fh:
            out.extend(int(x) for x in fh.read().split())
    return out


def test_demo_serves_scanned_data_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """The demo prints a log-in line, serves the log-in page, shows devices to the CLI, and exits on SIGINT."""
    port = _free_port()
    proc = _start(tmp_path, "demo", "--no-streams", "--port", str(port))
    try:
        lines = _wait_for_line(proc, "Dashboard:", 120)
        assert "user 'demo' with password" in lines[-1]
        _wait_for_page(f"http://127.0.0.1:{port}/login")
        listing = subprocess.run([str(EXE), "devices", "--json"], env=_env(tmp_path), capture_output=True,
                                 text=True, timeout=60)
        assert listing.returncode == 0, listing.stderr
        statuses = {d["address"].split(":")[0]: d["status"] for d in json.loads(listing.stdout)}
        assert statuses["127.0.1.11"] == "compliant"
        assert statuses["127.0.1.13"] == "non_compliant"
        assert statuses["127.0.1.30"] == "unregistered"
    finally:
        rest = end(proc, signal.SIGINT, ports=[("127.0.0.1", port)])
    assert proc.returncode == 0, rest
    assert "Demo stopped." in rest


def test_demo_with_streams_measures_them_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """The README's first command as it runs by default (with RTSP streams): the stream-only finding is
    there, and Ctrl-C ends the RTSP server process and frees the dashboard, ONVIF and RTSP ports."""
    from cctv_monitor.simulator.rtsp import rtsp_unavailable_reason

    reason = rtsp_unavailable_reason()
    if reason:
        pytest.skip(reason)
    busy = [f"127.0.1.17:{p}" for p in (8000, 8554) if not _closed("127.0.1.17", p)]
    assert not busy, f"{', '.join(busy)} already in use: another demo fleet runs on this machine; stop it first"
    port = _free_port()
    proc = _start(tmp_path, "demo", "--port", str(port))
    children: list[int] = []
    try:
        lines = _wait_for_line(proc, "Dashboard:", 240)
        assert not any("RTSP streams are off" in line for line in lines), "".join(lines)
        children = _children(proc.pid)
        assert children, "the RTSP server subprocess is missing"
        _wait_for_page(f"http://127.0.0.1:{port}/login")
        listing = subprocess.run([str(EXE), "devices", "--json"], env=_env(tmp_path), capture_output=True,
                                 text=True, timeout=60)
        assert listing.returncode == 0, listing.stderr
        statuses = {d["address"].split(":")[0]: d["status"] for d in json.loads(listing.stdout)}
        assert statuses["127.0.1.17"] == "non_compliant"  # claims 1080p, streams 720p: seen only in the stream
        assert not _closed("127.0.1.17", 8554)
    finally:
        rest = end(proc, signal.SIGINT, ports=[("127.0.0.1", port), ("127.0.1.17", 8000), ("127.0.1.17", 8554)])
    assert proc.returncode == 0, rest
    assert "Demo stopped." in rest
    assert all(not os.path.exists(f"/proc/{pid}") for pid in children), "a child process outlived the demo"


def test_demo_refuses_a_busy_port_before_starting_anything(tmp_path: Path) -> None:
    """A taken port is reported at once, before the fleet, the import and the scan (minutes on a big box)."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run([str(EXE), "demo", "--no-streams", "--port", str(port)], env=_env(tmp_path),
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr
    assert "Starting the simulated demo fleet" not in result.stdout
    assert time.monotonic() - started < 20


def test_serve_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    """`serve` runs the dashboard on waitress (no development-server warning) and SIGTERM ends it cleanly."""
    port = _free_port()
    proc = _start(tmp_path, "serve", "--no-scheduler", "--port", str(port))
    try:
        _wait_for_page(f"http://127.0.0.1:{port}/login")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as reply:
            assert reply.headers["Server"] == "cctv-monitor"
    finally:
        out = end(proc, signal.SIGTERM, timeout_s=30, ports=[("127.0.0.1", port)])
    assert proc.returncode == 0, out
    assert "development server" not in out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_and_worker_stop_on_both_signals_when_started_with_sigint_ignored(tmp_path: Path, sig: int) -> None:
    """Started as ``nohup``/``cmd &`` would (SIGINT inherited as ignored), Ctrl-C and SIGTERM still stop them."""
    port = _free_port()
    serve = _start(tmp_path, "serve", "--no-scheduler", "--port", str(port), ignore_sigint=True)
    try:
        _wait_for_page(f"http://127.0.0.1:{port}/login")
    finally:
        out = end(serve, sig, timeout_s=30, ports=[("127.0.0.1", port)])
    assert serve.returncode == 0, out
    worker = _start(tmp_path, "worker", ignore_sigint=True)
    try:
        _wait_for_line(worker, "Worker: scheduler on", 60)
    finally:
        out = end(worker, sig, timeout_s=30)
    assert worker.returncode == 0, out
    assert "Worker stopped." in out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_demo_stops_on_both_signals_when_started_with_sigint_ignored(tmp_path: Path, sig: int) -> None:
    """The demo started in the background of a script: both signals end it, ports free, no child left."""
    port = _free_port()
    proc = _start(tmp_path, "demo", "--no-streams", "--port", str(port), ignore_sigint=True)
    try:
        _wait_for_line(proc, "Dashboard:", 120)
        _wait_for_page(f"http://127.0.0.1:{port}/login")
    finally:
        rest = end(proc, sig, ports=[("127.0.0.1", port), ("127.0.1.11", 8000)])
    assert proc.returncode == 0, rest
    assert "Demo stopped." in rest


def test_demo_stopped_during_its_scan_cleans_up(tmp_path: Path) -> None:
    """SIGTERM while the demo still scans (before the dashboard): the fleet (and its RTSP child) go too."""
    port = _free_port()
    proc = _start(tmp_path, "demo", "--port", str(port), ignore_sigint=True)
    try:
        _wait_for_line(proc, "Scanning agency", 240)
        assert session_members(proc.pid)
    finally:
        rest = end(proc, signal.SIGTERM, ports=[("127.0.0.1", port), ("127.0.1.11", 8000), ("127.0.1.17", 8554)])
    assert proc.returncode == 0, rest
    assert "Demo stopped." in rest and "Dashboard:" not in rest
