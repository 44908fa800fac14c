"""Project registry: writing validated projects and spec profiles (rows updated in place: re-imports are idempotent)."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from cctv_monitor.compliance import Spec
from cctv_monitor.crypto import Credential, CredentialKeyError, decrypt_credentials, encrypt_credentials
from cctv_monitor.lookup import LookupError_, did_you_mean, existing_codes, find_profile
from cctv_monitor.models import Agency, Project, RegisterEntry, Site, SpecProfile
from cctv_monitor.registry_records import FileResult, ImportProblem, ProjectData, _dotted

LOGGER = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------
# Writing


def _assign(obj: Any, **values: Any) -> bool:
    """Set attributes that differ; True when anything changed (so unchanged rows stay untouched)."""
    changed = False
    for key, value in values.items():
        if getattr(obj, key) != value:
            setattr(obj, key, value)
            changed = True
    return changed


def _write(session: Session, records: Sequence[Any], result: FileResult, app: Flask) -> list[ImportProblem]:
    problems: list[ImportProblem] = []
    for record in records:
        if isinstance(record, Spec):
            _write_profile(session, record, result)
        else:
            problems += _write_project(session, record, result, app)
    return problems


def _write_profile(session: Session, spec: Spec, result: FileResult) -> None:
    row = session.scalars(select(SpecProfile).where(SpecProfile.code == spec.code)).one_or_none()
    values = dict(name_th=spec.name_th, name_en=spec.name_en, device_class=spec.device_class,
                  requirements=spec.to_mapping(), source=spec.source, content_hash=spec.content_hash())
    if row is None:
        session.add(SpecProfile(code=spec.code, **values))
        result.created.append(spec.code)
    elif row.content_hash != values["content_hash"] or row.name_th != spec.name_th:
        _assign(row, **values)
        result.updated.append(spec.code)
    else:
        result.unchanged.append(spec.code)
    session.flush()


def _write_project(session: Session, data: ProjectData, result: FileResult, app: Flask) -> list[ImportProblem]:
    problems: list[ImportProblem] = []
    locate = _locator_for(result)
    try:
        profile = find_profile(session, data.spec_profile)
    except LookupError_ as exc:
        profile = None
        problems.append(locate(data, ("spec_profile",), str(exc)))
    known_codes = existing_codes(session)
    if data.code not in known_codes:
        hint = did_you_mean(data.code, known_codes, cutoff=0.8)
        if hint:
            result.notes.append(f"project {data.code} is new{hint.replace('did you mean', 'did you mean the existing')}")
    recorder_profile = None
    if data.recorder_spec_profile is not None:
        try:
            recorder_profile = find_profile(session, data.recorder_spec_profile)
        except LookupError_ as exc:
            problems.append(locate(data, ("recorder_spec_profile",), str(exc)))
    # A camera belongs to one project: its MAC or serial may not sit in another project's register.
    macs = [e.mac for e in data.register if e.mac]
    serials = [e.serial for e in data.register if e.serial]
    clashes = session.execute(
        select(RegisterEntry.mac, RegisterEntry.serial, Project.code).join(Project)
        .where(Project.code != data.code)
        .where((RegisterEntry.mac.in_(macs)) | (RegisterEntry.serial.in_(serials)))).all()
    for mac, serial, other in clashes:
        for entry in data.register:
            if (mac and entry.mac == mac) or (serial and entry.serial == serial):
                what = f"MAC {mac}" if mac and entry.mac == mac else f"serial {serial}"
                problems.append(locate(data, entry.path[len(data.path):] + ("mac" if "MAC" in what else "serial",),
                                       f"{what} is already registered in project {other}"))
    if problems:
        return problems

    changed = False
    created = False
    agency = session.scalars(select(Agency).where(Agency.code == data.agency.code)).one_or_none()
    agency_values = dict(name_th=data.agency.name_th, name_en=data.agency.name_en, province=data.agency.province,
                         district=data.agency.district, subdistrict=data.agency.subdistrict)
    if agency is None:
        agency = Agency(code=data.agency.code, **agency_values)
        session.add(agency)
        changed = True
    else:
        changed |= _assign(agency, **agency_values)
    session.flush()

    project = session.scalars(select(Project).where(Project.code == data.code)
                              .options(selectinload(Project.sites), selectinload(Project.register))).one_or_none()
    project_values = dict(title_th=data.title_th, title_en=data.title_en, agency_id=agency.id,
                          approval_ref=data.approval_ref, approval_date=data.approval_date,
                          committee_level=data.committee_level, budget_thb=data.budget_thb,
                          spec_profile_id=profile.id, approved_count=data.approved_count,
                          recorder_spec_profile_id=recorder_profile.id if recorder_profile else None,
                          source_file=Path(result.path).name)
    if project is None:
        project = Project(code=data.code, **project_values)
        session.add(project)
        session.flush()
        created = True
    else:
        if project.budget_thb is not None and data.budget_thb is not None \
                and Decimal(project.budget_thb) == data.budget_thb:
            project_values["budget_thb"] = project.budget_thb  # 1850000 == 1850000.00: not a change
        changed |= _assign(project, **project_values)

    # Sites: update in place by code, add new ones, drop those no longer in the file.
    existing_sites = {s.code: s for s in project.sites}
    sites_by_code: dict[str, Site] = {}
    for site_data in data.sites:
        site = existing_sites.pop(site_data.code, None)
        values = dict(name_th=site_data.name_th, name_en=site_data.name_en,
                      address_ranges=list(site_data.address_ranges), ports=site_data.ports,
                      latitude=site_data.latitude, longitude=site_data.longitude, zone=site_data.zone)
        if site is None:
            site = Site(project=project, code=site_data.code, **values)
            session.add(site)
            changed = True
        else:
            changed |= _assign(site, **values)
        changed |= _store_credentials(app, site, site_data.credentials)
        sites_by_code[site_data.code] = site
    for stale in existing_sites.values():
        project.sites.remove(stale)
        changed = True
    session.flush()

    # Register: match by MAC, then serial, then channel address; update in place, add, drop what the file no longer lists.
    by_mac = {e.mac: e for e in project.register if e.mac}
    by_serial = {e.serial: e for e in project.register if e.serial}
    # Cameras named by recorder + channel only: their channel address is all there is to match.
    by_address = {e.address: e for e in project.register if e.address and not e.mac and not e.serial}
    kept: set[int] = set()
    for entry_data in data.register:
        entry = (by_mac.get(entry_data.mac) if entry_data.mac else None) or \
                (by_serial.get(entry_data.serial) if entry_data.serial else None) or \
                (by_address.get(entry_data.address) if entry_data.address and not entry_data.mac
                 and not entry_data.serial else None)
        site = sites_by_code.get(entry_data.site) if entry_data.site else None
        values = dict(mac=entry_data.mac, serial=entry_data.serial, label=entry_data.label,
                      location=entry_data.location, address=entry_data.address,
                      site_id=site.id if site is not None else None)
        if entry is None or id(entry) in kept:
            entry = RegisterEntry(project=project, added_by="import", **values)
            session.add(entry)
            changed = True
        else:
            changed |= _assign(entry, **values)
        kept.add(id(entry))
    for stale in [e for e in project.register if id(e) not in kept]:
        project.register.remove(stale)
        changed = True
    session.flush()

    if created:
        result.created.append(data.code)
    elif changed:
        result.updated.append(data.code)
    else:
        result.unchanged.append(data.code)
    return problems


def _store_credentials(app: Flask, site: Site, creds: list[Credential]) -> bool:
    """Encrypt ``creds`` into the site unless the stored ones are the same (tokens differ on every run)."""
    if site.credentials_encrypted:
        try:
            if decrypt_credentials(app, site.credentials_encrypted) == creds:
                return False
        except CredentialKeyError:
            LOGGER.warning("stored credentials of site %s were encrypted with another key; replacing them",
                           site.code)
    elif not creds:
        return False
    site.credentials_encrypted = encrypt_credentials(app, creds) if creds else None
    return True


def _locator_for(result: FileResult) -> Callable[[ProjectData, tuple[Any, ...], str], ImportProblem]:
    """Problems found while writing name the file, the row and the field, like validation problems."""

    def locate(data: ProjectData, field_path: tuple[Any, ...], message: str) -> ImportProblem:
        row, name = data.locate(data.path + field_path) if data.locate else (None, _dotted(field_path))
        return ImportProblem(result.path, row, name, message, "column" if result.kind == "projects" else "field")

    return locate


def iter_projects(session: Session) -> Iterable[Project]:
    """Every project with agency, profile, sites and register loaded, ordered by code."""
    return session.scalars(select(Project).order_by(Project.code).options(
        selectinload(Project.agency), selectinload(Project.spec_profile), selectinload(Project.sites),
        selectinload(Project.register))).all()
