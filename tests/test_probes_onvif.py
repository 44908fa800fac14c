"""ONVIF probe and scan engine against the simulated fleets (real HTTP/SOAP on 127.x addresses).

Expected values come from the fleet files read with plain ``yaml.safe_load``; the probes never see them.
"""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from probes.onvif import probe_onvif
from probes.results import Observation, ProbeStatus
from probes.scan import Credential, Target, probe_many, probe_many_sync

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "cctv-monitor")
GOOD = Credential("admin", "Demo#2567")
WRONG = Credential("installer", "not-the-password")


def fleet_cameras(name: str) -> list[dict]:
    """Cameras of a fleet file with the defaults merged in (plain YAML, no simulator code)."""
    raw = yaml.safe_load((ROOT / "config" / "fleets" / f"{name}.yaml").read_text(encoding="utf-8"))
    out = []
    for cam in raw["cameras"]:
        merged = copy.deepcopy(raw.get("defaults") or {})
        merged.update(cam)
        out.append(merged)
    return out


def scan(running, credentials, **kwargs) -> dict[str, Observation]:
    """One probe_many over every camera of a running fleet, keyed by camera name."""
    by_addr = {f"{c.host}:{c.port}": c.name for c in running}
    observations = probe_many_sync([Target(c.host, c.port) for c in running], credentials, **kwargs)
    return {by_addr[o.address]: o for o in observations}


def test_demo_fleet_reads_as_the_fleet_file_states(demo_fleet):
    """Identity, MACs, scopes, clock, profiles (Media2 H.265 where configured) and stream URIs of every camera."""
    started = time.monotonic()
    got = scan(demo_fleet, [WRONG, GOOD])  # the wrong credential first: the list is tried in order
    assert time.monotonic() - started < 30
    # WS-Security PasswordDigest on every call: no password ever crossed the wire in clear (PasswordText)
    assert sum(b.auth_attempts for b in demo_fleet.bindings) > 50
    assert [b.spec.name for b in demo_fleet.bindings if b.clear_passwords] == []
    checked = 0
    for cam in fleet_cameras("demo"):
        if not cam.get("online", True):
            continue
        obs = got[cam["name"]]
        if "onvif" not in cam.get("protocols", ["onvif"]):  # vendor API only: tests/test_probes_vendor.py
            assert obs.status is ProbeStatus.OK and obs.onvif_status == "onvif_disabled", (cam["name"], obs.error)
            continue
        if "onvif_disabled" in (cam.get("quirks") or []):
            assert obs.status is ProbeStatus.ONVIF_DISABLED, obs
            assert "ONVIF is switched off" in obs.error
            continue
        assert obs.status is ProbeStatus.OK, (cam["name"], obs.error)
        dev = obs.device
        assert (dev.manufacturer, dev.model, dev.firmware, dev.serial) == (
            cam["manufacturer"], cam["model"], cam["firmware"], cam["serial"])
        assert dev.hardware_id == str(cam.get("hardware_id", "1.0"))
        assert list(dev.macs) == cam["macs"]
        assert dev.name == (cam["scopes"].get("name") or None)
        assert dev.location == (cam["scopes"].get("location") or None)
        assert set(cam["scopes"].get("profiles") or ["S"]) <= set(dev.onvif_profiles)
        assert abs(obs.clock_offset_s - cam.get("clock_offset_s", 0)) <= 1
        assert list(obs.ntp_servers) == cam["ntp"]["servers"]
        media2 = bool(cam.get("media2"))
        assert ("media2" in obs.services) is media2
        sim = demo_fleet[cam["name"]]
        assert [p.token for p in obs.profiles] == [p["token"] for p in cam["profiles"]]
        for prof, want in zip(obs.profiles, cam["profiles"]):
            assert prof.media_service == ("media2" if media2 else "media")
            assert (prof.name, prof.encoding, prof.width, prof.height) == (
                want["name"], want["encoding"], want["width"], want["height"])
            assert prof.fps == pytest.approx(want["fps"])
            assert prof.bitrate_kbps == want["bitrate_kbps"]
            assert prof.gov_length == (want["gov_length"] if want["encoding"] != "JPEG" else None)
            assert prof.stream_uri == f"rtsp://{sim.host}:{cam['rtsp_port']}/{cam['name']}/{want['token']}"
            assert prof.snapshot_uri and prof.snapshot_uri.startswith(f"http://{sim.host}:")
        if cam.get("clock_offset_s"):
            assert any("clock is" in w for w in obs.warnings)
        checked += 1
    assert checked >= 30
    h265 = [o for n, o in got.items() if o.profiles and o.profiles[0].encoding == "H265"]
    assert {o.host for o in h265} == {"127.0.3.11", "127.0.3.12", "127.0.3.13"}


def test_offline_camera_is_unreachable_fast():
    """A registered camera that is off: connection refused on loopback, reported at once."""
    started = time.monotonic()
    obs = asyncio.run(probe_onvif(Target("127.0.2.14", 8000), [GOOD], timeout_s=2))
    assert obs.status is ProbeStatus.UNREACHABLE
    assert "cannot connect to 127.0.2.14:8000" in obs.error
    assert time.monotonic() - started < 2


QUIRK_MESSAGES = {
    "quirk-onvif-disabled": "HTTP 403 Forbidden: ONVIF is switched off",
    "quirk-hang": "accepted the connection but sent no complete reply within 3 s",
    "quirk-reset": "accepted the connection and then closed or reset it",
    "quirk-huge-reply": "GetDeviceInformation: reply of 21.0 MB refused (limit 2 MB)",
    "quirk-malformed-xml": "reply is not well-formed XML",
    "quirk-xxe": "carries a DOCTYPE/entity declarations",
}
QUIRK_WARNINGS = {
    "quirk-http-digest": "HTTP Digest",
    "quirk-clock-skew": "camera clock is -3",  # -3600 s, +-1: the camera's clock has whole seconds (see below)
    "quirk-duplicated-port": "XAddr 'http://127.0.5.16:",
    "quirk-unescaped-amp": "unescaped '&' in the XML repaired",
    "quirk-invalid-utf8": "invalid UTF-8 bytes replaced",
    "quirk-placeholder-bitrate": "BitrateLimit 2147483647 is a placeholder",
    "quirk-fault-on": "GetProfiles failed (GetProfiles: device answered with SOAP fault",
    "quirk-garbage-mac": "placeholder MAC 00:00:00:00:00:00",
}


def test_every_quirk_gives_its_outcome_in_one_scan(quirks_fleet):
    """One scan over all quirk cameras: right outcome class and message each, nobody hangs or blocks others."""
    progress: list[tuple[int, int]] = []
    started = time.monotonic()

    async def run() -> dict[str, tuple[Observation, float]]:
        by_addr = {f"{c.host}:{c.port}": c.name for c in quirks_fleet}
        out = {}
        async for obs in probe_many([Target(c.host, c.port) for c in quirks_fleet], [GOOD], timeout_s=3.0,
                                    progress=lambda done, total, _obs: progress.append((done, total))):
            out[by_addr[obs.address]] = (obs, time.monotonic() - started)
        return out

    got = asyncio.run(run())
    elapsed = time.monotonic() - started
    assert progress[-1] == (len(quirks_fleet), len(quirks_fleet)) and len(progress) == len(quirks_fleet)
    for cam in fleet_cameras("quirks"):
        obs, _at = got[cam["name"]]
        assert obs.status.value == cam["expect"]["probe_status"], (cam["name"], obs.error)
        if cam["name"] in QUIRK_MESSAGES:
            assert QUIRK_MESSAGES[cam["name"]] in obs.error, (cam["name"], obs.error)
        if cam["name"] in QUIRK_WARNINGS:
            assert any(QUIRK_WARNINGS[cam["name"]] in w for w in obs.warnings), (cam["name"], obs.warnings)
    # The hang ends on the operation timeout; the fast cameras were done long before it.
    assert got["quirk-hang"][1] < 3.0 + 1.5
    fast = [at for name, (o, at) in got.items() if name not in ("quirk-hang", "quirk-slow")]
    assert max(fast) < 3.0
    assert elapsed < 40  # the slow camera (2 s per reply) is the last one
    # Survived quirks keep full, correct data.
    skew, _ = got["quirk-clock-skew"]
    assert abs(skew.clock_offset_s + 3600) <= 1 and len(skew.profiles) == 2
    dup, _ = got["quirk-duplicated-port"]
    assert all(":8000:8000" not in (p.snapshot_uri or "") for p in dup.profiles) and dup.profiles
    amp, _ = got["quirk-unescaped-amp"]
    assert amp.profiles[0].stream_uri.endswith("/Profile_1?channel=1&subtype=0")
    utf, _ = got["quirk-invalid-utf8"]
    assert utf.device.manufacturer.startswith("Hikvision\ufffd") and utf.device.serial == "QUIRK0018"
    placeholder, _ = got["quirk-placeholder-bitrate"]
    assert placeholder.profiles[0].bitrate_kbps == 2147483647 and placeholder.profiles[0].encoding == "H265"
    gov, _ = got["quirk-missing-govlength"]
    assert [p.gov_length for p in gov.profiles] == [None, None] and gov.profiles[0].encoding == "H265"
    hostile, _ = got["quirk-hostile-strings"]
    assert hostile.device.name == "<script>alert(1)</script>"  # kept as data; escaping is the UI's job
    assert hostile.device.location == '"><img src=x onerror=alert(2)>'
    assert hostile.device.model == "<b>DS</b>' OR '1'='1"
    fault, _ = got["quirk-fault-on"]
    assert fault.device.serial == "QUIRK0026" and fault.profiles == ()
    huge, _ = got["quirk-huge-reply"]
    assert huge.clock_offset_s is not None  # a partial read keeps what was read
    xxe, _ = got["quirk-xxe"]
    assert xxe.device is None and "lollol" not in xxe.to_json() and "root:x:" not in xxe.to_json()
    hardcoded, _ = got["quirk-hardcoded-fps"]
    assert hardcoded.profiles[0].fps == 30  # the claim; the stream check measures the truth
    slow, _ = got["quirk-slow"]
    assert slow.status is ProbeStatus.OK and abs(slow.clock_offset_s) <= 1


def test_slow_camera_is_cut_off_by_the_total_limit(quirks_fleet):
    """A camera that answers every call just in time is still bounded by the whole-probe limit."""
    cam = quirks_fleet["quirk-slow"]
    started = time.monotonic()
    obs = asyncio.run(probe_onvif(Target(cam.host, cam.port), [GOOD], timeout_s=3, total_timeout_s=5))
    assert time.monotonic() - started < 6
    assert obs.status is ProbeStatus.TIMEOUT and "longer than 5 s" in obs.error
    assert obs.clock_offset_s is not None  # what was read before the limit is kept


def test_rejected_credentials_name_users_never_passwords(quirks_fleet):
    """Every credential rejected: auth_failed, for a SOAP fault and for an HTML 401 page alike."""
    for name, marker in (("quirk-clock-skew", "NotAuthorized"), ("quirk-html-401", "HTTP 401 with an HTML page"),
                         ("quirk-http-digest", "HTTP 401")):
        cam = quirks_fleet[name]
        obs = asyncio.run(probe_onvif(Target(cam.host, cam.port), [WRONG, Credential("admin", "wrong-pass")]))
        assert obs.status is ProbeStatus.AUTH_FAILED, (name, obs.error)
        assert "all 2 credential(s) rejected (users: installer, admin)" in obs.error
        assert marker in obs.error, (name, obs.error)
        assert "wrong-pass" not in obs.to_json() and "not-the-password" not in obs.to_json()


async def _plain_server(host: str, ports: list[int], handler) -> web.AppRunner:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for port in ports:
        await web.TCPSite(runner, host, port).start()
    return runner


def test_plain_web_server_is_not_onvif():
    """An HTTP server that is no camera (HTML 200 everywhere) reads as not_onvif, not as an error."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="<html><body>router login</body></html>", content_type="text/html")

    async def run() -> Observation:
        runner = await _plain_server("127.0.77.1", [18080], handler)
        try:
            return await probe_onvif(Target("127.0.77.1", 18080), [GOOD])
        finally:
            await runner.cleanup()

    obs = asyncio.run(run())
    assert obs.status is ProbeStatus.NOT_ONVIF
    assert "an HTML page instead of SOAP" in obs.error


def test_per_host_limit_bounds_parallel_requests():
    """Three targets on one host with per_host_limit=1: the host never sees two requests at once."""
    state = {"now": 0, "max": 0, "seen": 0}

    async def handler(request: web.Request) -> web.Response:
        state["now"] += 1
        state["seen"] += 1
        state["max"] = max(state["max"], state["now"])
        try:
            await asyncio.sleep(0.1)
        finally:
            state["now"] -= 1
        return web.Response(status=403, text="<html>forbidden</html>", content_type="text/html")

    async def run(limit: int) -> list[Observation]:
        runner = await _plain_server("127.0.77.2", [18081, 18082, 18083], handler)
        try:
            targets = [Target("127.0.77.2", p) for p in (18081, 18082, 18083)]
            return [o async for o in probe_many(targets, [GOOD], per_host_limit=limit)]
        finally:
            await runner.cleanup()

    observations = asyncio.run(run(1))
    # Each target: the ONVIF POST, then (403: ONVIF off) two unauthenticated vendor identification GETs.
    assert state["max"] == 1 and state["seen"] == 9
    assert all(o.status is ProbeStatus.ONVIF_DISABLED for o in observations)
    state.update(now=0, max=0, seen=0)
    asyncio.run(run(3))
    assert state["max"] == 3


def test_target_parsing():
    """Addresses from the command line and from discovery."""
    assert Target.parse("10.0.0.5").address == "10.0.0.5:80"
    assert Target.parse("10.0.0.5:8000") == Target("10.0.0.5", 8000)
    assert Target.parse("[fe80::1]:8080").address == "[fe80::1]:8080"
    url = Target.parse("http://10.0.0.5:8899/onvif/device_service")
    assert (url.host, url.port, url.path, url.xaddrs) == ("10.0.0.5", 8899, "/onvif/device_service",
                                                          ("http://10.0.0.5:8899/onvif/device_service",))
    for bad, msg in (("", "empty"), ("10.0.0.5:99999", "1-65535"), ("10.0.0.5:abc", "invalid port"),
                     ("ftp://x/y", r"expected http\(s\)://")):
        with pytest.raises(ValueError, match=msg):
            Target.parse(bad)
    assert "Demo#2567" not in repr(GOOD)


def test_probe_command_json_and_exit_codes(demo_fleet):
    """``cctv-monitor probe`` prints the observation's JSON; exit 0 when ok, 1 otherwise; no password shown."""
    cam = demo_fleet["wp-school-01"]
    cmd = [CLI, "probe", f"{cam.host}:{cam.port}", "--user", "admin", "--json"]
    ok = subprocess.run([*cmd, "--password", "Demo#2567"], capture_output=True, text=True, timeout=60,
                        cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert {"address", "status", "error", "device", "clock_offset_s", "profiles", "stream_checks"} <= set(data)
    assert set(data["device"]) >= {"manufacturer", "model", "firmware", "serial", "hardware_id", "macs"}
    assert set(data["profiles"][0]) >= {"token", "name", "encoding", "width", "height", "fps", "bitrate_kbps",
                                        "gov_length", "stream_uri"}
    assert data["status"] == "ok" and data["profiles"][0]["encoding"] == "H265"
    assert "Demo#2567" not in ok.stdout + ok.stderr
    bad = subprocess.run([*cmd, "--password", "nope-secret"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["status"] == "auth_failed" and "nope-secret" not in bad.stdout
    text = subprocess.run([CLI, "probe", f"{cam.host}:{cam.port}", "-u", "admin"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={"CCTV_ONVIF_PASSWORD": "Demo#2567", "PATH": "/usr/bin:/bin"})
    assert text.returncode == 0, text.stderr
    assert "Dahua IPC-HFW3441T-ZAS" in text.stdout and "H265 2560x1440" in text.stdout
    usage = subprocess.run([CLI, "probe", "10.0.0.1:notaport"],
                           capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert usage.returncode == 2 and "invalid port" in usage.stderr
