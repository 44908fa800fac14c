"""Scans keep credentials and register entries inside their agency (issue "Trust", items 2 and 5).

Real simulated cameras (SOAP over loopback), real scans on SQLite and PostgreSQL. Each camera counts the
credentials it rejected, which is what a camera's lock-out counts.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cctv_monitor.models import Device, Observation, RegisterEntry
from probes.targets import Credential
from tests.scan_helpers import add_project

PORT = 18811


def cam(name: str, host: str, password: str, mac: str) -> dict:
    return {"name": name, "host": host, "onvif_port": PORT, "username": "admin", "password": password,
            "manufacturer": "Hikvision", "model": "DS-2CD2143G2-I", "serial": f"SN{host.replace('.', '')}",
            "macs": [mac], "profiles": [{"token": "Profile_1", "name": "main", "encoding": "H264", "width": 1920,
                                         "height": 1080, "fps": 25, "bitrate_kbps": 4096, "gov_length": 50}]}


@pytest.fixture
def two_agencies(app, session):
    """Agency A's site 127.0.8.0/28 and agency B's site 127.0.8.16/28, each with its own stored credential."""
    from cctv_monitor.crypto import encrypt_credentials

    app.config["ONVIF_PORTS"] = [PORT]
    a = add_project(session, code="PA", agency_code="agency-a", ranges=("127.0.8.0/28",), ports=[PORT],
                    credentials=encrypt_credentials(app, [("admin", "Right#A")]), site_code="a")
    b = add_project(session, code="PB", agency_code="agency-b", ranges=("127.0.8.16/28",), ports=[PORT],
                    credentials=encrypt_credentials(app, [("admin", "Right#B")]), site_code="b",
                    macs=("c0:56:e3:00:08:14",))
    return a, b


def test_credentials_per_device_never_another_agencys_and_never_retried(app, session, two_agencies):
    """Per device: its site's credential, then the typed one; agency B's never on A's cameras; what a
    device rejected is not tried on it again (the second scan adds no failure anywhere)."""
    from cctv_monitor.scanning import run_scan
    from cctv_monitor.simulator.testing import running_fleet

    fleet = {"fleet": "trust-creds", "cameras": [
        cam("a-site", "127.0.8.5", "Right#A", "c0:56:e3:00:08:05"),  # A's own password
        cam("a-typed", "127.0.8.6", "Typed#1", "c0:56:e3:00:08:06"),  # the operator's typed one
        cam("a-with-b-pw", "127.0.8.7", "Right#B", "c0:56:e3:00:08:07"),  # in A's range, B's password
        cam("b-site", "127.0.8.20", "Right#B", "c0:56:e3:00:08:14")]}
    typed = [Credential("admin", "Typed#1")]
    with running_fleet(fleet, port_fallback=False) as running:
        bindings = {b.spec.name: b for b in running.runtime.bindings}
        run_scan(app, "range", "127.0.8.0/27", credentials=typed, deliver_alerts=False)
        first = {name: b.auth_failures for name, b in bindings.items()}
        run_scan(app, "range", "127.0.8.0/27", credentials=typed, deliver_alerts=False)
        second = {name: b.auth_failures for name, b in bindings.items()}
    # Site first (before: the typed credential was tried first on every camera), never B's on A's cameras.
    assert first == {"a-site": 0, "a-typed": 1, "a-with-b-pw": 2, "b-site": 0}
    assert second == first  # nothing rejected was tried again
    session.expire_all()
    devices = {d.address: d for d in session.scalars(select(Device))}
    locked_out = devices[f"127.0.8.7:{PORT}"]
    assert locked_out.status == "unreachable"  # read failed: B's password was never offered
    last = session.get(Observation, locked_out.last_observation_id)
    assert "not tried again until they change" in last.error
    assert len(locked_out.rejected_credential_refs) == 2
    typed_cam = devices[f"127.0.8.6:{PORT}"]
    assert typed_cam.status in ("unregistered", "non_compliant", "compliant")
    assert typed_cam.credential_ref and "Typed#1" not in typed_cam.credential_ref  # a keyed fingerprint only


def test_register_entry_of_another_agency_cannot_be_taken_over(app, session, two_agencies):
    """A camera in A's range reporting B's registered MAC is an identity conflict on both devices; B's device
    keeps its address and register entry, and B's next scan never probes A's address."""
    from cctv_monitor.scanning import run_scan
    from cctv_monitor.simulator.testing import running_fleet

    _, project_b = two_agencies
    fleet = {"fleet": "trust-hijack", "cameras": [
        cam("b-real", "127.0.8.20", "Right#B", "c0:56:e3:00:08:14"),
        dict(cam("a-impostor", "127.0.8.5", "Right#A", "c0:56:e3:00:08:14"), serial="SN1270820")]}
    # ^ a clone of B's camera (its registered MAC and its serial) in A's range
    with running_fleet(fleet, port_fallback=False) as running:
        bindings = {b.spec.name: b for b in running.runtime.bindings}
        run_scan(app, "site", "PB/b", deliver_alerts=False)
        session.expire_all()
        real = session.scalar(select(Device).where(Device.address == f"127.0.8.20:{PORT}"))
        assert real.registered and real.project_id == project_b.id
        entry_id, status = real.register_entry_id, real.status
        run_scan(app, "site", "PA/a", deliver_alerts=False)
        impostor_attempts = bindings["a-impostor"].auth_attempts
        run_scan(app, "site", "PB/b", deliver_alerts=False)
        assert bindings["a-impostor"].auth_attempts == impostor_attempts  # B's scan never went to A's address
        run_scan(app, "site", "PA/a", deliver_alerts=False)  # the impostor again: the same device, not a new one
    session.expire_all()
    real = session.get(Device, real.id)
    assert real.address == f"127.0.8.20:{PORT}" and real.registered and real.register_entry_id == entry_id
    assert real.project_id == project_b.id and real.status == status
    (impostor,) = session.scalars(select(Device).where(Device.address == f"127.0.8.5:{PORT}")).all()
    assert impostor.id != real.id
    assert len(session.scalars(select(Observation).where(Observation.device_id == impostor.id)).all()) == 2
    assert not impostor.registered and impostor.register_entry_id is None
    assert impostor.project_id != project_b.id
    assert "outside" in (impostor.identity_conflict or "")
    assert session.scalar(select(RegisterEntry).where(RegisterEntry.id == entry_id)).address is None


def test_known_device_outside_the_scope_is_not_probed(app, session, two_agencies):
    """A device whose last address left its project's ranges (moved, or recorded by an older version) is not
    probed by the project's scan: it shows as missing until found in range again."""
    from cctv_monitor.scanning import run_scan
    from cctv_monitor.simulator.testing import running_fleet

    _, project_b = two_agencies
    entry = session.scalar(select(RegisterEntry).where(RegisterEntry.project_id == project_b.id))
    outside = Device(address=f"127.0.8.5:{PORT}", mac="c0:56:e3:00:08:14", macs=["c0:56:e3:00:08:14"],
                     project_id=project_b.id, agency_id=project_b.agency_id, registered=True, status="compliant",
                     register_entry_id=entry.id)
    session.add(outside)
    session.commit()
    fleet = {"fleet": "trust-outside", "cameras": [cam("somewhere", "127.0.8.5", "Right#B", "c0:56:e3:00:08:14")]}
    with running_fleet(fleet, port_fallback=False) as running:
        run_scan(app, "project", "PB", deliver_alerts=False)
        assert running.runtime.bindings[0].requests == 0  # before: probed there with B's credentials
    session.expire_all()
    assert session.get(Device, outside.id).status in ("missing", "offline")


def test_impostor_seen_first_is_not_made_the_registered_camera(app, session, two_agencies):
    """The impostor in A's range answers before B's camera was ever seen; B's scan (its camera off) reports
    B's entry missing and leaves the impostor device alone."""
    from cctv_monitor.scanning import run_scan
    from cctv_monitor.simulator.testing import running_fleet

    _, project_b = two_agencies
    fleet = {"fleet": "trust-first", "cameras": [cam("a-impostor", "127.0.8.5", "Right#A", "c0:56:e3:00:08:14")]}
    with running_fleet(fleet, port_fallback=False):
        run_scan(app, "site", "PA/a", deliver_alerts=False)
        run_scan(app, "site", "PB/b", deliver_alerts=False)
    session.expire_all()
    impostor = session.scalar(select(Device).where(Device.address == f"127.0.8.5:{PORT}"))
    assert impostor.project_id != project_b.id and not impostor.registered and impostor.register_entry_id is None
    entry = session.scalar(select(RegisterEntry).where(RegisterEntry.project_id == project_b.id))
    placeholder = session.scalar(select(Device).where(Device.register_entry_id == entry.id))
    assert placeholder is not None and placeholder.id != impostor.id and placeholder.status == "missing"
