"""``zone-key``, ``zone-worker`` and ``ingest-worker``: scanning across network zones (README "Running a
province")."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from contextlib import contextmanager
from typing import Any, Iterator

import click
from flask.cli import AppGroup

EXIT_USAGE = 2


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(EXIT_USAGE)


def _key_dir(given: str | None) -> str:
    """Zone key folder: --key-dir, CCTV_ZONE_KEY_DIR, else the instance folder's zone-keys."""
    if given:
        return given
    if os.environ.get("CCTV_ZONE_KEY_DIR"):
        return os.environ["CCTV_ZONE_KEY_DIR"]
    from flask import current_app

    from cctv_monitor.dispatch import zone_key_dir

    return zone_key_dir(current_app)


def _broker(given: str | None) -> str:
    broker = given or os.environ.get("CCTV_BROKER_URL")
    if not broker:
        _fail("no broker: set CCTV_BROKER_URL (e.g. amqp://user:password@server:5672//) or give --broker")
    return broker  # type: ignore[return-value]


def register(group: AppGroup) -> None:
    """Add the zone commands to ``group``."""

    @group.group("zone-key")
    def zone_key() -> None:
        """Keys that encrypt camera credentials in work units for one zone (file 0600 per zone)."""

    key_dir_option = click.option("--key-dir", help="Folder of zone key files (default: CCTV_ZONE_KEY_DIR, "
                                                    "else <instance>/zone-keys).")

    @zone_key.command("create")
    @click.argument("zone")
    @key_dir_option
    def create(zone: str, key_dir: str | None) -> None:
        """Create the key file of ZONE; copy it (mode 0600) to that zone's workers."""
        from cctv_monitor.zones import ZoneKeyError, create_zone_key

        try:
            path = create_zone_key(_key_dir(key_dir), zone)
        except ZoneKeyError as exc:
            _fail(str(exc))
        click.echo(f"Created {path} (mode 0600). Copy it to the zone's workers, into their --key-dir.")

    @zone_key.command("rotate")
    @click.argument("zone")
    @key_dir_option
    def rotate(zone: str, key_dir: str | None) -> None:
        """Put a new key first in ZONE's file; copy the file to the workers, then run 'zone-key retire'."""
        from cctv_monitor.zones import ZoneKeyError, rotate_zone_key

        try:
            path = rotate_zone_key(_key_dir(key_dir), zone)
        except ZoneKeyError as exc:
            _fail(str(exc))
        click.echo(f"New key added to {path}; units are now sealed with it. Copy the file to the zone's "
                   f"workers, then run 'cctv-monitor zone-key retire {zone}'.")

    @zone_key.command("retire")
    @click.argument("zone")
    @key_dir_option
    def retire(zone: str, key_dir: str | None) -> None:
        """Drop every key of ZONE's file but the newest (after the workers have the new file)."""
        from cctv_monitor.zones import ZoneKeyError, retire_old_keys

        try:
            count = retire_old_keys(_key_dir(key_dir), zone)
        except ZoneKeyError as exc:
            _fail(str(exc))
        click.echo(f"Removed {count} old key(s) of zone {zone}.")

    @group.command("zone-worker", with_appcontext=False)
    @click.option("--zone", "zones", required=True, help="Zone(s) to serve, comma-separated: consumes probe.<zone>.")
    @click.option("--broker", help="Broker URL (default: CCTV_BROKER_URL).")
    @click.option("--key-dir", help="Folder holding <zone>.key for each zone (default: CCTV_ZONE_KEY_DIR).")
    @click.option("--concurrency", default=1, show_default=True, type=click.IntRange(1, 64),
                  help="Units probed at once (threads); each unit probes up to CCTV_PROBE_CONCURRENCY cameras.")
    @click.option("--name", help="Worker name shown on the scans page (default: zone-<zones>@<host>).")
    def zone_worker(zones: str, broker: str | None, key_dir: str | None, concurrency: int, name: str | None) -> None:
        """Probe work units of the given zones; needs only the broker and the cameras, no database."""
        from cctv_monitor.zone_worker import build_zone_app
        from cctv_monitor.zones import ZoneKeyError, queue_for

        folder = key_dir or os.environ.get("CCTV_ZONE_KEY_DIR")
        if not folder:
            _fail("no zone key folder: give --key-dir or set CCTV_ZONE_KEY_DIR")
        wanted = [z.strip() for z in zones.split(",") if z.strip()]
        try:
            app = build_zone_app(_broker(broker), wanted, folder)  # type: ignore[arg-type]
            queues = ",".join(queue_for(z) for z in wanted)
        except ZoneKeyError as exc:
            _fail(str(exc))
        node = name or f"zone-{'+'.join(wanted)}@{socket.gethostname()}"
        # Units run in pool threads, never on the consumer's thread (Celery's solo pool): a unit longer than two
        # heartbeat intervals would stop the heartbeats, the broker would drop the connection and hand the
        # unit out again, and again (celery/celery#3430).
        app.worker_main(["worker", "-Q", queues, "-n", node, "--pool", "threads",
                         "--concurrency", str(concurrency), "--without-gossip", "--without-mingle",
                         "--loglevel", "INFO"])

    @group.command("ingest-worker")
    @click.option("--name", help="Worker name (default: ingest@<host>).")
    def ingest_worker(name: str | None) -> None:
        """Record observation batches from the zone workers into the database and close finished runs."""
        from flask import current_app

        from cctv_monitor.ingest import build_ingest_app
        from cctv_monitor.scan.ingest import collect_less

        collect_less()  # it keeps the recorder's indexes between batches
        app = current_app._get_current_object()
        if not app.config.get("BROKER_URL"):
            _fail("no broker: set CCTV_BROKER_URL")
        from cctv_monitor.dispatch import ingest_queue_of

        celery = build_ingest_app(app)
        celery.worker_main(["worker", "-Q", ingest_queue_of(app), "-n", name or f"ingest@{socket.gethostname()}",
                            "--pool", "solo", "--without-gossip", "--without-mingle", "--loglevel", "INFO"])


@contextmanager
def central_zone_worker(app: Any) -> Iterator[None]:
    """With a broker: a zone worker for zone ``central`` beside ``serve``/``worker``, ended with them."""
    broker = app.config.get("BROKER_URL")
    if not broker:
        yield
        return
    from cctv_monitor.dispatch import zone_key_dir
    from cctv_monitor.zones import CENTRAL, create_zone_key, key_path

    folder = zone_key_dir(app)
    if not key_path(folder, CENTRAL).exists():
        create_zone_key(folder, CENTRAL)  # the server is the zone worker of its own network
    argv = [sys.executable, "-c", "from cctv_monitor.cli import main; main()", "zone-worker", "--zone", CENTRAL,
            "--key-dir", folder]
    proc = subprocess.Popen(argv, env={**os.environ, "CCTV_BROKER_URL": broker})
    click.echo(f"Zone worker for zone {CENTRAL!r}: pid {proc.pid}.", err=True)
    try:
        yield
    finally:
        proc.terminate()  # Celery's warm shutdown: a unit in hand is finished or redelivered
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
