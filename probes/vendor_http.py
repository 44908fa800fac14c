"""HTTP for the vendor APIs (Hikvision ISAPI, Dahua CGI): one capped, time-bounded Digest session per device.

HTTP Digest is aiohttp's own ``DigestAuthMiddleware``: it sends a request without credentials, answers
the challenge once, and gives back the second 401 when the credential is wrong, so one call costs at most
one credential attempt (lock-outs, PITFALLS.md). Replies are capped at :data:`MAX_REPLY_BYTES` (a
``Content-Length`` above it is refused before the body is read); XML is parsed with entities, DTDs and
network access off, and a reply that declares a DOCTYPE is refused outright: no vendor API sends one.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass, field
from typing import Any, Mapping

import aiohttp
from aiohttp import DigestAuthMiddleware
from lxml import etree

from probes.errors import AuthFailed, Locked, MalformedReply, ProbeError, ProbeTimeout, ReplyTooLarge, Unreachable
from probes.soap import ACCEPT_ENCODING, read_capped
# One namespace-agnostic XML walk for SOAP and the vendor APIs (ver10 and ver20 alike).
from probes.soap import child as find, children as findall, local  # noqa: F401 - used by isapi/dahua too

MAX_REPLY_BYTES = 2 * 1024 * 1024
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
                          remove_comments=True, remove_pis=True)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NO_VERIFY_SSL = ssl.create_default_context()
_NO_VERIFY_SSL.check_hostname = False
_NO_VERIFY_SSL.verify_mode = ssl.CERT_NONE  # devices use self-signed certificates


#: Unauthenticated requests that make a Hikvision or Dahua web server name itself (a Digest challenge).
IDENTIFY_PATHS = (("isapi", "/ISAPI/System/deviceInfo"), ("dahua", "/cgi-bin/magicBox.cgi?action=getDeviceType"))


def says_vendor(brand: str, status: int, headers: Mapping[str, str], body: bytes) -> bool:
    """True when an unauthenticated reply on ``brand``'s identify path shows that vendor's web server.

    Hikvision challenges ``/ISAPI/...`` with Digest (realm: the model) and answers ``Server: App-webs``;
    Dahua challenges ``/cgi-bin/...`` with realm ``Login to <serial>``, server ``DNVRS-Webs`` on recorders.
    """
    challenge = (headers.get("WWW-Authenticate") or "").lower()
    server = (headers.get("Server") or "").lower()
    digest = status == 401 and challenge.startswith("digest")
    dahua_realm = 'realm="login to' in challenge
    if brand == "isapi":
        return (digest and not dahua_realm) or "app-webs" in server or "hikvision" in server or (
            status == 200 and b"<DeviceInfo" in body[:512])
    return (digest and dahua_realm) or "dnvrs-webs" in server or (status == 200 and body.startswith(b"type="))


@dataclass(frozen=True)
class HttpReply:
    """One vendor reply: status, headers and at most :data:`MAX_REPLY_BYTES` of body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        """Body as text (invalid UTF-8 replaced)."""
        return self.body.decode("utf-8", "replace")

    @property
    def is_html(self) -> bool:
        """True when the device sent a web page (a log-in page, an error page) instead of data."""
        head = self.body[:512].lower()
        return "html" in (self.headers.get("Content-Type") or "").lower() or b"<html" in head or b"<!doctype html" in head


def clean(value: str | None, limit: int = 256) -> str | None:
    """A device string without control characters, stripped and bounded (None when empty)."""
    if value is None:
        return None
    text = _CONTROL.sub("", value).strip()[:limit]
    return text or None


def excerpt(body: bytes, limit: int = 200) -> str:
    """A short printable excerpt of a reply for diagnosis."""
    text = " ".join(body[:limit * 2].decode("utf-8", "replace").split())
    return text[:limit]


class VendorSession:
    """One aiohttp session to one device's web server. Always ``await close()``."""

    def __init__(self, host: str, port: int, *, timeout_s: float = 5.0, scheme: str = "http",
                 max_reply_bytes: int = MAX_REPLY_BYTES, limiter: Any = None) -> None:
        self.base = f"{scheme}://{host}:{port}"
        self.host = host
        self.timeout_s = timeout_s
        self.max_reply_bytes = max_reply_bytes
        self.limiter = limiter
        self.attempts = 0  # requests that carried a credential (what a lock-out counts)
        self._digest: DigestAuthMiddleware | None = None
        connector = aiohttp.TCPConnector(limit=2, ssl=_NO_VERIFY_SSL, use_dns_cache=False)
        # decompression under the cap (read_capped), never aiohttp's whole-chunk inflating: see probes.soap
        self._session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                              trust_env=False, auto_decompress=False)

    def use_credentials(self, username: str, password: str) -> None:
        """Answer Digest challenges with this credential from now on."""
        self._digest = DigestAuthMiddleware(username, password)

    async def close(self) -> None:
        """Close the session."""
        await self._session.close()

    async def request(self, method: str, path: str, *, data: bytes | None = None, authenticated: bool = True,
                      what: str = "") -> HttpReply:
        """Send one request; connection problems become :mod:`probes.errors` exceptions."""
        what = what or path.partition("?")[0]
        middlewares = (self._digest,) if authenticated and self._digest is not None else ()
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout_s * 0.9, sock_read=self.timeout_s)
        headers = {"User-Agent": "cctv-monitor-probe", "Accept-Encoding": ACCEPT_ENCODING}
        if data is not None:
            headers["Content-Type"] = "application/xml; charset=UTF-8"
        try:
            async with asyncio.timeout(self.timeout_s):
                if self.limiter is not None:
                    async with self.limiter.acquire(self.host):
                        return await self._send(method, path, data, headers, timeout, middlewares)
                return await self._send(method, path, data, headers, timeout, middlewares)
        except ProbeError:
            raise
        except aiohttp.ConnectionTimeoutError as exc:
            raise Unreachable(f"{what}: no TCP connection to {self.base} within {self.timeout_s:g} s") from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProbeTimeout(f"{what}: {self.base} sent no complete reply within {self.timeout_s:g} s") from exc
        except aiohttp.ClientConnectorError as exc:
            raise Unreachable(f"{what}: cannot connect to {self.base}: {exc.os_error.strerror or exc}") from exc
        except aiohttp.ClientPayloadError as exc:
            raise MalformedReply(f"{what}: reply body broken off or badly encoded ({exc})") from exc
        except aiohttp.ClientResponseError as exc:
            raise MalformedReply(f"{what}: invalid HTTP reply ({exc.message})") from exc
        except aiohttp.ClientError as exc:
            raise Unreachable(f"{what}: HTTP error talking to {self.base}: {exc}") from exc

    async def _send(self, method: str, path: str, data: bytes | None, headers: dict[str, str],
                    timeout: aiohttp.ClientTimeout, middlewares: tuple[Any, ...]) -> HttpReply:
        async with self._session.request(method, self.base + path, data=data, headers=headers, timeout=timeout,
                                         allow_redirects=False, middlewares=middlewares) as resp:
            if resp.request_info.headers.get("Authorization"):
                self.attempts += 1
            length = resp.content_length
            if length is not None and length > self.max_reply_bytes:
                raise ReplyTooLarge(f"{path.partition('?')[0]}: reply of {length / 1e6:.1f} MB refused (limit "
                                    f"{self.max_reply_bytes / 1e6:.0f} MB)")
            body = await read_capped(resp, self.max_reply_bytes)  # counted after decompression
            if body is None:
                raise ReplyTooLarge(f"{path.partition('?')[0]}: reply larger than "
                                    f"{self.max_reply_bytes / 1e6:.0f} MB, refused at the limit")
            return HttpReply(resp.status, resp.headers, body)


def parse_xml(reply: HttpReply, what: str) -> Any:
    """The root element of an XML reply, parsed safely; HTML pages and DOCTYPEs are refused."""
    if reply.is_html:
        raise MalformedReply(f"{what}: HTTP {reply.status} with a web page (log-in or error page) instead of XML: "
                             "the API is switched off or behind the web log-in", excerpt=excerpt(reply.body))
    if b"<!DOCTYPE" in reply.body[:4096].upper():
        raise MalformedReply(f"{what}: reply declares a DOCTYPE (entity expansion or external entities); refused",
                             excerpt=excerpt(reply.body))
    try:
        root = etree.fromstring(reply.body, _PARSER)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise MalformedReply(f"{what}: reply is not well-formed XML ({str(exc)[:120]})",
                             excerpt=excerpt(reply.body)) from exc
    if root is None:
        raise MalformedReply(f"{what}: empty XML reply")
    return root


def text(element: Any, *names: str) -> str | None:
    """Cleaned text of the descendant at ``names`` (None when absent or empty)."""
    node = find(element, *names)
    return clean(node.text) if node is not None and node.text else None


def number(value: str | None, kind: type = int) -> Any:
    """``value`` as int/float, None when absent or not a number."""
    if value is None:
        return None
    try:
        return kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError):
        return None


def auth_error(reply: HttpReply, what: str, locked: bool) -> AuthFailed:
    """The exception for a 401: :class:`Locked` when the device named a lock, else :class:`AuthFailed`."""
    if locked:
        return Locked(f"{what}: the device locked this account or our address after failed log-ins; no further "
                      "credential is tried (it unlocks by itself, usually after 10-30 minutes, or from its web page)",
                      excerpt=excerpt(reply.body))
    return AuthFailed(f"{what}: HTTP 401: the user or password was rejected by the device's web API",
                      excerpt=excerpt(reply.body))


@dataclass
class VendorReadout:
    """What one vendor API read from a device; :mod:`probes.vendor` turns it into an observation."""

    protocol: str
    device: Any = None  # DeviceIdentity
    clock_offset_s: float | None = None
    ntp_servers: tuple[str, ...] = ()
    profiles: tuple[Any, ...] = ()  # MediaProfile
    stream_uris: dict[str, str] = field(default_factory=dict)  # token -> URI (unredacted, for stream checks)
    onvif_enabled: bool | None = None
    channels: tuple[Any, ...] = ()  # ChannelInfo
    storage: tuple[Any, ...] = ()  # StorageInfo
    retention_days: float | None = None
    warnings: list[str] = field(default_factory=list)
    raw_errors: list[str] = field(default_factory=list)

    def warn(self, exc: ProbeError, what: str) -> None:
        """Record an optional call that failed."""
        self.warnings.append(f"{what}: {exc.message}")
        if exc.excerpt:
            self.raw_errors.append(f"{what}: {exc.excerpt}")
