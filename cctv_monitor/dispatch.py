"""A scan across zones: plan work units from the database and send them to ``probe.<zone>`` (server side).

Used when ``CCTV_BROKER_URL`` is set. Each unit is a chunk of addresses of one zone (the zone of the site
whose range holds them, most specific range first) with only the credentials those sites may use there
(:class:`cctv_monitor.credentials.CredentialPlan`, the confinement rules of a local scan), sealed with the
zone's key. Units expire from the queue at the run's deadline; a message to ``ingest`` due at the deadline
closes the run even when a zone never answered.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import Celery
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from cctv_monitor import audit
from cctv_monitor.db import get_db
from cctv_monitor.models import Device, ScanRun, ScanUnit, Site, utcnow
from cctv_monitor.queueing import CLOSE_AT_DEADLINE, INGEST_QUEUE, PROBE_UNIT, make_celery
from cctv_monitor.scanning import (ScanAlreadyRunning, ScanError, ScanScope, _credential_source, _site_networks,
                                   resolve_scope)
from cctv_monitor.statuses import ScanState
from cctv_monitor.zones import CENTRAL, ZoneKeyError, load_keys, queue_for, seal
from probes.discovery import parse_cidrs
from probes.targets import Target

LOGGER = logging.getLogger(__name__)

__all__ = ["dispatch_scan", "zone_key_dir", "celery_for", "ingest_queue_of", "plan_units", "UnitPlan", "DISTRIBUTED_HOST"]

#: ``ScanRun.host`` of a distributed run: no single process owns it, so the dead-process check skips it.
DISTRIBUTED_HOST = "(zones)"
_APPS: dict[str, Celery] = {}


def zone_key_dir(app: Flask) -> str:
    """Folder of the zone key files (setting ZONE_KEY_DIR, default ``<instance>/zone-keys``)."""
    return str(app.config.get("ZONE_KEY_DIR") or f"{app.instance_path}/zone-keys")


def ingest_queue_of(app: Flask) -> str:
    """The ingest queue of this installation (setting INGEST_QUEUE, default ``ingest``)."""
    return str(app.config.get("INGEST_QUEUE") or INGEST_QUEUE)


def celery_for(broker_url: str) -> Celery:
    """One sending Celery app per broker URL in this process."""
    if broker_url not in _APPS:
        _APPS[broker_url] = make_celery(broker_url, name="cctv_server")  # queues named per message
    return _APPS[broker_url]


@dataclass
class UnitPlan:
    """One unit before sealing: zone, entries (host, ports, sweep?, credential indexes) and the credentials."""

    zone: str
    entries: list[dict[str, Any]] = field(default_factory=list)
    creds: list[list[Any]] = field(default_factory=list)
    _index: dict[tuple[str, str, str | None], int] = field(default_factory=dict)

    def add(self, host: str, ports: tuple[int, ...], sweep: bool, credentials: Any, path: str | None = None) -> None:
        """Add one address with the credentials it may be tried with (stored once per unit)."""
        indexes = []
        for cred in credentials:
            key = (cred.username, cred.password, cred.ref)
            if key not in self._index:
                self._index[key] = len(self.creds)
                self.creds.append(list(key))
            indexes.append(self._index[key])
        entry: dict[str, Any] = {"h": host, "p": list(ports), "s": sweep, "c": indexes,
                                 "k": int(getattr(credentials, "skipped", 0))}
        if path:
            entry["path"] = path
        self.entries.append(entry)

    def sealed(self, keys: Any) -> str:
        """The Fernet token the zone's workers open."""
        return seal(keys, {"targets": self.entries, "creds": self.creds})


class _Devices:
    """What :func:`cctv_monitor.scanning._credential_source` reads of a recorder: the known devices."""

    def __init__(self, session: Session) -> None:
        self.devices = {d.id: d for d in session.scalars(select(Device))}


def _zone_of(host: str, site_nets: list[tuple[Any, Site]]) -> str:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return CENTRAL
    for net, site in site_nets:
        if ip.version == net.version and ip in net:
            return site.zone or CENTRAL
    return CENTRAL


def plan_units(app: Flask, session: Session, scope: ScanScope, unit_size: int) -> list[UnitPlan]:
    """Chunks of at most ``unit_size`` addresses per zone, each with its hosts' confined credentials."""
    known = _Devices(session)
    plan = _credential_source(app, scope, None, session, known)  # type: ignore[arg-type]
    site_nets = sorted(((n, s) for s in session.scalars(select(Site)) for n in _site_networks(s)),
                       key=lambda pair: pair[0].prefixlen, reverse=True)
    wanted: dict[str, tuple[tuple[int, ...], bool, str | None]] = {}
    for ports, cidrs in scope.cidrs_by_ports.items():
        for host in parse_cidrs(cidrs):
            wanted.setdefault(host, (ports, True, None))
    for target in scope.explicit:
        wanted.setdefault(target.host, ((target.port,), False, target.path))
    for device in known.devices.values():  # known devices in scope, so an offline one is noticed
        if device.address and scope.covers(device.address):
            try:
                target = Target.parse(device.address)
            except ValueError:
                continue
            wanted.setdefault(target.host, ((target.port,), False, None))
    units: list[UnitPlan] = []
    current: dict[str, UnitPlan] = {}
    for host, (ports, sweep, path) in wanted.items():
        zone = _zone_of(host, site_nets)
        unit = current.get(zone)
        if unit is None or len(unit.entries) >= unit_size:
            unit = current[zone] = UnitPlan(zone)
            units.append(unit)
        unit.add(host, ports, sweep, plan(Target(host, ports[0])), path)
    return units


def dispatch_scan(app: Flask, kind: str, value: str, *, trigger: str = "manual", with_streams: bool = False,
                  started_by: str | None = None, deadline_s: float | None = None) -> int:
    """Create a distributed run, send its units to the zones' queues; returns the run id at once."""
    broker = app.config.get("BROKER_URL")
    if not broker:
        raise ScanError("CCTV_BROKER_URL is not set: a scan across zones needs the broker")
    deadline_s = float(deadline_s or app.config.get("RUN_DEADLINE_S") or 3600)
    unit_size = int(app.config.get("ZONE_UNIT_SIZE") or 64)
    with get_db(app).session_scope() as session:
        scope = resolve_scope(session, kind, value, default_ports=app.config.get("ONVIF_PORTS") or [80])
        other = session.scalar(select(ScanRun).where(
            ScanRun.target_kind == kind, ScanRun.target_value == scope.value,
            ScanRun.state.in_([ScanState.RUNNING.value, ScanState.PENDING.value])))
        if other is not None:
            raise ScanAlreadyRunning(f"a scan of {kind} {value!r} is already running (run #{other.id})")
        units = plan_units(app, session, scope, unit_size)
        try:
            keys = {z: load_keys(zone_key_dir(app), z) for z in {u.zone for u in units}}
        except ZoneKeyError as exc:
            raise ScanError(str(exc)) from None
        now = utcnow()
        run = ScanRun(target_kind=kind, target_value=scope.value, trigger=trigger, state=ScanState.RUNNING.value,
                      started=now, host=DISTRIBUTED_HOST, started_by=started_by, with_streams=with_streams,
                      total=sum(len(u.entries) for u in units), done=0, distributed=True,
                      deadline=now + timedelta(seconds=deadline_s))
        session.add(run)
        session.flush()
        rows = []
        for seq, unit in enumerate(units):
            row = ScanUnit(scan_run_id=run.id, zone=unit.zone, seq=seq, state="queued",
                           addresses=[e["h"] for e in unit.entries], attempts=0, observations=0)
            session.add(row)
            rows.append(row)
        session.flush()
        audit.record(session, "scan_started", actor=started_by or trigger, object_type="scan_run",
                     object_repr=f"#{run.id} {kind} {value}",
                     detail={"trigger": trigger, "streams": with_streams, "units": len(units),
                             "zones": sorted(keys)})
        run_id, deadline = run.id, run.deadline
        messages = [(row.id, unit.zone, unit.sealed(keys[unit.zone])) for row, unit in zip(rows, units)]
    options = {"timeout_s": float(app.config.get("PROBE_TIMEOUT_S", 5.0)),
               "concurrency": int(app.config.get("PROBE_CONCURRENCY", 64)),
               "per_host_limit": int(app.config.get("PROBE_PER_HOST_LIMIT", 2)), "with_streams": with_streams,
               "ingest_queue": ingest_queue_of(app)}
    celery = celery_for(broker)
    for unit_id, zone, sealed in messages:
        # expires: a unit still queued at the deadline is dropped, never probed after its run closed.
        celery.send_task(PROBE_UNIT, args=[run_id, unit_id, zone, sealed, options], queue=queue_for(zone),
                         expires=deadline)
    celery.send_task(CLOSE_AT_DEADLINE, args=[run_id], queue=ingest_queue_of(app), eta=deadline)
    LOGGER.info("run %s: %d units sent to zones %s (deadline %s)", run_id, len(messages),
                ", ".join(sorted({z for _u, z, _s in messages})), deadline.isoformat())
    return run_id
