"""Scan pipeline: probe a site, project, agency or address range and turn what answered into the inventory.

One run goes start -> run -> terminate (NetBox's job idea)::

    run_id = run_scan(app, "project", "CR-MS-2568-001", with_streams=True)

1. resolve the scope (sites, projects, address ranges) and the targets: a sweep of the site ranges, the
   explicit ``host:port`` entries, and every address a device of the scope was last seen at (so a camera
   that stopped answering gets probed and marked offline);
2. probe them (:func:`probes.scan.probe_many`, credentials from the site's encrypted settings);
3. per answering camera, in ONE transaction committed at once: identity (MAC, then serial, then address;
   garbage and shared MACs are flagged, never merged), the observation row, attribute changes since the
   last good observation (drift), project matching (device register first, then site address ranges),
   compliance evaluation, finding sync, status and alert events;
4. silent addresses (nothing answered) are recorded after the answering ones, so a camera that moved to a
   new address is not first marked offline at the old one;
5. registered devices not seen are marked missing, project findings (count shortfall) are stored, counts
   are written and the alert digests delivered.

Because every camera is committed on its own, an interrupted run keeps what it read; the run row is
marked ``interrupted`` (Ctrl-C, SIGTERM) or, after a SIGKILL, by :func:`mark_dead_runs_interrupted` on the
next start. Nothing is half-written: a camera's rows land together or not at all.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Callable, Iterable, Sequence

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from cctv_monitor import audit
from cctv_monitor.compliance import (
    DeviceStatus,
    FindingResult,
    Spec,
    SpecError,
    derive_status,
    evaluate_device,
    evaluate_project,
    main_profile,
)
from cctv_monitor.compliance.engine import SILENT
from cctv_monitor.credentials import (
    DEFAULT_MAX_ATTEMPTS,
    CredentialPlan,
    DeviceMemory,
    SiteCredentials,
    remember,
)
from cctv_monitor.db import get_db
from cctv_monitor.homes import ProjectRanges
from cctv_monitor.recorders import is_recorder, record_expanded, recorder_spec
from cctv_monitor.models import (
    Agency,
    AlertEvent,
    Device,
    DeviceChange,
    Finding,
    Observation,
    Project,
    RegisterEntry,
    ScanRun,
    Site,
    utcnow,
)
from cctv_monitor.statuses import ScanState
from probes.results import Observation as ObsData
from probes.results import ProbeStatus
from probes.targets import Credential, Target
from probes.vocab import host_of, is_placeholder_serial, is_valid_mac, split_channel

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
    "is_valid_mac",
    "is_placeholder_serial",
    "ProgressCallback",
]

TARGET_KINDS = ("site", "project", "agency", "range")

#: progress(done, total, address): called after each camera is recorded.
ProgressCallback = Callable[[int, int, str], None]

#: Device columns and their lengths: camera strings are hostile and PostgreSQL refuses over-long values.
_LIMITS = {"mac": 17, "serial": 128, "manufacturer": 255, "model": 255, "firmware": 255, "hardware_id": 255,
           "name": 500, "location_text": 500, "address": 64, "encoding": 16}

#: Findings of these rules about the whole project, not one camera.
_PROJECT_RULES = ("count_shortfall", "registered_missing")


class ScanError(Exception):
    """A scan cannot start or failed; the message says why."""


class ScanTargetError(ScanError):
    """The scan target (site, project, agency, range) does not exist or is malformed."""


class ScanAlreadyRunning(ScanError):
    """A run of the same target is in progress (here or in another live process)."""


# -- identity helpers ----------------------------------------------------------------------------------------

def _clip(value: Any, limit: int) -> Any:
    """Clip a camera string to a column length and drop NUL (PostgreSQL text cannot hold it)."""
    if not isinstance(value, str):
        return value
    value = value.replace("\x00", "")
    return value[:limit]


def _scrub(value: Any) -> Any:
    """Remove NUL characters from every string of a JSON-able structure."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _parse_time(text: str | None) -> datetime:
    if text:
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    return utcnow()


# -- scope ---------------------------------------------------------------------------------------------------

@dataclass
class ScanScope:
    """What one run covers: sites and projects (for register and missing checks) and where to probe."""

    kind: str
    value: str
    sites: list[Site] = field(default_factory=list)
    projects: list[Project] = field(default_factory=list)  # whose register the run must account for
    cidrs_by_ports: dict[tuple[int, ...], list[str]] = field(default_factory=dict)  # sweep groups
    explicit: list[Target] = field(default_factory=list)  # host:port entries of the sites
    networks: list[Any] = field(default_factory=list)  # ip networks covered (known devices inside are probed)
    default_project: Project | None = None  # check: devices found belong to this project

    def covers(self, address: str | None) -> bool:
        """True when ``address`` (host or host:port) falls inside the scanned ranges."""
        if not address:
            return False
        host = host_of(address)
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return any(t.host == host for t in self.explicit)
        return any(ip in net for net in self.networks) or any(t.host == host for t in self.explicit)


def _site_networks(site: Site) -> list[Any]:
    nets = []
    for entry in site.address_ranges or ():
        text = str(entry).strip()
        try:
            nets.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            try:
                nets.append(ipaddress.ip_network(host_of(text)))
            except ValueError:
                continue
    return nets


def resolve_scope(session: Session, kind: str, value: str, *, default_ports: Sequence[int]) -> ScanScope:
    """Sites, projects and address ranges of a target; :class:`ScanTargetError` names what is wrong."""
    if kind not in TARGET_KINDS:
        raise ScanTargetError(f"unknown scan target kind {kind!r}: expected one of {', '.join(TARGET_KINDS)}")
    value = (value or "").strip()
    if not value:
        raise ScanTargetError(f"--{kind} needs a value")
    scope = ScanScope(kind=kind, value=value)
    if kind == "range":
        for part in value.split(","):
            part = part.strip()
            try:
                net = ipaddress.ip_network(part, strict=False)
            except ValueError as exc:
                raise ScanTargetError(f"invalid address range {part!r}: {exc} (expected CIDR like 10.1.2.0/24)") \
                    from None
            scope.networks.append(net)
            scope.cidrs_by_ports.setdefault(tuple(default_ports), []).append(str(net))
        return scope
    if kind == "site":
        project_code, sep, site_code = value.rpartition("/")
        query = select(Site).where(Site.code == site_code)
        if sep:
            query = query.join(Project).where(Project.code == project_code)
        sites = list(session.scalars(query))
        if not sites:
            raise ScanTargetError(f"no site with code {value!r} (see the project files in config/projects)")
        if len(sites) > 1:
            names = ", ".join(f"{s.project.code}/{s.code}" for s in sites)
            raise ScanTargetError(f"site code {value!r} is used by several projects; write PROJECT/SITE: {names}")
        scope.sites = sites
    elif kind == "project":
        project = session.scalar(select(Project).where(Project.code == value))
        if project is None:
            raise ScanTargetError(f"no project with code {value!r} (import it first: see config/projects)")
        scope.projects = [project]
        scope.sites = list(project.sites)
    elif kind == "agency":
        agency = session.scalar(select(Agency).where(Agency.code == value))
        if agency is None:
            raise ScanTargetError(f"no agency with code {value!r}")
        scope.projects = list(agency.projects)
        scope.sites = [s for p in scope.projects for s in p.sites]
    for site in scope.sites:
        ports = tuple(int(p) for p in (site.ports or default_ports))
        for entry in site.address_ranges or ():
            text = str(entry).strip()
            if "/" in text:
                try:
                    net = ipaddress.ip_network(text, strict=False)
                except ValueError as exc:
                    raise ScanTargetError(f"site {site.code}: invalid address range {text!r}: {exc}") from None
                scope.networks.append(net)
                scope.cidrs_by_ports.setdefault(ports, []).append(str(net))
            else:
                try:
                    target = Target.parse(text, default_port=ports[0])
                except ValueError as exc:
                    raise ScanTargetError(f"site {site.code}: invalid address {text!r}: {exc}") from None
                if ":" not in text:  # a bare host: sweep it on the site's ports
                    scope.cidrs_by_ports.setdefault(ports, []).append(target.host)
                else:
                    scope.explicit.append(target)
                try:
                    scope.networks.append(ipaddress.ip_network(target.host))
                except ValueError:
                    pass
    if not scope.sites:
        raise ScanTargetError(f"{kind} {value!r} has no sites with address ranges to scan")
    return scope


# -- credentials and specs -----------------------------------------------------------------------------------

def _decrypt(app: Flask, token: str | None) -> list[Credential]:
    """Site credentials from their encrypted token (module name differs between versions)."""
    if not token:
        return []
    try:
        from cctv_monitor.secrets import decrypt_credentials  # type: ignore[import-not-found]
    except ImportError:
        from cctv_monitor.crypto import decrypt_credentials
    return list(decrypt_credentials(app, token))


_NO_PROJECT_SPEC = Spec(code="(none)", name_th="ไม่อยู่ในโครงการใด", name_en="Not in any project",
                        device_class="fixed_outdoor", requirements=MappingProxyType({}))


def spec_of(project: Project | None, *, recorder: bool = False) -> Spec:
    """The parsed spec profile of ``project`` for its cameras or its recorders (no project: always-on rules)."""
    if project is None:
        return _NO_PROJECT_SPEC
    if recorder and project.recorder_spec_profile is not None:
        return recorder_spec(project)
    try:
        from cctv_monitor.registry import spec_for_project  # type: ignore[attr-defined]
    except ImportError:
        spec_for_project = None
    if spec_for_project is not None:
        return spec_for_project(project)
    profile = project.spec_profile
    try:
        return Spec.from_mapping(profile.requirements, code=profile.code)
    except SpecError as exc:
        raise ScanError(f"spec profile {profile.code} of project {project.code} is invalid: {exc}") from exc


# -- the recorder: one camera at a time into the database ----------------------------------------------------

@dataclass
class _LastGood:
    encoding: str | None
    width: int | None
    height: int | None
    fps: float | None
    measured_width: int | None
    measured_height: int | None


@dataclass
class Recorded:
    """What recording one observation produced (for the CLI, ``check`` and tests)."""

    obs: ObsData
    device_id: int | None
    status: str | None
    findings: list[FindingResult]
    project_id: int | None
    registered: bool


class ScanRecorder:
    """Writes observations of one run: identity, drift, matching, evaluation, findings, status, alerts.

    Everything it needs is loaded once at the start (devices, register, sites, active findings, last good
    observations), so recording a camera costs only its own inserts and one commit (no N+1 queries).
    """

    def __init__(self, session: Session, run: ScanRun, scope: ScanScope, *, keep_results: bool = True) -> None:
        """Load the indexes for ``run`` over ``scope``."""
        self.session = session
        self.run = run
        self.scope = scope
        self.devices: dict[int, Device] = {d.id: d for d in session.scalars(select(Device))}
        self.by_mac: dict[str, int] = {}
        self.by_serial: dict[str, int] = {}
        self.by_address: dict[str, int] = {}
        for device in self.devices.values():
            self._index(device)
        entries = session.scalars(select(RegisterEntry).options(selectinload(RegisterEntry.project)))
        self.register_by_mac: dict[str, RegisterEntry] = {}
        self.register_by_serial: dict[str, RegisterEntry] = {}
        self.register: dict[int, RegisterEntry] = {}
        self.register_by_address: dict[str, RegisterEntry] = {}
        for entry in entries:
            self.register[entry.id] = entry
            if entry.address:
                self.register_by_address[entry.address] = entry
            if entry.mac:
                self.register_by_mac[entry.mac.lower()] = entry
            if entry.serial and not is_placeholder_serial(entry.serial):
                self.register_by_serial[entry.serial] = entry
        self.site_nets: list[tuple[Any, Site]] = []
        for site in session.scalars(select(Site).options(selectinload(Site.project))):
            for net in _site_networks(site):
                self.site_nets.append((net, site))
        # Most specific range first, so a /28 inside a /24 wins.
        self.site_nets.sort(key=lambda pair: pair[0].prefixlen, reverse=True)
        self.homes = ProjectRanges((net, site.project_id) for net, site in self.site_nets)
        self.active: dict[int, dict[tuple[str, str | None], Finding]] = {}
        for finding in session.scalars(select(Finding).where(Finding.active.is_(True),
                                                             Finding.device_id.is_not(None))):
            self.active.setdefault(finding.device_id, {})[(finding.rule_id, finding.subject)] = finding
        self.last_good = self._load_last_good()
        self.specs: dict[tuple[int | None, bool], Spec] = {}
        self.seen_this_run: dict[int, str] = {}  # device id -> address it answered at
        self.mac_claims: dict[str, tuple[int, str]] = {}  # mac -> (device id, address) in this run
        # Full per-camera results only when the caller wants them (``check``, tests): at 10,000 cameras they
        # would hold every observation in memory; the project counts need only this counter.
        self.keep_results = keep_results
        self.results: list[Recorded] = []
        self.answered_by_project: dict[int | None, int] = {}

    def _done(self, result: Recorded, answered: bool) -> None:
        if answered:
            self.answered_by_project[result.project_id] = self.answered_by_project.get(result.project_id, 0) + 1
        if self.keep_results:
            self.results.append(result)

    # indexes
    def _index(self, device: Device) -> None:
        for mac in [device.mac, *(device.macs or [])]:
            if mac and is_valid_mac(mac):
                self.by_mac.setdefault(mac, device.id)
        if device.serial and not is_placeholder_serial(device.serial):
            self.by_serial.setdefault(device.serial, device.id)
        if device.address:
            self.by_address[device.address] = device.id

    def _load_last_good(self) -> dict[int, _LastGood]:
        latest = (select(Observation.device_id, func.max(Observation.id).label("oid"))
                  .where(Observation.probe_status == ProbeStatus.OK.value, Observation.device_id.is_not(None))
                  .group_by(Observation.device_id).subquery())
        rows = self.session.execute(
            select(Observation.device_id, Observation.encoding, Observation.width, Observation.height,
                   Observation.fps, Observation.measured_width, Observation.measured_height)
            .join(latest, Observation.id == latest.c.oid))
        return {r[0]: _LastGood(*r[1:]) for r in rows}

    def spec_for(self, project: Project | None, *, recorder: bool = False) -> Spec:
        """Parsed spec per project and device class (camera or recorder), parsed once per run."""
        key = (project.id if project is not None else None, recorder)
        if key not in self.specs:
            self.specs[key] = spec_of(project, recorder=recorder)
        return self.specs[key]

    # matching
    def _site_for(self, address: str) -> Site | None:
        try:
            ip = ipaddress.ip_address(host_of(address))
        except ValueError:
            return None
        for net, site in self.site_nets:
            if ip in net:
                return site
        return None

    def _register_entry(self, macs: Sequence[str], serial: str | None) -> RegisterEntry | None:
        for mac in macs:
            entry = self.register_by_mac.get(mac)
            if entry is not None:
                return entry
        if serial and not is_placeholder_serial(serial):
            return self.register_by_serial.get(serial)
        return None

    # identity
    def _identify(self, obs: ObsData) -> tuple[Device | None, list[str], list[str]]:
        """Find the device an answering observation belongs to: (device or None, usable MACs, conflicts)."""
        ident = obs.device
        macs = list(dict.fromkeys(m.lower() for m in (ident.macs if ident else ()) if m))
        serial = ident.serial if ident else None
        conflicts: list[str] = []
        usable = []
        for mac in macs:
            if not is_valid_mac(mac):
                conflicts.append(f"garbage MAC {mac} ignored for identity")
                continue
            claim = self.mac_claims.get(mac)
            if claim is not None and claim[1] != obs.address:
                other = self.devices.get(claim[0])
                conflicts.append(f"MAC {mac} is also reported by {claim[1]}"
                                 f"{f' (device #{other.id})' if other else ''}: shared MAC, not merged")
                if other is not None:
                    self._flag(other, f"MAC {mac} is also reported by {obs.address}: shared MAC, not merged")
                continue
            usable.append(mac)
        real_serial = serial if serial and not is_placeholder_serial(serial) else None
        if serial and not real_serial:
            conflicts.append(f"placeholder serial {serial!r} ignored for identity")
        device = None
        for mac in usable:
            device_id = self.by_mac.get(mac)
            if device_id is None:
                continue
            candidate = self.devices[device_id]
            if real_serial and candidate.serial and not is_placeholder_serial(candidate.serial) \
                    and candidate.serial != real_serial:
                conflicts.append(f"MAC {mac} belongs to device #{candidate.id} with serial {candidate.serial!r}, "
                                 f"but this device reports serial {real_serial!r}: not merged")
                continue
            if self._foreign_move(candidate, obs.address, conflicts, f"MAC {mac}"):
                continue
            device = candidate
            break
        if device is None and real_serial:
            device_id = self.by_serial.get(real_serial)
            if device_id is not None:
                candidate = self.devices[device_id]
                cand_mac = candidate.mac if candidate.mac and is_valid_mac(candidate.mac) else None
                if cand_mac and usable and cand_mac not in usable:
                    conflicts.append(f"serial {real_serial!r} belongs to device #{candidate.id} with MAC "
                                     f"{cand_mac}, but this device reports {', '.join(usable)}: not merged")
                elif not self._foreign_move(candidate, obs.address, conflicts, f"serial {real_serial!r}"):
                    device = candidate
        if device is None and not usable and not real_serial:
            # No identity of its own: the address is all we have (flagged so users know it is weak).
            device_id = self.by_address.get(obs.address)
            if device_id is not None:
                device = self.devices[device_id]
            conflicts.append("no usable MAC or serial: identified by address only")
        if device is not None and device.id in self.seen_this_run and self.seen_this_run[device.id] != obs.address:
            conflicts.append(f"same identity as {self.seen_this_run[device.id]} (device #{device.id}) "
                             "in this scan: not merged")
            device = None
        return device, usable, conflicts

    def _at_home(self, project_id: int | None, address: str) -> bool:
        default = self.scope.default_project  # a check of a range: the operator put the project there
        return self.homes.holds(project_id, address) or (default is not None and default.id == project_id
                                                         and self.scope.covers(address))

    def _foreign_move(self, candidate: Device, address: str, conflicts: list[str], what: str) -> bool:
        """True (and both devices flagged) when ``candidate`` of a project would move outside its ranges."""
        if candidate.project_id is None or candidate.address == address or self._at_home(candidate.project_id, address):
            return False
        conflicts.append(f"{what} belongs to device #{candidate.id} of another project at {candidate.address}, "
                         f"but {address} lies outside that project's site ranges: not merged")
        self._flag(candidate, f"{what} is also reported by {address}, outside this project's site ranges: "
                              "not merged, nothing changed")
        return True

    def _flag(self, device: Device, text: str) -> None:
        current = device.identity_conflict or ""
        if text not in current:
            device.identity_conflict = _clip(f"{current}\n{text}".strip(), 4000)

    # recording
    def record_answering(self, obs: ObsData) -> Recorded:
        """Record one observation where something answered (ok or a readable failure); commits."""
        session = self.session
        now = _parse_time(obs.observed_at)
        device, macs, conflicts = self._identify(obs)
        ident = obs.device
        is_new = device is None
        if device is None:
            device = Device(first_seen=now, status=DeviceStatus.UNKNOWN.value, macs=[])
            session.add(device)
        seen_before = device.last_seen is not None
        old_status = device.status
        changes: list[tuple[str, Any, Any]] = []

        def assign(attr: str, value: Any, track: bool = True) -> None:
            value = _clip(value, _LIMITS.get(attr, 10_000))
            if value is None or value == "":
                return
            old = getattr(device, attr)
            if old != value:
                if track and not is_new and old is not None:
                    changes.append((attr, old, value))
                setattr(device, attr, value)

        if ident is not None:
            for attr in ("manufacturer", "model", "firmware", "hardware_id"):
                assign(attr, getattr(ident, attr))
            assign("serial", ident.serial)
            assign("name", ident.name, track=False)
            assign("location_text", ident.location, track=False)
            if macs:
                assign("mac", macs[0])
            all_macs = [m.lower() for m in ident.macs]
            if all_macs and all_macs != list(device.macs or []):
                device.macs = [_clip(m, 17) for m in all_macs]
        assign("address", obs.address)
        if obs.credential_ref or obs.rejected_refs:
            memory = remember(DeviceMemory(device.credential_ref, frozenset(device.rejected_credential_refs or ())),
                              obs.credential_ref, obs.rejected_refs)
            device.credential_ref, device.rejected_credential_refs = memory.worked, sorted(memory.rejected)
        for text in conflicts:
            self._flag(device, text)
        if obs.ok and not conflicts and device.identity_conflict and ident is not None and macs:
            # A clean read with a valid MAC and no clash this time: earlier doubts no longer apply.
            device.identity_conflict = None

        # project matching: register (MAC, serial), then the site the address belongs to
        entry = self._register_entry(macs, ident.serial if ident else None)
        if entry is not None and not self._at_home(entry.project_id, obs.address):
            # A register match counts only inside that project's site ranges (no hijack across agencies).
            text = (f"reports the MAC/serial of register entry {entry.label or entry.id} of project "
                    f"{entry.project.code}, but {obs.address} lies outside that project's site ranges: not matched")
            conflicts.append(text)
            self._flag(device, text)
            owner = self._device_for_entry(entry)
            if owner is not None and owner is not device:
                self._flag(owner, f"its MAC/serial is also reported by {obs.address}, outside this project's site "
                                  "ranges: not matched, nothing changed")
            entry = None
        if entry is None and (obs.channel is not None  # registers may name a camera by recorder + channel
                              or not macs and not (ident and ident.serial and not is_placeholder_serial(ident.serial))):
            # Nothing to identify it by (e.g. ONVIF disabled): the register's expected address is the best link.
            entry = self.register_by_address.get(obs.address)
            if entry is not None and ident is None and not device.mac and entry.mac:
                device.mac = entry.mac.lower()
        site = None
        if entry is not None:
            project = entry.project
            site = session.get(Site, entry.site_id) if entry.site_id else self._site_for(obs.address)
            registered = True
        else:
            site = self._site_for(obs.address)
            project = site.project if site is not None else self.scope.default_project
            registered = False
        device.register_entry_id = entry.id if entry else None
        device.registered = registered
        device.project_id = project.id if project else None
        device.agency_id = project.agency_id if project else None
        device.site_id = site.id if site is not None and (project is None or site.project_id == project.id) else None

        spec = self.spec_for(project, recorder=is_recorder(obs))
        findings = evaluate_device(obs, spec, registered=registered)
        status = derive_status(obs, findings, registered=registered, seen_before=seen_before)

        session.flush()  # device id for the rows below
        row = self._observation_row(obs, device.id, now)
        session.add(row)
        session.flush()
        self._drift(device, row, obs, is_new, changes)
        for attr, old, new in changes:
            session.add(DeviceChange(device_id=device.id, observation_id=row.id, scan_run_id=self.run.id,
                                     attribute=attr, old_value=str(old), new_value=str(new), changed_at=now))
        new_blocking = self._sync_findings(device, row, findings, now)
        device.last_seen = now
        if obs.ok:
            device.last_ok = now
        device.last_observation_id = row.id
        self._set_status(device, old_status, status.value, now, is_new=is_new, new_blocking=new_blocking,
                         changes=changes)
        self.run.done = (self.run.done or 0) + 1
        session.commit()
        self._after_commit(device, macs, obs, row)
        result = Recorded(obs, device.id, status.value, findings, device.project_id, registered)
        self._done(result, answered=obs.status not in SILENT)
        return result

    def record_silent(self, obs: ObsData) -> Recorded | None:
        """Record an address where nothing answered: offline for a known device, else nothing to keep."""
        device_id = self.by_address.get(obs.address)
        device = self.devices.get(device_id) if device_id is not None else None
        if device is None or device.id in self.seen_this_run:
            return None  # an empty address, or the device answered elsewhere in this run (moved)
        now = _parse_time(obs.observed_at)
        seen_before = device.last_seen is not None
        findings = evaluate_device(obs, self.spec_for(device.project), registered=device.registered)
        status = derive_status(obs, findings, registered=device.registered, seen_before=seen_before)
        old_status = device.status
        row = self._observation_row(obs, device.id, now)
        self.session.add(row)
        self.session.flush()
        self._sync_findings(device, row, findings, now)
        device.last_observation_id = row.id
        self._set_status(device, old_status, status.value, now, is_new=False, new_blocking=[], changes=[])
        self.run.done = (self.run.done or 0) + 1
        self.session.commit()
        self.seen_this_run.setdefault(device.id, obs.address)
        result = Recorded(obs, device.id, status.value, findings, device.project_id, device.registered)
        self._done(result, answered=False)
        return result

    def _observation_row(self, obs: ObsData, device_id: int, now: datetime) -> Observation:
        main = main_profile(obs)
        check = None
        if main is not None:
            check = next((c for c in obs.stream_checks if c.profile_token == main.token), None)
        thumb = next((c.thumbnail_jpeg for c in obs.stream_checks if c.thumbnail_jpeg), None)
        data = obs.to_dict()
        for item in data.get("stream_checks") or ():
            item.pop("thumbnail_jpeg", None)
        return Observation(
            scan_run_id=self.run.id, device_id=device_id, address=_clip(obs.address, 64), observed_at=now,
            probe_status=obs.status.value, error=_clip(obs.error, 4000),
            firmware=_clip(obs.device.firmware if obs.device else None, 255),
            encoding=_clip(main.encoding if main else None, 16), width=main.width if main else None,
            height=main.height if main else None, fps=main.fps if main else None,
            measured_width=check.width if check and check.ok else None,
            measured_height=check.height if check and check.ok else None,
            measured_fps=check.fps if check and check.ok else None,
            clock_offset_s=obs.clock_offset_s, data=_scrub(data), thumbnail_jpeg=thumb)

    def _drift(self, device: Device, row: Observation, obs: ObsData, is_new: bool,
               changes: list[tuple[str, Any, Any]]) -> None:
        """Media drift against the device's last good observation (resolution lowered, codec, fps)."""
        if is_new or not obs.ok:
            return
        last = self.last_good.get(device.id)
        if last is None:
            return
        pairs = [("resolution", _res(last.width, last.height), _res(row.width, row.height)),
                 ("encoding", last.encoding, row.encoding)]
        if last.fps is not None and row.fps is not None and abs(last.fps - row.fps) >= 0.5:
            pairs.append(("fps", f"{last.fps:g}", f"{row.fps:g}"))
        if row.measured_width is not None and last.measured_width is not None:
            pairs.append(("measured_resolution", _res(last.measured_width, last.measured_height),
                          _res(row.measured_width, row.measured_height)))
        for attr, old, new in pairs:
            if old is not None and new is not None and old != new:
                changes.append((attr, old, new))

    def _sync_findings(self, device: Device, row: Observation, findings: Sequence[FindingResult],
                       now: datetime) -> list[FindingResult]:
        """Keep active findings in step: new ones inserted, repeated ones refreshed, gone ones resolved."""
        current = self.active.setdefault(device.id, {})
        wanted: dict[tuple[str, str | None], FindingResult] = {}
        for f in findings:
            wanted.setdefault((f.rule_id, _clip(f.subject, 128)), f)
        new_blocking = []
        for key, f in wanted.items():
            existing = current.get(key)
            if existing is None:
                existing = Finding(device_id=device.id, project_id=device.project_id, rule_id=f.rule_id,
                                   severity=f.severity.value, subject=key[1], first_seen=now,
                                   register_entry_id=device.register_entry_id)
                self.session.add(existing)
                current[key] = existing
                if f.blocking:
                    new_blocking.append(f)
            existing.scan_run_id = self.run.id
            existing.observation_id = row.id
            existing.project_id = device.project_id
            existing.severity = f.severity.value
            existing.expected = _scrub(f.expected)
            existing.observed = _scrub(f.observed)
            existing.source = f.source
            existing.message_th = _scrub(f.message_th)
            existing.message_en = _scrub(f.message_en)
            existing.last_seen = now
        for key in [k for k in current if k not in wanted]:
            gone = current.pop(key)
            gone.active = False
            gone.resolved_at = now
        return new_blocking

    def _set_status(self, device: Device, old: str, new: str, now: datetime, *, is_new: bool,
                    new_blocking: Sequence[FindingResult], changes: Sequence[tuple[str, Any, Any]]) -> None:
        if old != new:
            device.status = new
            device.status_changed = now
        for kind, th, en in alert_kinds(device, old, new, is_new=is_new, new_blocking=new_blocking):
            self.session.add(AlertEvent(agency_id=device.agency_id, device_id=device.id, scan_run_id=self.run.id,
                                        kind=kind, message_th=th, message_en=en))

    def _after_commit(self, device: Device, macs: Sequence[str], obs: ObsData, row: Observation) -> None:
        """Update the in-memory indexes only once the rows are safely in the database."""
        self.devices[device.id] = device
        self._index(device)
        for mac in macs:
            self.mac_claims.setdefault(mac, (device.id, obs.address))
            self.by_mac.setdefault(mac, device.id)
        self.by_address[obs.address] = device.id
        self.seen_this_run[device.id] = obs.address
        if obs.ok and row.width is not None:
            self.last_good[device.id] = _LastGood(row.encoding, row.width, row.height, row.fps,
                                                  row.measured_width, row.measured_height)

    # end of run
    def finish_registers(self) -> None:
        """Registered devices of the scope not seen: missing (never answered) or offline (answered before)."""
        if self.scope.kind == "range":
            return
        site_ids = {s.id for s in self.scope.sites}
        project_ids = {p.id for p in self.scope.projects}
        seen_entries = {self.devices[d].register_entry_id for d in self.seen_this_run if d in self.devices}
        for entry in self.register.values():
            in_scope = entry.project_id in project_ids or (entry.site_id in site_ids if entry.site_id else False)
            if not in_scope or entry.id in seen_entries:
                continue
            device = self._device_for_entry(entry)
            if device is not None and device.id in self.seen_this_run:
                continue
            self._mark_not_seen(entry, device)
        for project in self.scope.projects:
            self._project_findings(project)
        self.session.commit()

    def _device_for_entry(self, entry: RegisterEntry) -> Device | None:
        for device_id in (self.by_mac.get((entry.mac or "").lower()), self.by_serial.get(entry.serial or "")):
            device = self.devices.get(device_id) if device_id is not None else None
            # A device claiming the entry's MAC/serial outside the project's ranges is not the project's.
            if device is not None and (not device.address or self._at_home(entry.project_id, device.address)):
                return device
        for device in self.devices.values():
            if device.register_entry_id == entry.id:
                return device
        return None

    def _mark_not_seen(self, entry: RegisterEntry, device: Device | None) -> None:
        now = utcnow()
        is_new = device is None
        if device is None:
            # A placeholder so the inventory lists the registered camera the scan could not find.
            device = Device(mac=_clip(entry.mac.lower(), 17) if entry.mac else None, serial=entry.serial,
                            macs=[entry.mac.lower()] if entry.mac else [], address=entry.address,
                            name=entry.label, location_text=entry.location, status=DeviceStatus.UNKNOWN.value)
            self.session.add(device)
        device.registered = True
        device.register_entry_id = entry.id
        device.project_id = entry.project_id
        device.agency_id = entry.project.agency_id
        device.site_id = entry.site_id
        seen_before = device.last_seen is not None
        status = derive_status(None, [], registered=True, seen_before=seen_before)
        self.session.flush()
        if is_new:
            self.devices[device.id] = device
            self._index(device)
        old = device.status
        label = entry.label or entry.mac or entry.serial or f"#{entry.id}"
        finding = FindingResult(rule_id="registered_missing", severity=_severity("registered_missing"),
                                expected="seen in the scan", observed="not found", source=None,
                                message_th=f"ไม่พบกล้อง {label} ที่ลงทะเบียนไว้ในการสแกน",
                                message_en=f"Registered camera {label} was not found by the scan")
        current = self.active.setdefault(device.id, {})
        if status is DeviceStatus.MISSING and ("registered_missing", None) not in current:
            row = Finding(device_id=device.id, project_id=device.project_id, register_entry_id=entry.id,
                          scan_run_id=self.run.id, rule_id=finding.rule_id, severity=finding.severity.value,
                          expected=finding.expected, observed=finding.observed, message_th=finding.message_th,
                          message_en=finding.message_en, first_seen=now, last_seen=now)
            self.session.add(row)
            current[("registered_missing", None)] = row
        elif ("registered_missing", None) in current:
            current[("registered_missing", None)].last_seen = now
        self._set_status(device, old, status.value, now, is_new=is_new, new_blocking=[], changes=[])

    def _project_findings(self, project: Project) -> None:
        """Count shortfall of the project (approved cameras vs registered cameras that answered)."""
        now = utcnow()
        spec = self.spec_for(project)
        found = self.answered_by_project.get(project.id, 0)
        results = evaluate_project(spec, approved_count=project.approved_count or 0, found_count=found)
        existing = {(f.rule_id, f.subject): f for f in self.session.scalars(
            select(Finding).where(Finding.project_id == project.id, Finding.device_id.is_(None),
                                  Finding.active.is_(True)))}
        wanted = {(f.rule_id, f.subject): f for f in results}
        for key, f in wanted.items():
            row = existing.get(key)
            if row is None:
                row = Finding(project_id=project.id, rule_id=f.rule_id, severity=f.severity.value, subject=f.subject,
                              first_seen=now, message_th=f.message_th, message_en=f.message_en)
                self.session.add(row)
            row.scan_run_id = self.run.id
            row.expected, row.observed, row.source = f.expected, f.observed, f.source
            row.message_th, row.message_en, row.last_seen = f.message_th, f.message_en, now
        for key, row in existing.items():
            if key not in wanted:
                row.active = False
                row.resolved_at = now


def _severity(rule_id: str) -> Any:
    from cctv_monitor.compliance.rules import ENGINE_RULES

    return ENGINE_RULES[rule_id]


def _res(width: int | None, height: int | None) -> str | None:
    if width is None or height is None:
        return None
    return f"{width}x{height}"


def _label(device: Device) -> str:
    parts = [p for p in (device.manufacturer, device.model) if p]
    return f"{' '.join(parts) or 'camera'} {device.address or device.mac or device.serial or f'#{device.id}'}"


_ANSWERING = {DeviceStatus.COMPLIANT.value, DeviceStatus.NON_COMPLIANT.value, DeviceStatus.UNREGISTERED.value,
              DeviceStatus.UNREACHABLE.value}


def alert_kinds(device: Device, old: str, new: str, *, is_new: bool,
                new_blocking: Sequence[FindingResult]) -> list[tuple[str, str, str]]:
    """The alert events a state change deserves: (kind, Thai message, English message). Changes only."""
    label = _label(device)
    events: list[tuple[str, str, str]] = []
    if new == DeviceStatus.OFFLINE.value and old != new:
        events.append(("offline", f"กล้อง {label} ออฟไลน์ (ไม่ตอบสนอง)", f"Camera {label} went offline"))
    elif new == DeviceStatus.MISSING.value and old != new:
        events.append(("missing", f"ไม่พบกล้องที่ลงทะเบียนไว้ {label}", f"Registered camera {label} is missing"))
    elif new in _ANSWERING and old in (DeviceStatus.OFFLINE.value, DeviceStatus.MISSING.value):
        events.append(("online", f"กล้อง {label} กลับมาออนไลน์", f"Camera {label} is back online"))
    if new == DeviceStatus.UNREGISTERED.value and old != new:
        events.append(("unregistered", f"พบกล้องที่ไม่ได้ลงทะเบียน {label}", f"New unregistered camera {label}"))
    if new_blocking and new == DeviceStatus.NON_COMPLIANT.value:  # unregistered ones got their own alert
        rules = ", ".join(sorted({f.rule_id for f in new_blocking}))
        th = "; ".join(f.message_th for f in new_blocking)
        en = "; ".join(f.message_en for f in new_blocking)
        events.append(("non_compliant", f"กล้อง {label} ไม่ตรงตามข้อกำหนด ({rules}): {th}",
                       f"Camera {label} is non-compliant ({rules}): {en}"))
    return [(k, _clip(th, 4000), _clip(en, 4000)) for k, th, en in events]


# -- run life cycle ------------------------------------------------------------------------------------------

_ACTIVE_LOCK = threading.Lock()
_ACTIVE_TARGETS: dict[tuple[str, str], int] = {}  # (kind, value) -> run id in this process
_ACTIVE_RUNS: set[int] = set()


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def mark_dead_runs_interrupted(session: Session) -> int:
    """Mark runs of this host whose process is gone (SIGKILL, crash) as interrupted; returns how many."""
    host = socket.gethostname()
    me = os.getpid()
    count = 0
    for run in session.scalars(select(ScanRun).where(ScanRun.state.in_([ScanState.RUNNING.value,
                                                                         ScanState.PENDING.value]))):
        if run.host and run.host != host:
            continue  # another machine's run: we cannot see its processes
        if run.pid == me:
            with _ACTIVE_LOCK:
                if run.id in _ACTIVE_RUNS:
                    continue
        elif _pid_alive(run.pid):
            continue
        run.state = ScanState.INTERRUPTED.value
        run.finished = utcnow()
        run.error = (f"process {run.pid} ended without finishing the run (killed or crashed); "
                     f"{run.done} of {run.total} cameras were recorded")
        count += 1
    if count:
        session.commit()
        LOGGER.warning("marked %d scan run(s) of dead processes as interrupted", count)
    return count


def _claim(app: Flask, kind: str, value: str, trigger: str, with_streams: bool,
           started_by: str | None) -> int:
    """Create the run row after checking no live run of the same target exists (here or elsewhere)."""
    key = (kind, value)
    with _ACTIVE_LOCK:
        if key in _ACTIVE_TARGETS:
            raise ScanAlreadyRunning(f"a scan of {kind} {value!r} is already running (run #{_ACTIVE_TARGETS[key]})")
        _ACTIVE_TARGETS[key] = 0
    try:
        with get_db(app).session_scope() as session:
            mark_dead_runs_interrupted(session)
            other = session.scalar(select(ScanRun).where(
                ScanRun.target_kind == kind, ScanRun.target_value == value,
                ScanRun.state.in_([ScanState.RUNNING.value, ScanState.PENDING.value])))
            if other is not None:
                raise ScanAlreadyRunning(f"a scan of {kind} {value!r} is already running (run #{other.id}, "
                                         f"pid {other.pid} on {other.host})")
            run = ScanRun(target_kind=kind, target_value=value, trigger=trigger, state=ScanState.PENDING.value,
                          pid=os.getpid(), host=socket.gethostname(), started_by=started_by,
                          with_streams=with_streams, total=0, done=0)
            session.add(run)
            session.flush()
            run_id = run.id
            audit.record(session, "scan_started", actor=started_by or trigger, object_type="scan_run",
                         object_repr=f"#{run_id} {kind} {value}", detail={"trigger": trigger, "streams": with_streams})
        with _ACTIVE_LOCK:
            _ACTIVE_TARGETS[key] = run_id
            _ACTIVE_RUNS.add(run_id)
        return run_id
    except BaseException:
        with _ACTIVE_LOCK:
            _ACTIVE_TARGETS.pop(key, None)
        raise


def _release(kind: str, value: str, run_id: int) -> None:
    with _ACTIVE_LOCK:
        if _ACTIVE_TARGETS.get((kind, value)) == run_id:
            _ACTIVE_TARGETS.pop((kind, value), None)
        _ACTIVE_RUNS.discard(run_id)


def run_scan(app: Flask, target_kind: str, target_value: str, *, with_streams: bool = False,
             trigger: str = "manual", credentials: Sequence[Credential] | None = None,
             progress: ProgressCallback | None = None, started_by: str | None = None,
             default_project: str | None = None, deliver_alerts: bool = True,
             results: list[Recorded] | None = None, on_started: Callable[[int], None] | None = None,
             observations: Iterable[ObsData] | None = None) -> int:
    """Run one scan to the end (blocking) and return its ScanRun id; commits after every camera.

    ``credentials`` are tried after the last good and the site's stored ones; ``default_project`` makes
    devices outside every site range belong to that project (the acceptance ``check`` of a range);
    ``results`` (a list) receives one :class:`Recorded` per camera; ``on_started(run_id)`` is called as
    soon as the run row exists; ``observations`` (made elsewhere, e.g. a field laptop's JSON) are recorded
    instead of probing.
    """
    target_value = (target_value or "").strip()
    if target_kind not in TARGET_KINDS:
        raise ScanTargetError(f"unknown scan target kind {target_kind!r}: expected one of {', '.join(TARGET_KINDS)}")
    # Validate the target before a run row exists, so a typo never leaves a failed run behind.
    with get_db(app).session_scope() as session:
        resolve_scope(session, target_kind, target_value, default_ports=app.config.get("ONVIF_PORTS") or [80])
        if default_project and session.scalar(select(Project).where(Project.code == default_project)) is None:
            raise ScanTargetError(f"no project with code {default_project!r}")
    run_id = _claim(app, target_kind, target_value, trigger, with_streams, started_by)
    try:
        if on_started is not None:
            on_started(run_id)
        with app.app_context():
            _execute(app, run_id, with_streams=with_streams, credentials=credentials, progress=progress,
                     default_project=default_project, deliver_alerts=deliver_alerts, results=results,
                     observations=observations)
    finally:
        _release(target_kind, target_value, run_id)
    return run_id


def _execute(app: Flask, run_id: int, *, with_streams: bool, credentials: Sequence[Credential] | None,
             progress: ProgressCallback | None, default_project: str | None, deliver_alerts: bool,
             results: list[Recorded] | None, observations: Iterable[ObsData] | None = None) -> None:
    database = get_db(app)
    session = database.sessionmaker()
    run = session.get(ScanRun, run_id)
    assert run is not None
    recorder: ScanRecorder | None = None
    try:
        run.state = ScanState.RUNNING.value
        run.started = utcnow()
        session.commit()
        scope = resolve_scope(session, run.target_kind, run.target_value,
                              default_ports=app.config.get("ONVIF_PORTS") or [80])
        if default_project:
            scope.default_project = session.scalar(select(Project).where(Project.code == default_project))
        recorder = ScanRecorder(session, run, scope, keep_results=results is not None)
        if observations is not None:
            # Observations made elsewhere (a field laptop's JSON, tests): same recording, no probing.
            given = list(observations)
            run.total = len(given)
            session.commit()
            for obs in sorted(given, key=lambda o: o.status in SILENT):
                _safe_record(recorder, recorder.record_silent if obs.status in SILENT else recorder.record_answering,
                             obs)
        else:
            creds = _credential_source(app, scope, credentials, session, recorder)
            targets = _discover(app, scope, recorder)
            run.total = len(targets)
            session.commit()
            LOGGER.info("scan run %s (%s %s): %d targets", run.id, run.target_kind, run.target_value, len(targets))
            asyncio.run(_probe_and_record(app, recorder, targets, creds, with_streams, progress))
        recorder.finish_registers()
        run.counts = _counts(session, scope, recorder)
        run.state = ScanState.COMPLETED.value
        run.finished = utcnow()
        session.commit()
        _record_daily_status(session)
    except (KeyboardInterrupt, SystemExit, asyncio.CancelledError, GeneratorExit) as exc:
        session.rollback()
        _terminate(session, run_id, ScanState.INTERRUPTED, f"interrupted ({type(exc).__name__}) after "
                                                          f"{run.done} of {run.total} cameras")
        raise
    except Exception as exc:
        session.rollback()
        LOGGER.exception("scan run %s failed", run_id)
        _terminate(session, run_id, ScanState.FAILED, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if results is not None and recorder is not None:
            results.extend(recorder.results)
        if deliver_alerts:
            try:
                from cctv_monitor.alerts import deliver_run_alerts

                deliver_run_alerts(app, session, run_id)
            except Exception:  # noqa: BLE001 - a mail server being down never fails the scan
                LOGGER.exception("alert delivery for scan run %s failed", run_id)
        session.close()


def _record_daily_status(session: Session) -> None:
    """Today's per-status snapshot for the dashboard trend; a failure there never fails the finished scan."""
    from cctv_monitor.history import record_daily_status

    try:
        record_daily_status(session)
        session.commit()
    except Exception:  # noqa: BLE001 - the run and its observations are already committed
        session.rollback()
        LOGGER.exception("updating today's status snapshot failed; the trend misses this scan until the next")


def _terminate(session: Session, run_id: int, state: ScanState, error: str) -> None:
    run = session.get(ScanRun, run_id)
    if run is None:
        return
    run.state = state.value
    run.finished = utcnow()
    run.error = error[:4000]
    session.commit()


def _credential_source(app: Flask, scope: ScanScope, extra: Sequence[Credential] | None,
                       session: Session, recorder: ScanRecorder) -> CredentialPlan:
    """Credentials per target: last good on the device, the sites holding its address, the typed ones."""
    def pack(site: Site) -> SiteCredentials:
        nets = _site_networks(site)
        return SiteCredentials(tuple(nets), tuple(_decrypt(app, site.credentials_encrypted)),
                               site.project.agency_id if site.project else None,
                               max((n.prefixlen for n in nets), default=0))

    # Only sites whose ranges touch the scanned ranges can hold a scanned address (decrypt no more).
    sites = [pack(s) for s in session.scalars(select(Site).options(selectinload(Site.project)))
             if any(n.version == r.version and n.overlaps(r) for n in _site_networks(s) for r in scope.networks)]
    plan = CredentialPlan(key=str(app.config["SECRET_KEY"]).encode(), sites=sites, typed=list(extra or ()),
                          max_attempts=int(app.config.get("CREDENTIAL_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)))
    if scope.default_project is not None:
        plan.agencies = frozenset({scope.default_project.agency_id})
        if scope.kind == "range":  # check --project P --range R: the operator chose both
            plan.scope_default, plan.scope_networks = [pack(s) for s in scope.default_project.sites], scope.networks
    elif scope.kind != "range":
        plan.agencies = frozenset(s.project.agency_id for s in scope.sites)
    plan.memory = {d.address: DeviceMemory(d.credential_ref, frozenset(d.rejected_credential_refs or ()))
                   for d in recorder.devices.values() if d.address and (d.credential_ref or d.rejected_credential_refs)}
    return plan


def _discover(app: Flask, scope: ScanScope, recorder: ScanRecorder) -> list[Target]:
    """Targets: sweep results, explicit entries and every known address in scope (to notice offline ones)."""
    from probes.discovery import sweep

    found: dict[str, Target] = {}

    async def run_sweeps() -> None:
        for ports, cidrs in scope.cidrs_by_ports.items():
            for target in await sweep(cidrs, ports, concurrency=256,
                                      timeout_s=min(float(app.config.get("PROBE_TIMEOUT_S", 5.0)), 2.0)):
                found.setdefault(target.address, target)

    if scope.cidrs_by_ports:
        asyncio.run(run_sweeps())
    for target in scope.explicit:
        found.setdefault(target.address, target)
    site_ids = {s.id for s in scope.sites}
    project_ids = {p.id for p in scope.projects}
    for device in recorder.devices.values():
        if not device.address or device.address in found or split_channel(device.address)[1] is not None:
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
                target = Target.parse(entry.address, default_port=int((app.config.get("ONVIF_PORTS") or [80])[0]))
            except ValueError:
                continue
            found.setdefault(target.address, target)
    return sorted(found.values(), key=lambda t: _sort_key(t.host, t.port))


def _sort_key(host: str, port: int) -> tuple[Any, ...]:
    try:
        return (0, int(ipaddress.ip_address(host)), port)
    except ValueError:
        return (1, host, port)


async def _probe_and_record(app: Flask, recorder: ScanRecorder, targets: list[Target],
                            creds: Callable[[Target], list[Credential]], with_streams: bool,
                            progress: ProgressCallback | None) -> None:
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
    async for obs in probe_many(targets, creds, concurrency=int(app.config.get("PROBE_CONCURRENCY", 64)),
                                per_host_limit=int(app.config.get("PROBE_PER_HOST_LIMIT", 2)),
                                with_streams=with_streams, timeout_s=float(app.config.get("PROBE_TIMEOUT_S", 5.0)),
                                stream_workers=int(app.config.get("STREAM_WORKERS", 12)),
                                stream_timeout_s=float(app.config.get("STREAM_TIMEOUT_S", 10.0))):
        if obs.status in SILENT:
            silent.append(obs)
            tick(obs.address)
            continue
        _safe_record(recorder, recorder.record_answering, obs)
        tick(obs.address)
    for obs in silent:
        _safe_record(recorder, recorder.record_silent, obs)


def _safe_record(recorder: ScanRecorder, record: Callable[[ObsData], Any], obs: ObsData) -> None:
    """Record one device and, for a recorder, each camera behind it (:mod:`cctv_monitor.recorders`)."""
    record_expanded(recorder, record, obs, _record_one)


def _record_one(recorder: ScanRecorder, record: Callable[[ObsData], Any], obs: ObsData) -> Any:
    """Record one camera; a failure rolls back that camera only and the scan goes on."""
    try:
        return record(obs)
    except Exception:  # noqa: BLE001 - one broken camera never stops a scan
        recorder.session.rollback()
        LOGGER.exception("%s: recording the observation failed; camera skipped", obs.address)
        # The rollback expired the in-memory objects; drop devices that never reached the database.
        for device_id in [d for d, dev in recorder.devices.items() if dev.id is None]:
            recorder.devices.pop(device_id, None)


def _counts(session: Session, scope: ScanScope, recorder: ScanRecorder) -> dict[str, int]:
    """Devices per status among those this run touched (or that belong to its scope)."""
    ids = set(recorder.seen_this_run)
    project_ids = {p.id for p in scope.projects}
    site_ids = {s.id for s in scope.sites}
    counts: dict[str, int] = {}
    for device in recorder.devices.values():
        if device.id in ids or device.project_id in project_ids and scope.kind != "range" \
                or device.site_id in site_ids:
            counts[device.status] = counts.get(device.status, 0) + 1
    return dict(sorted(counts.items()))


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
    """Record observations made elsewhere as one run over a target (same pipeline, no probing)."""
    return run_scan(app, target_kind, target_value, trigger=trigger, started_by=started_by,
                    deliver_alerts=deliver_alerts, observations=list(observations))
