"""A scan: resolve the scope, find the targets, probe them and hand each observation to the ingest boundary.

The thin wire between :mod:`probes` and :mod:`cctv_monitor.scan.ingest`: answering cameras are recorded as
they complete (each in its own transaction, so an interrupted scan keeps what it read), silent addresses
after all answering ones (a camera that moved is not first marked offline at its old address).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Callable, Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from cctv_monitor.compliance.engine import SILENT
from cctv_monitor.credentials import CredentialPlan, DeviceMemory, SiteCredentials
from cctv_monitor.models import Site, utcnow
from cctv_monitor.scan.ingest import Ingestor, scope_of
from cctv_monitor.scan.recorder import Recorded
from cctv_monitor.scan.runs import RunRef, SessionFactory
from cctv_monitor.scan.scope import ScanScope, site_networks
from cctv_monitor.scan.settings import ScanSettings
from probes.results import Observation as ObsData
from probes.results import ProbeStatus
from probes.targets import Credential, Target
from probes.vocab import split_channel

LOGGER = logging.getLogger(__name__)

__all__ = ["CredentialProvider", "ProgressCallback", "ScanOutcome", "scan"]

#: The decrypted credentials stored for a site (the app decrypts with its key; tests pass their own).
CredentialProvider = Callable[[Site], Sequence[Credential]]

#: progress(done, total, address): called after each camera is recorded.
ProgressCallback = Callable[[int, int, str], None]


@dataclass
class ScanOutcome:
    """What the probing part of a run produced (the run is closed by the caller)."""

    total: int
    results: list[Recorded] = field(default_factory=list)


def scan(session_factory: SessionFactory, run: RunRef, *, settings: ScanSettings,
         credentials: CredentialProvider, typed: Sequence[Credential] = (), with_streams: bool = False,
         progress: ProgressCallback | None = None, keep_results: bool = False,
         observations: Iterable[ObsData] | None = None, interface: str | None = None) -> ScanOutcome:
    """Probe the run's target (or record ``observations`` made elsewhere instead) into the open ``run``.

    With ``interface``, WS-Discovery, SADP and Dahua discovery on it add the devices they find: those inside
    the scope's ranges are probed like swept ones; the others, and every device SADP reports as never
    activated, are recorded from what discovery said (no credential is sent to them).
    """
    session = session_factory()
    try:
        scope = scope_of(session, run, settings)
        ingestor = Ingestor(session, run, scope, keep_results=keep_results, autocommit=True)
        feed = _Feed(ingestor, run, settings)
        if observations is not None:
            given = list(observations)
            stored = ingestor.received(o.observation_id for o in given if o.observation_id)
            given = feed.ids([o for o in given if not o.observation_id or o.observation_id not in stored])
            ingestor.row.total = len(given)
            session.commit()
            for obs in sorted(given, key=lambda o: o.status in SILENT):
                feed.add(obs)
            return ScanOutcome(len(given), ingestor.recorder.results)
        plan = credential_plan(session, scope, settings, credentials, typed, ingestor)
        targets = discover(scope, ingestor, settings)
        unprobed = on_interface(interface, scope, targets, settings) if interface else []
        ingestor.row.total = len(targets) + len(unprobed)
        session.commit()
        LOGGER.info("scan run %s (%s): %d targets, %d discovered and not probed", run.id, run.target, len(targets),
                    len(unprobed))
        for obs in unprobed:
            feed.add(obs)
        asyncio.run(_probe_and_record(feed, targets, plan, settings, with_streams, progress))
        return ScanOutcome(len(targets) + len(unprobed), ingestor.recorder.results)
    finally:
        session.close()


class _Feed:
    """Gives each observation its id, records it, keeps the lease alive; a broken camera is skipped."""

    def __init__(self, ingestor: Ingestor, run: RunRef, settings: ScanSettings) -> None:
        self.ingestor = ingestor
        self.run = run
        self.settings = settings
        self.seq = 0
        self.renewed = time.monotonic()

    def ids(self, observations: list[ObsData]) -> list[ObsData]:
        """Observations with an id each (this run's id and a sequence for those made without one)."""
        out = []
        for obs in observations:
            self.seq += 1
            out.append(obs if obs.observation_id else obs.with_updates(observation_id=f"{self.run.uid}:{self.seq}"))
        return out

    def add(self, obs: ObsData) -> None:
        """Record one observation in its own transaction (which also renews the lease when due)."""
        if not obs.observation_id:
            obs = self.ids([obs])[0]
        if time.monotonic() - self.renewed > self.settings.lease_s / 3:
            self.ingestor.row.lease_expires = utcnow() + timedelta(seconds=self.settings.lease_s)
            self.renewed = time.monotonic()
        try:
            self.ingestor.add(obs)
        except Exception:  # noqa: BLE001 - one broken camera never stops a scan
            self.ingestor.session.rollback()
            LOGGER.exception("%s: recording the observation failed; camera skipped", obs.address)
            self.ingestor.forget_failed()


def credential_plan(session: Session, scope: ScanScope, settings: ScanSettings, provider: CredentialProvider,
                    typed: Sequence[Credential], ingestor: Ingestor) -> CredentialPlan:
    """Credentials per target: last good on the device, the sites holding its address, the typed ones."""
    def pack(site: Site) -> SiteCredentials:
        nets = site_networks(site)
        creds = (replace(c, source=f"site {site.code}") for c in provider(site))
        return SiteCredentials(tuple(nets), tuple(creds), site.project.agency_id if site.project else None,
                               max((n.prefixlen for n in nets), default=0))

    # Only sites whose ranges touch the scanned ranges can hold a scanned address (decrypt no more).
    sites = [pack(s) for s in session.scalars(select(Site).options(selectinload(Site.project)))
             if any(n.version == r.version and n.overlaps(r) for n in site_networks(s) for r in scope.networks)]
    plan = CredentialPlan(key=settings.secret_key, sites=sites, typed=list(typed),
                          max_attempts=settings.credential_attempts)
    if scope.default_project is not None:
        plan.agencies = frozenset({scope.default_project.agency_id})
        if scope.kind == "range":  # check --project P --range R: the operator chose both
            plan.scope_default, plan.scope_networks = [pack(s) for s in scope.default_project.sites], scope.networks
    elif scope.kind != "range":
        plan.agencies = frozenset(s.project.agency_id for s in scope.sites)
    plan.memory = {d.address: DeviceMemory(d.credential_ref, frozenset(d.rejected_credential_refs or ()))
                   for d in ingestor.recorder.devices.values()
                   if d.address and (d.credential_ref or d.rejected_credential_refs)}
    return plan


def discover(scope: ScanScope, ingestor: Ingestor, settings: ScanSettings) -> list[Target]:
    """Targets: sweep results, explicit entries and every known address in scope (to notice offline ones)."""
    from probes.discovery import sweep, sweep_timeouts

    connect_s, answer_s = sweep_timeouts(settings.probe_timeout_s)
    found: dict[str, Target] = {}
    latency: dict[str, float] = {}  # how long each found address took to answer the sweep

    async def run_sweeps() -> None:
        for ports, cidrs in scope.cidrs_by_ports.items():
            for target in await sweep(cidrs, ports, concurrency=256, timeout_s=connect_s, answer_timeout_s=answer_s,
                                      latency=latency):
                found.setdefault(target.address, target)

    if scope.cidrs_by_ports:
        asyncio.run(run_sweeps())
    answered = set(found)
    for target in scope.explicit:
        found.setdefault(target.address, target)
    site_ids = {s.id for s in scope.sites}
    project_ids = {p.id for p in scope.projects}
    recorder = ingestor.recorder
    for device in recorder.devices.values():
        if not device.address or device.address in found or split_channel(device.address)[1] is not None:
            # (a camera behind a recorder has no address of its own to probe: the recorder's probe reads it)
            continue
        # Only inside the scanned ranges: a device that moved out shows as missing until found in range again,
        # and a probe (with this scope's credentials) never follows an address the device itself reported.
        if scope.covers(device.address):
            try:
                found[device.address] = Target.parse(device.address)
            except ValueError:
                LOGGER.warning("device #%s has an unusable address %r; skipped", device.id, device.address)
    for entry in recorder.register.values():
        if entry.address and (entry.project_id in project_ids or entry.site_id in site_ids):
            try:
                target = Target.parse(entry.address, default_port=int(settings.ports[0]))
            except ValueError:
                continue
            found.setdefault(target.address, target)
    # Longest jobs first, so they overlap the bulk of the scan instead of trailing it: addresses that did not
    # answer the sweep (hung, dripping, very slow or gone), then those that answered slowly (a device that
    # takes a second per answer takes many seconds per probe), then the rest in address order.
    return sorted(found.values(), key=lambda t: (t.address in answered, -round(latency.get(t.address, 0.0), 1),
                                                 _sort_key(t.host, t.port)))


def on_interface(interface: str, scope: ScanScope, targets: list[Target], settings: ScanSettings) -> list[ObsData]:
    """Discovery on ``interface``: activated devices inside the scope join ``targets`` (probed); returns the
    observations of the others (outside the scope's ranges, or never activated), recorded without a probe."""
    from probes.discovered import discovered_observations
    from probes.discovery import ws_discover
    from probes.vendor_discovery import vendor_discover

    timeout_s = min(settings.probe_timeout_s, 3.0)
    with ThreadPoolExecutor(2, thread_name_prefix="discover") as pool:  # both listen for timeout_s: side by side
        wsd = pool.submit(ws_discover, interface, timeout_s=timeout_s)
        vendor = pool.submit(vendor_discover, interface, timeout_s=timeout_s)
        found = discovered_observations(wsd=wsd.result(), vendor=vendor.result())
    probed_hosts = {t.host for t in targets}
    unprobed: list[ObsData] = []
    for obs in found:
        if obs.status is ProbeStatus.NOT_ACTIVATED:
            # Nothing can be read before activation, and no credential goes to a device that has none.
            targets[:] = [t for t in targets if t.host != obs.host]
            unprobed.append(obs)
        elif obs.host in probed_hosts:
            continue  # the sweep (or the inventory) already has it: its probe says more
        elif scope.covers(obs.address):
            targets.append(Target.parse(obs.address, default_port=int(settings.ports[0])))
            probed_hosts.add(obs.host)
        else:
            unprobed.append(obs)  # outside the scope's ranges: recorded from what it said, never probed
    if unprobed:
        LOGGER.info("discovery on %s: %d devices recorded without a probe (outside the ranges or not activated)",
                    interface, len(unprobed))
    return unprobed


def _sort_key(host: str, port: int) -> tuple[Any, ...]:
    try:
        return (0, int(ipaddress.ip_address(host)), port)
    except ValueError:
        return (1, host, port)


async def _probe_and_record(feed: _Feed, targets: list[Target], creds: Callable[[Target], list[Credential]],
                            settings: ScanSettings, with_streams: bool, progress: ProgressCallback | None) -> None:
    """Probe all targets; record answering ones as they complete, silent ones at the end."""
    from probes.scan import probe_many

    total = len(targets)
    done = 0
    silent: list[ObsData] = []

    def tick(address: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            try:
                progress(done, total, address)
            except Exception:  # noqa: BLE001 - a broken progress bar never stops a scan
                LOGGER.exception("progress callback failed")

    if not targets:
        return
    async for obs in probe_many(targets, creds, concurrency=settings.probe_concurrency,
                                per_host_limit=settings.per_host_limit, with_streams=with_streams,
                                timeout_s=settings.probe_timeout_s, stream_workers=settings.stream_workers,
                                stream_memory_mb=settings.stream_memory_mb, stream_per_site=settings.stream_per_site,
                                sample_s=settings.stream_sample_s, stream_timeout_s=settings.stream_timeout_s):
        if obs.status in SILENT:
            silent.append(obs)
            tick(obs.address)
            continue
        feed.add(obs)
        tick(obs.address)
    for obs in silent:
        feed.add(obs)
