"""``cctv-monitor probe``: read one device over ONVIF (and optionally measure its streams)."""

from __future__ import annotations

import click
from flask.cli import AppGroup


def register(group: AppGroup) -> None:
    """Add ``probe`` to ``group``."""

    @group.command("probe", with_appcontext=False)
    @click.argument("address")
    @click.option("--user", "-u", "username", help="ONVIF user (tried with WS-Security, then HTTP Digest).")
    @click.option("--password", "-p", envvar="CCTV_ONVIF_PASSWORD", show_envvar=True,
                  help="ONVIF password; prompted for when --user is given without it.")
    @click.option("--streams", is_flag=True, help="Also open the main RTSP stream and measure it (OpenCV).")
    @click.option("--all-streams", is_flag=True, help="With --streams: measure every profile's stream.")
    @click.option("--timeout", "timeout_s", type=click.FloatRange(0.1, 120), default=5.0, show_default=True,
                  help="Seconds per ONVIF operation.")
    @click.option("--stream-timeout", "stream_timeout_s", type=click.FloatRange(1, 300), default=10.0,
                  show_default=True, help="Seconds to open a stream and read its sample.")
    @click.option("--json", "as_json", is_flag=True, help="Print the observation as JSON.")
    @click.option("--save", "save_path", type=click.Path(dir_okay=False),
                  help="Also append the observation to this JSON-lines file (for 'cctv-monitor ingest' later).")
    def probe(address: str, username: str | None, password: str | None, streams: bool, all_streams: bool,
              timeout_s: float, stream_timeout_s: float, as_json: bool, save_path: str | None) -> None:
        """Probe ADDRESS (HOST, HOST:PORT or a device service URL) and print one observation.

        ONVIF first; a Hikvision or Dahua device whose ONVIF is off or refuses the credential is read
        through ISAPI or the Dahua HTTP API with the same credential (recorders: channels, disks,
        retention). Exits 0 when the device was read, 1 otherwise.
        """
        from probes.scan import Credential, Target, probe_many_sync

        try:
            target = Target.parse(address)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="ADDRESS") from None
        if username and password is None:
            password = click.prompt("ONVIF password", hide_input=True, default="", show_default=False)
        credentials = [Credential(username, password or "")] if username else []
        [obs] = probe_many_sync([target], credentials, with_streams=streams, timeout_s=timeout_s,
                                stream_timeout_s=stream_timeout_s, stream_profiles="all" if all_streams else "first")
        if save_path:
            from cctv_monitor.fieldwork import tool_version
            from probes.fieldfile import with_id, write

            obs = with_id(obs)
            try:
                write(save_path, [obs], tool_version=tool_version())
            except OSError as exc:
                click.echo(f"Error: --save {save_path}: {exc.strerror or exc}", err=True)
                raise SystemExit(2)
        if as_json:
            click.echo(obs.to_json(indent=2))
        else:
            click.echo(format_observation(obs))
        raise SystemExit(0 if obs.ok else 1)


def format_observation(obs) -> str:  # noqa: ANN001 - probes.results.Observation, imported lazily
    """Human-readable summary of an observation (camera strings printed as text, never interpreted)."""
    lines = [f"{obs.address}: {obs.status.value}" + (f" - {obs.error}" if obs.error else "")]
    dev = obs.device
    if dev is not None:
        lines.append(f"  device:   {dev.manufacturer or '?'} {dev.model or '?'}  firmware {dev.firmware or '?'}  "
                     f"serial {dev.serial or '?'}")
        lines.append(f"  MACs:     {', '.join(dev.macs) or '-'}")
        if dev.name or dev.location:
            lines.append(f"  name:     {dev.name or '-'}   location: {dev.location or '-'}")
    if obs.clock_offset_s is not None:
        lines.append(f"  clock:    {obs.clock_offset_s:+.0f} s against this computer"
                     + (f"; NTP {', '.join(obs.ntp_servers)}" if obs.ntp_servers else ""))
    if obs.services:
        lines.append(f"  services: {', '.join(obs.services)}")
    if obs.protocols:
        onvif = f" (ONVIF: {obs.onvif_status})" if obs.onvif_status else ""
        lines.append(f"  read by:  {', '.join(obs.protocols)}{onvif}")
    for ch in obs.channels:
        state = {True: "online", False: "OFFLINE", None: "?"}[ch.online]
        kept = f", {ch.retention_days:g} days recorded" if ch.retention_days is not None else ""
        lines.append(f"  channel {ch.channel}: {ch.name or '-'} {ch.model or '?'} at {ch.address or '?'} {state}{kept}")
        if ch.stream_uri:
            lines.append(f"      stream:   {ch.stream_uri}")
    for disk in obs.storage:
        lines.append(f"  disk {disk.name}: {disk.status or '?'}, {disk.free_gb if disk.free_gb is not None else '?'} of "
                     f"{disk.capacity_gb if disk.capacity_gb is not None else '?'} GB free")
    for prof in obs.profiles:
        lines.append(f"  profile {prof.token} ({prof.name or '-'}, {prof.media_service}): {prof.encoding or '?'} "
                     f"{prof.width or '?'}x{prof.height or '?'} @ {prof.fps or '?'} fps, "
                     f"{prof.bitrate_kbps or '?'} kbps, GOV {prof.gov_length or '-'}")
        if prof.stream_uri:
            lines.append(f"      stream:   {prof.stream_uri}")
    for check in obs.stream_checks:
        if check.ok:
            flags = [name for name, on in (("BLACK", check.black), ("FROZEN", check.frozen),
                                           ("LOW DETAIL", check.low_detail)) if on]
            if check.keyframe_interval is not None:
                gop = f"keyframe every {check.keyframe_interval} frames"
            elif check.keyframe_interval_min is not None:
                gop = f"keyframe interval at least {check.keyframe_interval_min} frames"
            else:
                gop = "keyframe interval unknown"
            profile = f" ({check.codec_profile})" if check.codec_profile else ""
            sharp = f", sharpness {check.sharpness:g}" if check.sharpness is not None else ""
            lines.append(f"  measured {check.profile_token}: {check.codec or '?'}{profile} {check.width}x{check.height}"
                         f" @ {check.fps} fps, {check.bitrate_kbps or '?'} kbps, {gop}{sharp}, first keyframe after "
                         f"{check.first_frame_s} s{'  ' + ' '.join(flags) if flags else ''}")
        else:
            lines.append(f"  measured {check.profile_token}: FAILED - {check.error}")
    for warning in obs.warnings:
        lines.append(f"  warning:  {warning}")
    return "\n".join(lines)
