"""One observation into the inventory: identity, drift, project matching, evaluation, findings, status, alerts.

A :class:`Recorder` loads what it needs once (devices, register, sites, active findings, last good
observations), so recording a camera costs only its own inserts (no N+1 queries). It also loads what the
run already recorded, so a run fed in several batches (several processes, several machines) behaves as
one fed at once.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType, SimpleNamespace
from typing import Any, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import instance_state, set_committed_value

from cctv_monitor.compliance import (
    DeviceStatus,
    FindingResult,
    Spec,
    SpecError,
    derive_status,
    evaluate_device,
    main_profile,
)
from cctv_monitor.compliance.engine import SILENT
from cctv_monitor.credentials import DeviceMemory, remember
from cctv_monitor.homes import ProjectRanges
from cctv_monitor.models import (
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
from cctv_monitor.scan.alerts import alert_kinds
from cctv_monitor.scan.errors import ScanError
from cctv_monitor.scan.findings import clip, json_text, scrub, sync_findings, without_nul
from cctv_monitor.scan.identity import IdentityIndex, identityless
from cctv_monitor.scan.ids import allocator_for, update_rows, write_rows
from cctv_monitor.recorders import is_recorder
from cctv_monitor.scan.scope import ScanScope, site_networks
from probes.results import Observation as ObsData
from probes.results import ProbeStatus
from probes.vocab import host_of, is_placeholder_serial

__all__ = ["Recorder", "Recorded", "spec_of", "parse_time"]

#: Device columns and their lengths: camera strings are hostile and PostgreSQL refuses over-long values.
LIMITS = {"mac": 17, "serial": 128, "manufacturer": 255, "model": 255, "firmware": 255, "hardware_id": 255,
          "name": 500, "location_text": 500, "address": 64, "encoding": 16}

#: Columns every observation writes on its device: in a batch they are written for all rows at once by
#: :meth:`Recorder.write` rather than by the unit of work. A device's active findings are not written again
#: while they hold: the device's latest observation confirms them (its time is their last confirmation, as
#: the API and exports show it); a finding row changes when raised, changed or resolved.
_HOT: dict[type, tuple[str, ...]] = {Device: ("last_seen", "last_ok", "last_observation_id", "last_ok_observation_id")}

_NO_PROJECT_SPEC = Spec(code="(none)", name_th="ไม่อยู่ในโครงการใด", name_en="Not in any project",
                        device_class="fixed_outdoor", requirements=MappingProxyType({}))


def parse_time(text: str | None) -> datetime:
    """The observation's ISO time, or now when it has none or an unreadable one."""
    if text:
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    return utcnow()


def spec_of(project: Project | None, *, recorder: bool = False) -> Spec:
    """The parsed spec profile of ``project`` for its cameras or its recorders (no project: always-on rules)."""
    if project is None:
        return _NO_PROJECT_SPEC
    # A project may name a profile for its recorders (e.g. nvr); without one they are judged like cameras.
    profile = (project.recorder_spec_profile if recorder else None) or project.spec_profile
    try:
        return Spec.from_mapping(profile.requirements, code=profile.code)
    except SpecError as exc:
        raise ScanError(f"spec profile {profile.code} of project {project.code} is invalid: {exc}") from exc


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


class Recorder:
    """Writes observations of one run; ``autocommit`` commits each camera, else the caller commits."""

    def __init__(self, session: Session, run: ScanRun, scope: ScanScope, *, keep_results: bool = True,
                 autocommit: bool = True) -> None:
        """Load the indexes for ``run`` over ``scope``, and what the run has recorded so far."""
        self.session = session
        self.run = run
        self.scope = scope
        self.autocommit = autocommit
        # A batch (not autocommit) on PostgreSQL takes its ids from the sequences and is written by one flush.
        self.ids = None if autocommit else allocator_for(session)
        #: Observation rows of the batch not yet written (with ids drawn in advance): see :meth:`write`.
        self.pending: list[dict[str, Any]] = []
        #: Batch mode: stored devices whose hot columns (:data:`_HOT`) this batch changed.
        self.touched: dict[type, dict[int, Any]] = {Device: {}}
        self.register: dict[int, RegisterEntry] = {}
        self.register_by_mac: dict[str, RegisterEntry] = {}
        self.register_by_serial: dict[str, RegisterEntry] = {}
        self.register_by_address: dict[str, RegisterEntry] = {}
        for entry in session.scalars(select(RegisterEntry).options(selectinload(RegisterEntry.project))):
            self.register[entry.id] = entry
            if entry.address:
                self.register_by_address[entry.address] = entry
            if entry.mac:
                self.register_by_mac[entry.mac.lower()] = entry
            if entry.serial and not is_placeholder_serial(entry.serial):
                self.register_by_serial[entry.serial] = entry
        self.site_nets: list[tuple[Any, Site]] = []
        for site in session.scalars(select(Site).options(selectinload(Site.project))):
            for net in site_networks(site):
                self.site_nets.append((net, site))
        # Most specific range first, so a /28 inside a /24 wins.
        self.site_nets.sort(key=lambda pair: pair[0].prefixlen, reverse=True)
        self.ident = IdentityIndex(session.scalars(select(Device)), scope,
                                   ProjectRanges((net, site.project_id) for net, site in self.site_nets))
        self.devices = self.ident.devices
        self.active: dict[int, dict[tuple[str, str | None], Finding]] = {}
        #: When each device recorded in this run was observed last (a finding resolved says so).
        self.observed_at: dict[int, datetime] = {}
        for finding in session.scalars(select(Finding).where(Finding.active.is_(True),
                                                             Finding.device_id.is_not(None))):
            self.active.setdefault(finding.device_id, {})[(finding.rule_id, finding.subject)] = finding
        self.last_good = self._load_last_good()
        self.specs: dict[tuple[int | None, bool], Spec] = {}
        # Full per-camera results only when the caller wants them (``check``, tests): at 10,000 cameras they
        # would hold every observation in memory; the project counts need only this counter.
        self.keep_results = keep_results
        self.results: list[Recorded] = []
        self.answered_by_project: dict[int | None, int] = {}
        self._counted: set[int | None] = set()
        if run.id is not None and run.done:
            self._load_run_so_far()

    @property
    def seen_this_run(self) -> dict[int, str]:
        """Device id -> the address it answered at in this run."""
        return self.ident.seen_this_run

    def _load_run_so_far(self) -> None:
        """What earlier batches of this run recorded: devices seen, MACs claimed, answers per project."""
        rows = self.session.execute(select(Observation.device_id, Observation.address, Observation.probe_status)
                                    .where(Observation.scan_run_id == self.run.id,
                                           Observation.device_id.is_not(None)))
        silent = {s.value for s in SILENT}
        for device_id, address, status in rows:
            device = self.devices.get(device_id)
            if device is None:
                continue
            self.ident.seen_this_run.setdefault(device_id, address)
            if status not in silent and device_id not in self._counted:
                self._counted.add(device_id)
                for mac in device.macs or ():
                    self.ident.mac_claims.setdefault(mac, (device_id, address))
                self.answered_by_project[device.project_id] = self.answered_by_project.get(device.project_id, 0) + 1

    def _load_last_good(self) -> dict[int, _LastGood]:
        """Each device's latest ok observation: one primary-key lookup per device (``last_ok_observation_id``,
        migration 0017s), whatever the length of the history."""
        rows = self.session.execute(
            select(Device.id, Observation.encoding, Observation.width, Observation.height,
                   Observation.fps, Observation.measured_width, Observation.measured_height)
            .join(Observation, Observation.id == Device.last_ok_observation_id))
        return {r[0]: _LastGood(*r[1:]) for r in rows}

    def spec_for(self, project: Project | None, *, recorder: bool = False) -> Spec:
        """Parsed spec per project and device class (camera or recorder), parsed once per run."""
        key = (project.id if project is not None else None, recorder)
        if key not in self.specs:
            self.specs[key] = spec_of(project, recorder=recorder)
        return self.specs[key]

    def _commit(self) -> None:
        if self.autocommit:
            self.session.commit()
        elif self.ids is None:
            self.session.flush()

    def _add(self, obj: Any) -> None:
        """Add a row whose id the next rows need: an id from the sequence, or a flush to learn it."""
        if self.ids is not None:
            if obj.id is None:
                obj.id = self.ids.next(type(obj).__table__)
            self.session.add(obj)
        else:
            self.session.add(obj)
            self.session.flush()

    def write(self) -> None:
        """Write a batch (ids drawn in advance): new devices, the observations in one executemany, the rest.

        Observations are the bulk of a batch and nothing reads them back as objects, so they go as plain
        rows (SQLAlchemy Core) rather than through the unit of work; they need their devices first, and
        findings, changes and alerts need them. The caller keeps autoflush off while the batch is built.
        """
        connection = self.session.connection()
        if self.pending:
            new = [obj for obj in self.session.new if isinstance(obj, Device)]
            if new:
                self.session.flush(new)
            write_rows(connection, Observation.__table__, self.pending)
            self.pending = []
        now = utcnow()
        for model, rows in self.touched.items():
            if rows:
                update_rows(connection, model.__table__, ("updated", *_HOT[model]),
                            [(key, now, *(getattr(obj, c) for c in _HOT[model])) for key, obj in rows.items()])
                for obj in rows.values():
                    set_committed_value(obj, "updated", now)
                rows.clear()
        self.session.flush()

    def hot(self, obj: Any, **values: Any) -> None:
        """Set columns of :data:`_HOT`: in a batch, on a stored row, written by :meth:`write` in one executemany
        (the object holds them as committed, so the unit of work leaves the row alone unless more changed)."""
        if self.ids is None or instance_state(obj).key is None:
            for attr, value in values.items():
                put(obj, attr, value)
            return
        for attr, value in values.items():
            set_committed_value(obj, attr, value)
        self.touched[type(obj)][obj.id] = obj

    def _done(self, result: Recorded, answered: bool) -> None:
        if answered and result.device_id not in self._counted:  # a camera probed twice counts once
            self._counted.add(result.device_id)
            self.answered_by_project[result.project_id] = self.answered_by_project.get(result.project_id, 0) + 1
        if self.keep_results:
            self.results.append(result)

    def site_for(self, address: str) -> Site | None:
        """The most specific site whose ranges hold ``address``."""
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

    def record(self, obs: ObsData) -> Recorded | None:
        """Record one observation (answering, silent, or only discovered)."""
        if obs.status is ProbeStatus.DISCOVERED:
            return self.record_discovered(obs)
        # A camera its recorder reports offline is still known (identity, channel): recorded like an answer.
        return self.record_silent(obs) if obs.status in SILENT and obs.recorder is None else self.record_answering(obs)

    def record_discovered(self, obs: ObsData) -> Recorded:
        """A device a discovery broadcast found and nobody probed: a new device (status unknown, project by
        register or site), or presence and identity facts for a known one, whose status and findings stay."""
        now = parse_time(obs.observed_at)
        device, macs, conflicts = self.ident.identify(obs)
        if device is None:
            # WS-Discovery, SADP or a sweep named another port than the one the device is known (or probed) at.
            same = self._same_host(obs)
            if same is not None and (identityless(same) or not macs and not (obs.device and obs.device.serial)):
                device = same
                conflicts = [c for c in conflicts if not c.startswith("no usable MAC or serial")]
        is_new = device is None
        if device is None:
            device = Device(first_seen=now, status=DeviceStatus.UNKNOWN.value, macs=[])
            self.session.add(device)
        else:
            obs = obs.with_updates(address=device.address)  # its probed address stays its address
        changes = self._assign_identity(device, obs, macs, conflicts, is_new)
        if is_new:
            project, site, device.registered = self._match(device, obs, macs, conflicts)
            device.project_id = project.id if project else None
            device.agency_id = project.agency_id if project else None
            device.site_id = site.id if site is not None and (project is None or site.project_id == project.id) \
                else None
        self.session.flush()
        row = self._observation_row(obs, device.id, now)
        self.session.add(row)
        self.session.flush()
        for attr, old, new in changes:
            self.session.add(DeviceChange(device_id=device.id, observation_id=row.id, scan_run_id=self.run.id,
                                          attribute=attr, old_value=str(old), new_value=str(new), changed_at=now))
        device.last_seen = now
        if is_new:
            device.last_observation_id = row.id
        self.run.done = (self.run.done or 0) + 1
        self._commit()
        self.ident.claim(device, macs, obs.address)
        result = Recorded(obs, device.id, device.status, [], device.project_id, bool(device.registered))
        self._done(result, answered=False)
        return result

    def _same_host(self, obs: ObsData) -> Device | None:
        """The one known device (not behind a recorder) at the observation's host, on any port."""
        host = obs.host
        found = [d for d in self.devices.values() if d.address and d.recorder_id is None and host_of(d.address) == host]
        return found[0] if len(found) == 1 else None

    def record_answering(self, obs: ObsData) -> Recorded:
        """Record one observation where something answered (ok or a readable failure)."""
        session = self.session
        now = parse_time(obs.observed_at)
        device, macs, conflicts = self.ident.identify(obs)
        is_new = device is None
        if device is None:
            device = Device(first_seen=now, status=DeviceStatus.UNKNOWN.value, macs=[])
            session.add(device)
        seen_before = device.last_seen is not None
        old_status = device.status
        changes = self._assign_identity(device, obs, macs, conflicts, is_new)
        project, site, registered = self._match(device, obs, macs, conflicts)
        put(device, "registered", registered)
        put(device, "project_id", project.id if project else None)
        put(device, "agency_id", project.agency_id if project else None)
        put(device, "site_id", site.id if site is not None and (project is None or site.project_id == project.id)
            else None)
        self._link_recorder(device, obs)

        spec = self.spec_for(project, recorder=is_recorder(obs))
        findings = evaluate_device(obs, spec, registered=registered)
        status = derive_status(obs, findings, registered=registered, seen_before=seen_before)

        if device.id is None:
            self._add(device)  # its id for the rows below
        row = self._observation_row(obs, device.id, now)
        self._drift(device, row, obs, is_new, changes)
        for attr, old, new in changes:
            session.add(DeviceChange(device_id=device.id, observation_id=row.id, scan_run_id=self.run.id,
                                     attribute=attr, old_value=str(old), new_value=str(new), changed_at=now))
        new_blocking = self._sync_device_findings(device, row, findings, now)
        self.hot(device, last_seen=now, last_observation_id=row.id,
                 **({"last_ok": now, "last_ok_observation_id": row.id} if obs.ok else {}))
        self._set_status(device, old_status, status.value, now, is_new=is_new, new_blocking=new_blocking)
        self.run.done = (self.run.done or 0) + 1
        self._commit()
        # The in-memory indexes change only once the rows are safely written.
        self.ident.claim(device, macs, obs.address)
        if obs.ok and row.width is not None:
            self.last_good[device.id] = _LastGood(row.encoding, row.width, row.height, row.fps,
                                                  row.measured_width, row.measured_height)
        result = Recorded(obs, device.id, status.value, findings, device.project_id, registered)
        self._done(result, answered=obs.status not in SILENT)
        return result

    def _link_recorder(self, device: Device, obs: ObsData) -> None:
        """A camera seen through a recorder points at the recorder's device (recorded just before it)."""
        if obs.recorder is not None:
            device.recorder_id, device.channel = self.ident.by_address.get(obs.recorder), obs.channel
        elif device.recorder_id is not None or device.channel is not None:
            device.recorder_id = device.channel = None  # it answers at an address of its own now

    def _assign_identity(self, device: Device, obs: ObsData, macs: Sequence[str], conflicts: Sequence[str],
                         is_new: bool) -> list[tuple[str, Any, Any]]:
        """Copy what the camera says about itself onto the device; returns tracked changes (old, new)."""
        ident = obs.device
        changes: list[tuple[str, Any, Any]] = []

        def assign(attr: str, value: Any, track: bool = True) -> None:
            value = clip(value, LIMITS.get(attr, 10_000))
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
                device.macs = [clip(m, 17) for m in all_macs]
        assign("address", obs.address)
        if obs.credential_ref or obs.rejected_refs:
            memory = remember(DeviceMemory(device.credential_ref, frozenset(device.rejected_credential_refs or ())),
                              obs.credential_ref, obs.rejected_refs)
            put(device, "credential_ref", memory.worked)
            put(device, "rejected_credential_refs", sorted(memory.rejected))
        for text in conflicts:
            self.ident.flag(device, text)
        if obs.ok and not conflicts and device.identity_conflict and ident is not None and macs:
            # A clean read with a valid MAC and no clash this time: earlier doubts no longer apply.
            device.identity_conflict = None
        return changes

    def _match(self, device: Device, obs: ObsData, macs: Sequence[str],
               conflicts: list[str]) -> tuple[Project | None, Site | None, bool]:
        """Project matching: the register (MAC, serial, address), then the site the address belongs to."""
        ident = obs.device
        entry = self._register_entry(macs, ident.serial if ident else None)
        if entry is not None and not self.ident.at_home(entry.project_id, obs.address):
            # A register match counts only inside that project's site ranges (no hijack across agencies).
            text = (f"reports the MAC/serial of register entry {entry.label or entry.id} of project "
                    f"{entry.project.code}, but {obs.address} lies outside that project's site ranges: not matched")
            conflicts.append(text)
            self.ident.flag(device, text)
            owner = self.ident.device_for_entry(entry)
            if owner is not None and owner is not device:
                self.ident.flag(owner, f"its MAC/serial is also reported by {obs.address}, outside this project's "
                                       "site ranges: not matched, nothing changed")
            entry = None
        if entry is None and (obs.channel is not None  # registers may name a camera by recorder + channel
                              or not macs and not (ident and ident.serial and not is_placeholder_serial(ident.serial))):
            # Nothing to identify it by (e.g. ONVIF disabled): the register's expected address is the best link.
            entry = self.register_by_address.get(obs.address)
            if entry is not None and ident is None and not device.mac and entry.mac:
                device.mac = entry.mac.lower()
        put(device, "register_entry_id", entry.id if entry else None)
        if entry is not None:
            site = self.session.get(Site, entry.site_id) if entry.site_id else self.site_for(obs.address)
            return entry.project, site, True
        site = self.site_for(obs.address)
        return (site.project if site is not None else self.scope.default_project), site, False

    def record_silent(self, obs: ObsData) -> Recorded | None:
        """Record an address where nothing answered: offline for a known device, else nothing to keep."""
        device_id = self.ident.by_address.get(obs.address)
        device = self.devices.get(device_id) if device_id is not None else None
        if device is None or device.id in self.seen_this_run:
            return None  # an empty address, or the device answered elsewhere in this run (moved)
        now = parse_time(obs.observed_at)
        seen_before = device.last_seen is not None
        findings = evaluate_device(obs, self.spec_for(device.project), registered=device.registered)
        status = derive_status(obs, findings, registered=device.registered, seen_before=seen_before)
        old_status = device.status
        row = self._observation_row(obs, device.id, now)
        self._sync_device_findings(device, row, findings, now)
        self.hot(device, last_observation_id=row.id)
        self._set_status(device, old_status, status.value, now, is_new=False, new_blocking=[])
        self.run.done = (self.run.done or 0) + 1
        self._commit()
        self.seen_this_run.setdefault(device.id, obs.address)
        result = Recorded(obs, device.id, status.value, findings, device.project_id, device.registered)
        self._done(result, answered=False)
        # A silent recorder takes the cameras behind it along: nothing else can see them.
        for child in [d for d in self.devices.values() if d.recorder_id == device.id and d.address]:
            self.record_silent(obs.with_updates(address=child.address))
        return result

    def _observation_row(self, obs: ObsData, device_id: int, now: datetime) -> Observation:
        main = main_profile(obs)
        check = None
        if main is not None:
            check = next((c for c in obs.stream_checks if c.profile_token == main.token), None)
        thumb = next((c.thumbnail_jpeg for c in obs.stream_checks if c.thumbnail_jpeg), None)
        data: Any = obs.to_dict()
        for item in data.get("stream_checks") or ():
            item.pop("thumbnail_jpeg", None)
        # A batch's rows go by COPY: the JSON text is made once here, checked for NULs and written as it is.
        data = json_text(data) if self.ids is not None else without_nul(data)
        values = dict(
            scan_run_id=self.run.id, device_id=device_id, address=clip(obs.address, 64), observed_at=now,
            probe_status=obs.status.value, error=clip(obs.error, 4000),
            firmware=clip(obs.device.firmware if obs.device else None, 255),
            encoding=clip(main.encoding if main else None, 16), width=main.width if main else None,
            height=main.height if main else None, fps=main.fps if main else None,
            measured_width=check.width if check and check.ok else None,
            measured_height=check.height if check and check.ok else None,
            measured_fps=check.fps if check and check.ok else None,
            clock_offset_s=obs.clock_offset_s, data=data, thumbnail_jpeg=thumb)
        if self.ids is not None:  # a batch: written with the others by :meth:`write`
            values["id"] = self.ids.next(Observation.__table__)
            self.pending.append(values)
            return SimpleNamespace(**values)  # type: ignore[return-value] - read like the row it becomes
        row = Observation(**values)
        self._add(row)
        return row

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

    def _sync_device_findings(self, device: Device, row: Observation, findings: Sequence[FindingResult],
                              now: datetime) -> list[FindingResult]:
        """The device's active findings in step with this observation; returns the new blocking ones."""
        wanted: dict[tuple[str, str | None], FindingResult] = {}
        for f in findings:
            wanted.setdefault((f.rule_id, clip(f.subject, 128)), f)

        def make(key: Any, f: FindingResult) -> Finding:
            return Finding(device_id=device.id, project_id=device.project_id, rule_id=f.rule_id,
                           severity=f.severity.value, subject=key[1], register_entry_id=device.register_entry_id,
                           scan_run_id=self.run.id, observation_id=row.id, last_seen=now)

        def resolve(gone: Finding) -> None:
            # Last confirmed by the device's observation before this one (the latest, until this one).
            gone.observation_id, gone.last_seen = device.last_observation_id, self._observed_at(device)

        def refresh(existing: Finding, f: FindingResult) -> None:
            # Usually what the rule said last time: set only when different, so the row stays clean.
            put(existing, "project_id", device.project_id)
            put(existing, "severity", f.severity.value)
            put(existing, "expected", scrub(f.expected))
            put(existing, "observed", scrub(f.observed))
            put(existing, "source", f.source)
            put(existing, "message_th", scrub(f.message_th))
            put(existing, "message_en", scrub(f.message_en))

        new = sync_findings(self.session, self.active.setdefault(device.id, {}), wanted, now=now,
                            make=make, refresh=refresh, touch=False, on_resolve=resolve)
        self.observed_at[device.id] = now
        return [f for f in new if f.blocking]

    def _observed_at(self, device: Device) -> datetime | None:
        """When the device's latest observation so far was made (before the one being recorded)."""
        if device.id in self.observed_at:
            return self.observed_at[device.id]
        if device.last_observation_id is None:
            return None
        return self.session.scalar(select(Observation.observed_at)
                                   .where(Observation.id == device.last_observation_id))

    def _set_status(self, device: Device, old: str, new: str, now: datetime, *, is_new: bool,
                    new_blocking: Sequence[FindingResult]) -> None:
        if old != new:
            device.status = new
            device.status_changed = now
        for kind, th, en in alert_kinds(device, old, new, is_new=is_new, new_blocking=new_blocking):
            self.session.add(AlertEvent(agency_id=device.agency_id, device_id=device.id, scan_run_id=self.run.id,
                                        kind=kind, message_th=th, message_en=en))


def put(obj: Any, attr: str, value: Any) -> None:
    """Set an attribute only when it changes (an unchanged object gives the unit of work nothing to do)."""
    if getattr(obj, attr) != value:
        setattr(obj, attr, value)


def _res(width: int | None, height: int | None) -> str | None:
    if width is None or height is None:
        return None
    return f"{width}x{height}"
