"""``cctv-monitor simulate``: serve a simulated camera fleet until interrupted."""

from __future__ import annotations

import click
from flask.cli import AppGroup


def register(group: AppGroup) -> None:
    """Add ``simulate`` to ``group``."""

    @group.command("simulate", with_appcontext=False)
    @click.option("--fleet", "fleet_path", required=True, type=click.Path(dir_okay=False),
                  help="Fleet YAML file, e.g. config/fleets/demo.yaml (see config/fleets/FORMAT.md).")
    @click.option("--json", "as_json", is_flag=True,
                  help="One JSON object per camera (name, device_url, username, password, rtsp_urls).")
    @click.option("--netns", is_flag=True,
                  help="Root only: each camera in its own network namespace on a private bridge "
                       "(10.77.0.0/24, ports 80/554) with WS-Discovery; namespaces removed on exit.")
    @click.option("--streams/--no-streams", default=True, show_default=True,
                  help="Serve RTSP streams with GStreamer (off when it is not installed).")
    def simulate(fleet_path: str, as_json: bool, netns: bool, streams: bool) -> None:
        """Run the simulated fleet on loopback (or in namespaces) and print how to reach each camera."""
        from cctv_monitor.simulator.launcher import run_fleet_cli

        status = run_fleet_cli(fleet_path, as_json=as_json, netns=netns, streams=streams)
        if status:
            raise SystemExit(status)
