"""The technician's acceptance check: scan a project's sites (or a range), judge every camera found
against the project's spec, compare the count with the approved count, optionally register the cameras.

The scan goes through the normal pipeline (so the inventory, drift and alerts stay true); the verdict is
computed from the same observations with registration left out, because a new installation is checked
before its cameras are registered.
"""

from __future__ import annotations

import logging
from typing import Sequence

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from cctv_monitor.compliance import SpecError
from cctv_monitor.compliance.engine import SILENT
from cctv_monitor.db import get_db
from cctv_monitor.lookup import LookupError_, find_project
from cctv_monitor.models import Device, Finding, Project, RegisterEntry, Site, utcnow
from cctv_monitor.report import TYPED, CheckResult, build_check_result
from cctv_monitor.scan.scope import site_networks as _site_networks
from cctv_monitor.scanning import (
    Recorded,
    ScanError,
    is_placeholder_serial,
    is_valid_mac,
    run_scan,
    spec_of,
)
from cctv_monitor.statuses import DeviceStatus
from probes.results import Observation
from probes.targets import Credential

LOGGER = logging.getLogger(__name__)

__all__ = ["CheckSetupError", "run_check", "register_found"]


class CheckSetupError(Exception):
    """The check cannot run as asked (unknown project, bad range, invalid spec, a scan already running)."""


def run_check(app: Flask, code: str, *, cidr: str | None = None, user: str | None = None,
              password: str | None = None, with_streams: bool = True, operator: str = "unknown",
              register: bool = False, observations_out: list[Observation] | None = None) -> tuple[CheckResult, int]:
    """Run the acceptance check of project ``code``; returns the result and how many devices were registered.

    ``observations_out`` (a list) receives every observation of the run, with its id (``check --save``).
    """
    database = get_db(app)
    with database.session_scope() as session:
        try:
            project = find_project(session, code)
        except LookupError_ as exc:
            raise CheckSetupError(str(exc)) from None
        try:
            spec = spec_of(project)
        except (ScanError, SpecError) as exc:
            raise CheckSetupError(str(exc)) from exc
        entries = [(e.mac.lower() if e.mac else None, e.serial, e.label or e.mac or e.serial or f"#{e.id}")
                   for e in project.register]
        labels = {key: e.label for e in project.register if e.label for key in (e.mac, e.serial) if key}
    kind, value = ("range", cidr) if cidr else ("project", code)
    credentials = [Credential(user, password or "", source=TYPED)] if user else None
    recorded: list[Recorded] = []
    try:
        run_id = run_scan(app, kind, value, with_streams=with_streams, trigger="check", credentials=credentials,
                          default_project=code, results=recorded, started_by=operator)
    except ScanError as exc:
        raise CheckSetupError(str(exc)) from exc
    if observations_out is not None:
        observations_out.extend(r.obs for r in recorded)
    found = [r.obs for r in recorded if r.obs.status not in SILENT]
    seen_macs = {m.lower() for o in found if o.device for m in o.device.macs}
    seen_serials = {o.device.serial for o in found if o.device and o.device.serial}
    missing = [] if cidr else [label for mac, serial, label in entries
                               if not (mac and mac in seen_macs) and not (serial and serial in seen_serials)]
    with database.session_scope() as session:
        project = session.scalar(select(Project).where(Project.code == code))
        sites = ", ".join(f"{s.code} ({', '.join(map(str, s.address_ranges or []))})" for s in project.sites)
        result = build_check_result(
            project=project, spec=spec, observations=found, operator=operator,
            scope_text=f"ช่วงที่อยู่ {cidr}" if cidr else f"ทุกสถานที่ติดตั้งของโครงการ {sites}",
            scope_text_en=f"address range {cidr}" if cidr else f"every site of the project: {sites}",
            registered_macs=[m for m, _, _ in entries if m], registered_serials=[s for _, s, _ in entries if s],
            missing_register=missing, run_id=run_id, with_streams=with_streams, register_labels=labels,
            typed_user=user)
    added = 0
    if register and result.passed:
        added = register_found(app, code, [r for r in recorded if r.obs.status not in SILENT])
    return result, added


def register_found(app: Flask, code: str, recorded: Sequence[Recorded]) -> int:
    """Add the devices of a passed check to the project's register (MAC and serial); returns how many."""
    added = 0
    with get_db(app).session_scope() as session:
        project = session.scalar(select(Project).where(Project.code == code)
                                 .options(selectinload(Project.register), selectinload(Project.sites)))
        assert project is not None
        macs = {e.mac.lower() for e in project.register if e.mac}
        serials = {e.serial for e in project.register if e.serial}
        now = utcnow()
        for item in recorded:
            ident = item.obs.device
            if ident is None or item.device_id is None:
                continue
            mac = next((m.lower() for m in ident.macs if is_valid_mac(m.lower())), None)
            serial = ident.serial if ident.serial and not is_placeholder_serial(ident.serial) else None
            if not mac and not serial:
                LOGGER.warning("%s: no usable MAC or serial; not registered", item.obs.address)
                continue
            if (mac and mac in macs) or (serial and serial in serials):
                continue
            site = _site_for(project.sites, item.obs.address)
            entry = RegisterEntry(project_id=project.id, site_id=site.id if site else None, mac=mac,
                                  serial=serial if serial not in serials else None,
                                  label=(ident.name or item.obs.address)[:255], address=item.obs.address[:64],
                                  added_by="check --register")
            session.add(entry)
            session.flush()
            if mac:
                macs.add(mac)
            if serial:
                serials.add(serial)
            device = session.get(Device, item.device_id)
            if device is not None:
                device.registered = True
                device.register_entry_id = entry.id
                device.project_id = project.id
                device.agency_id = project.agency_id
                device.site_id = site.id if site else device.site_id
                if device.status == DeviceStatus.UNREGISTERED.value:
                    # The check just passed, so the device meets the spec: compliant now that it is registered.
                    device.status = DeviceStatus.COMPLIANT.value
                    device.status_changed = now
                for finding in session.scalars(select(Finding).where(Finding.device_id == device.id,
                                                                     Finding.rule_id == "unregistered",
                                                                     Finding.active.is_(True))):
                    finding.active = False
                    finding.resolved_at = now
            added += 1
    return added


def _site_for(sites: Sequence[Site], address: str) -> Site | None:
    import ipaddress

    host = address.rpartition(":")[0] or address
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    for site in sites:
        if any(ip in net for net in _site_networks(site)):
            return site
    return None
