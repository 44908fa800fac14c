"""Scans from the application: the Flask side of :mod:`cctv_monitor.scan` (settings, credentials, alerts).

One run goes open -> ingest -> close (NetBox's job idea)::

    run_id = run_scan(app, "project", "CR-MS-2568-001", with_streams=True)

The work is done by the scan core, which needs no web app (see "How a scan flows" in the README):
:mod:`~cctv_monitor.scan.scope` resolves the target, :mod:`~cctv_monitor.scan.pipeline` probes it and hands
every observation to :mod:`~cctv_monitor.scan.ingest`, whose recorder writes identity, drift, matching,
findings, status and alert events per camera in ONE transaction; :func:`~cctv_monitor.scan.runs.close_run`
marks registered cameras not seen, stores project findings and counts. This module adds what needs the
app: its configuration as :class:`~cctv_monitor.scan.settings.ScanSettings`, site credentials decrypted with
its key, the audit entry and the alert digests.

Because every camera is committed on its own, an interrupted run keeps what it read; the run row is
marked ``interrupted`` (Ctrl-C, SIGTERM) or, once its process is gone or its lease expired, by
:func:`mark_dead_runs_interrupted` on the next start. Nothing is half-written.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Callable, Iterable, Sequence

from flask import Flask
from sqlalchemy.orm import Session

from cctv_monitor import audit
from cctv_monitor.db import get_db
from cctv_monitor.models import ScanRun, Site
from cctv_monitor.scan import pipeline, runs
from cctv_monitor.scan.alerts import alert_kinds
from cctv_monitor.scan.errors import ScanAlreadyRunning, ScanError, ScanTargetError
from cctv_monitor.scan.pipeline import ProgressCallback
from cctv_monitor.scan.recorder import Recorded, spec_of
from cctv_monitor.scan.recorder import Recorder as ScanRecorder
from cctv_monitor.scan.scope import TARGET_KINDS, ScanScope, resolve_scope, target_name
from cctv_monitor.scan.settings import ScanSettings
from cctv_monitor.statuses import ScanState
from probes.results import Observation as ObsData
from probes.targets import Credential
from probes.vocab import is_placeholder_serial, is_valid_mac

LOGGER = logging.getLogger(__name__)

__all__ = [
    "ScanError",
    "ScanTargetError",
    "ScanAlreadyRunning",
    "TARGET_KINDS",
    "run_scan",
    "import_observations",
    "start_scan_in_background",
    "mark_dead_runs_interrupted",
    "resolve_scope",
    "ScanScope",
    "ScanRecorder",
    "Recorded",
    "alert_kinds",
    "spec_of",
    "is_valid_mac",
    "is_placeholder_serial",
    "ProgressCallback",
    "scan_settings",
    "site_credentials_provider",
]


def scan_settings(app: Flask) -> ScanSettings:
    """The scan core's settings from the app's configuration."""
    return ScanSettings.from_mapping(app.config)


def site_credentials_provider(app: Flask) -> Callable[[Site], list[Credential]]:
    """Decrypts a site's stored credentials with the app's key (module name differs between versions)."""
    try:
        from cctv_monitor.secrets import decrypt_credentials  # type: ignore[import-not-found]
    except ImportError:
        from cctv_monitor.crypto import decrypt_credentials

    def provide(site: Site) -> list[Credential]:
        token = site.credentials_encrypted
        return list(decrypt_credentials(app, token)) if token else []

    return provide


def mark_dead_runs_interrupted(session: Session) -> int:
    """Mark runs whose lease expired or whose process on this host is gone as interrupted; returns how many."""
    return runs.reap(session)


def run_scan(app: Flask, target_kind: str, target_value: str, *, with_streams: bool = False,
             trigger: str = "manual", credentials: Sequence[Credential] | None = None,
             progress: ProgressCallback | None = None, started_by: str | None = None,
             default_project: str | None = None, deliver_alerts: bool = True,
             results: list[Recorded] | None = None, on_started: Callable[[int], None] | None = None,
             observations: Iterable[ObsData] | None = None, interface: str | None = None) -> int:
    """Run one scan to the end (blocking) and return its ScanRun id; commits after every camera.

    ``credentials`` are tried after the last good and the site's stored ones; ``default_project`` makes
    devices outside every site range belong to that project (the acceptance ``check`` of a range);
    ``results`` (a list) receives one :class:`Recorded` per camera; ``on_started(run_id)`` is called as
    soon as the run row exists; ``observations`` (made elsewhere) are recorded instead of probing, and the
    run still covers the whole target. ``interface`` (a network interface of this machine) adds WS-Discovery,
    SADP and Dahua discovery on it (:func:`cctv_monitor.scan.pipeline.on_interface`). With a broker
    (``CCTV_BROKER_URL``) a plain scan goes to the zone workers instead
    (:func:`cctv_monitor.dispatch.dispatch_scan`) and this returns once its units are sent.
    """
    target_value = (target_value or "").strip()
    if target_kind not in TARGET_KINDS:
        raise ScanTargetError(f"unknown scan target kind {target_kind!r}: expected one of {', '.join(TARGET_KINDS)}")
    if not target_value:
        raise ScanTargetError(f"--{target_kind} needs a value")
    if interface is not None:
        from probes.discovery import interface_addresses

        try:
            interface_addresses(interface)  # names the known interfaces when this one does not exist
        except ValueError as exc:
            raise ScanTargetError(str(exc)) from None
    if app.config.get("BROKER_URL") and observations is None and results is None and not credentials \
            and default_project is None and interface is None:
        from cctv_monitor.dispatch import dispatch_scan

        run_id = dispatch_scan(app, target_kind, target_value, trigger=trigger, with_streams=with_streams,
                               started_by=started_by)
        if on_started is not None:
            on_started(run_id)
        return run_id
    database = get_db(app)
    settings = scan_settings(app)
    run = runs.open_run(database.sessionmaker, target=target_name(target_kind, target_value), source="scan",
                        owner=runs.default_owner(), settings=settings, trigger=trigger, started_by=started_by,
                        with_streams=with_streams, default_project=default_project)
    try:
        with database.session_scope() as session:
            audit.record(session, "scan_started", actor=started_by or trigger, object_type="scan_run",
                         object_repr=f"#{run.id} {target_kind} {target_value}",
                         detail={"trigger": trigger, "streams": with_streams,
                                 **({"interface": interface} if interface else {})})
        if on_started is not None:
            on_started(run.id)
        with app.app_context():
            outcome = pipeline.scan(database.sessionmaker, run, settings=settings,
                                    credentials=site_credentials_provider(app), typed=list(credentials or ()),
                                    with_streams=with_streams, progress=progress, keep_results=results is not None,
                                    observations=observations, interface=interface)
            if results is not None:
                results.extend(outcome.results)
            runs.close_run(database.sessionmaker, run, complete=True, settings=settings)
    except (KeyboardInterrupt, SystemExit, asyncio.CancelledError, GeneratorExit) as exc:
        runs.abort_run(database.sessionmaker, run, ScanState.INTERRUPTED,
                       f"interrupted ({type(exc).__name__}) after {_progress(app, run.id)} cameras")
        raise
    except Exception as exc:
        LOGGER.exception("scan run %s failed", run.id)
        runs.abort_run(database.sessionmaker, run, ScanState.FAILED, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if deliver_alerts:
            _deliver(app, run.id)
    return run.id


def _progress(app: Flask, run_id: int) -> str:
    """"done of total" of a run, read fresh (the pipeline's session is gone)."""
    try:
        with get_db(app).session_scope() as session:
            row = session.get(ScanRun, run_id)
            return f"{row.done} of {row.total}" if row is not None else "?"
    except Exception:  # noqa: BLE001 - the interruption is what matters, not the figure
        return "?"


def _deliver(app: Flask, run_id: int) -> None:
    """Send the run's alert digests; a mail server being down never fails the scan."""
    try:
        from cctv_monitor.alerts import deliver_run_alerts

        with get_db(app).session_scope() as session:
            deliver_run_alerts(app, session, run_id)
    except Exception:  # noqa: BLE001 - alerts are best effort, the scan is recorded
        LOGGER.exception("alert delivery for scan run %s failed", run_id)


def start_scan_in_background(app: Flask, target_kind: str, target_value: str, **kw: Any) -> int:
    """Start :func:`run_scan` on a thread and return the run id once the run row exists.

    Raises :class:`ScanAlreadyRunning` or :class:`ScanTargetError` at once, never from the thread.
    """
    target_value = (target_value or "").strip()
    ready = threading.Event()
    outcome: dict[str, Any] = {}

    def claim_hook(run_id: int) -> None:
        outcome["run_id"] = run_id
        ready.set()

    def work() -> None:
        try:
            run_scan(app, target_kind, target_value, on_started=claim_hook, **kw)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller or logged, never lost
            if not ready.is_set():
                outcome["error"] = exc
                ready.set()
            else:
                LOGGER.error("background scan of %s %s ended with %s: %s", target_kind, target_value,
                             type(exc).__name__, exc)

    thread = threading.Thread(target=work, name=f"scan-{target_kind}-{target_value}", daemon=True)
    thread.start()
    ready.wait()
    if "error" in outcome:
        raise outcome["error"]
    return int(outcome["run_id"])


def import_observations(app: Flask, target_kind: str, target_value: str, observations: Iterable[ObsData], *,
                        trigger: str = "import", started_by: str | None = None,
                        deliver_alerts: bool = True) -> int:
    """Record observations made elsewhere as one run covering a target (same pipeline, no probing)."""
    return run_scan(app, target_kind, target_value, trigger=trigger, started_by=started_by,
                    deliver_alerts=deliver_alerts, observations=list(observations))
