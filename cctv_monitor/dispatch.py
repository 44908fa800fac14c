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
from types import SimpleNamespace
from typing import Any, Callable

from celery import Celery
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from cctv_monitor import audit
from cctv_monitor.db import get_db
from cctv_monitor.models import Device, ScanRun, ScanUnit, Site, utcnow
from cctv_monitor.queueing import CLOSE_AT_DEADLINE, INGEST_QUEUE, PROBE_UNIT, make_celery
from cctv_monitor.scan.errors import ScanError
from cctv_monitor.scan.pipeline import credential_plan
from cctv_monitor.scan.runs import default_owner, hand_off, open_run
from cctv_monitor.scan.scope import ScanScope, resolve_scope, site_networks, target_name
from cctv_monitor.scan.settings import ScanSettings
from cctv_monitor.zones import CENTRAL, ZoneKeyError, load_keys, queue_for, seal
from probes.discovery import parse_cidrs
from probes.targets import Credential, Target

LOGGER = logging.getLogger(__name__)

__all__ = ["dispatch_scan", "zone_key_dir", "celery_for", "ingest_queue_of", "plan_units", "UnitPlan", "DISTRIBUTED_OWNER", "LEASE_MARGIN_S"]

#: Lease owner prefix of a distributed run: it lives by its lease (renewed by every batch) and its deadline.
DISTRIBUTED_OWNER = "zones"
#: The lease outlives the deadline by this much, so the deadline closes the run, not a reaper.
LEASE_MARGIN_S = 120.0
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
            key = (cred.username, cred.password, cred.ref, cred.source)
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


def _site_credentials(app: Flask) -> Callable[[Site], list[Credential]]:
    """A site's stored credentials, decrypted with the app's key (only to be sealed again for its zone)."""
    from cctv_monitor.crypto import decrypt_credentials

    def provide(site: Site) -> list[Credential]:
        return list(decrypt_credentials(app, site.credentials_encrypted)) if site.credentials_encrypted else []

    return provide


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
    known = SimpleNamespace(devices={d.id: d for d in session.scalars(select(Device))})
    # What the pipeline's credential plan reads of an ingestor: the known devices (credential memory).
    plan = credential_plan(session, scope, ScanSettings.from_mapping(app.config), _site_credentials(app), (),
                           SimpleNamespace(recorder=known))  # type: ignore[arg-type]
    site_nets = sorted(((n, s) for s in session.scalars(select(Site)) for n in site_networks(s)),
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
    """Open a distributed run and send its units to the zones' queues; returns the run id at once."""
    broker = app.config.get("BROKER_URL")
    if not broker:
        raise ScanError("CCTV_BROKER_URL is not set: a scan across zones needs the broker")
    deadline_s = float(deadline_s or app.config.get("RUN_DEADLINE_S") or 3600)
    unit_size = int(app.config.get("ZONE_UNIT_SIZE") or 64)
    settings = ScanSettings.from_mapping(app.config)
    factory = get_db(app).sessionmaker
    with factory() as session:
        scope = resolve_scope(session, kind, value, default_ports=settings.ports)
        units = plan_units(app, session, scope, unit_size)
        try:
            keys = {z: load_keys(zone_key_dir(app), z) for z in {u.zone for u in units}}
        except ZoneKeyError as exc:
            raise ScanError(str(exc)) from None
        sealed = [u.sealed(keys[u.zone]) for u in units]
    deadline = utcnow() + timedelta(seconds=deadline_s)
    ref = open_run(factory, target=target_name(kind, scope.value), source="worker",
                   owner=f"{DISTRIBUTED_OWNER}:{default_owner()}", deadline=deadline + timedelta(seconds=LEASE_MARGIN_S),
                   settings=settings, trigger=trigger, started_by=started_by, with_streams=with_streams)
    # The run is closed by the ingest worker, not here.
    hand_off(ref.id)
    with get_db(app).session_scope() as session:
        run = session.get(ScanRun, ref.id)
        run.deadline, run.distributed = deadline, True
        rows = [ScanUnit(scan_run_id=run.id, zone=u.zone, seq=seq, state="queued",
                         addresses=[e["h"] for e in u.entries], attempts=0, observations=0)
                for seq, u in enumerate(units)]
        session.add_all(rows)
        session.flush()
        audit.record(session, "scan_started", actor=started_by or trigger, object_type="scan_run",
                     object_repr=f"#{run.id} {kind} {value}",
                     detail={"trigger": trigger, "streams": with_streams, "units": len(units),
                             "zones": sorted(keys)})
        messages = [(row.id, unit.zone, token) for row, unit, token in zip(rows, units, sealed)]
    options = {"timeout_s": settings.probe_timeout_s, "concurrency": settings.probe_concurrency,
               "per_host_limit": settings.per_host_limit, "with_streams": with_streams,
               "ingest_queue": ingest_queue_of(app)}
    celery = celery_for(broker)
    for unit_id, zone, token in messages:
        # expires: a unit still queued at the deadline is dropped, never probed after its run closed.
        celery.send_task(PROBE_UNIT, args=[ref.id, unit_id, zone, token, options], queue=queue_for(zone),
                         expires=deadline)
    celery.send_task(CLOSE_AT_DEADLINE, args=[ref.id], queue=ingest_queue_of(app), eta=deadline)
    LOGGER.info("run %s: %d units sent to zones %s (deadline %s)", ref.id, len(messages),
                ", ".join(sorted({z for _u, z, _s in messages})), deadline.isoformat())
    return ref.id
