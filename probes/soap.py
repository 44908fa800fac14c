"""SOAP over HTTP for one camera: a capped, time-bounded aiohttp session and a tolerant, safe XML reader.

Everything the probes send to a camera goes through :class:`CameraSession`, so every reply is read the
same way: at most :data:`MAX_REPLY_BYTES`, within the operation timeout, under the per-host limit, with
HTTP Digest answered when the camera asks for it, and parsed with entity expansion, DTDs and network
access off. Low-level errors become :mod:`probes.errors` exceptions here, at the boundary.

zeep (through onvif-zeep-async's cached WSDL documents) talks to the camera through
:class:`ZeepTransport`, which hands each reply to zeep only after this module has checked it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import re
import ssl
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlsplit

import aiohttp
from aiohttp import DigestAuthMiddleware
from lxml import etree
from zeep.wsdl.utils import etree_to_string

from probes.errors import (
    AuthFailed,
    MalformedReply,
    NotOnvif,
    OnvifDisabled,
    ProbeError,
    ProbeTimeout,
    ReplyTooLarge,
    Unreachable,
)
from probes.targets import on_probed_host

LOGGER = logging.getLogger(__name__)

#: Replies larger than this are refused (a camera padding GetDeviceInformation to 20 MB must not cost RAM).
MAX_REPLY_BYTES = 2 * 1024 * 1024

SOAP_ENV = "http://www.w3.org/2003/05/soap-envelope"
SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PASSWORD_DIGEST = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
)
NONCE_B64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"

# Parsed camera replies: no entity expansion, no DTD loading, no network, no huge trees (XXE, billion laughs).
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
                          remove_comments=True, remove_pis=True)
# A raw '&' that starts no entity or character reference (ZoneMinder#3767: GetStreamUri with '&' unescaped).
_RAW_AMP = re.compile(rb"&(?!(?:[A-Za-z_][A-Za-z0-9._-]*|#[0-9]+|#x[0-9A-Fa-f]+);)")
_EXCERPT_CHARS = 300

_NO_VERIFY_SSL = ssl.create_default_context()
_NO_VERIFY_SSL.check_hostname = False
_NO_VERIFY_SSL.verify_mode = ssl.CERT_NONE  # cameras use self-signed certificates; we read, we never send secrets in clear


def excerpt(content: bytes | str | None, limit: int = _EXCERPT_CHARS) -> str:
    """A short printable excerpt of a reply for diagnosis (credentials never appear in replies we keep)."""
    if not content:
        return ""
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    text = " ".join(text.split())
    return text[:limit] + ("…" if len(text) > limit else "")


def local(tag: Any) -> str:
    """Local name of an lxml tag (namespace dropped); '' for comments and PIs."""
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]


def child(element: Any, *names: str) -> Any:
    """First descendant path by local names (namespace-agnostic), or None: ``child(el, "A", "B")``."""
    current = element
    for name in names:
        if current is None:
            return None
        current = next((c for c in current if local(c.tag) == name), None)
    return current


def children(element: Any, name: str) -> list[Any]:
    """Direct children with local name ``name``."""
    if element is None:
        return []
    return [c for c in element if local(c.tag) == name]


def find_any(element: Any, name: str) -> Any:
    """First element anywhere below ``element`` with local name ``name``, or None."""
    if element is None:
        return None
    for el in element.iter():
        if local(el.tag) == name:
            return el
    return None


def text(element: Any, *names: str) -> str | None:
    """Stripped text of ``child(element, *names)``, or None when absent or empty."""
    node = child(element, *names) if names else element
    if node is None or node.text is None:
        return None
    value = node.text.strip()
    return value or None


@dataclass
class ParsedXml:
    """A checked reply: the root element, the bytes zeep may parse, and what had to be repaired."""

    root: Any
    content: bytes
    repairs: tuple[str, ...] = ()


def parse_reply(content: bytes, *, what: str = "reply") -> ParsedXml:
    """Parse a camera reply safely; repair a raw '&' and invalid UTF-8, refuse DTDs and broken XML."""
    repairs: list[str] = []
    data = content
    for _attempt in range(3):
        try:
            root = etree.fromstring(data, parser=_PARSER)
        except etree.XMLSyntaxError as exc:
            msg = str(exc)
            if "UTF-8" in msg or "encoding" in msg.lower() and "invalid" in msg.lower():
                data = data.decode("utf-8", "replace").encode("utf-8")
                repairs.append("invalid UTF-8 bytes replaced with U+FFFD")
                continue
            if ("EntityRef" in msg or "xmlParseEntityRef" in msg) and _RAW_AMP.search(data):
                data = _RAW_AMP.sub(b"&amp;", data)
                repairs.append("unescaped '&' in the XML repaired")
                continue
            raise MalformedReply(f"{what} is not well-formed XML ({_short_lxml(msg)})",
                                 excerpt=excerpt(content)) from exc
        if root is None:
            raise MalformedReply(f"{what} is empty", excerpt=excerpt(content))
        docinfo = root.getroottree().docinfo
        if docinfo.doctype or docinfo.internalDTD is not None:
            # SOAP 1.2 forbids a DTD in a message; a DOCTYPE here is an XXE/entity-expansion attempt or a bug.
            raise MalformedReply(f"{what} carries a DOCTYPE/entity declarations (SOAP forbids them; refused unread, "
                                 f"nothing expanded)", excerpt=excerpt(content))
        return ParsedXml(root, data, tuple(repairs))
    raise MalformedReply(f"{what} could not be repaired into well-formed XML", excerpt=excerpt(content))


def _short_lxml(msg: str) -> str:
    return msg.split(", line")[0][:160]


def soap_fault(root: Any) -> tuple[str, list[str], str] | None:
    """(code, subcodes as local names, reason) of a SOAP 1.1/1.2 fault in ``root``, or None."""
    body = child(root, "Body")
    fault = child(body, "Fault") if body is not None else None
    if fault is None:
        return None
    code = text(fault, "Code", "Value") or text(fault, "faultcode") or ""
    subcodes: list[str] = []
    sub = child(fault, "Code", "Subcode")
    while sub is not None:
        value = text(sub, "Value")
        if value:
            subcodes.append(value.rpartition(":")[2])
        sub = child(sub, "Subcode")
    reason = text(fault, "Reason", "Text") or text(fault, "faultstring") or ""
    return code.rpartition(":")[2], subcodes, reason


AUTH_FAULT_WORDS = ("notauthorized", "failedauthentication", "not authorized", "unauthorized",
                    "authentication", "authority failure", "invalidsecurity", "sender not authorized")


def is_auth_fault(code: str, subcodes: Iterable[str], reason: str) -> bool:
    """True when a SOAP fault says the credentials (or their timestamp) were rejected."""
    words = " ".join([code, *subcodes, reason]).lower()
    return any(w in words for w in AUTH_FAULT_WORDS)


def wsse_header(username: str, password: str, clock_offset_s: float = 0.0) -> str:
    """WS-Security UsernameToken (PasswordDigest) signed with the camera's clock, as a SOAP header block."""
    nonce = os.urandom(16)
    created = (datetime.now(timezone.utc) + timedelta(seconds=clock_offset_s)).strftime("%Y-%m-%dT%H:%M:%S.%f")
    created = created[:-3] + "Z"  # UTC with 'Z': some firmware rejects '+00:00' (Delphi-ONVIF#13)
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()
    user = _xml_escape(username)
    return (
        f'<wsse:Security xmlns:wsse="{WSSE_NS}" xmlns:wsu="{WSU_NS}" s:mustUnderstand="true">'
        f"<wsse:UsernameToken><wsse:Username>{user}</wsse:Username>"
        f'<wsse:Password Type="{PASSWORD_DIGEST}">{digest}</wsse:Password>'
        f'<wsse:Nonce EncodingType="{NONCE_B64}">{base64.b64encode(nonce).decode()}</wsse:Nonce>'
        f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security>"
    )


def envelope(body: str, header: str = "", namespaces: Mapping[str, str] | None = None) -> bytes:
    """A SOAP 1.2 envelope around ``body`` (already XML) with an optional header block."""
    ns = "".join(f' xmlns:{p}="{u}"' for p, u in (namespaces or {}).items())
    head = f"<s:Header>{header}</s:Header>" if header else ""
    return (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP_ENV}"{ns}>{head}'
            f"<s:Body>{body}</s:Body></s:Envelope>").encode("utf-8")


def _xml_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


#: Requests at once per host. Old cameras fall over under many parallel requests (cameradar#348), yet a
#: browser opens six connections to a camera's own web page: three keep well under that and make a probe
#: five request rounds deep instead of six or seven (a camera slow per answer, or a 200 ms link, is read
#: in five of its answer times; the fault matrix's camera that takes 2 s an answer in 10 s instead of 12).
DEFAULT_PER_HOST = 3


class HostLimiter:
    """At most ``limit`` requests at once per host, across all probes of one scan (old cameras fall over)."""

    def __init__(self, limit: int = DEFAULT_PER_HOST) -> None:
        if limit < 1:
            raise ValueError(f"per-host limit must be at least 1, got {limit}")
        self.limit = limit
        self._sems: dict[str, asyncio.Semaphore] = {}
        self._users: dict[str, int] = {}

    def acquire(self, host: str) -> "_HostSlot":
        """Async context manager holding one slot of ``host``."""
        return _HostSlot(self, host)

    async def _enter(self, host: str) -> None:
        sem = self._sems.get(host)
        if sem is None:
            sem = self._sems[host] = asyncio.Semaphore(self.limit)
        self._users[host] = self._users.get(host, 0) + 1
        try:
            await sem.acquire()
        except BaseException:
            self._leave_count(host)
            raise

    def _exit(self, host: str) -> None:
        self._sems[host].release()
        self._leave_count(host)

    def _leave_count(self, host: str) -> None:
        # Forget idle hosts so a 10,000-camera scan does not keep 10,000 semaphores.
        self._users[host] -= 1
        if not self._users[host]:
            del self._users[host]
            del self._sems[host]


class _HostSlot:
    def __init__(self, limiter: HostLimiter, host: str) -> None:
        self.limiter, self.host = limiter, host

    async def __aenter__(self) -> None:
        await self.limiter._enter(self.host)

    async def __aexit__(self, *exc: object) -> None:
        self.limiter._exit(self.host)


@dataclass
class Reply:
    """One HTTP reply that passed the checks: status, headers, parsed XML."""

    status: int
    headers: Mapping[str, str]
    xml: ParsedXml


class CameraSession:
    """One aiohttp session for one camera: capped, time-bounded SOAP POSTs. Always ``await close()``."""

    def __init__(self, host: str, *, timeout_s: float = 5.0, limiter: HostLimiter | None = None,
                 max_reply_bytes: int = MAX_REPLY_BYTES, per_host_connections: int = DEFAULT_PER_HOST) -> None:
        self.host = host
        self.timeout_s = timeout_s
        self.limiter = limiter or HostLimiter(per_host_connections)
        self.max_reply_bytes = max_reply_bytes
        self._digest: DigestAuthMiddleware | None = None
        self.http_digest_used = False
        self.repairs: list[str] = []
        connector = aiohttp.TCPConnector(limit=per_host_connections, ssl=_NO_VERIFY_SSL, use_dns_cache=False,
                                         enable_cleanup_closed=False)
        # No cookie jar, no env proxies: a probe talks to the camera directly and keeps no state. Replies are
        # decompressed by read_capped, under the cap: aiohttp's own decoder inflates a whole network chunk at
        # once (a 260 kB gzip body became 256 MB in memory before any cap could act).
        self._session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                              trust_env=False, auto_decompress=False)

    def use_credentials(self, username: str | None, password: str | None) -> None:
        """Answer HTTP Digest challenges with these credentials from now on (None: unauthenticated)."""
        if username is None:
            self._digest = None
        else:
            self._digest = DigestAuthMiddleware(username, password or "")

    async def close(self) -> None:
        """Close the session and its connections."""
        await self._session.close()

    async def __aenter__(self) -> "CameraSession":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def post(self, url: str, body: bytes | Callable[[], bytes], *, action: str,
                   authenticated: bool = True) -> Reply:
        """POST a SOAP envelope; returns the checked reply or raises a :class:`ProbeError`.

        ``body`` may be a function that makes it, called once the host's request slot is ours: a
        WS-Security timestamp made then is not aged by the wait for the slot (a slow camera checks it
        against its clock within a few seconds)."""
        headers = {"Content-Type": f'application/soap+xml; charset=utf-8; action="{action}"',
                   "User-Agent": "cctv-monitor-probe", "Accept-Encoding": ACCEPT_ENCODING}
        op = action.rpartition("/")[2] or action
        if on_probed_host(url, self.host)[1] is not None:
            # Bodies carry WS-Security tokens and the session answers Digest: never to a host not probed.
            raise ProbeError(f"{op}: refused to send a request to {_hostport(url)}, which is not the probed "
                             f"host {self.host}")
        middlewares = (self._digest,) if (authenticated and self._digest is not None) else ()
        # Connect gets slightly less than the hard bound so a silent host reads as unreachable, not timeout.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout_s * 0.9, sock_read=self.timeout_s)
        async with self.limiter.acquire(self.host):
            try:
                # The hard bound covers connect, headers and body: a camera dripping bytes cannot hold us.
                async with asyncio.timeout(self.timeout_s):
                    data = body() if callable(body) else body
                    status, resp_headers, content = await self._send(url, data, headers, timeout, middlewares)
            except ProbeError:
                raise
            except aiohttp.ConnectionTimeoutError as exc:
                raise Unreachable(f"{op}: no TCP connection to {_hostport(url)} within {self.timeout_s:g} s "
                                  "(host down, wrong address, or filtered by a firewall)") from exc
            except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
                raise ProbeTimeout(f"{op}: {_hostport(url)} accepted the connection but sent no complete reply "
                                   f"within {self.timeout_s:g} s (device hung or overloaded; retry later, "
                                   "or raise the timeout)") from exc
            except aiohttp.ClientConnectorError as exc:
                reason = exc.os_error.strerror if exc.os_error and exc.os_error.strerror else str(exc)
                raise Unreachable(f"{op}: cannot connect to {_hostport(url)}: {reason} "
                                  "(camera off, wrong address/port, or ONVIF port closed)") from exc
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                raise Unreachable(f"{op}: {_hostport(url)} accepted the connection and then closed or reset it "
                                  "without a reply (ONVIF server crashed or refuses us; check the device)") from exc
            except aiohttp.ClientPayloadError as exc:
                raise MalformedReply(f"{op}: reply body broken off or badly encoded ({exc})") from exc
            except aiohttp.ClientResponseError as exc:
                raise MalformedReply(f"{op}: invalid HTTP reply ({exc.message})") from exc
            except aiohttp.ClientError as exc:
                raise Unreachable(f"{op}: HTTP error talking to {_hostport(url)}: {exc}") from exc
        return self._check(op, status, resp_headers, content, authenticated=authenticated)

    async def _send(self, url: str, body: bytes, headers: dict[str, str], timeout: aiohttp.ClientTimeout,
                    middlewares: tuple[Any, ...]) -> tuple[int, Mapping[str, str], bytes]:
        async with self._session.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False,
                                      middlewares=middlewares) as resp:
            if middlewares and resp.request_info.headers.get("Authorization"):
                self.http_digest_used = True
            length = resp.content_length
            if length is not None and length > self.max_reply_bytes:
                raise ReplyTooLarge(f"{_op_of(headers)}: reply of {length / 1e6:.1f} MB refused (limit "
                                    f"{self.max_reply_bytes / 1e6:.0f} MB); the device sends oversized replies")
            content = await read_capped(resp, self.max_reply_bytes)
            if content is None:
                raise ReplyTooLarge(f"{_op_of(headers)}: reply larger than {self.max_reply_bytes / 1e6:.0f} MB, "
                                    "refused after reading the limit; the device sends oversized replies")
            return resp.status, resp.headers, content

    def _check(self, op: str, status: int, headers: Mapping[str, str], content: bytes, *,
               authenticated: bool) -> Reply:
        ctype = (headers.get("Content-Type") or "").lower()
        looks_xml = content.lstrip()[:1] == b"<" and b"<html" not in content[:512].lower()
        if status == 401 and not (looks_xml and b"Envelope" in content[:2048]):
            challenge = headers.get("WWW-Authenticate", "")
            what = "an HTML page" if ("html" in ctype or b"<html" in content[:512].lower()) else "a non-SOAP body"
            scheme = f" (asks for {challenge.split()[0]} auth)" if challenge else ""
            raise AuthFailed(f"{op}: HTTP 401 with {what}{scheme}: the ONVIF user or password was rejected"
                             if authenticated else
                             f"{op}: HTTP 401{scheme}: the device wants credentials even for this call",
                             excerpt=excerpt(content))
        if not content.strip():
            if status in (403, 404, 405):
                raise _status_error(op, status, content)
            raise MalformedReply(f"{op}: HTTP {status} with an empty body (no SOAP envelope)")
        if not looks_xml or "html" in ctype:
            if status in (401, 403, 404, 405):
                raise _status_error(op, status, content)
            raise NotOnvif(f"{op}: HTTP {status} with {'an HTML page' if 'html' in (ctype + content[:512].decode('latin-1').lower()) else 'a non-XML body'} "
                           "instead of SOAP: this address serves no ONVIF device service", excerpt=excerpt(content))
        parsed = parse_reply(content, what=f"{op} reply")
        if local(parsed.root.tag) != "Envelope":
            if status in (403, 404, 405):
                raise _status_error(op, status, content)
            raise NotOnvif(f"{op}: HTTP {status} with XML that is no SOAP envelope (<{local(parsed.root.tag)}>): "
                           "not an ONVIF device service", excerpt=excerpt(content))
        for repair in parsed.repairs:
            note = f"{op}: {repair}"
            if note not in self.repairs:
                self.repairs.append(note)
        return Reply(status, headers, parsed)


#: What the probes accept: cameras have no reason to compress, but a compressed reply is still read safely.
ACCEPT_ENCODING = "identity, gzip;q=0.1, deflate;q=0.1"


async def read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The body of ``resp`` (a session with ``auto_decompress=False``), decompressed as it arrives, or None
    once it exceeds ``limit`` bytes, counted after decompression: a gzip bomb stops at the limit too.

    An encoding other than identity, gzip or deflate raises :class:`MalformedReply`.
    """
    encoding = (resp.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding in ("", "identity"):
        inflater = None
    elif encoding in ("gzip", "x-gzip", "deflate"):
        inflater = zlib.decompressobj(47)  # 32 + 15: gzip or zlib header, detected
    else:
        raise MalformedReply(f"reply in an unsupported Content-Encoding {encoding[:40]!r}")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in resp.content.iter_chunked(65536):
            if inflater is not None:
                # at most one byte over the room left: more output pending means over the limit
                chunk = inflater.decompress(chunk, limit - size + 1)
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        if inflater is not None:
            tail = inflater.flush()
            size += len(tail)
            if size > limit:
                return None
            chunks.append(tail)
    except zlib.error as exc:
        raise MalformedReply(f"reply body is not valid {encoding} data ({exc})") from exc
    return b"".join(chunks)


def _status_error(op: str, status: int, content: bytes) -> ProbeError:
    if status == 403:
        return OnvifDisabled(f"{op}: HTTP 403 Forbidden: ONVIF is switched off on this device (enable ONVIF in its "
                             "web page and add an ONVIF user; Hikvision/Dahua keep a separate ONVIF user list)",
                             excerpt=excerpt(content))
    if status == 401:
        return AuthFailed(f"{op}: HTTP 401: the ONVIF user or password was rejected", excerpt=excerpt(content))
    return NotOnvif(f"{op}: HTTP {status} at the ONVIF device path: no ONVIF service here (not an ONVIF device, "
                    "ONVIF on another port, or ONVIF switched off)", excerpt=excerpt(content))


def _op_of(headers: Mapping[str, str]) -> str:
    action = headers.get("Content-Type", "")
    match = re.search(r'action="([^"]*)"', action)
    return match.group(1).rpartition("/")[2] if match else "request"


def _hostport(url: str) -> str:
    try:
        return urlsplit(url).netloc or url
    except ValueError:
        return url


class _ZeepResponse:
    """The few attributes zeep's ``process_reply`` reads from a response."""

    __slots__ = ("status_code", "headers", "content", "encoding")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self.encoding = "utf-8"


class ZeepTransport:
    """zeep transport over a :class:`CameraSession`.

    Hand-written rather than onvif's ``AIOHTTPTransport`` because that one reads replies uncapped, builds a
    ``requests.Session`` per instance and cannot share one session and host limiter across services.
    zeep only calls ``post_xml`` on an async transport after the WSDL is loaded (onvif caches documents).
    """

    cache = None

    def __init__(self, session: CameraSession) -> None:
        self.session = session

    async def post_xml(self, address: str, envelope_el: Any, headers: dict[str, str]) -> _ZeepResponse:
        """Send a zeep-built envelope and hand back the checked (possibly repaired) reply bytes."""
        body = etree_to_string(envelope_el)
        ctype = headers.get("Content-Type", "")
        action = re.search(r'action="([^"]*)"', ctype)
        reply = await self.session.post(address, body, action=action.group(1) if action else address)
        return _ZeepResponse(reply.status, {"Content-Type": "application/soap+xml"}, reply.xml.content)

    def load(self, url: str) -> bytes:
        """WSDLs come from onvif's process-wide document cache; never fetch one from a camera."""
        raise RuntimeError(f"refusing to load {url} from the network")

    async def aclose(self) -> None:
        """The camera session is closed by its owner."""
