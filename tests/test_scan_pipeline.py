"""Scan pipeline on the database: identity, drift, matching, statuses, findings, alerts, run life cycle.

The input is what the probes yield (observation dataclasses, built in :mod:`scan_helpers`), recorded by the
real pipeline through :func:`cctv_monitor.scanning.import_observations` on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from cctv_monitor.models import AlertEvent, Device, DeviceChange, Finding, Observation, ScanRun, StatusDaily
from cctv_monitor.scanning import (
    ScanAlreadyRunning,
    ScanTargetError,
    import_observations,
    is_placeholder_serial,
    is_valid_mac,
    mark_dead_runs_interrupted,
    run_scan,
)
from probes.results import ProbeStatus
from scan_helpers import add_project, mac_of, make_obs

CODE = "CR-MS-2568-001"
HOSTS = ["127.0.1.11", "127.0.1.12", "127.0.1.13"]


@pytest.fixture
def project(session):
    """A project approving 3 cameras; the register holds the MACs of the three HOSTS."""
    return add_project(session, code=CODE, approved=3, macs=tuple(mac_of(h) for h in HOSTS))


def _devices(session) -> dict[str, Device]:
    session.expire_all()
    return {d.address or d.mac: d for d in session.scalars(select(Device))}


def _scan(app, observations, kind="project", value=CODE) -> int:
    return import_observations(app, kind, value, observations, deliver_alerts=False)


def test_identity_helpers():
    assert is_valid_mac("c0:56:e3:00:01:0b")
    assert not is_valid_mac("00:00:00:00:00:00")
    assert not is_valid_mac("ff:ff:ff:ff:ff:ff")
    assert not is_valid_mac("01:00:5e:00:00:01")  # multicast
    assert not is_valid_mac("c0:56:e3:00:01")
    assert is_placeholder_serial("SZ0000000000")
    assert is_placeholder_serial("123456")
    assert is_placeholder_serial("")
    assert not is_placeholder_serial("DS-2CD2T47G2-L20230115AAWRL00012011")


def test_first_scan_statuses_findings_and_run(app, session, project):
    obs = [make_obs("127.0.1.11"), make_obs("127.0.1.12", width=1280, height=720),
           make_obs("127.0.1.30", mac="00:12:41:00:01:1e", serial="SZ0000000000", manufacturer="Shenzhen",
                    model="IPC-8720B")]
    run_id = _scan(app, obs)
    run = session.get(ScanRun, run_id)
    assert run.state == "completed" and run.done == 3 and run.total == 3 and run.finished is not None
    devices = _devices(session)
    assert devices["127.0.1.11:8000"].status == "compliant"
    assert devices["127.0.1.11:8000"].registered and devices["127.0.1.11:8000"].project_id == project.id
    assert devices["127.0.1.12:8000"].status == "non_compliant"
    extra = devices["127.0.1.30:8000"]
    assert extra.status == "unregistered" and not extra.registered and extra.project_id == project.id
    # 127.0.1.13 is in the register but never answered: a placeholder device, missing.
    missing = devices[mac_of("127.0.1.13")]
    assert missing.status == "missing" and missing.registered
    assert run.counts == {"compliant": 1, "missing": 1, "non_compliant": 1, "unregistered": 1}
    rules = {(f.device_id, f.rule_id) for f in session.scalars(select(Finding).where(Finding.active.is_(True)))}
    assert (devices["127.0.1.12:8000"].id, "resolution") in rules
    assert (extra.id, "unregistered") in rules
    assert (missing.id, "registered_missing") in rules
    # project level: three cameras of the project answered (the extra included), three approved
    assert session.scalar(select(Finding).where(Finding.project_id == project.id, Finding.device_id.is_(None))) is None
    assert session.scalar(select(Observation).where(Observation.address == "127.0.1.12:8000")).width == 1280
    kinds = sorted(e.kind for e in session.scalars(select(AlertEvent)))
    assert kinds == ["missing", "non_compliant", "unregistered"]


def test_drift_recorded_and_new_finding(app, session, project):
    _scan(app, [make_obs(h) for h in HOSTS])
    assert {d.status for d in _devices(session).values()} == {"compliant"}
    second = [make_obs("127.0.1.11", width=1280, height=720, firmware="V5.7.12 build 240101"),
              make_obs("127.0.1.12"), make_obs("127.0.1.13")]
    run2 = _scan(app, second)
    devices = _devices(session)
    cam = devices["127.0.1.11:8000"]
    assert cam.status == "non_compliant"
    changes = {(c.attribute, c.old_value, c.new_value) for c in
               session.scalars(select(DeviceChange).where(DeviceChange.device_id == cam.id))}
    assert ("resolution", "1920x1080", "1280x720") in changes
    assert ("firmware", "V5.7.11 build 230428", "V5.7.12 build 240101") in changes
    new = session.scalars(select(Finding).where(Finding.device_id == cam.id, Finding.active.is_(True))).all()
    assert [f.rule_id for f in new] == ["resolution"] and new[0].scan_run_id == run2
    alerts = session.scalars(select(AlertEvent).where(AlertEvent.scan_run_id == run2)).all()
    assert [(a.kind, a.device_id) for a in alerts] == [("non_compliant", cam.id)]
    # third scan, fixed again: the finding is resolved, not deleted
    _scan(app, [make_obs(h) for h in HOSTS])
    session.expire_all()
    finding = session.scalar(select(Finding).where(Finding.device_id == cam.id, Finding.rule_id == "resolution"))
    assert finding.active is False and finding.resolved_at is not None
    assert session.scalar(select(Device).where(Device.id == cam.id)).status == "compliant"


def test_drift_compares_with_the_last_ok_observation_across_a_failed_scan(app, session, project):
    """A scan that could not read the camera (offline) lies between two ok ones: the drift of the third is
    measured against the first (the device's ``last_ok_observation_id``), not lost."""
    _scan(app, [make_obs(h) for h in HOSTS])
    first = _devices(session)["127.0.1.11:8000"]
    first_ok = first.last_ok_observation_id
    assert first_ok is not None and first_ok == first.last_observation_id
    _scan(app, [make_obs("127.0.1.11", status=ProbeStatus.UNREACHABLE), make_obs("127.0.1.12"),
                make_obs("127.0.1.13")])
    cam = _devices(session)["127.0.1.11:8000"]
    assert cam.status == "offline" and cam.last_ok_observation_id == first_ok != cam.last_observation_id
    run3 = _scan(app, [make_obs("127.0.1.11", width=1280, height=720), make_obs("127.0.1.12"),
                       make_obs("127.0.1.13")])
    changes = {(c.attribute, c.old_value, c.new_value) for c in session.scalars(
        select(DeviceChange).where(DeviceChange.device_id == cam.id, DeviceChange.scan_run_id == run3))}
    assert ("resolution", "1920x1080", "1280x720") in changes
    cam = _devices(session)["127.0.1.11:8000"]
    assert cam.last_ok_observation_id == cam.last_observation_id != first_ok


def test_a_holding_finding_is_not_rewritten_and_its_last_confirmation_is_the_devices_latest_observation(
        app, session, project):
    """A finding that holds scan after scan keeps its row as raised (run, observation, time); what confirms
    it is the device's latest observation, which the API shows as its ``last_seen``. Resolved, it names the
    last observation that confirmed it."""
    from dashboards.api import _finding_json

    def resolution_finding() -> Finding:
        session.expire_all()
        return session.scalar(select(Finding).where(Finding.rule_id == "resolution"))

    low = [make_obs("127.0.1.11", width=1280, height=720), make_obs("127.0.1.12"), make_obs("127.0.1.13")]
    run1 = _scan(app, low)
    raised = resolution_finding()
    cam = session.get(Device, raised.device_id)
    first_obs, first_seen = cam.last_observation_id, raised.last_seen
    assert raised.scan_run_id == run1 and raised.observation_id == first_obs and first_seen == raised.first_seen
    _scan(app, [make_obs("127.0.1.11", width=1280, height=720), make_obs("127.0.1.12"), make_obs("127.0.1.13")])
    held = resolution_finding()
    cam = session.get(Device, held.device_id)
    second_obs = cam.last_observation_id
    assert second_obs != first_obs and held.active
    assert (held.scan_run_id, held.observation_id, held.last_seen) == (run1, first_obs, first_seen)
    confirmed = session.get(Observation, second_obs).observed_at
    assert _finding_json(held, confirmed)["last_seen"] == confirmed.isoformat() != first_seen.isoformat()
    _scan(app, [make_obs(h) for h in HOSTS])
    gone = resolution_finding()
    assert not gone.active and gone.resolved_at is not None
    assert gone.observation_id == second_obs and gone.last_seen == confirmed
    assert _finding_json(gone, gone.resolved_at)["last_seen"] == confirmed.isoformat()


def test_moved_address_is_one_device_not_offline(app, session, project):
    _scan(app, [make_obs(h) for h in HOSTS])
    moved = make_obs("127.0.1.40", mac=mac_of("127.0.1.11"), serial="SN1270111X")
    # the old address is silent in the same scan; it must not mark the camera offline
    run2 = _scan(app, [make_obs("127.0.1.11", status=ProbeStatus.UNREACHABLE), moved,
                       make_obs("127.0.1.12"), make_obs("127.0.1.13")])
    devices = session.scalars(select(Device)).all()
    assert len(devices) == 3
    cam = session.scalar(select(Device).where(Device.mac == mac_of("127.0.1.11")))
    assert cam.address == "127.0.1.40:8000" and cam.status == "compliant"
    changes = {(c.attribute, c.old_value, c.new_value) for c in
               session.scalars(select(DeviceChange).where(DeviceChange.device_id == cam.id))}
    assert ("address", "127.0.1.11:8000", "127.0.1.40:8000") in changes
    assert session.scalars(select(AlertEvent).where(AlertEvent.scan_run_id == run2)).all() == []


def test_shared_and_garbage_macs_are_flagged_not_merged(app, session, project):
    shared = mac_of("127.0.1.11")
    obs = [make_obs("127.0.1.11"),
           make_obs("127.0.1.21", mac=shared, serial="OTHER-SERIAL-0001"),  # clone with the same MAC
           make_obs("127.0.1.22", mac="00:00:00:00:00:00", serial="GARBAGE-MAC-0001"),
           make_obs("127.0.1.23", mac="00:00:00:00:00:00", serial="GARBAGE-MAC-0002"),
           make_obs("127.0.1.12"), make_obs("127.0.1.13")]
    _scan(app, obs)
    devices = _devices(session)
    answering = [d for d in devices.values() if d.address]
    assert len(answering) == 6  # nothing merged
    assert "shared MAC" in (devices["127.0.1.21:8000"].identity_conflict or "")
    assert "shared MAC" in (devices["127.0.1.11:8000"].identity_conflict or "")
    assert "garbage MAC" in devices["127.0.1.22:8000"].identity_conflict
    # the garbage-MAC cameras keep their identities by serial on the next scan
    _scan(app, obs)
    assert len([d for d in _devices(session).values() if d.address]) == 6


def test_offline_then_back_online_alerts_on_changes_only(app, session, project):
    _scan(app, [make_obs(h) for h in HOSTS])
    silent = [make_obs("127.0.1.11", status=ProbeStatus.UNREACHABLE), make_obs("127.0.1.12"), make_obs("127.0.1.13")]
    run2 = _scan(app, silent)
    cam = session.scalar(select(Device).where(Device.address == "127.0.1.11:8000"))
    assert cam.status == "offline"
    assert [a.kind for a in session.scalars(select(AlertEvent).where(AlertEvent.scan_run_id == run2))] == ["offline"]
    run3 = _scan(app, silent)  # still offline: no new alert
    assert session.scalars(select(AlertEvent).where(AlertEvent.scan_run_id == run3)).all() == []
    run4 = _scan(app, [make_obs(h) for h in HOSTS])
    session.expire_all()
    assert session.get(Device, cam.id).status == "compliant"
    assert [a.kind for a in session.scalars(select(AlertEvent).where(AlertEvent.scan_run_id == run4))] == ["online"]
    assert session.get(ScanRun, run2).counts["offline"] == 1


def _today_snapshot(session) -> dict[str, int]:
    from datetime import date

    session.expire_all()
    rows = session.scalars(select(StatusDaily).where(StatusDaily.day == date.today()))
    out: dict[str, int] = {}
    for row in rows:
        out[row.status] = out.get(row.status, 0) + row.count
    return out


def test_every_scan_replaces_todays_status_snapshot(app, session, project):
    """The dashboard trend reads status_daily; each finished scan rewrites today's row set from the devices."""
    _scan(app, [make_obs(h) for h in HOSTS])
    assert _today_snapshot(session) == {"compliant": 3}
    _scan(app, [make_obs("127.0.1.11", status=ProbeStatus.UNREACHABLE), make_obs("127.0.1.12", width=1280,
                                                                                  height=720), make_obs("127.0.1.13")])
    assert _today_snapshot(session) == {"compliant": 1, "non_compliant": 1, "offline": 1}
    rows = session.scalars(select(StatusDaily)).all()
    assert {r.project_id for r in rows} == {project.id} and len(rows) == 3  # replaced, not added to


def test_unreachable_device_and_hostile_strings(app, session, project):
    hostile = make_obs("127.0.1.11", name="<script>alert(1)</script>\x00" + "ก" * 900, model="M\x00" + "x" * 400)
    _scan(app, [hostile, make_obs("127.0.1.12", status=ProbeStatus.ONVIF_DISABLED)], kind="range",
          value="127.0.1.0/24")
    devices = _devices(session)
    cam = devices["127.0.1.11:8000"]
    assert "\x00" not in cam.name and len(cam.name) == 500 and len(cam.model) == 255
    unreachable = devices["127.0.1.12:8000"]
    assert unreachable.status == "unreachable"
    assert session.scalar(select(Finding).where(Finding.device_id == unreachable.id)).rule_id == "onvif_unreachable"


def test_range_scan_outside_projects(app, session):
    _scan(app, [make_obs("127.0.9.11")], kind="range", value="127.0.9.0/24")
    device = session.scalar(select(Device))
    assert device.status == "unregistered" and device.project_id is None and device.agency_id is None


def test_bad_targets_have_clear_errors(app, session, project):
    with pytest.raises(ScanTargetError, match="no project with code 'NOPE'"):
        run_scan(app, "project", "NOPE")
    with pytest.raises(ScanTargetError, match="invalid address range"):
        run_scan(app, "range", "10.0.0.0/33")
    with pytest.raises(ScanTargetError, match="unknown scan target kind"):
        run_scan(app, "building", "x")
    with pytest.raises(ScanTargetError, match="no site with code"):
        run_scan(app, "site", "nowhere")
    assert session.scalars(select(ScanRun)).all() == []  # a typo leaves no run behind


def test_dead_runs_marked_interrupted_and_live_ones_block(app, session, project):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket

        session.add(ScanRun(target_kind="project", target_value=CODE, state="running", pid=dead.pid,
                            host=socket.gethostname(), total=10, done=4))
        session.commit()
        assert mark_dead_runs_interrupted(session) == 1
        run = session.scalar(select(ScanRun))
        assert run.state == "interrupted" and "4 of 10" in run.error
        session.add(ScanRun(target_kind="project", target_value=CODE, state="running", pid=live.pid,
                            host=socket.gethostname()))
        session.commit()
        with pytest.raises(ScanAlreadyRunning, match="already running"):
            _scan(app, [make_obs("127.0.1.11")])
    finally:
        live.kill()
        live.wait(10)
        live.wait()
    # once the holder is gone the next scan succeeds
    run_id = _scan(app, [make_obs(h) for h in HOSTS])
    session.expire_all()
    assert session.get(ScanRun, run_id).state == "completed"
    assert os.getpid()  # the test process itself was never marked


def test_background_scan_returns_run_id_and_reports_bad_targets(app, session, project):
    import time

    from cctv_monitor.scanning import start_scan_in_background

    run_id = start_scan_in_background(app, "project", CODE, observations=[make_obs(h) for h in HOSTS],
                                      deliver_alerts=False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        session.expire_all()
        if session.get(ScanRun, run_id).state == "completed":
            break
        time.sleep(0.05)
    assert session.get(ScanRun, run_id).state == "completed"
    with pytest.raises(ScanTargetError, match="no project"):
        start_scan_in_background(app, "project", "NOPE")
