"""Builders shared by the scan tests: a small approved project in the database and probe observations.

The observations are the pipeline's real input (what :func:`probes.scan.probe_many` yields), built here
so identity, drift and status logic can be exercised without a network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cctv_monitor.models import Agency, Project, RegisterEntry, Site, SpecProfile
from probes.results import DeviceIdentity, MediaProfile, Observation, ProbeStatus, utc_now_iso

REPO = Path(__file__).resolve().parent.parent


def add_spec_profile(session, code: str = "fixed_outdoor") -> SpecProfile:
    """The shipped spec profile ``code`` as a row."""
    body = yaml.safe_load((REPO / "config" / "profiles" / f"{code}.yaml").read_text())
    profile = SpecProfile(code=code, name_th=body["name_th"], name_en=body.get("name_en"),
                          device_class=body["device_class"], requirements=body, source=body.get("source"))
    session.add(profile)
    session.flush()
    return profile


def add_project(session, *, code: str = "CR-MS-2568-001", agency_code: str = "maesai-mun",
                approved: int = 3, ranges: tuple[str, ...] = ("127.0.1.0/24",), macs: tuple[str, ...] = (),
                ports: list[int] | None = None, alerts: dict[str, Any] | None = None,
                credentials: str | None = None, site_code: str = "market") -> Project:
    """Agency, project, one site and a register of ``macs``; committed."""
    agency = session.query(Agency).filter_by(code=agency_code).one_or_none()
    if agency is None:
        agency = Agency(code=agency_code, name_th="เทศบาลตำบลแม่สาย", name_en="Mae Sai Subdistrict Municipality",
                        province="เชียงราย", district="แม่สาย", alerts=alerts)
        session.add(agency)
    profile = session.query(SpecProfile).filter_by(code="fixed_outdoor").one_or_none() or add_spec_profile(session)
    project = Project(code=code, title_th="โครงการติดตั้งกล้องโทรทัศน์วงจรปิด ตลาดสายลมจอย", agency=agency,
                      spec_profile=profile, approved_count=approved, approval_ref="ชร 0023.3/1234")
    session.add(project)
    site = Site(project=project, code=site_code, name_th="ตลาดสายลมจอย", address_ranges=list(ranges), ports=ports,
                credentials_encrypted=credentials)
    session.add(site)
    session.flush()
    for i, mac in enumerate(macs, 1):
        session.add(RegisterEntry(project=project, site_id=site.id, mac=mac, label=f"cam-{i}", added_by="import"))
    session.commit()
    return project


def mac_of(host: str, oui: str = "c0:56:e3") -> str:
    """Demo-plan MAC of a loopback camera."""
    _, _, c, d = host.split(".")
    return f"{oui}:00:{int(c):02x}:{int(d):02x}"


def make_obs(host: str, *, port: int = 8000, mac: str | None = "auto", serial: str | None = "auto",
             width: int = 1920, height: int = 1080, fps: float = 25, encoding: str = "H264",
             firmware: str = "V5.7.11 build 230428", status: ProbeStatus = ProbeStatus.OK,
             clock_offset_s: float = 0.0, model: str = "DS-2CD2T47G2-L", name: str = "cam",
             manufacturer: str = "Hikvision") -> Observation:
    """An observation like the ONVIF probe returns for a demo camera (or a failed probe)."""
    address = f"{host}:{port}"
    if status is not ProbeStatus.OK and status in (ProbeStatus.UNREACHABLE, ProbeStatus.TIMEOUT):
        return Observation(address=address, status=status, error="connection refused", observed_at=utc_now_iso())
    mac = mac_of(host) if mac == "auto" else mac
    serial = f"SN{host.replace('.', '')}X" if serial == "auto" else serial
    ident = DeviceIdentity(manufacturer=manufacturer, model=model, firmware=firmware, serial=serial,
                           macs=(mac,) if mac else (), name=name, onvif_profiles=("S",))
    if status is not ProbeStatus.OK:
        return Observation(address=address, status=status, error="ONVIF is disabled", observed_at=utc_now_iso())
    profiles = (MediaProfile(token="Profile_1", name="mainStream", encoding=encoding, width=width, height=height,
                             fps=fps, bitrate_kbps=4096, gov_length=50,
                             stream_uri=f"rtsp://{host}:8554/cam/Profile_1"),
                MediaProfile(token="Profile_2", name="subStream", encoding="H264", width=640, height=360, fps=15,
                             bitrate_kbps=512, gov_length=30, stream_uri=f"rtsp://{host}:8554/cam/Profile_2"))
    return Observation(address=address, status=ProbeStatus.OK, observed_at=utc_now_iso(), device=ident,
                       clock_offset_s=clock_offset_s, services=("device", "media"), profiles=profiles)


def import_moved(app, session, path: Path, ports: set[int], prefix_from: str, prefix_to: str) -> None:
    """Import shipped project files from ``path``, then move their site ranges and register addresses from
    ``prefix_from`` to ``prefix_to`` (a test fleet's own loopback block) and give the sites ``ports``."""
    from sqlalchemy import select

    from cctv_monitor.registry import import_path

    with app.app_context():
        report = import_path(session, path, app=app, profiles_dir=REPO / "config" / "profiles")
    assert not any(f.errors for f in report.files), [f.errors for f in report.files if f.errors]
    for site in session.scalars(select(Site)):
        site.address_ranges = [r.replace(prefix_from, prefix_to, 1) for r in site.address_ranges]
        site.ports = sorted(ports)
    for entry in session.scalars(select(RegisterEntry)):
        if entry.address:
            entry.address = entry.address.replace(prefix_from, prefix_to, 1)
    session.commit()
