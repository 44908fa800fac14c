"""`cctv-monitor demo` brings the dashboard up with scanned demo data and Ctrl-C stops everything."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_demo_serves_scanned_data_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """The demo prints a log-in line, serves the log-in page, shows devices to the CLI, and exits on SIGINT."""
    port = _free_port()
    env = dict(os.environ, CCTV_INSTANCE_PATH=str(tmp_path / "instance"))
    env.pop("CCTV_DATABASE_URL", None)
    exe = Path(sys.executable).with_name("cctv-monitor")
    proc = subprocess.Popen([str(exe), "demo", "--no-streams", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Dashboard:"):
                break
        assert any(line.startswith("Dashboard:") for line in lines), "".join(lines)
        assert "user 'demo' with password" in lines[-1]
        for _ in range(50):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as reply:
                    assert reply.status == 200
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("dashboard did not answer")
        listing = subprocess.run([str(exe), "devices", "--json"], env=env, capture_output=True, text=True,
                                 timeout=60)
        assert listing.returncode == 0, listing.stderr
        import json

        devices = json.loads(listing.stdout)
        statuses = {d["address"].split(":")[0]: d["status"] for d in devices}
        assert statuses["127.0.1.11"] == "compliant"
        assert statuses["127.0.1.13"] == "non_compliant"
        assert statuses["127.0.1.30"] == "unregistered"
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "Demo stopped." in rest
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_demo_refuses_a_busy_port_before_starting_anything(tmp_path: Path) -> None:
    """A taken port is reported at once, before the fleet, the import and the scan (minutes on a big box)."""
    env = dict(os.environ, CCTV_INSTANCE_PATH=str(tmp_path / "instance"))
    env.pop("CCTV_DATABASE_URL", None)
    exe = Path(sys.executable).with_name("cctv-monitor")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run([str(exe), "demo", "--no-streams", "--port", str(port)], env=env,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr
    assert "Starting the simulated demo fleet" not in result.stdout
    assert time.monotonic() - started < 20


def test_serve_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    """`serve` runs the dashboard on waitress (no development-server warning) and SIGTERM ends it cleanly."""
    port = _free_port()
    env = dict(os.environ, CCTV_INSTANCE_PATH=str(tmp_path / "instance"))
    env.pop("CCTV_DATABASE_URL", None)
    exe = Path(sys.executable).with_name("cctv-monitor")
    proc = subprocess.Popen([str(exe), "serve", "--no-scheduler", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as reply:
                    assert reply.status == 200
                    assert reply.headers["Server"] == "cctv-monitor"
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("serve did not answer")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "development server" not in out
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
