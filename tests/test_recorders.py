"""Recorders in the inventory: channel devices, the recording rules, ONVIF off as information, the pages.

Pure parts (expansion, rules at their thresholds) need nothing; the scans run the demo fleet's
control-room devices (a Hikvision recorder with 8 cameras behind it, a Hikvision and a Dahua camera with
ONVIF off) moved to 127.78.7.x over real HTTP, with the shipped project CR-MS-2568-004 moved alike.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from cctv_monitor.cli import cli
from cctv_monitor.compliance import Spec, derive_status, evaluate_device
from cctv_monitor.models import Device, Finding, RegisterEntry
from cctv_monitor.recorders import expand, is_recorder
from probes.results import ChannelInfo, DeviceIdentity, MediaProfile, Observation, ProbeStatus, StorageInfo
from probes.vocab import host_of, split_channel
from scan_helpers import import_moved

REPO = Path(__file__).resolve().parent.parent
DEMO = yaml.safe_load((REPO / "config" / "fleets" / "demo.yaml").read_text(encoding="utf-8"))
PROJECT = REPO / "config" / "projects" / "CR-MS-2568-004.yaml"
NVR = yaml.safe_load((REPO / "config" / "profiles" / "nvr.yaml").read_text(encoding="utf-8"))
PREFIX_FROM, PREFIX_TO = "127.0.7.", "127.78.7."
NAMES = ("ms-nvr-01", "ms-isapi-01", "wp-dahua-01")

MAIN = MediaProfile(token="101", encoding="H264", width=1920, height=1080, fps=25.0, bitrate_kbps=4096,
                    media_service="isapi")


def recorder_obs(**changes) -> Observation:
    """A recorder observation as the ISAPI probe makes it: three channels, one disk."""
    channels = (
        ChannelInfo(channel=1, name="north", address="192.168.254.2", serial="DS-2CD1043G2-I20230401AAWRL00070101", mac="C0-56-E3-FE-07-01",
                    model="DS-2CD1043G2-I", online=True, profiles=(MAIN,), retention_days=31.0, source="isapi"),
        ChannelInfo(channel=2, name="no id", address="192.168.254.3", online=True, retention_days=None,
                    source="isapi"),
        ChannelInfo(channel=3, name="store", address="192.168.254.4", serial="DS-2CD1043G2-I20230401AAWRL00070103", online=False,
                    status_detail="netUnreachable", retention_days=3.0, source="isapi"),
    )
    base = dict(address="10.1.2.3:80", status=ProbeStatus.OK, observed_at="2026-11-30T00:00:00+00:00",
                device=DeviceIdentity(manufacturer="Hikvision", model="DS-7608NI", serial="DS-7608NI-K2/8P0820230301CCRRL00070011",
                                      macs=("c0:56:e3:00:07:0b",), device_type="NVR", location="room"),
                protocols=("isapi",), onvif_status="onvif_disabled", onvif_enabled=False,
                field_sources={"channels": "isapi", "storage": "isapi", "retention": "isapi"},
                channels=channels, storage=(StorageInfo(name="hdd1", status="ok", capacity_gb=4000, free_gb=10),),
                retention_days=3.0)
    base.update(changes)
    return Observation(**base)


def nvr_spec(**requirements) -> Spec:
    """The shipped nvr profile with some requirements replaced."""
    data = copy.deepcopy(NVR)
    data["requirements"].update(requirements)
    return Spec.from_mapping(data, code="nvr")


# -- pure: expansion ------------------------------------------------------------------------------------------


def test_expand_gives_the_recorder_then_one_observation_per_channel():
    """Identity from the camera's MAC/serial, else recorder serial + channel; address = recorder's + /chN."""
    rec = recorder_obs()
    items = expand(rec)
    assert items[0] is rec and len(items) == 4
    one, two, three = items[1:]
    assert [o.address for o in items[1:]] == ["10.1.2.3:80/ch1", "10.1.2.3:80/ch2", "10.1.2.3:80/ch3"]
    assert all(o.recorder == "10.1.2.3:80" for o in items[1:]) and [o.channel for o in items[1:]] == [1, 2, 3]
    assert one.device.macs == ("c0:56:e3:fe:07:01",) and one.device.serial == "DS-2CD1043G2-I20230401AAWRL00070101"
    assert two.device.macs == () and two.device.serial == "DS-7608NI-K2/8P0820230301CCRRL00070011/ch2"  # no identity of its own
    assert three.device.serial == "DS-2CD1043G2-I20230401AAWRL00070103" and three.status is ProbeStatus.UNREACHABLE
    assert "reports the camera on channel 3 offline (netUnreachable)" in three.error
    assert one.profiles == (MAIN,) and one.retention_days == 31.0 and one.protocols == ("isapi",)
    # the range rules see the recorder's host, never the internal 192.168.254.x
    assert host_of(one.address) == "10.1.2.3" and one.host == "10.1.2.3"
    assert split_channel(one.address) == ("10.1.2.3:80", 1) and split_channel("10.1.2.3:80") == ("10.1.2.3:80", None)
    assert is_recorder(rec) and not is_recorder(one)
    assert expand(one) == [one]  # a channel observation is not expanded again
    plain = rec.with_updates(channels=(), device=DeviceIdentity(device_type="IPCamera"))
    assert expand(plain) == [plain] and not is_recorder(plain)
    # a JSON round trip (field laptops ship observations) keeps the link
    again = Observation.from_json(one.to_json())
    assert (again.recorder, again.channel, again.address) == ("10.1.2.3:80", 1, "10.1.2.3:80/ch1")


def test_a_camera_its_recorder_reports_offline_is_offline_at_once():
    """Offline, not unknown, even on the first scan: the recorder has seen it."""
    offline = expand(recorder_obs())[3]
    findings = evaluate_device(offline, nvr_spec(), registered=True)
    assert derive_status(offline, findings, registered=True, seen_before=False).value == "offline"


# -- pure: rules at their thresholds ---------------------------------------------------------------------------


@pytest.mark.parametrize(("days", "finding"), [(30.0, False), (29.9, True), (45.0, False)])
def test_retention_at_its_threshold(days, finding):
    """The shortest retention over the online channels against min_retention_days (offline ones left out)."""
    rec = recorder_obs(channels=(recorder_obs().channels[0].__class__(channel=1, online=True, retention_days=days),
                                 ChannelInfo(channel=2, online=False, retention_days=1.0)))
    got = [f for f in evaluate_device(rec, nvr_spec(), registered=True) if f.rule_id == "retention"]
    assert bool(got) is finding
    if finding:
        assert got[0].expected == ">= 30 days" and got[0].observed == f"{days:.1f} days"
        assert got[0].severity.value == "major" and "ช่อง 1" in got[0].message_th and "channel 1" in got[0].message_en


def test_retention_threshold_is_data():
    """A profile asking for 14 days accepts 14.0; an invalid value is refused with the field named."""
    rec = recorder_obs(channels=(ChannelInfo(channel=1, online=True, retention_days=14.0),))
    spec = nvr_spec(retention={"min_retention_days": 14, "verified": False})
    assert not [f for f in evaluate_device(rec, spec, registered=True) if f.rule_id == "retention"]
    assert spec.requirement("retention").verified is False
    from cctv_monitor.compliance import SpecError

    with pytest.raises(SpecError, match="requirements.retention.min_retention_days"):
        nvr_spec(retention={"min_retention_days": "many"})


def test_disks_failed_and_missing():
    """A failed disk is a finding naming it; a recorder reporting no disk at all is one too."""
    failed = recorder_obs(storage=(StorageInfo(name="hdd1", status="ok"), StorageInfo(name="hdd2", status="failed")))
    got = [(f.rule_id, f.subject, f.observed) for f in evaluate_device(failed, nvr_spec(), registered=True)
           if f.rule_id.startswith("disk_")]
    assert got == [("disk_failed", "hdd2", "failed")]
    none = recorder_obs(storage=())
    assert [f.rule_id for f in evaluate_device(none, nvr_spec(), registered=True)
            if f.rule_id.startswith("disk_")] == ["disk_missing"]
    unread = recorder_obs(storage=(), field_sources={"channels": "isapi"})
    assert not [f for f in evaluate_device(unread, nvr_spec(), registered=True) if f.rule_id.startswith("disk_")]


def test_each_channel_stream_is_judged_once_on_its_own_device():
    """The recorder lists channel 1's streams among its profiles; only channel 1's device is judged on them."""
    from probes.results import StreamCheck

    sub = MediaProfile(token="102", encoding="H264", width=640, height=360, fps=15.0, media_service="isapi")
    ch1 = recorder_obs().channels[0].__class__(**{**recorder_obs().channels[0].__dict__, "profiles": (MAIN, sub)})
    # claims 1920x1080 H.264, delivers 1280x720 H.265: stream_resolution and stream_codec (and codec) findings
    bad = StreamCheck(profile_token="101", ok=True, width=1280, height=720, fps=25.0, codec="H265")
    rec = recorder_obs(channels=(ch1, *recorder_obs().channels[1:]), profiles=(MAIN, sub), stream_checks=(bad,))
    spec = nvr_spec(codec={"allowed": ["H264"]})
    recorder, channel_1 = expand(rec)[:2]
    on_recorder = {f.rule_id for f in evaluate_device(recorder, spec, registered=True)}
    on_channel = {f.rule_id for f in evaluate_device(channel_1, spec, registered=True)}
    assert {"stream_resolution", "stream_codec", "codec"} <= on_channel
    assert not on_recorder & {"stream_resolution", "stream_codec", "codec", "stream_fps", "stream"}
    assert "channel_not_recording" in on_recorder  # the recorder's own rules still apply
    assert recorder.profiles == (MAIN, sub)  # what is stored stays what the recorder reported


def test_online_channel_without_recordings_is_not_recording():
    """Channel 2 is online with nothing recorded; channel 3 is offline (its own finding is 'offline')."""
    got = [(f.rule_id, f.subject) for f in evaluate_device(recorder_obs(), nvr_spec(), registered=True)
           if f.rule_id == "channel_not_recording"]
    assert got == [("channel_not_recording", "ch2")]


def test_onvif_off_is_information_with_the_fix_and_channels_count_from_the_recorder():
    """ONVIF off on a device that has it: info with the fix in Thai and English, never a failure."""
    rec = recorder_obs()
    findings = evaluate_device(rec, nvr_spec(), registered=True)
    [info] = [f for f in findings if f.rule_id.startswith("onvif")]
    assert info.rule_id == "onvif_off" and info.severity.value == "info"
    assert "enable ONVIF and add a media user" in info.message_en and "เปิดใช้งาน ONVIF" in info.message_th
    [channels] = [f for f in findings if f.rule_id == "channels"]
    assert channels.observed == "3"  # the channels the recorder lists, not its (absent) ONVIF video sources
    # the same device read over ONVIF without Profile S is a failure, as before
    onvif = rec.with_updates(protocols=("onvif",), onvif_status=None, services=("device",))
    assert [f.severity.value for f in evaluate_device(onvif, nvr_spec(), registered=True)
            if f.rule_id == "onvif_profile"] == ["major"]
    # a camera behind the recorder: its ONVIF cannot be judged through the recorder
    camera = expand(rec)[1]
    assert not [f for f in evaluate_device(camera, nvr_spec(), registered=True) if f.rule_id.startswith("onvif")]


# -- end to end: scans over the simulated control room ---------------------------------------------------------


def control_room(**changes_by_name) -> dict:
    """The three control-room devices of the demo fleet on 127.78.7.x."""
    cams = []
    for cam in copy.deepcopy(DEMO["cameras"]):
        if cam["name"] in NAMES:
            cam["host"] = cam["host"].replace(PREFIX_FROM, PREFIX_TO, 1)
            cam.update(changes_by_name.get(cam["name"], {}))
            cams.append(cam)
    return {"fleet": "control-room", "defaults": DEMO["defaults"], "cameras": cams}


def import_control_room(app, session, ports: set[int]) -> None:
    """Import the shipped control-room project, its site and register moved to 127.78.7.x."""
    import_moved(app, session, PROJECT, ports, PREFIX_FROM, PREFIX_TO)


def scan(runner) -> None:
    """One scan of the control-room project through the CLI."""
    result = runner.invoke(cli, args=["scan", "--project", "CR-MS-2568-004", "--no-progress"])
    assert result.exit_code == 0, result.output


def devices_by_key(session) -> dict[str, Device]:
    """Devices keyed 'host' or 'host/chN'."""
    session.expire_all()
    out = {}
    for d in session.scalars(select(Device)):
        base, channel = split_channel(d.address)
        out[base.rpartition(":")[0] + (f"/ch{channel}" if channel is not None else "")] = d
    return out


def active_rules(session, device: Device) -> set[str]:
    """Rule ids of the device's active findings."""
    return set(session.scalars(select(Finding.rule_id).where(Finding.device_id == device.id,
                                                              Finding.active.is_(True))))


@pytest.mark.slow
def test_control_room_scan_recorder_channels_retention_and_silence(app, session, runner):
    """A scan makes 8 channel devices linked to the recorder; a failed disk, then a silent recorder."""
    from cctv_monitor.simulator.testing import running_fleet

    with running_fleet(control_room()) as fleet:
        import_control_room(app, session, {cam.port for cam in fleet})
        scan(runner)
    devices = devices_by_key(session)
    nvr = devices["127.78.7.11"]
    children = sorted((d for d in devices.values() if d.recorder_id == nvr.id), key=lambda d: d.channel)
    assert [d.channel for d in children] == list(range(1, 9))
    assert all(split_channel(d.address) == (nvr.address, d.channel) for d in children)
    assert {d.project_id for d in children} == {nvr.project_id} and nvr.project_id is not None
    assert [d.status for d in children] == ["compliant", "compliant", "non_compliant", "compliant",
                                            "non_compliant", "compliant", "compliant", "offline"]
    assert active_rules(session, children[2]) == {"resolution"} and active_rules(session, children[4]) == {"bitrate"}
    assert all(d.registered for d in children)  # 1-6 by MAC, 7 and 8 by recorder + channel
    labels = {d.channel: session.get(RegisterEntry, d.register_entry_id).label for d in children}
    assert labels[7] == "ms-nvr-01-ch7" and labels[8] == "ms-nvr-01-ch8"
    assert children[0].mac == "c0:56:e3:fe:07:01" and children[0].model == "DS-2CD1043G2-I"
    # the recorder: judged by the project's recorder profile (nvr): 14 days kept against 30
    assert nvr.status == "non_compliant" and active_rules(session, nvr) == {"retention", "channels", "onvif_off"}
    retention = session.scalar(select(Finding).where(Finding.device_id == nvr.id, Finding.rule_id == "retention"))
    assert retention.expected == ">= 30 days" and retention.observed.startswith("14.")
    # the two ONVIF-off cameras: read through ISAPI and the Dahua API, compliant, with the fix as information
    for host in ("127.78.7.12", "127.78.7.13"):
        cam = devices[host]
        assert cam.status == "compliant" and active_rules(session, cam) == {"onvif_off"}, host
        assert cam.recorder_id is None and cam.channel is None
    fix = session.scalar(select(Finding).where(Finding.device_id == devices["127.78.7.12"].id))
    assert fix.severity == "info" and "add a media user" in fix.message_en

    out = runner.invoke(cli, args=["devices", "--json"])
    assert out.exit_code == 0, out.output
    items = {i["id"]: i for i in json.loads(out.output)}
    assert items[children[2].id]["recorder"] == nvr.address and items[children[2].id]["channel"] == 3
    assert items[nvr.id]["recorder"] is None and items[nvr.id]["channel"] is None

    # a disk fails: a finding naming it; the channel devices stay the same devices
    failed = control_room(**{"ms-nvr-01": {"disks": [{"id": 1, "capacity_gb": 4000, "free_gb": 180,
                                                        "status": "error"}]}})
    with running_fleet(failed):
        scan(runner)
    devices = devices_by_key(session)
    assert "disk_failed" in active_rules(session, devices["127.78.7.11"])
    assert sorted(d.id for d in devices.values() if d.recorder_id == nvr.id) == sorted(d.id for d in children)

    # the recorder goes silent: it and every camera behind it are offline
    with running_fleet(control_room(**{"ms-nvr-01": {"online": False}})):
        scan(runner)
    devices = devices_by_key(session)
    assert devices["127.78.7.11"].status == "offline"
    assert {d.status for d in devices.values() if d.recorder_id == nvr.id} == {"offline"}
    assert devices["127.78.7.12"].status == "compliant"


@pytest.mark.slow
@pytest.mark.rtsp
def test_cameras_behind_a_recorder_are_measured_through_it(app, session, runner):
    """`scan --streams`: each online camera's main stream is read through the recorder's RTSP address and
    judged on its own device (channel 3 measured at 1280x720); the offline one is not opened."""
    from cctv_monitor.models import Observation as ObservationRow
    from cctv_monitor.simulator.rtsp import rtsp_unavailable_reason
    from cctv_monitor.simulator.testing import running_fleet

    reason = rtsp_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with running_fleet(control_room(), streams=True) as fleet:
        assert fleet.streams, fleet.streams_reason
        import_control_room(app, session, {cam.port for cam in fleet})
        result = runner.invoke(cli, args=["scan", "--project", "CR-MS-2568-004", "--streams", "--no-progress"])
        assert result.exit_code == 0, result.output
    devices = devices_by_key(session)
    for number in range(1, 9):
        device = devices[f"127.78.7.11/ch{number}"]
        row = session.get(ObservationRow, device.last_observation_id)
        checks = row.data.get("stream_checks") or []
        if number == 8:
            assert checks == [] and device.status == "offline"
            continue
        [check] = checks
        assert check["ok"] and check["profile_token"] == f"{number}01", check
        assert row.measured_width == (1280 if number == 3 else 1920), number
    assert devices["127.78.7.11/ch3"].status == "non_compliant"
    assert not {r for r in active_rules(session, devices["127.78.7.11/ch1"]) if r.startswith(("stream_", "image_"))}
