"""Run a fleet: ONVIF for every online camera, RTSP streams when available, netns + WS-Discovery as root.

``python -m cctv_monitor.simulator.launcher --fleet FILE [--json] [--netns] [--no-streams]`` is what
``cctv-monitor simulate`` runs; the test helper uses it for netns fleets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import resource
import signal
import sys
import time
from typing import Awaitable, Callable

from cctv_monitor.simulator.endpoints import SimCamera
from cctv_monitor.simulator.fleet import Fleet, FleetError, load_fleet
from cctv_monitor.simulator.onvif_server import CameraBinding, OnvifFleetServer

LOGGER = logging.getLogger(__name__)


def raise_fd_limit(needed: int) -> None:
    """Lift the soft open-files limit towards the hard one: each camera costs at least one socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, needed))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class FleetRuntime:
    """All servers of one fleet; :meth:`run` serves until its stop event is set."""

    def __init__(self, fleet: Fleet, *, streams: bool = False, netns: bool = False,
                 port_fallback: bool = False) -> None:
        self.fleet = fleet
        self.port_fallback = port_fallback
        self.want_streams = streams
        self.netns = netns
        self.streams_on = False
        self.streams_reason = "streams not requested" if not streams else ""
        self.bindings: list[CameraBinding] = []
        self.client_netns: str | None = None
        self._rtsp = None
        self._netns = None
        self._discovery: list = []
        self.startup_s = 0.0

    def sim_cameras(self) -> list:
        """Per-camera connection details (see :class:`cctv_monitor.simulator.endpoints.SimCamera`)."""

        out = []
        for b in self.bindings:
            urls = {p.token: b.rtsp_url(p) for p in b.spec.profiles if p.stream is not None}
            out.append(SimCamera(name=b.spec.name, host=b.host, port=b.onvif_port, device_url=b.device_url,
                                 username=b.spec.username, password=b.spec.password, rtsp_urls=urls,
                                 spec=b.spec, netns=getattr(b, "netns_name", None)))
        return out

    async def run(self, stop: asyncio.Event, on_ready: Callable[[], Awaitable[None]] | None = None) -> None:
        """Start everything, call ``on_ready``, wait for ``stop``, stop everything (also on errors)."""
        started = time.monotonic()
        cams = self.fleet.online
        raise_fd_limit(len(cams) * 4 + 256)
        try:
            if self.netns:
                from cctv_monitor.simulator.netns import NetnsFleet

                self._netns = NetnsFleet(cams)
                self.bindings = await asyncio.get_running_loop().run_in_executor(None, self._netns.setup)
                self.client_netns = self._netns.client_ns
            else:
                self.bindings = [CameraBinding(spec=c, host=c.host, onvif_port=c.onvif_port, rtsp_port=c.rtsp_port)
                                 for c in cams]
            server = OnvifFleetServer(self.bindings)
            await server.start(port_fallback=self.port_fallback)
            try:
                if self.want_streams:
                    await self._start_streams()
                if self._netns is not None:
                    from cctv_monitor.simulator.wsdiscovery_responder import start_responders

                    from cctv_monitor.simulator.vendor_discovery_responder import start_vendor_responders

                    self._discovery = await start_responders(self._netns, self.bindings)
                    self._discovery += await start_vendor_responders(self.bindings)
                self.startup_s = time.monotonic() - started
                if on_ready is not None:
                    await on_ready()
                await stop.wait()
            finally:
                for responder in self._discovery:
                    await responder.close()
                await server.stop()
                if self._rtsp is not None:
                    await asyncio.get_running_loop().run_in_executor(None, self._rtsp.stop)
        finally:
            if self._netns is not None:
                await asyncio.get_running_loop().run_in_executor(None, self._netns.teardown)

    async def _start_streams(self) -> None:
        from cctv_monitor.simulator.rtsp import RtspFleet, rtsp_unavailable_reason

        reason = rtsp_unavailable_reason()
        if reason:
            self.streams_reason = reason
            LOGGER.warning("RTSP streams are OFF: %s", reason)
            return
        self._rtsp = RtspFleet(self.bindings, netns=self._netns, port_fallback=self.port_fallback)
        await asyncio.get_running_loop().run_in_executor(None, self._rtsp.start)
        self.streams_on = True


def _print_cameras(runtime: FleetRuntime, as_json: bool) -> None:
    for cam in runtime.sim_cameras():
        if as_json:
            print(json.dumps(cam.to_dict(), ensure_ascii=False), flush=True)
        else:
            ns = f"  netns {cam.netns}" if cam.netns else ""
            print(f"{cam.name:<24} {cam.device_url:<48} user {cam.username} password {cam.password}{ns}", flush=True)
    offline = [c.name for c in runtime.fleet.cameras if not c.online]
    summary = {"ready": True, "cameras": len(runtime.bindings), "offline": offline, "streams": runtime.streams_on,
               "streams_reason": runtime.streams_reason, "client_netns": runtime.client_netns,
               "startup_s": round(runtime.startup_s, 3)}
    if as_json:
        print(json.dumps(summary, ensure_ascii=False), flush=True)
    else:
        streams = "RTSP streams ON" if runtime.streams_on else f"RTSP streams OFF ({runtime.streams_reason})"
        extra = f"; offline (not served): {', '.join(offline)}" if offline else ""
        client = f"; run clients with: ip netns exec {runtime.client_netns} ..." if runtime.client_netns else ""
        print(f"# {len(runtime.bindings)} cameras ready in {runtime.startup_s:.2f} s; {streams}{extra}{client}. "
              "Ctrl-C stops.", flush=True)


def run_fleet_cli(fleet_path: str, *, as_json: bool, netns: bool, streams: bool) -> int:
    """Serve a fleet until SIGINT/SIGTERM; returns the exit status."""
    try:
        fleet = load_fleet(fleet_path)
    except FleetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if netns:
        import os

        if os.geteuid() != 0:
            print("error: --netns needs root (it creates network namespaces)", file=sys.stderr)
            return 2
    runtime = FleetRuntime(fleet, streams=streams, netns=netns)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)

        async def on_ready() -> None:
            _print_cameras(runtime, as_json)

        await runtime.run(stop, on_ready=on_ready)

    try:
        asyncio.run(main())
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m cctv_monitor.simulator.launcher``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fleet", required=True)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--netns", action="store_true")
    parser.add_argument("--no-streams", action="store_true")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_fleet_cli(args.fleet, as_json=args.json, netns=args.netns, streams=not args.no_streams)


if __name__ == "__main__":
    sys.exit(main())
