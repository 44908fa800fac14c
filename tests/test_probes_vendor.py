"""Hikvision ISAPI and Dahua CGI probes against the simulator over real sockets (127.79.x.y).

The vendor devices of the demo fleet (ONVIF off, a recorder with 8 channels) are moved to 127.79.1.x; the
module adds devices for the other cases: ONVIF on without users, an ONVIF recorder, hostile replies and a
lock-out whose attempts the simulator counts server side.
"""

from __future__ import annotations

import asyncio
import copy
import time
from pathlib import Path

import pytest
import yaml

from probes.results import SCHEMA_VERSION, Observation, ProbeStatus
from probes.scan import Credential, Target, probe_many_sync

ROOT = Path(__file__).resolve().parents[1]
DEMO = yaml.safe_load((ROOT / "config" / "fleets" / "demo.yaml").read_text(encoding="utf-8"))
GOOD = Credential("admin", "Demo#2567")
WRONG = Credential("admin", "wrong-password")
VENDOR_NAMES = ("ms-nvr-01", "ms-isapi-01", "wp-dahua-01")


def _demo(source: str, host: str, **changes) -> dict:
    cam = copy.deepcopy(next(c for c in DEMO["cameras"] if c["name"] == source))
    cam.update(host=host, **changes)
    return cam


def _camera(name: str, host: str, **changes) -> dict:
    base = _demo("ms-isapi-01", host, name=name, quirks=[])
    base.update(changes)
    return base


def _dahua_recorder(name: str, host: str, **changes) -> dict:
    nvr = _demo("ms-nvr-01", host, name=name, manufacturer="Dahua", model="DHI-NVR4104HS-P-4KS2", protocols=["dahua"],
                serial="7G0FA1PAZ00123", disks=[{"capacity_gb": 2000, "free_gb": 50}, {"id": 2, "capacity_gb": 2000,
                                                                                          "free_gb": 0, "status": "error"}])
    nvr["channels"] = nvr["channels"][:3]
    nvr.update(changes)
    return nvr


FLEET = {"fleet": "vendor-test", "defaults": DEMO["defaults"], "cameras": [
    _demo("ms-nvr-01", "127.79.1.11"),
    _demo("ms-isapi-01", "127.79.1.12"),
    _demo("wp-dahua-01", "127.79.1.13"),
    _camera("hik-no-onvif-user", "127.79.2.11", protocols=["onvif", "isapi"], onvif_users=False),
    _demo("ms-nvr-01", "127.79.2.12", name="hik-onvif-nvr", protocols=["onvif", "isapi"], quirks=[],
          scopes={"name": "NVR with ONVIF", "profiles": ["S"]}),
    _dahua_recorder("dahua-nvr", "127.79.2.13", vendor_quirks=["error_200"]),
    _camera("hik-xxe", "127.79.3.11", vendor_quirks=["xxe"]),
    _camera("hik-huge", "127.79.3.12", vendor_quirks=[{"name": "huge_reply", "size_mb": 64}]),
    _camera("hik-html", "127.79.3.13", vendor_quirks=["html_login"]),
    _demo("wp-dahua-01", "127.79.3.14", name="dahua-huge", vendor_quirks=[{"name": "huge_reply", "size_mb": 64}]),
    _camera("hik-lock", "127.79.4.11", lockout={"attempts": 2, "seconds": 600}),
    _camera("hik-lock-onvif", "127.79.4.12", protocols=["onvif", "isapi"], onvif_users=False,
            lockout={"attempts": 3, "seconds": 600}),
    _demo("wp-dahua-01", "127.79.4.13", name="dahua-lock", lockout={"attempts": 1, "seconds": 600}),
    _camera("onvif-sd-card", "127.79.5.11", manufacturer="Uniview", model="IPC2124LB", protocols=["onvif"],
            recording_days=21, clock_offset_s=120),
]}


@pytest.fixture(scope="module")
def fleet():
    """The vendor test fleet on loopback (no streams)."""
    from cctv_monitor.simulator.testing import running_fleet

    with running_fleet(FLEET) as running:
        yield running


def probe(fleet, name: str, creds=(GOOD,), **kwargs) -> Observation:
    """Probe one simulated device through the scan engine (ONVIF first, vendor hook after it)."""
    cam = fleet[name]
    [obs] = probe_many_sync([Target(cam.host, cam.port)], list(creds), **kwargs)
    return obs


def test_hikvision_camera_with_onvif_off_is_read_through_isapi(fleet):
    """ISAPI ver10: identity, MAC, streams (fps from hundredths, kbps), RTSP through /Streaming/Channels."""
    obs = probe(fleet, "ms-isapi-01")
    spec = FLEET["cameras"][1]
    assert obs.status is ProbeStatus.OK, obs.error
    assert obs.protocols == ("isapi",) and obs.onvif_status == "onvif_disabled" and obs.onvif_enabled is False
    assert set(obs.field_sources.values()) == {"isapi"} and obs.field_sources["profiles"] == "isapi"
    dev = obs.device
    assert (dev.manufacturer, dev.model, dev.serial, dev.firmware) == (
        "Hikvision", spec["model"], spec["serial"], spec["firmware"])
    assert dev.macs == tuple(spec["macs"]) and dev.device_type == "IPCamera" and dev.name == spec["scopes"]["name"]
    main, sub = obs.profiles
    assert (main.token, main.encoding, main.width, main.height, main.fps, main.bitrate_kbps, main.gov_length) == (
        "101", "H264", 1920, 1080, 25.0, 4096, 50)
    assert (sub.token, sub.width, sub.fps, sub.bitrate_kbps) == ("102", 640, 15.0, 512)
    cam = fleet["ms-isapi-01"]
    assert main.stream_uri == f"rtsp://{cam.host}:{cam.spec.rtsp_port}/Streaming/Channels/101"
    assert main.media_service == "isapi" and obs.clock_offset_s is not None and abs(obs.clock_offset_s) < 5
    assert any("ONVIF not used (onvif_disabled)" in w for w in obs.warnings)
    again = Observation.from_json(obs.to_json())
    assert again == obs and again.schema_version == SCHEMA_VERSION >= 2


def test_hikvision_recorder_channels_disks_and_retention(fleet):
    """ver20 recorder: 8 channels with internal addresses, one offline, disks, 14 days kept (3 on channel 8)."""
    obs = probe(fleet, "ms-nvr-01")
    assert obs.status is ProbeStatus.OK, obs.error
    assert obs.device.device_type == "NVR" and obs.protocols == ("isapi",)
    assert [c.channel for c in obs.channels] == list(range(1, 9))
    by = {c.channel: c for c in obs.channels}
    assert by[1].address == "192.168.254.2" and by[1].serial == "DS-2CD1043G2-I20230401AAWRL00070101"
    assert by[1].model == "DS-2CD1043G2-I" and by[1].mac == "c0:56:e3:fe:07:01" and by[1].online is True
    assert by[8].online is False and by[8].status_detail == "netUnreachable"
    assert [c.channel for c in obs.channels if not c.online] == [8]
    cam = fleet["ms-nvr-01"]
    assert by[3].stream_uri == f"rtsp://{cam.host}:{cam.spec.rtsp_port}/Streaming/Channels/301"
    assert (by[3].profiles[0].width, by[3].profiles[0].height) == (1280, 720)
    assert by[5].profiles[0].bitrate_kbps == 256
    assert all(abs(by[n].retention_days - 14) <= 0.1 for n in range(1, 8)), [c.retention_days for c in obs.channels]
    assert abs(by[8].retention_days - 3) <= 0.1 and abs(obs.retention_days - 3) <= 0.1
    [disk] = obs.storage
    assert (disk.status, disk.capacity_gb, disk.free_gb, disk.source) == ("ok", 4000.0, 180.0, "isapi")
    assert obs.field_sources["channels"] == "isapi"
    data = obs.to_dict()
    assert data["channels"][0]["profiles"][0]["token"] == "101" and data["storage"][0]["name"] == "hdd1"


def test_dahua_camera_with_onvif_off_is_read_through_its_cgi(fleet):
    """magicBox identity, Encode main/extra streams, Network MAC, RTSP port; realmonitor URIs."""
    obs = probe(fleet, "wp-dahua-01")
    spec = FLEET["cameras"][2]
    assert obs.status is ProbeStatus.OK, obs.error
    assert obs.protocols == ("dahua",) and obs.onvif_status == "onvif_disabled"
    dev = obs.device
    assert (dev.manufacturer, dev.model, dev.serial, dev.firmware) == (
        "Dahua", spec["model"], spec["serial"], spec["firmware"])
    assert dev.macs == tuple(spec["macs"])
    main, extra = obs.profiles
    assert (main.encoding, main.width, main.height, main.fps, main.bitrate_kbps, main.gov_length) == (
        "H264", 1920, 1080, 25.0, 4096, 50)
    assert (extra.width, extra.height, extra.fps) == (704, 576, 15.0)
    cam = fleet["wp-dahua-01"]
    assert main.stream_uri == f"rtsp://{cam.host}:{cam.spec.rtsp_port}/cam/realmonitor?channel=1&subtype=0"


def test_dahua_recorder_with_error_bodies_at_status_200(fleet):
    """RemoteDevice, connection state, disks (one failed), mediaFileFind retention; Error bodies read as errors."""
    obs = probe(fleet, "dahua-nvr")
    assert obs.status is ProbeStatus.OK, obs.error
    assert obs.protocols == ("dahua",) and obs.device.device_type == "NVR"
    assert [(c.channel, c.address, c.online) for c in obs.channels] == [
        (1, "192.168.254.2", True), (2, "192.168.254.3", True), (3, "192.168.254.4", True)]
    assert all(abs(c.retention_days - 14) <= 0.1 for c in obs.channels)
    assert [d.status for d in obs.storage] == ["ok", "failed"] and obs.storage[0].free_gb == 50.0
    assert obs.channels[2].profiles[0].width == 1280


def test_onvif_without_users_falls_back_with_the_same_credential(fleet):
    """ONVIF on, no ONVIF user: ONVIF refuses, ISAPI reads with the same credential; both tried once."""
    guard = fleet.guard("hik-no-onvif-user")
    before = guard.failures
    obs = probe(fleet, "hik-no-onvif-user")
    assert obs.status is ProbeStatus.OK, obs.error
    assert obs.onvif_status == "auth_failed" and obs.protocols == ("isapi",) and obs.onvif_enabled is True
    assert guard.failures - before == 1  # ONVIF refused the credential once; ISAPI accepted it at once


def test_recorder_read_over_onvif_gains_its_channels_from_isapi(fleet):
    """ONVIF reads the recorder; ISAPI adds channels, disks and retention with the accepted credential."""
    obs = probe(fleet, "hik-onvif-nvr")
    assert obs.status is ProbeStatus.OK, obs.error
    assert obs.protocols == ("onvif", "isapi") and obs.field_sources["identity"] == "onvif"
    assert obs.field_sources["channels"] == "isapi" and len(obs.channels) == 8 and obs.storage
    assert obs.profiles and obs.profiles[0].media_service in ("media", "media2")


def test_plain_onvif_camera_is_not_asked_for_a_vendor_api(fleet, demo_fleet):
    """A camera ONVIF reads in full needs nothing else: protocols ["onvif"], no extra requests."""
    cam = demo_fleet["pp-office-01"]
    [obs] = probe_many_sync([Target(cam.host, cam.port)], [GOOD])
    assert obs.status is ProbeStatus.OK and obs.protocols == ("onvif",) and not obs.channels
    assert obs.field_sources["identity"] == "onvif"


@pytest.mark.parametrize("name, needle", [
    ("hik-xxe", "DOCTYPE"),
    ("hik-html", "web page"),
    ("hik-huge", "refused"),
    ("dahua-huge", "refused"),
])
def test_hostile_vendor_replies_end_in_a_clear_result(fleet, name, needle):
    """Entities, a 64 MB reply and an HTML log-in page: malformed_reply with a message, quickly, no expansion."""
    started = time.monotonic()
    obs = probe(fleet, name)
    assert time.monotonic() - started < 10
    assert obs.status is ProbeStatus.MALFORMED_REPLY, (obs.status, obs.error)
    assert needle in obs.error and obs.onvif_status == "onvif_disabled"
    assert "root:" not in obs.to_json() and "lollol" not in obs.to_json()


def test_lockout_gets_no_extra_credential_attempts(fleet):
    """Counted server side: one attempt per credential, none after the device names a lock."""
    guard = fleet.guard("hik-lock")
    obs = probe(fleet, "hik-lock", [WRONG])
    assert obs.status is ProbeStatus.AUTH_FAILED and "locked" not in obs.error
    assert guard.credentialed == 1  # the Digest middleware answers the challenge once, never again
    obs = probe(fleet, "hik-lock", [WRONG, GOOD])  # the second failure locks; GOOD must not be tried
    assert obs.status is ProbeStatus.AUTH_FAILED and "locked" in obs.error
    assert guard.credentialed == 2
    obs = probe(fleet, "hik-lock", [GOOD, WRONG])  # the unauthenticated challenge names the lock: no attempt
    assert obs.status is ProbeStatus.AUTH_FAILED and "locked" in obs.error
    assert guard.credentialed == 2 and guard.failures == 2


def test_lockout_spanning_onvif_and_isapi_stops_the_fallback(fleet):
    """ONVIF spends the attempts (no ONVIF user); the fallback's first reply names the lock and it stops."""
    guard = fleet.guard("hik-lock-onvif")
    obs = probe(fleet, "hik-lock-onvif", [WRONG, GOOD])
    # ONVIF tries WRONG and GOOD (2 failures: no ONVIF user), ISAPI tries WRONG (third failure: locked) and stops.
    assert obs.status is ProbeStatus.AUTH_FAILED and obs.onvif_status == "auth_failed"
    assert "locked" in obs.error and guard.credentialed == 3 and guard.failures == 3


def test_sweep_keeps_vendor_devices_with_onvif_off(fleet):
    """The range sweep keeps addresses whose web server is Hikvision or Dahua, not only ONVIF answers."""
    from probes.discovery import sweep

    ports = sorted({c.port for c in fleet})
    found = asyncio.run(sweep(["127.79.1.0/24"], ports))
    want = {f"{fleet[n].host}:{fleet[n].port}" for n in VENDOR_NAMES}
    assert {t.address for t in found} == want


def test_probe_command_shows_protocols_channels_and_storage(fleet):
    """``cctv-monitor probe --json`` carries protocols, channels and storage (schema 2); text names them."""
    import json
    import subprocess
    import sys

    cam = fleet["ms-nvr-01"]
    cmd = [str(Path(sys.executable).parent / "cctv-monitor"), "probe", f"{cam.host}:{cam.port}", "-u", "admin"]
    env = {"CCTV_ONVIF_PASSWORD": "Demo#2567", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["schema_version"] == SCHEMA_VERSION and data["protocols"] == ["isapi"] and data["onvif_status"] == "onvif_disabled"
    assert len(data["channels"]) == 8 and data["storage"][0]["capacity_gb"] == 4000.0
    assert {"channel", "name", "address", "manufacturer", "model", "serial", "online", "profiles", "stream_uri",
            "retention_days"} <= set(data["channels"][0])
    assert "Demo#2567" not in out.stdout + out.stderr
    text = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert text.returncode == 0, text.stderr
    assert "read by:  isapi (ONVIF: onvif_disabled)" in text.stdout and "channel 8:" in text.stdout
    assert "OFFLINE" in text.stdout and "disk hdd1: ok" in text.stdout


def test_profile_g_recording_summary_gives_retention(fleet):
    """ONVIF camera with an SD card offering the search service: retention from GetRecordingSummary."""
    obs = probe(fleet, "onvif-sd-card")
    assert obs.status is ProbeStatus.OK and obs.protocols == ("onvif",), obs.error
    assert "search" in obs.services and obs.field_sources["retention"] == "onvif"
    assert abs(obs.retention_days - 21) <= 0.1
    nvr = probe(fleet, "hik-onvif-nvr")  # both: the recorder's per-channel numbers win, from ISAPI
    assert nvr.field_sources["retention"] == "isapi" and abs(nvr.retention_days - 3) <= 0.1


def test_dahua_lockout_stops_at_the_named_lock(fleet):
    """Dahua names the lock in its Error body: the second credential is never sent, nor any later one."""
    guard = fleet.guard("dahua-lock")
    obs = probe(fleet, "dahua-lock", [WRONG, GOOD])
    assert obs.status is ProbeStatus.AUTH_FAILED and "locked" in obs.error and guard.credentialed == 1
    obs = probe(fleet, "dahua-lock", [GOOD])
    assert obs.status is ProbeStatus.AUTH_FAILED and "locked" in obs.error and guard.credentialed == 1


def test_dahua_error_body_with_status_200_is_an_error(fleet):
    """Some Dahua firmware answers failures with HTTP 200 and an Error body: the body decides, not the status."""
    from probes.dahua import cgi, parse_kv
    from probes.errors import NotSupported
    from probes.vendor_http import VendorSession

    cam = fleet["dahua-nvr"]

    async def ask():
        session = VendorSession(cam.host, cam.port, timeout_s=5)
        session.use_credentials("admin", "Demo#2567")
        try:
            reply = await session.request("GET", "/cgi-bin/magicBox.cgi?action=noSuchAction")
            with pytest.raises(NotSupported, match="answered Error"):
                parse_kv(reply, "magicBox")
            assert (await cgi(session, "/cgi-bin/magicBox.cgi?action=getDeviceType"))["type"] == cam.spec.model
            return reply.status
        finally:
            await session.close()

    assert asyncio.run(ask()) == 200


def test_isapi_response_status_and_userchecks_are_mapped(fleet):
    """A camera asked for recorder resources answers ResponseStatus notSupport (HTTP 403): NotSupported."""
    from probes.errors import AuthFailed, NotSupported
    from probes.isapi import get
    from probes.vendor_http import VendorSession

    cam = fleet["ms-isapi-01"]

    async def ask(password: str, path: str):
        session = VendorSession(cam.host, cam.port, timeout_s=5)
        session.use_credentials("admin", password)
        try:
            return await get(session, path)
        finally:
            await session.close()

    with pytest.raises(NotSupported, match="notSupport"):
        asyncio.run(ask("Demo#2567", "/ISAPI/ContentMgmt/InputProxy/channels"))
    with pytest.raises(AuthFailed, match="rejected"):
        asyncio.run(ask("not-it", "/ISAPI/System/deviceInfo"))
    root = asyncio.run(ask("Demo#2567", "/ISAPI/System/deviceInfo"))
    assert root.tag == "{http://www.hikvision.com/ver10/XMLSchema}DeviceInfo"
