"""Start a simulated fleet for tests: ``with running_fleet("config/fleets/demo.yaml") as fleet: ...``.

Loopback fleets run in this process, on a background thread with its own asyncio loop (start-up is a
few tens of milliseconds plus RTSP when asked). Netns fleets run ``cctv-monitor simulate --netns --json``
as a subprocess, because that process owns the namespaces and removes them even when it crashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from cctv_monitor.simulator.endpoints import SimCamera
from cctv_monitor.simulator.fleet import Fleet, load_fleet

LOGGER = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
FLEETS_DIR = REPO_ROOT / "config" / "fleets"


@dataclass
class RunningFleet:
    """What :func:`running_fleet` yields."""

    fleet: Fleet
    cameras: list[SimCamera]
    streams: bool = False
    streams_reason: str = ""  # why streams are off, when they are
    client_netns: str | None = None  # netns mode: namespace on the fleet's bridge to run clients in
    bindings: list[Any] = field(default_factory=list, repr=False)  # loopback mode: the server's bindings

    def guard(self, name: str) -> Any:
        """Server-side credential counters of camera ``name`` (loopback mode): ``credentialed``, ``failures``."""
        for b in self.bindings:
            if b.spec.name == name:
                return b.guard
        raise KeyError(name)
    runtime: Any = field(default=None, repr=False)  # loopback mode: the FleetRuntime (bindings, counters)

    def __getitem__(self, name: str) -> SimCamera:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(name)

    def __iter__(self) -> Iterator[SimCamera]:
        return iter(self.cameras)

    def __len__(self) -> int:
        return len(self.cameras)


def resolve_fleet_path(path_or_dict: str | Path | Mapping[str, Any]) -> str | Path | Mapping[str, Any]:
    """Accept a bare fleet name (``demo``) as ``config/fleets/demo.yaml``."""
    if isinstance(path_or_dict, (str, Path)):
        p = Path(path_or_dict)
        if not p.exists() and (FLEETS_DIR / f"{p.name}.yaml").exists() and len(p.parts) == 1:
            return FLEETS_DIR / f"{p.name}.yaml"
    return path_or_dict


@contextlib.contextmanager
def running_fleet(path_or_dict: str | Path | Mapping[str, Any], *, streams: bool = False,
                  netns: bool = False, port_fallback: bool = True,
                  start_timeout: float = 120.0) -> Iterator[RunningFleet]:
    """Run a fleet for the duration of the block and stop it reliably afterwards.

    ``port_fallback`` (loopback only): when a planned port is busy (another fleet on this machine),
    that camera gets a free port instead; always read ``camera.port`` / ``device_url`` from the result.
    """
    source = resolve_fleet_path(path_or_dict)
    if netns:
        with _netns_fleet(source, streams=streams, start_timeout=start_timeout) as running:
            yield running
        return
    from cctv_monitor.simulator.launcher import FleetRuntime

    runtime = FleetRuntime(load_fleet(source), streams=streams, port_fallback=port_fallback)
    thread_loop: dict[str, Any] = {}
    ready = threading.Event()
    stopped = threading.Event()
    error: list[BaseException] = []

    def run() -> None:
        loop = asyncio.new_event_loop()
        thread_loop["loop"] = loop
        stop = asyncio.Event()
        thread_loop["stop"] = stop

        async def main() -> None:
            async def on_ready() -> None:
                ready.set()

            await runtime.run(stop, on_ready=on_ready)

        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            error.append(exc)
        finally:
            ready.set()
            loop.close()
            stopped.set()

    thread = threading.Thread(target=run, name="sim-fleet", daemon=True)
    thread.start()
    ready.wait(start_timeout)
    if error:
        thread.join(5)
        raise error[0]
    if not ready.is_set():
        raise TimeoutError(f"fleet did not start within {start_timeout} s")
    try:
        yield RunningFleet(fleet=runtime.fleet, cameras=runtime.sim_cameras(), streams=runtime.streams_on,
                           streams_reason=runtime.streams_reason, bindings=runtime.bindings,
                           runtime=runtime)
    finally:
        loop = thread_loop.get("loop")
        if loop is not None and not stopped.is_set():
            loop.call_soon_threadsafe(thread_loop["stop"].set)
        thread.join(30)
        if error:
            LOGGER.warning("simulated fleet stopped with an error: %s", error[0])


@contextlib.contextmanager
def _netns_fleet(source: str | Path | Mapping[str, Any], *, streams: bool,
                 start_timeout: float) -> Iterator[RunningFleet]:
    """Run ``cctv-monitor simulate --netns --json`` and read its camera lines."""
    fleet = load_fleet(source)
    tmp_file = None
    if isinstance(source, Mapping):
        import tempfile

        import yaml

        fd, tmp_file = tempfile.mkstemp(suffix=".yaml", prefix="cctvsim-")
        with os.fdopen(fd, "w") as fh:
            yaml.safe_dump(dict(source), fh, allow_unicode=True)
        source = tmp_file
    cmd = [sys.executable, "-m", "cctv_monitor.simulator.launcher", "--fleet", str(source), "--json", "--netns"]
    if not streams:
        cmd.append("--no-streams")
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cameras: list[SimCamera] = []
    client_ns = None
    streams_on, streams_reason = False, ""
    try:
        deadline = time.monotonic() + start_timeout
        assert proc.stdout is not None
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"netns fleet did not start within {start_timeout} s")
            line = proc.stdout.readline()
            if not line:
                err = proc.stderr.read() if proc.stderr else ""
                raise RuntimeError(f"netns fleet exited ({proc.wait()}): {err[-2000:]}")
            data = json.loads(line)
            if data.get("ready"):
                client_ns = data.get("client_netns")
                streams_on, streams_reason = bool(data.get("streams")), data.get("streams_reason", "")
                break
            if "name" in data:
                cameras.append(SimCamera(name=data["name"], host=data["host"], port=data["port"],
                                         device_url=data["device_url"], username=data["username"],
                                         password=data["password"], rtsp_urls=data.get("rtsp_urls", {}),
                                         spec=fleet.camera(data["name"]), netns=data.get("netns")))
        yield RunningFleet(fleet=fleet, cameras=cameras, streams=streams_on, streams_reason=streams_reason,
                           client_netns=client_ns)
    finally:
        if proc.poll() is None:
            proc.terminate()  # SIGTERM: the launcher removes its namespaces before exiting
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for stream in (proc.stdout, proc.stderr, proc.stdin):
            if stream:
                stream.close()
        if tmp_file:
            os.unlink(tmp_file)
