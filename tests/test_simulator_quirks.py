"""Each quirk of quirks.yaml is visible on the wire exactly as FORMAT.md describes it.

Requests are hand-built SOAP signed with zeep's UsernameToken (an independent implementation); replies
are checked as raw bytes / with a safe lxml parser, the way a robust probe has to read them.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp import DigestAuthMiddleware
from lxml import etree
from zeep.wsse.username import UsernameToken

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
TT = "http://www.onvif.org/ver10/schema"
TDS = "http://www.onvif.org/ver10/device/wsdl"
TRT = "http://www.onvif.org/ver10/media/wsdl"
TR2 = "http://www.onvif.org/ver20/media/wsdl"
SAFE = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def envelope(body: str, cam=None) -> bytes:
    """A SOAP 1.2 request, signed with a UsernameToken digest when ``cam`` is given."""
    env = etree.fromstring(f'<s:Envelope xmlns:s="{SOAP12}" xmlns:tds="{TDS}" xmlns:trt="{TRT}" xmlns:tr2="{TR2}">'
                           f"<s:Header/><s:Body>{body}</s:Body></s:Envelope>")
    if cam is not None:
        env, _ = UsernameToken(cam.username, cam.password, use_digest=True, zulu_timestamp=True).apply(env, {})
    return etree.tostring(env)


def post(url: str, data: bytes, *, timeout: float = 10, digest=None) -> tuple[int, dict, bytes]:
    """POST and return (status, headers, body)."""

    async def go():
        middlewares = (DigestAuthMiddleware(*digest),) if digest else ()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout), middlewares=middlewares) as s:
            async with s.post(url, data=data, headers={"Content-Type": "application/soap+xml"}) as resp:
                return resp.status, dict(resp.headers), await resp.read()

    return asyncio.run(go())


def media(cam) -> str:
    return cam.device_url.replace("device_service", "media_service")


def test_onvif_disabled_answers_http_403_html(quirks_fleet):
    cam = quirks_fleet["quirk-onvif-disabled"]
    status, headers, body = post(cam.device_url, envelope("<tds:GetSystemDateAndTime/>"))
    assert status == 403 and headers["Content-Type"].startswith("text/html") and b"ONVIF" in body


def test_http_digest_is_required_and_accepted(quirks_fleet):
    cam = quirks_fleet["quirk-http-digest"]
    status, headers, _ = post(cam.device_url, envelope("<tds:GetDeviceInformation/>", cam))
    assert status == 401 and headers["WWW-Authenticate"].startswith("Digest ")
    status, _, body = post(cam.device_url, envelope("<tds:GetDeviceInformation/>"), digest=(cam.username, cam.password))
    assert status == 200 and b"QUIRK" in body
    status, _, _ = post(cam.device_url, envelope("<tds:GetDeviceInformation/>"), digest=(cam.username, "wrong"))
    assert status == 401
    status, _, _ = post(cam.device_url, envelope("<tds:GetSystemDateAndTime/>"))
    assert status == 200


def test_html_401_on_bad_credentials(quirks_fleet):
    cam = quirks_fleet["quirk-html-401"]
    status, headers, body = post(cam.device_url, envelope("<tds:GetDeviceInformation/>"))
    assert status == 401 and headers["Content-Type"].startswith("text/html") and b"<h1>" in body
    status, _, _ = post(cam.device_url, envelope("<tds:GetDeviceInformation/>", cam))
    assert status == 200


def test_clock_skew_rejects_our_clock(quirks_fleet):
    cam = quirks_fleet["quirk-clock-skew"]  # -3600 s
    status, _, body = post(cam.device_url, envelope("<tds:GetDeviceInformation/>", cam))
    assert status == 400 and b"ter:NotAuthorized" in body


def test_duplicated_port_in_xaddrs(quirks_fleet):
    cam = quirks_fleet["quirk-duplicated-port"]
    _, _, body = post(cam.device_url, envelope("<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability>"
                                               "</tds:GetServices>", cam))
    assert f"http://{cam.host}:{cam.port}:{cam.port}/onvif/media_service".encode() in body


def test_unescaped_ampersand_breaks_the_xml(quirks_fleet):
    cam = quirks_fleet["quirk-unescaped-amp"]
    _, _, body = post(media(cam), envelope("<trt:GetStreamUri><trt:ProfileToken>Profile_1</trt:ProfileToken>"
                                           "</trt:GetStreamUri>", cam))
    assert b"?channel=1&subtype=0</tt:Uri>" in body
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(body, SAFE)


def test_invalid_utf8_in_device_information(quirks_fleet):
    cam = quirks_fleet["quirk-invalid-utf8"]
    _, _, body = post(cam.device_url, envelope("<tds:GetDeviceInformation/>", cam))
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    root = etree.fromstring(body, etree.XMLParser(recover=True, resolve_entities=False, no_network=True))
    assert root.findtext(f".//{{{TDS}}}SerialNumber") == "QUIRK0018"


def test_placeholder_bitrate_and_missing_govlength(quirks_fleet):
    for name, check in (("quirk-placeholder-bitrate", lambda enc: enc.findtext(f".//{{{TT}}}BitrateLimit") == "2147483647"),
                        ("quirk-missing-govlength", lambda enc: enc.get("GovLength") is None)):
        cam = quirks_fleet[name]
        _, _, body = post(cam.device_url.replace("device_service", "media2_service"),
                          envelope("<tr2:GetProfiles/>", cam))
        encoders = etree.fromstring(body, SAFE).findall(f".//{{{TR2}}}VideoEncoder")
        assert encoders and all(check(enc) for enc in encoders), name
    cam = quirks_fleet["quirk-missing-govlength"]
    _, _, body = post(media(cam), envelope("<trt:GetProfiles/>", cam))
    assert b"<tt:H264>" in body and b"GovLength" not in body


def test_slow_hang_and_reset(quirks_fleet):
    cam = quirks_fleet["quirk-slow"]
    started = time.monotonic()
    status, _, _ = post(cam.device_url, envelope("<tds:GetSystemDateAndTime/>"))
    assert status == 200 and time.monotonic() - started >= 1.9
    with pytest.raises(asyncio.TimeoutError):
        post(quirks_fleet["quirk-hang"].device_url, envelope("<tds:GetSystemDateAndTime/>"), timeout=1)
    with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        post(quirks_fleet["quirk-reset"].device_url, envelope("<tds:GetSystemDateAndTime/>"))


def test_huge_reply_and_malformed_xml(quirks_fleet):
    cam = quirks_fleet["quirk-huge-reply"]
    _, headers, body = post(cam.device_url, envelope("<tds:GetDeviceInformation/>", cam), timeout=60)
    assert len(body) >= 20 * 1024 * 1024 and int(headers["Content-Length"]) == len(body)
    assert etree.fromstring(body, etree.XMLParser(huge_tree=True)).findtext(f".//{{{TDS}}}SerialNumber")
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(body, SAFE)  # a safe parser refuses the oversized text node
    cam = quirks_fleet["quirk-malformed-xml"]
    status, _, body = post(cam.device_url, envelope("<tds:GetSystemDateAndTime/>"))
    assert status == 200
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(body, SAFE)


def test_fault_on_one_operation(quirks_fleet):
    cam = quirks_fleet["quirk-fault-on"]
    status, _, body = post(media(cam), envelope("<trt:GetProfiles/>", cam))
    assert status == 500 and b"ter:ActionFailed" in body
    status, _, _ = post(media(cam), envelope("<trt:GetVideoSources/>", cam))
    assert status == 200


def test_identity_quirks(quirks_fleet):
    cam = quirks_fleet["quirk-garbage-mac"]
    _, _, body = post(cam.device_url, envelope("<tds:GetNetworkInterfaces/>", cam))
    assert etree.fromstring(body, SAFE).findtext(f".//{{{TT}}}HwAddress") == "00:00:00:00:00:00"
    cam = quirks_fleet["quirk-hostile-strings"]
    _, _, body = post(cam.device_url, envelope("<tds:GetDeviceInformation/>", cam))
    assert etree.fromstring(body, SAFE).findtext(f".//{{{TDS}}}Model").startswith("<b>")  # escaped on the wire
    _, _, body = post(cam.device_url, envelope("<tds:GetScopes/>", cam))
    assert b"%3Cscript%3E" in body


def test_xxe_payload_is_not_expanded_by_a_safe_parser(quirks_fleet):
    cam = quirks_fleet["quirk-xxe"]
    _, _, body = post(cam.device_url, envelope("<tds:GetDeviceInformation/>", cam))
    assert b"<!ENTITY xxe SYSTEM" in body and b"&lol9;" in body
    try:
        root = etree.fromstring(body, SAFE)
    except etree.XMLSyntaxError as exc:  # libxml2 >= 2.11 refuses the amplification outright
        assert "amplification" in str(exc) or "entity" in str(exc).lower()
        return
    text = "".join(root.find(f".//{{{TDS}}}HardwareId").itertext())
    assert "lol" not in text and "root:" not in text


def test_hardcoded_fps(quirks_fleet):
    cam = quirks_fleet["quirk-hardcoded-fps"]
    _, _, body = post(media(cam), envelope("<trt:GetProfiles/>", cam))
    assert {e.text for e in etree.fromstring(body, SAFE).iter(f"{{{TT}}}FrameRateLimit")} == {"30"}
    assert cam.spec.profiles[0].stream.fps == 12  # what the stream really delivers
