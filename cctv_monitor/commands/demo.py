"""``demo``: the simulated Mae Sai fleet, imported projects, a full scan and the dashboard, in one command."""

from __future__ import annotations

import secrets
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

DEMO_AGENCIES = ("maesai-mun", "wiangphangkham-mun", "pongpha-sao")


def register(group: AppGroup) -> None:
    """Add ``demo`` to ``group``."""

    @group.command("demo")
    @click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535),
                  help="Dashboard port on 127.0.0.1.")
    @click.option("--streams/--no-streams", default=True, show_default=True,
                  help="Serve and measure the RTSP streams (needs the GStreamer packages).")
    @click.option("--rescan-minutes", default=30, show_default=True, type=click.IntRange(1, 10_080),
                  help="Interval of the scheduled rescan of each demo agency.")
    def demo(port: int, streams: bool, rescan_minutes: int) -> None:
        """Run the demo: simulated fleet on loopback, example projects, a scan, a rescan schedule, the dashboard.

        Uses the database of CCTV_DATABASE_URL (default: SQLite in the instance folder), so other
        commands (``cctv-monitor devices``) see the same data while it runs. Ctrl-C stops everything.
        """
        from cctv_monitor.signals import stop_signals

        # SIGINT and SIGTERM stop every phase (fleet start, import, scan, dashboard) through the clean-up of
        # running_fleet, also when the demo was started with SIGINT ignored (``cmd &`` in a script)
        with stop_signals():
            try:
                _demo(port, streams, rescan_minutes)
            except KeyboardInterrupt:
                pass
            finally:
                from cctv_monitor.scheduler import shutdown_scheduler

                shutdown_scheduler(current_app._get_current_object())  # also when stopped before serving
        click.echo("Demo stopped.")

    def _demo(port: int, streams: bool, rescan_minutes: int) -> None:
        from sqlalchemy import select

        from cctv_monitor.db import get_db
        from cctv_monitor.models import Agency
        from cctv_monitor.registry import import_path
        from cctv_monitor.scanning import mark_dead_runs_interrupted, run_scan
        from cctv_monitor.scheduler import init_scheduler, schedules_from_config, shutdown_scheduler
        from cctv_monitor.simulator.testing import running_fleet
        from cctv_monitor.wsgi import ServeError, check_port_free, serve_app
        from cctv_monitor.accounts import save_user

        try:
            check_port_free("127.0.0.1", port)
        except ServeError as exc:
            raise click.ClickException(str(exc)) from None
        app = current_app._get_current_object()
        database = get_db(app)
        config_dir = Path(app.config["CONFIG_DIR"])
        click.echo("Starting the simulated demo fleet on 127.0.x.y (no real camera is contacted) ...")
        with running_fleet(config_dir / "fleets" / "demo.yaml", streams=streams) as fleet:
            if streams and not fleet.streams:
                click.echo(f"RTSP streams are off: {fleet.streams_reason}", err=True)
            moved = [c.name for c in fleet if c.port != 8000]
            if moved:
                click.echo(f"Warning: ports in use, {len(moved)} camera(s) moved off port 8000 and will not be "
                           f"found by the site sweeps: {', '.join(moved)}", err=True)
            with database.session_scope() as session:
                mark_dead_runs_interrupted(session)
                report = import_path(session, config_dir / "projects", app=app,
                                     profiles_dir=config_dir / "profiles")
                if report.errors:
                    for problem in report.errors:
                        click.echo(f"Import problem: {problem}", err=True)
                    raise SystemExit(2)
            with database.session_scope() as session:
                known = set(session.scalars(select(Agency.code)))
            agencies = [code for code in DEMO_AGENCIES if code in known]
            for code in agencies:
                click.echo(f"Scanning agency {code} {'with' if streams else 'without'} streams ...")
                run_id = run_scan(app, "agency", code, with_streams=fleet.streams, trigger="demo",
                                  started_by="demo")
                click.echo(f"  scan run {run_id} finished")
            with database.session_scope() as session:
                schedules_from_config(session, [{"agency": code, "interval_minutes": rescan_minutes,
                                                 "streams": False} for code in agencies], source="demo")
                password = secrets.token_urlsafe(9)
                save_user(session, "demo", password=password, role="admin", language="th")
            scheduler = init_scheduler(app, force=True)
            click.echo(f"Rescan every {rescan_minutes} min: "
                       f"{'on' if scheduler else 'off (another process holds the scheduler)'}")

            def ready(url: str) -> None:
                click.echo(f"Dashboard: {url}  log in as user 'demo' with password '{password}' "
                           "(Ctrl-C stops the dashboard, the scheduler and the fleet).")

            try:
                serve_app(app, "127.0.0.1", port, on_ready=ready)
            except ServeError as exc:
                raise click.ClickException(str(exc)) from None
            finally:
                shutdown_scheduler(app)
