"""The simulated fleet read by independent ONVIF clients: onvif-zeep-async (Device, Media ver10) and
hand-built SOAP signed by zeep's own UsernameToken (Media2, which onvif-zeep-async 4.3 lacks).

Expected values come from the fleet file read with plain ``yaml.safe_load``, never from the simulator.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote

import aiohttp
import pytest
import yaml
from lxml import etree
from onvif import ONVIFCamera
from zeep.exceptions import Fault
from zeep.wsse.username import UsernameToken

FLEET_FILE = Path(__file__).resolve().parents[1] / "config" / "fleets" / "demo.yaml"
RAW = yaml.safe_load(FLEET_FILE.read_text(encoding="utf-8"))
DEFAULTS = RAW["defaults"]
ONLINE = [c for c in RAW["cameras"] if c.get("online", True) and not c.get("quirks")]
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
TR2 = "http://www.onvif.org/ver20/media/wsdl"
TT = "http://www.onvif.org/ver10/schema"
SAFE = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def run(coro):
    """Run a coroutine on a fresh loop (the fleet runs on its own thread)."""
    return asyncio.run(coro)


async def read_camera(sim, adjust_time: bool = True) -> dict:
    """Everything onvif-zeep-async reads from one camera."""
    cam = ONVIFCamera(sim.host, sim.port, sim.username, sim.password, adjust_time=adjust_time)
    try:
        await cam.update_xaddrs()
        dm = await cam.create_devicemgmt_service()
        out = {
            "xaddrs": dict(cam.xaddrs),
            "info": await dm.GetDeviceInformation(),
            "scopes": [s.ScopeItem for s in await dm.GetScopes()],
            "nics": await dm.GetNetworkInterfaces(),
            "hostname": await dm.GetHostname(),
            "ntp": await dm.GetNTP(),
            "time": await dm.GetSystemDateAndTime(),
        }
        media = await cam.create_media_service()
        out["profiles"] = await media.GetProfiles()
        out["uris"] = {}
        for prof in out["profiles"]:
            reply = await media.GetStreamUri({"StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
                                              "ProfileToken": prof.token})
            out["uris"][prof.token] = reply.Uri
        return out
    finally:
        await cam.close()


def spec(raw: dict, key: str):
    """A camera key with the fleet defaults applied."""
    return raw.get(key, DEFAULTS.get(key))


def test_every_demo_camera_reads_as_the_fleet_file_states(demo_fleet):
    """Identity, scopes, MACs, profiles and stream URIs of every non-quirk demo camera, with auth and skew."""

    async def read_all():
        return await asyncio.gather(*(read_camera(demo_fleet[c["name"]]) for c in ONLINE))

    results = run(read_all())
    assert len(results) == len(ONLINE) >= 30
    for raw, got in zip(ONLINE, results):
        sim = demo_fleet[raw["name"]]
        info = got["info"]
        assert (info.Manufacturer, info.Model, info.FirmwareVersion, info.SerialNumber) == (
            raw["manufacturer"], raw["model"], raw["firmware"], raw["serial"]), raw["name"]
        assert [n.Info.HwAddress for n in got["nics"]] == raw["macs"]
        assert got["nics"][0].IPv4.Config.Manual[0].Address == sim.host
        scopes = {s.split("/")[3]: unquote(s.split("/", 4)[4]) for s in got["scopes"]}
        assert (scopes["name"], scopes.get("location", "")) == (raw["scopes"]["name"], raw["scopes"]["location"])
        assert got["hostname"].Name == raw.get("hostname", raw["name"])
        assert [s.DNSname for s in got["ntp"].NTPManual] == spec(raw, "ntp")["servers"]
        media2 = raw.get("media2", False)
        assert ("http://www.onvif.org/ver20/media/wsdl" in got["xaddrs"]) is media2
        assert [p.token for p in got["profiles"]] == [p["token"] for p in raw["profiles"]]
        for prof, want in zip(got["profiles"], raw["profiles"]):
            assert prof.Name == want["name"]
            enc = prof.VideoEncoderConfiguration
            if want["encoding"] == "H265":
                assert enc is None, "Media ver10 must not claim an encoding for an H.265 profile"
            else:
                assert (enc.Encoding, enc.Resolution.Width, enc.Resolution.Height) == (
                    want["encoding"], want["width"], want["height"])
                assert (enc.RateControl.FrameRateLimit, enc.RateControl.BitrateLimit) == (
                    want["fps"], want["bitrate_kbps"])
                if want["encoding"] == "H264":
                    assert enc.H264.GovLength == want["gov_length"]
            assert got["uris"][prof.token] == f"rtsp://{sim.host}:{spec(raw, 'rtsp_port')}/{raw['name']}/{prof.token}"
        utc = got["time"].UTCDateTime
        cam_clock = datetime(utc.Date.Year, utc.Date.Month, utc.Date.Day, utc.Time.Hour, utc.Time.Minute,
                             utc.Time.Second, tzinfo=timezone.utc)
        skew = (cam_clock - datetime.now(timezone.utc)).total_seconds()
        assert abs(skew - spec(raw, "clock_offset_s")) < 3, (raw["name"], skew)


async def media2_call(sim, body: str) -> etree._Element:
    """POST a Media2 request signed by zeep's UsernameToken (digest, adjusted to the camera clock)."""
    envelope = etree.fromstring(
        f'<s:Envelope xmlns:s="{SOAP12}" xmlns:tr2="{TR2}"><s:Header/><s:Body>{body}</s:Body></s:Envelope>')
    offset = spec(next(c for c in RAW["cameras"] if c["name"] == sim.name), "clock_offset_s")
    created = datetime.fromtimestamp(datetime.now(timezone.utc).timestamp() + offset, timezone.utc)
    token = UsernameToken(sim.username, sim.password, use_digest=True, created=created.replace(tzinfo=None),
                          zulu_timestamp=True)
    envelope, headers = token.apply(envelope, {})
    url = sim.device_url.replace("device_service", "media2_service")
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=etree.tostring(envelope),
                                headers={"Content-Type": "application/soap+xml; charset=utf-8"}) as resp:
            assert resp.status == 200, await resp.text()
            return etree.fromstring(await resp.read(), SAFE)


def test_media2_reports_h265_for_profile_t_cameras(demo_fleet):
    """Media2 GetProfiles states H265 with GovLength and rate control as the fleet file says."""
    cams = [c for c in ONLINE if c.get("media2")]
    assert len(cams) == 3
    for raw in cams:
        sim = demo_fleet[raw["name"]]
        root = run(media2_call(sim, "<tr2:GetProfiles><tr2:Type>All</tr2:Type></tr2:GetProfiles>"))
        profiles = root.findall(f".//{{{TR2}}}Profiles")
        assert [p.get("token") for p in profiles] == [p["token"] for p in raw["profiles"]]
        for prof, want in zip(profiles, raw["profiles"]):
            enc = prof.find(f".//{{{TR2}}}VideoEncoder")
            assert enc.findtext(f"{{{TT}}}Encoding") == want["encoding"]
            assert int(enc.findtext(f"{{{TT}}}Resolution/{{{TT}}}Width")) == want["width"]
            assert float(enc.findtext(f"{{{TT}}}RateControl/{{{TT}}}FrameRateLimit")) == want["fps"]
            assert int(enc.get("GovLength")) == want["gov_length"]
        uri = run(media2_call(sim, "<tr2:GetStreamUri><tr2:Protocol>RTSP</tr2:Protocol>"
                                   "<tr2:ProfileToken>Profile_1</tr2:ProfileToken></tr2:GetStreamUri>"))
        assert uri.findtext(f".//{{{TR2}}}Uri") == sim.rtsp_urls["Profile_1"]


def test_media2_is_absent_on_profile_s_cameras(demo_fleet):
    """A camera without Media2 has no media2 endpoint (404), like a Profile S only device."""
    sim = demo_fleet["ms-market-01"]

    async def post():
        async with aiohttp.ClientSession() as session:
            async with session.post(sim.device_url.replace("device_service", "media2_service"), data=b"<x/>") as resp:
                return resp.status

    assert run(post()) == 404


def test_wrong_password_and_unsynchronised_clock_are_rejected(demo_fleet):
    """Wrong password, and a digest signed with our clock on a skewed camera, get ter:NotAuthorized."""
    sim = demo_fleet["ms-market-01"]
    with pytest.raises(Fault, match="not authorized"):
        run(read_camera(type(sim)(**{**sim.__dict__, "password": "wrong"})))
    skewed = demo_fleet["ms-market-06"]  # +300 s
    with pytest.raises(Fault, match="not authorized"):
        run(read_camera(skewed, adjust_time=False))
    assert run(read_camera(skewed, adjust_time=True))["info"].Model  # signing with its clock works


def test_time_is_answered_without_credentials_and_unknown_operations_fault(demo_fleet):
    """GetSystemDateAndTime needs no credentials; an unknown operation gets ter:ActionNotSupported."""
    sim = demo_fleet["ms-market-01"]

    async def post(body: str):
        env = (f'<s:Envelope xmlns:s="{SOAP12}" xmlns:tds="http://www.onvif.org/ver10/device/wsdl">'
               f"<s:Body>{body}</s:Body></s:Envelope>")
        async with aiohttp.ClientSession() as session:
            async with session.post(sim.device_url, data=env.encode()) as resp:
                return resp.status, etree.fromstring(await resp.read(), SAFE)

    status, root = run(post("<tds:GetSystemDateAndTime/>"))
    assert status == 200 and root.find(f".//{{{TT}}}UTCDateTime") is not None
    status, root = run(post("<tds:GetDeviceInformation/>"))
    assert status == 400 and root.find(f".//{{{SOAP12}}}Subcode/{{{SOAP12}}}Value").text == "ter:NotAuthorized"
    status, root = run(post("<tds:GetUsers/>"))
    assert status == 400  # auth comes first, as on real cameras


def test_unknown_operation_gives_a_soap_fault(demo_fleet):
    """An authenticated but unknown operation answers env:Receiver / ter:ActionNotSupported."""
    sim = demo_fleet["pp-office-01"]

    async def call():
        cam = ONVIFCamera(sim.host, sim.port, sim.username, sim.password, adjust_time=True)
        try:
            await cam.update_xaddrs()
            dm = await cam.create_devicemgmt_service()
            await dm.GetUsers()
        finally:
            await cam.close()

    with pytest.raises(Fault) as info:
        run(call())
    assert info.value.subcodes and info.value.subcodes[0].localname == "ActionNotSupported"


def test_offline_camera_is_not_served(demo_fleet):
    """``online: false`` (ms-bridge-04, 127.0.2.14) refuses connections: registered but never seen."""
    assert "ms-bridge-04" not in [c.name for c in demo_fleet]

    async def connect():
        return await asyncio.open_connection("127.0.2.14", 8000)

    with pytest.raises(OSError):
        run(connect())
