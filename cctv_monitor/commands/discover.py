"""``cctv-monitor discover``: find devices by WS-Discovery, SADP and Dahua discovery on one interface, or by
sweeping ranges."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup


def register(group: AppGroup) -> None:
    """Add ``discover`` to ``group``."""

    @group.command("discover", with_appcontext=False)
    @click.option("--interface", "-i", "interface",
                  help="Send WS-Discovery, Hikvision SADP and Dahua discovery multicasts on this network "
                       "interface (e.g. eth0).")
    @click.option("--range", "-r", "ranges", multiple=True, metavar="RANGE",
                  help="Sweep this address range (repeatable): 192.168.1.0/24, 192.168.1.11-192.168.1.18 or "
                  "an address.")
    @click.option("--ports", default="80,8000,8080,8899,443", show_default=True,
                  help="Comma-separated ports tried on every address of a sweep.")
    @click.option("--timeout", "timeout_s", type=click.FloatRange(0.1, 60), default=None,
                  help="Seconds to wait for WS-Discovery replies (default 3) or per address in a sweep "
                       "(default 1.5).")
    @click.option("--concurrency", type=click.IntRange(1, 4096), default=256, show_default=True,
                  help="Addresses probed at once in a sweep.")
    @click.option("--json", "as_json", is_flag=True, help="Print the devices as a JSON list.")
    @click.option("--save", "save_path", type=click.Path(dir_okay=False),
                  help="Also append what was found to FILE as observations (JSON lines, one per host, status "
                       "discovered or not_activated) for `cctv-monitor ingest FILE`.")
    def discover(interface: str | None, ranges: tuple[str, ...], ports: str, timeout_s: float | None,
                 concurrency: int, as_json: bool, save_path: str | None) -> None:
        """Find cameras and recorders. Needs --interface or --range: nothing is scanned that was not named.

        --interface: WS-Discovery (ONVIF), Hikvision SADP (UDP 37020) and Dahua discovery (UDP 37810), which
        also find devices with ONVIF off and say whether a Hikvision device was ever activated. --range:
        addresses answering ONVIF, or whose web server is Hikvision or Dahua. --save FILE: the same as
        observations, one per host, that `cctv-monitor ingest FILE` turns into devices (a Hikvision device
        never activated becomes a critical finding); no credential is used.
        """
        import asyncio

        from probes.discovery import sweep, ws_discover
        from probes.vendor_discovery import vendor_discover

        if not interface and not ranges:
            raise click.UsageError("name what to search: --interface IF (WS-Discovery) and/or --range CIDR "
                                   "(address sweep); nothing is scanned by default")
        try:
            port_list = [int(p) for p in ports.split(",") if p.strip()]
        except ValueError:
            raise click.BadParameter(f"{ports!r} is not a comma-separated list of port numbers",
                                     param_hint="--ports") from None
        rows: list[dict] = []
        wsd, vendor, swept = [], [], []
        try:
            if interface:
                wsd = ws_discover(interface, timeout_s=timeout_s or 3.0)
                for dev in wsd:
                    rows.append({"method": "ws-discovery", "address": dev.address, "xaddr": dev.preferred_xaddr,
                                 "xaddrs": list(dev.xaddrs), "scopes": list(dev.scopes), "types": list(dev.types),
                                 "epr": dev.epr})
                vendor = vendor_discover(interface, timeout_s=timeout_s or 3.0)
                for found in vendor:
                    rows.append({**found.to_dict(), "method": found.method, "xaddr": None})
            if ranges:
                swept = asyncio.run(sweep(list(ranges), port_list, concurrency=concurrency,
                                          timeout_s=timeout_s or 1.5))
                for target in swept:
                    rows.append({"method": "sweep", "address": target.host, "port": target.port,
                                 "xaddr": target.url})
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        if save_path:
            from cctv_monitor.fieldwork import tool_version
            from probes.discovered import discovered_observations
            from probes.fieldfile import write

            try:
                saved = write(save_path, discovered_observations(wsd=wsd, vendor=vendor, swept=swept),
                              tool_version=tool_version())
            except OSError as exc:
                raise click.FileError(save_path, exc.strerror or str(exc)) from None
            click.echo(f"{saved} observation(s) appended to {save_path} (import with: cctv-monitor ingest "
                       f"{save_path})", err=True)
        if as_json:
            click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        if not rows:
            click.echo("No devices found.")
            return
        for row in rows:
            if row["method"] in ("sadp", "dahua"):
                state = {True: "", False: "  NOT ACTIVATED", None: ""}[row.get("activated")]
                click.echo(f"{row['address']:<16} {row['manufacturer']} {row.get('model') or '?'} serial "
                           f"{row.get('serial') or '?'} MAC {row.get('mac') or '?'}{state}  ({row['method']})")
                continue
            click.echo(f"{row['address']:<16} {row['xaddr'] or '-'}  ({row['method']})")
        click.echo(f"{len(rows)} device(s) found.")
