"""``serve`` (dashboard + scheduler) and ``worker`` (scheduler only)."""

from __future__ import annotations

import time

import click
from flask import current_app
from flask.cli import AppGroup


def register(group: AppGroup) -> None:
    """Add ``serve`` and ``worker`` to ``group``."""

    @group.command("serve")
    @click.option("--host", default="127.0.0.1", show_default=True,
                  help="Address to listen on (loopback by default; put a reverse proxy in front for others).")
    @click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
    @click.option("--scheduler/--no-scheduler", default=True, show_default=True,
                  help="Run scheduled scans in this process (when no other process holds the scheduler).")
    def serve(host: str, port: int, scheduler: bool) -> None:
        """Serve the dashboard, with the scan scheduler unless another process holds it."""
        from cctv_monitor.signals import stop_signals

        with stop_signals():  # from here on SIGINT/SIGTERM stop cleanly, also if SIGINT was inherited ignored
            try:
                _serve(host, port, scheduler)
            except KeyboardInterrupt:
                click.echo("Stopped before the dashboard started.", err=True)
            finally:
                from cctv_monitor.scheduler import shutdown_scheduler

                shutdown_scheduler(current_app._get_current_object())  # also when stopped before serving

    def _serve(host: str, port: int, scheduler: bool) -> None:
        from cctv_monitor.db import get_db
        from cctv_monitor.scanning import mark_dead_runs_interrupted
        from cctv_monitor.scheduler import init_scheduler, shutdown_scheduler

        app = current_app._get_current_object()
        with get_db(app).session_scope() as session:
            mark_dead_runs_interrupted(session)
        started = init_scheduler(app, force=True) if scheduler else None
        if scheduler and started is None:
            click.echo("Scheduler: held by another process (e.g. `cctv-monitor worker`); serving without it.",
                       err=True)
        elif started is not None:
            click.echo(f"Scheduler: on, {len(started.get_jobs())} scheduled scan(s).", err=True)
        from cctv_monitor.wsgi import ServeError, serve_app

        try:
            from cctv_monitor.commands.zones import central_zone_worker

            with central_zone_worker(app):
                serve_app(app, host, port,
                          on_ready=lambda url: click.echo(f"Dashboard: {url} (Ctrl-C stops)", err=True))
        except ServeError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            shutdown_scheduler(app)

    @group.command("worker")
    def worker() -> None:
        """Run scheduled scans only (no web server). Only one process may hold the scheduler."""
        from cctv_monitor.scheduler import init_scheduler, shutdown_scheduler
        from cctv_monitor.signals import stop_signals

        app = current_app._get_current_object()
        with stop_signals():  # SIGINT and SIGTERM alike, also when SIGINT was inherited ignored
            try:
                scheduler = init_scheduler(app, force=True)
                if scheduler is None:
                    click.echo("Error: another process already holds the scheduler for this database "
                               "(a `serve` or another `worker`); stop it first.", err=True)
                    raise SystemExit(1)
                click.echo(f"Worker: scheduler on, {len(scheduler.get_jobs())} scheduled scan(s); "
                           "SIGTERM or Ctrl-C stops.", err=True)
                from cctv_monitor.commands.zones import central_zone_worker

                with central_zone_worker(app):
                    while True:
                        time.sleep(1.0)
            except KeyboardInterrupt:
                pass
            finally:
                shutdown_scheduler(app, wait=False)
        click.echo("Worker stopped.", err=True)
