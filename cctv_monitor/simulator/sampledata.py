"""Realistic dashboard data built straight with the models (for tests, screenshots and the benchmark).

It follows the demo address plan (three agencies of Mae Sai, their projects, sites and registers, the
non-compliant cameras and their findings, a missing, an unreachable and unregistered cameras), adds the
hostile camera of the quirks fleet (name ``<script>alert(1)</script>``), scan runs, schedules, attribute
changes, a thumbnail, a daily status history, users of every role and, on request, many more devices.
It writes what a scan would have written; it does not probe anything.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy.orm import Session

from cctv_monitor.models import (
    Agency,
    Device,
    DeviceChange,
    Finding,
    Observation,
    Project,
    RegisterEntry,
    ScanRun,
    ScanSchedule,
    Site,
    SpecProfile,
    StatusDaily,
    User,
)
from cctv_monitor.simulator.fleet import HOSTILE_LOCATION, HOSTILE_MODEL, HOSTILE_NAME
from cctv_monitor.accounts import hash_password, hash_token

LOGGER = logging.getLogger(__name__)

SOURCE = "MDES CCTV standard 2566, table 2 (unverified copy)"
CAMERA_PASSWORD = "Demo#2567"  # what a leak test looks for: it must appear nowhere in pages or exports
FORMULA_NAME = "=HYPERLINK(\"http://evil.example\",\"x\")"

#: username -> (password, role, agency code, API token)
USERS = {
    "admin": ("admin-pass-2567", "admin", None, "token-admin-0123456789abcdef"),
    "auditor": ("auditor-pass-2567", "auditor", None, "token-auditor-0123456789abcdef"),
    "tech-maesai": ("tech-maesai-2567", "technician", "maesai-mun", "token-maesai-0123456789abcdef"),
    "tech-wiang": ("tech-wiang-2567", "technician", "wiangphangkham-mun", "token-wiang-0123456789abcdef"),
}

OUI = {"Hikvision": "c0:56:e3", "Dahua": "3c:ef:8c", "Uniview": "24:28:fd", "Shenzhen": "00:12:41"}
MODELS = {"Hikvision": ("DS-2CD2T47G2-L", "V5.7.11 build 230428"), "Dahua": ("IPC-HFW2441S-S", "V2.840.0000000.7.R"),
          "Uniview": ("IPC2124LE-ADF28KM-G", "IPC_G6103-B0007P62D1905"), "Shenzhen": ("IPC-720P", "V1.0.0")}


@dataclass
class SampleData:
    """Ids of what :func:`seed` made."""

    agencies: dict[str, int] = field(default_factory=dict)
    projects: dict[str, int] = field(default_factory=dict)
    sites: dict[str, int] = field(default_factory=dict)
    devices: dict[str, int] = field(default_factory=dict)  # address -> id
    hostile_device_id: int = 0
    users: dict[str, tuple[str, str, str | None, str]] = field(default_factory=lambda: dict(USERS))


def mac_for(manufacturer: str, address: str) -> str:
    """MAC of a demo camera: OUI + 00:XX:YY from the 3rd and 4th octets."""
    parts = address.split(".")
    return f"{OUI[manufacturer]}:00:{int(parts[2]):02x}:{int(parts[3]):02x}"


def tiny_jpeg() -> bytes:
    """A small real JPEG (a test pattern) as a stand-in thumbnail."""
    import cv2
    import numpy as np

    image = np.zeros((90, 160, 3), dtype=np.uint8)
    for i, colour in enumerate([(255, 255, 255), (0, 255, 255), (255, 255, 0), (0, 255, 0), (255, 0, 255),
                                (0, 0, 255), (255, 0, 0), (40, 40, 40)]):
        image[:, i * 20:(i + 1) * 20] = colour
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 70])
    assert ok
    return buf.tobytes()


def observation_data(address: str, manufacturer: str, model: str, firmware: str, *, codec: str = "H264",
                     width: int = 1920, height: int = 1080, fps: float = 25.0, measured: tuple[int, int] | None = None,
                     measured_fps: float | None = None, bitrate: int = 4096, status: str = "ok",
                     error: str | None = None, name: str | None = None) -> dict[str, Any]:
    """An observation body shaped like ``probes.results.Observation.to_dict()`` (URIs already redacted)."""
    host = address.split(":")[0]
    mw, mh = measured or (width, height)
    return {
        "address": address, "status": status, "error": error, "observed_at": "", "duration_s": 0.4,
        "device": {"manufacturer": manufacturer, "model": model, "firmware": firmware, "serial": None,
                   "hardware_id": "88", "macs": [], "hostname": None, "name": name, "location": None,
                   "scopes": [], "onvif_profiles": ["S"]},
        "clock_offset_s": 0.2, "services": ["device", "media"],
        "xaddrs": [f"http://{host}:8000/onvif/device_service"],
        "profiles": [
            {"token": "Profile_1", "name": "mainStream", "encoding": codec, "width": width, "height": height,
             "fps": fps, "bitrate_kbps": bitrate, "gov_length": 50, "quality": None,
             "stream_uri": f"rtsp://***@{host}:8554/cam/Profile_1", "snapshot_uri": None, "media_service": "media",
             "video_source_token": "VideoSource_1"},
            {"token": "Profile_2", "name": "subStream", "encoding": "H264", "width": 640, "height": 360,
             "fps": 15, "bitrate_kbps": 512, "gov_length": 30, "quality": None,
             "stream_uri": f"rtsp://{host}:8554/cam/Profile_2?user=***&password=***", "snapshot_uri": None,
             "media_service": "media", "video_source_token": "VideoSource_1"},
        ],
        "stream_checks": [
            {"profile_token": "Profile_1", "ok": True, "width": mw, "height": mh,
             "fps": measured_fps if measured_fps is not None else fps, "codec": codec, "first_frame_s": 1.3,
             "bitrate_kbps": bitrate, "black": False, "frozen": False, "low_detail": False, "error": None,
             "thumbnail_jpeg": None},
        ] if status == "ok" else [],
        "warnings": [], "raw_errors": [], "schema_version": 1,
    }


def seed(session: Session, *, extra_devices: int = 0, days: int = 30, now: datetime | None = None,
         rng_seed: int = 2567) -> SampleData:
    """Fill an empty database with the demo agencies, projects, devices, findings, scans and users."""
    rng = random.Random(rng_seed)
    now = now or datetime.now(timezone.utc)
    out = SampleData()
    thumb = tiny_jpeg()

    profiles = {}
    for code, th, en, cls in (("fixed_outdoor", "กล้องติดตั้งภายนอกอาคาร", "Fixed outdoor camera", "fixed_outdoor"),
                              ("fixed_analytics", "กล้องวิเคราะห์ภาพ", "Fixed analytics camera", "analytics"),
                              ("fixed_indoor", "กล้องติดตั้งภายในอาคาร", "Fixed indoor camera", "fixed_indoor")):
        profiles[code] = SpecProfile(code=code, name_th=th, name_en=en, device_class=cls, source=SOURCE,
                                     requirements={"resolution": {"min_width": 1920, "min_height": 1080}})
        session.add(profiles[code])

    agencies_spec = [
        ("maesai-mun", "เทศบาลตำบลแม่สาย", "Mae Sai Subdistrict Municipality", "เชียงราย", "แม่สาย"),
        ("wiangphangkham-mun", "เทศบาลตำบลเวียงพางคำ", "Wiang Phang Kham Subdistrict Municipality", "เชียงราย", "แม่สาย"),
        ("pongpha-sao", "องค์การบริหารส่วนตำบลโป่งผา", "Pong Pha Subdistrict Administrative Organization", "เชียงราย",
         "แม่สาย"),
    ]
    agencies = {}
    for code, th, en, province, district in agencies_spec:
        agencies[code] = Agency(code=code, name_th=th, name_en=en, province=province, district=district)
        session.add(agencies[code])
    session.flush()
    out.agencies = {k: v.id for k, v in agencies.items()}

    projects_spec = [
        ("CR-MS-2568-001", "maesai-mun", "fixed_outdoor", 12, "โครงการติดตั้งกล้องวงจรปิดตลาดและสะพานแม่สาย",
         "Mae Sai market and bridge CCTV", [("market", "ตลาดสายลมจอย", "Sai Lom Joi market", "127.0.1.0/24"),
                                            ("bridge", "สะพานมิตรภาพไทย-เมียนมา", "Thai-Myanmar Friendship Bridge",
                                             "127.0.2.0/24")]),
        ("CR-MS-2568-002", "wiangphangkham-mun", "fixed_analytics", 10, "โครงการกล้องวงจรปิดโรงเรียนบ้านเวียงพางคำ",
         "Ban Wiang Phang Kham school CCTV", [("school", "โรงเรียนบ้านเวียงพางคำ", "Ban Wiang Phang Kham school",
                                               "127.0.3.0/24")]),
        ("CR-MS-2567-003", "pongpha-sao", "fixed_indoor", 8, "โครงการกล้องวงจรปิดที่ทำการ อบต.โป่งผา",
         "Pong Pha SAO office CCTV", [("office", "ที่ทำการ อบต.โป่งผา", "Pong Pha SAO office", "127.0.4.0/24")]),
    ]
    projects: dict[str, Project] = {}
    sites: dict[str, Site] = {}
    for code, agency, profile, approved, th, en, site_rows in projects_spec:
        project = Project(code=code, title_th=th, title_en=en, agency=agencies[agency], spec_profile=profiles[profile],
                          approved_count=approved, approval_ref=f"ชร 0023.{code[-3:]}/2568", committee_level="province",
                          approval_date=date(2024, 10, 25), budget_thb=1_250_000)
        session.add(project)
        projects[code] = project
        for scode, sth, sen, cidr in site_rows:
            site = Site(project=project, code=scode, name_th=sth, name_en=sen, address_ranges=[cidr],
                        credentials_encrypted="gAAAAA-not-a-real-fernet-token")
            session.add(site)
            sites[scode] = site
    session.flush()
    out.projects = {k: v.id for k, v in projects.items()}
    out.sites = {k: v.id for k, v in sites.items()}

    # (address, manufacturer, project, site, status, findings [(rule, expected, observed)], overrides)
    cams: list[tuple[str, str, str | None, str | None, str, list[tuple[str, str, str]], dict[str, Any]]] = []
    for i in range(11, 19):
        cams.append((f"127.0.1.{i}", "Hikvision", "CR-MS-2568-001", "market", "compliant", [], {}))
    for i in range(11, 15):
        cams.append((f"127.0.2.{i}", "Hikvision", "CR-MS-2568-001", "bridge", "compliant", [], {}))
    for i in range(11, 21):
        cams.append((f"127.0.3.{i}", "Dahua", "CR-MS-2568-002", "school", "compliant", [],
                     {"codec": "H265"} if i <= 13 else {}))
    for i in range(11, 18):
        cams.append((f"127.0.4.{i}", "Uniview", "CR-MS-2567-003", "office", "compliant", [], {}))
    special = {
        "127.0.1.13": ("non_compliant", [("resolution", "≥ 1920x1080", "1280x720")], {"width": 1280, "height": 720}),
        "127.0.1.14": ("non_compliant", [("codec", "H264, H265", "JPEG")], {"codec": "JPEG"}),
        "127.0.1.15": ("non_compliant", [("fps", "≥ 25", "10")], {"fps": 10.0}),
        "127.0.1.16": ("non_compliant", [("clock", "|offset| <= 5 s", "+300 s")], {}),
        "127.0.1.17": ("non_compliant", [("stream_resolution", "1920x1080 (ONVIF claims)", "1280x720 measured")],
                       {"measured": (1280, 720)}),
        "127.0.2.14": ("missing", [], {"status": "unreachable"}),
        "127.0.3.20": ("unreachable", [("onvif_unreachable", "ONVIF readable", "ONVIF disabled")],
                       {"status": "onvif_disabled"}),
        "127.0.4.17": ("non_compliant", [("bitrate", "≥ 1024 kbps", "256 kbps")], {"bitrate": 256}),
    }
    cams = [(a, m, p, s, special.get(a, (st,))[0], special.get(a, (st, f))[1], {**o, **special.get(a, (0, 0, {}))[2]})
            for a, m, p, s, st, f, o in cams]
    cams += [("127.0.1.30", "Shenzhen", None, None, "unregistered", [("unregistered", "in a register", "not registered")],
              {"agency": "maesai-mun"}),
             ("127.0.3.31", "Hikvision", None, None, "unregistered", [("unregistered", "in a register", "not registered")],
              {"agency": "wiangphangkham-mun"}),
             ("127.0.3.32", "Hikvision", None, None, "unregistered", [("unregistered", "in a register", "not registered")],
              {"agency": "wiangphangkham-mun"})]

    scan_runs = {}
    for code, project in projects.items():
        run = ScanRun(target_kind="check", target_value=code, trigger="check", state="completed",
                      started=now - timedelta(hours=2, minutes=5), finished=now - timedelta(hours=2), total=10, done=10,
                      counts={"compliant": 7, "non_compliant": 2, "missing": 1}, started_by="admin")
        session.add(run)
        scan_runs[code] = run
    failed = ScanRun(target_kind="site", target_value="CR-MS-2568-002/school", trigger="schedule", state="failed",
                     started=now - timedelta(days=1), finished=now - timedelta(days=1) + timedelta(seconds=42),
                     total=10, done=3, error="address range 127.0.3.0/24: scan interrupted by restart")
    session.add(failed)
    session.flush()

    for address, manufacturer, project_code, site_code, status, findings, o in cams:
        project = projects.get(project_code) if project_code else None
        agency = project.agency if project else agencies[o["agency"]]
        model, firmware = MODELS[manufacturer]
        add_device(session, address=f"{address}:8000", mac=mac_for(manufacturer, address), manufacturer=manufacturer,
                   model=model, firmware=firmware, agency=agency, project=project,
                   site=sites[site_code] if site_code else None, status=status, findings=findings,
                   scan_run=scan_runs.get(project_code or ""), now=now, thumb=thumb, obs=o,
                   name=f"{(site_code or 'extra')}-{address.split('.')[-1]}", out=out)

    # Pong Pha approved 8 and installed 7: a project-level finding.
    session.add(Finding(project_id=projects["CR-MS-2567-003"].id, scan_run_id=scan_runs["CR-MS-2567-003"].id,
                        rule_id="count_shortfall", severity="major", expected="8", observed="7", source=SOURCE,
                        message_th="พบกล้อง 7 ตัว น้อยกว่าจำนวนที่ได้รับอนุมัติ 8 ตัว (ขาด 1 ตัว)",
                        message_en="7 camera(s) found, fewer than the 8 approved (1 short)", first_seen=now, last_seen=now))

    # The hostile camera of the quirks fleet, seen by a scan of Mae Sai's range, in no register.
    hostile = add_device(session, address="127.0.5.28:8000", mac="c0:56:e3:00:05:1c", manufacturer="Hikvision",
                         model=HOSTILE_MODEL, firmware=FORMULA_NAME, agency=agencies["maesai-mun"], project=None,
                         site=None, status="unregistered",
                         findings=[("unregistered", "in a register", HOSTILE_NAME)], scan_run=None, now=now,
                         thumb=None, obs={}, name=HOSTILE_NAME, out=out, location=HOSTILE_LOCATION)
    out.hostile_device_id = hostile.id

    # Attribute drift on one camera.
    drifted = session.get(Device, out.devices["127.0.1.11:8000"])
    session.add(DeviceChange(device_id=drifted.id, attribute="firmware", old_value="V5.7.3 build 220112",
                             new_value=drifted.firmware, changed_at=now - timedelta(days=12)))
    session.add(DeviceChange(device_id=drifted.id, attribute="address", old_value="127.0.1.99:8000",
                             new_value=drifted.address, changed_at=now - timedelta(days=40)))

    session.add_all([
        ScanSchedule(target_kind="site", target_value="CR-MS-2568-001/market", cron="0 2 * * *", enabled=True),
        ScanSchedule(target_kind="site", target_value="CR-MS-2568-002/school", interval_minutes=360, enabled=True,
                     with_streams=True, last_run_id=failed.id),
    ])

    if extra_devices:
        add_many_devices(session, extra_devices, list(agencies.values()), list(projects.values()), now, rng)

    add_status_history(session, days=days, today=now.date(), rng=rng)

    for username, (password, role, agency_code, token) in USERS.items():
        session.add(User(username=username, password_hash=hash_password(password), role=role,
                         agency_id=agencies[agency_code].id if agency_code else None,
                         language="th", api_token_hash=hash_token(token), active=True))
    session.flush()
    return out


def add_device(session: Session, *, address: str, mac: str, manufacturer: str, model: str, firmware: str,
               agency: Agency, project: Project | None, site: Site | None, status: str,
               findings: list[tuple[str, str, str]], scan_run: ScanRun | None, now: datetime, thumb: bytes | None,
               obs: dict[str, Any], name: str, out: SampleData, location: str | None = None) -> Device:
    """One device with a register entry (when in a project), two observations and its active findings."""
    entry = None
    if project is not None:
        entry = RegisterEntry(project_id=project.id, site_id=site.id if site else None, mac=mac, label=name,
                              location=site.name_th if site else None, added_by="import")
        session.add(entry)
        session.flush()
    seen = status not in ("missing",)
    device = Device(mac=mac, macs=[mac], serial=f"SN-{mac.replace(':', '')}", manufacturer=manufacturer, model=model,
                    firmware=firmware, name=name, location_text=location, address=address,
                    first_seen=now - timedelta(days=90) if seen else None, last_seen=now if seen else None,
                    last_ok=now if status not in ("missing", "unreachable") else None, agency_id=agency.id,
                    project_id=project.id if project else None, site_id=site.id if site else None,
                    register_entry_id=entry.id if entry else None, registered=entry is not None, status=status,
                    status_changed=now)
    session.add(device)
    session.flush()
    out.devices[address] = device.id
    last = None
    if seen:
        probe_status = obs.get("status", "ok")
        for age, with_thumb in ((timedelta(days=1), False), (timedelta(hours=2), True)):
            data = observation_data(address, manufacturer, model, firmware, codec=obs.get("codec", "H264"),
                                    width=obs.get("width", 1920), height=obs.get("height", 1080),
                                    fps=obs.get("fps", 25.0), measured=obs.get("measured"), bitrate=obs.get("bitrate", 4096),
                                    status=probe_status, name=name,
                                    error="ONVIF is disabled on this camera" if probe_status != "ok" else None)
            check = (data["stream_checks"] or [{}])[0]
            last = Observation(scan_run_id=scan_run.id if scan_run else None, device_id=device.id, address=address,
                               observed_at=now - age, probe_status=probe_status, error=data["error"],
                               firmware=firmware if probe_status == "ok" else None,
                               encoding=data["profiles"][0]["encoding"] if probe_status == "ok" else None,
                               width=data["profiles"][0]["width"] if probe_status == "ok" else None,
                               height=data["profiles"][0]["height"] if probe_status == "ok" else None,
                               fps=data["profiles"][0]["fps"] if probe_status == "ok" else None,
                               measured_width=check.get("width"), measured_height=check.get("height"),
                               measured_fps=check.get("fps"),
                               clock_offset_s=300.0 if address.startswith("127.0.1.16") else 0.2,
                               data=data, thumbnail_jpeg=thumb if (with_thumb and thumb and probe_status == "ok") else None)
            if scan_run is not None and with_thumb is False:
                last.scan_run_id = None  # one observation per (run, device)
            session.add(last)
        session.flush()
        device.last_observation_id = last.id
    for rule, expected, observed in findings:
        session.add(Finding(device_id=device.id, project_id=project.id if project else None,
                            register_entry_id=entry.id if entry else None, scan_run_id=scan_run.id if scan_run else None,
                            observation_id=last.id if last else None, rule_id=rule,
                            severity="critical" if rule == "onvif_unreachable" else "major", subject="Profile_1",
                            expected=expected, observed=observed, source=SOURCE,
                            message_th=f"ไม่ตรงตามข้อกำหนด: {rule} ที่กำหนด {expected} ตรวจพบ {observed}",
                            message_en=f"Not compliant: {rule} expected {expected}, observed {observed}",
                            first_seen=now - timedelta(days=3), last_seen=now))
    return device


def add_many_devices(session: Session, count: int, agencies: list[Agency], projects: list[Project], now: datetime,
                     rng: random.Random) -> None:
    """``count`` more devices spread over the agencies (bulk insert, with a current observation each)."""
    statuses = ["compliant"] * 14 + ["non_compliant"] * 3 + ["offline", "unreachable", "unregistered", "missing"]
    rules = ["resolution", "fps", "codec", "clock", "bitrate", "firmware", "stream_resolution"]
    device_rows, obs_rows = [], []
    base_id = 1_000_000
    for i in range(count):
        project = projects[i % len(projects)]
        manufacturer = ("Hikvision", "Dahua", "Uniview")[i % 3]
        model, firmware = MODELS[manufacturer]
        status = rng.choice(statuses)
        address = f"127.{20 + i // 65000}.{(i // 250) % 256}.{i % 250 + 1}:8000"
        device_rows.append({"id": base_id + i, "mac": f"{OUI[manufacturer]}:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}",
                            "macs": [], "serial": f"BULK{i:07d}", "manufacturer": manufacturer, "model": model,
                            "firmware": firmware if i % 7 else firmware + "-old", "name": f"cam-{i:05d}",
                            "address": address, "first_seen": now - timedelta(days=365), "last_seen": now,
                            "agency_id": project.agency_id, "project_id": project.id if status != "unregistered" else None,
                            "registered": status != "unregistered", "status": status, "status_changed": now,
                            "last_observation_id": base_id + i, "created": now, "updated": now})
        width, height = rng.choice([(1920, 1080)] * 6 + [(2560, 1440), (1280, 720), (3840, 2160)])
        obs_rows.append({"id": base_id + i, "device_id": base_id + i, "address": address, "observed_at": now,
                         "probe_status": "ok", "encoding": rng.choice(["H264"] * 5 + ["H265", "H265", "JPEG"]),
                         "width": width, "height": height, "fps": 25.0, "data": {}, "created": now, "updated": now})
    session.execute(Device.__table__.insert(), device_rows)
    session.execute(Observation.__table__.insert(), obs_rows)
    finding_rows = []
    for row in device_rows:
        if row["status"] == "non_compliant":
            rule = rng.choice(rules)
            finding_rows.append({"device_id": row["id"], "project_id": row["project_id"], "rule_id": rule,
                                 "severity": "major", "expected": "spec", "observed": "below", "source": SOURCE,
                                 "message_th": f"ไม่ตรงตามข้อกำหนด {rule}", "message_en": f"Not compliant: {rule}",
                                 "active": True, "first_seen": now, "last_seen": now, "created": now, "updated": now})
    if finding_rows:
        session.execute(Finding.__table__.insert(), finding_rows)


def add_status_history(session: Session, *, days: int, today: date, rng: random.Random) -> None:
    """A plausible ``status_daily`` history: compliance improving over ``days`` days."""
    from sqlalchemy import func, select

    current = session.execute(select(Device.agency_id, Device.project_id, Device.status, func.count(Device.id))
                              .group_by(Device.agency_id, Device.project_id, Device.status)).all()
    rows = []
    for back in range(days, 0, -1):
        day = today - timedelta(days=back)
        progress = 1 - back / max(days, 1)
        for agency_id, project_id, status, count in current:
            if status == "compliant":
                value = int(count * (0.6 + 0.4 * progress))
            elif status == "non_compliant":
                value = int(count * (2.0 - progress)) + rng.randint(0, 1)
            else:
                value = count
            rows.append({"day": day, "agency_id": agency_id, "project_id": project_id, "status": status, "count": value})
    if rows:
        session.execute(StatusDaily.__table__.insert(), rows)
