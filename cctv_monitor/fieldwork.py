"""Observations made elsewhere (a field laptop's file, the API) into the inventory, through the scan core.

Both ways use the one ingest boundary (:mod:`cctv_monitor.scan`): open a run, ingest the batch (observations
already stored are skipped by their id), close it. A run that names a target and says it is complete covers
that target (registered cameras not in it become missing); otherwise it covers only the devices it holds.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from importlib import metadata
from typing import Sequence

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from cctv_monitor import audit
from cctv_monitor.db import get_db
from cctv_monitor.models import Project, Site
from cctv_monitor.scan import runs
from cctv_monitor.scan.errors import ScanTargetError
from cctv_monitor.scan.ingest import ingest
from cctv_monitor.scan.settings import ScanSettings
from cctv_monitor.statuses import ScanState
from probes.results import Observation

LOGGER = logging.getLogger(__name__)

__all__ = ["tool_version", "Ingested", "ingest_observations", "BATCH", "BatchError", "Batch", "parse_batch",
           "outside_agency"]

#: Observations per transaction when a file is ingested.
BATCH = 500


def tool_version() -> str:
    """``cctv-monitor X.Y.Z`` as installed (written into saved files)."""
    try:
        return f"cctv-monitor {metadata.version('cctv-monitor')}"
    except metadata.PackageNotFoundError:
        return "cctv-monitor (not installed)"


@dataclass(frozen=True)
class Ingested:
    """What ingesting observations did: the run, how many were new or already stored, and whether it closed."""

    run_id: int
    new: int
    skipped: int
    failed: int
    closed: bool
    coverage: str | None


def ingest_observations(app: Flask, observations: Sequence[Observation], *, target: str | None, complete: bool,
                        source: str, started_by: str | None, client_run_id: str | None = None,
                        close: bool = True) -> Ingested:
    """Record ``observations`` as one run (or the next batch of the open run ``client_run_id``)."""
    if complete and not target:
        raise ScanTargetError("complete needs a target: only a run that names its target can cover it")
    database = get_db(app)
    settings = ScanSettings.from_mapping(app.config)
    run = runs.open_run(database.sessionmaker, target=target, source=source, owner=runs.default_owner(),
                        client_run_id=client_run_id, settings=settings, started_by=started_by)
    new = skipped = failed = 0
    try:
        for start in range(0, len(observations), BATCH):
            result = ingest(database.sessionmaker, run, observations[start:start + BATCH], settings=settings)
            new, skipped, failed = new + result.new, skipped + result.skipped, failed + result.failed
    except Exception as exc:
        runs.abort_run(database.sessionmaker, run, ScanState.FAILED, f"{type(exc).__name__}: {exc}")
        raise
    summary = runs.close_run(database.sessionmaker, run, complete=complete, settings=settings) if close else None
    with database.session_scope() as session:
        audit.record(session, "observations_ingested", actor=started_by or source, object_type="scan_run",
                     object_repr=f"#{run.id} {target or '(no target)'}",
                     detail={"new": new, "skipped": skipped, "failed": failed, "complete": complete,
                             "source": source})
    if summary is not None and new:
        try:
            from cctv_monitor.alerts import deliver_run_alerts

            with database.session_scope() as session:
                deliver_run_alerts(app, session, run.id)
        except Exception:  # noqa: BLE001 - alerts are best effort, the observations are recorded
            LOGGER.exception("alert delivery for run %s failed", run.id)
    return Ingested(run.id, new, skipped, failed, summary is not None, summary.coverage if summary else None)


class BatchError(ValueError):
    """An API batch that cannot be taken; ``field`` names the JSON field at fault (for the 4xx reply)."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        """``field`` like ``observations[3].status``; ``status`` the HTTP status to answer with."""
        super().__init__(f"{field}: {message}")
        self.field = field
        self.status = status


@dataclass(frozen=True)
class Batch:
    """A validated ``POST /api/v1/observations`` body."""

    run: str
    target: str | None
    complete: bool
    observations: list[Observation]


def parse_batch(body: object, *, max_observations: int) -> Batch:
    """Validate an API body ``{"run", "target"?, "complete"?, "observations": [...]}``; :class:`BatchError` if bad."""
    from probes.fieldfile import FieldFileError, from_object

    if not isinstance(body, dict):
        raise BatchError("JSON body", 'expected an object {"run": "...", "observations": [...]}')
    run = body.get("run")
    if not isinstance(run, str) or not 0 < len(run.strip()) <= 128:
        raise BatchError("run", "required: the sender's run id, a string of 1 to 128 characters")
    target = body.get("target")
    if target is not None and (not isinstance(target, str) or not target.strip()):
        raise BatchError("target", "must be a string such as PROJECT/site (or left out)")
    complete = body.get("complete", False)
    if not isinstance(complete, bool):
        raise BatchError("complete", "must be true or false")
    if complete and not target:
        raise BatchError("complete", "true needs a target: only a run that names its target can cover it")
    items = body.get("observations")
    if not isinstance(items, list):
        raise BatchError("observations", "required: a list of observations (the probe --json objects)")
    if len(items) > max_observations:
        raise BatchError("observations", f"{len(items)} in one batch; send at most {max_observations}", 413)
    observations = []
    for index, item in enumerate(items):
        where = f"observations[{index}]"
        if isinstance(item, dict) and not item.get("observation_id"):
            raise BatchError(f"{where}.observation_id", "required over the API (makes retries safe)")
        try:
            observations.append(from_object(item, where=where))
        except FieldFileError as exc:
            raise BatchError(where, str(exc).split(": ", 1)[-1]) from None
    return Batch(run.strip(), target.strip() if target else None, complete, observations)


def outside_agency(session: Session, agency_id: int | None, target: str | None,
                   observations: Sequence[Observation]) -> str | None:
    """Why a technician of ``agency_id`` may not send this batch (a field name and reason), or None."""
    from cctv_monitor.scan.scope import TARGET_KINDS, parse_target, resolve_scope, site_networks

    if agency_id is None:
        return "user: a technician without an agency may not send observations"
    if target:
        kind, value = parse_target(target)
        if kind not in TARGET_KINDS or kind == "range":
            return f"target: {target!r} is not a site, project or agency of yours"
        scope = resolve_scope(session, kind, value, default_ports=[80])
        if any(site.project.agency_id != agency_id for site in scope.sites):
            return f"target: {target!r} is not your agency's"
    nets = [net for site in session.scalars(select(Site).join(Project).where(Project.agency_id == agency_id))
            for net in site_networks(site)]
    for index, obs in enumerate(observations):
        try:
            ip = ipaddress.ip_address(obs.host)
        except ValueError:
            return f"observations[{index}].address: {obs.address!r} is not an IP address"
        if not any(ip.version == net.version and ip in net for net in nets):
            return f"observations[{index}].address: {obs.address} is outside your agency's site ranges"
    return None
