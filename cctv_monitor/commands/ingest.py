"""``cctv-monitor ingest FILE``: record observations saved on a field laptop (``probe/check/discover --save``)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

EXIT_USAGE = 2


def register(group: AppGroup) -> None:
    """Add ``ingest`` to ``group``."""

    @group.command("ingest")
    @click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
    @click.option("--target", help="What the file covers: PROJECT/SITE, project:CODE, agency:CODE or range:CIDR. "
                                   "Without it the devices are matched to projects by their addresses.")
    @click.option("--complete", is_flag=True,
                  help="The file covers the whole --target: registered cameras not in it become missing.")
    @click.option("--operator", default=None, help="Name of the person importing (default: login name).")
    def ingest_command(path: str, target: str | None, complete: bool, operator: str | None) -> None:
        """Record the observations of FILE (JSON lines) and print how many were new.

        FILE comes from `probe --save`, `check --save` or `discover --save` (devices found without
        credentials: new ones are added unjudged, a Hikvision device never activated becomes a critical
        finding). Observations already stored (same observation id) are skipped, so importing a file
        again prints "0 new". A file without --complete changes only the devices it contains.
        """
        from cctv_monitor.audit import cli_actor
        from cctv_monitor.fieldwork import ingest_observations
        from cctv_monitor.scan.errors import ScanError
        from probes.fieldfile import FieldFileError, read

        if complete and not target:
            _fail("--complete needs --target (the file must name what it covers)")
        try:
            observations = read(path)
        except FieldFileError as exc:
            _fail(str(exc))
        if not observations:
            _fail(f"{path}: holds no observations")
        try:
            done = ingest_observations(current_app._get_current_object(), observations, target=target,
                                       complete=complete, source="file", started_by=operator or cli_actor())
        except ScanError as exc:
            _fail(str(exc))
        click.echo(f"{done.new} new, {done.skipped} already stored"
                   + (f", {done.failed} failed (see the log)" if done.failed else "")
                   + f" (run #{done.run_id}, covers {'the whole target' if done.coverage == 'target' else 'its devices'})")


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(EXIT_USAGE)
