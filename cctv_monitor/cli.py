"""The ``cctv-monitor`` command: a Flask CLI group over :func:`cctv_monitor.create_app`.

Commands live in ``cctv_monitor/commands/<topic>.py``; each module exposes ``register(group)``. They are
found by listing that package, so adding a command never means editing this file.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil

import click
from flask.cli import FlaskGroup

from cctv_monitor import commands as commands_pkg
from probes.vocab import RedactingFilter


def _create_app():  # FlaskGroup calls this lazily, only for commands that need the app
    from cctv_monitor import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False, add_version_option=False,
             load_dotenv=False, set_debug_flag=False)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """CCTV inventory and compliance monitor.

    Discover cameras, read them over ONVIF, measure their RTSP streams, compare them with the approved
    project's specification and show the results on a dashboard. The database is SQLite in the
    instance folder unless CCTV_DATABASE_URL names another.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())


for _info in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda m: m.name):
    importlib.import_module(f"{commands_pkg.__name__}.{_info.name}").register(cli)


def main() -> None:
    """Console-script entry point: an unexpected error is one line (details with -vv), never a traceback."""
    try:
        cli(prog_name="cctv-monitor")
    except Exception as exc:  # noqa: BLE001 - bad data must never end in a traceback for the user
        logging.getLogger("cctv_monitor").debug("unexpected error", exc_info=True)
        click.echo(f"Error: unexpected {type(exc).__name__}: {exc} (run with -vv for the details)", err=True)
        raise SystemExit(1) from None
