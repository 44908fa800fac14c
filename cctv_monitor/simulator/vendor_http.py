"""What the Hikvision ISAPI and Dahua CGI servers share: Digest with lock-out, hostile reply shaping.

Both vendors want HTTP Digest on every call; a request without credentials gets the challenge and
costs nothing, a request with a wrong credential counts towards the lock-out of the client's address
(:class:`~cctv_monitor.simulator.vendor_spec.AuthGuard`), and a locked client is refused before its
credential is even checked, as the firmware does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from aiohttp import web

from cctv_monitor.simulator.auth import HttpDigest

HTML_LOGIN = ("<!DOCTYPE html><html><head><title>Login</title><script>location.href='/doc/page/login.asp'"
              "</script></head><body><form action=\"/doc/page/login.asp\"><input name=\"username\">"
              "<input type=\"password\" name=\"password\"></form></body></html>")
XXE_DOCTYPE = ('<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd"><!ENTITY lol "lol">'
               '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
               '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>\n')


@dataclass
class Denied:
    """Why a vendor request was refused: ``locked`` carries the seconds left on the lock."""

    challenge: str
    locked: float = 0.0
    remaining: int = 0
    credentialed: bool = False


def check_digest(request: web.Request, b: Any, digest: HttpDigest) -> Denied | None:
    """None when the request carries a valid Digest for the camera's user, else why it was refused."""
    guard = b.guard
    client = request.remote or "?"
    header = request.headers.get("Authorization")
    if not header or not header.lower().startswith("digest "):
        return Denied(digest.challenge(), guard.locked_for(client), guard.remaining(client))
    left = guard.locked_for(client)
    if left:
        guard.credentialed += 1  # a locked client's attempt is refused unchecked, but it is still an attempt
        return Denied(digest.challenge(), left, 0, credentialed=True)
    result = digest.check(header, request.method, b.spec.username, b.spec.password)
    guard.record(client, result.ok)
    if result.ok:
        return None
    return Denied(digest.challenge(), guard.locked_for(client), guard.remaining(client), credentialed=True)


def camera_now(b: Any) -> datetime:
    """The camera's clock (UTC, with its configured offset)."""
    return datetime.now(timezone.utc) + timedelta(seconds=b.spec.clock_offset_s)


def recording_span(days: float | None, now: datetime) -> tuple[datetime, datetime] | None:
    """Oldest and newest recorded moment for ``days`` of retention (None: nothing recorded)."""
    if not days:
        return None
    return now - timedelta(days=days), now


def day_segments(span: tuple[datetime, datetime] | None, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Recorded files of at most one day each, oldest first, overlapping ``start``..``end``."""
    if span is None:
        return []
    out = []
    cursor = span[0]
    while cursor < span[1]:
        seg_end = min(cursor + timedelta(days=1), span[1])
        if seg_end > start and cursor < end:
            out.append((cursor, seg_end))
        cursor = seg_end
    return out


async def huge_reply(request: web.Request, head: bytes, tail: bytes, size_mb: float, content_type: str,
                     pad: Callable[[int], bytes] = lambda n: b"x" * n) -> web.StreamResponse:
    """Stream ``head`` + padding + ``tail`` of ``size_mb`` MB without holding it in memory."""
    total = max(len(head) + len(tail), int(size_mb * 1024 * 1024))
    resp = web.StreamResponse(headers={"Content-Type": content_type})
    resp.content_length = total
    await resp.prepare(request)
    await resp.write(head)
    left = total - len(head) - len(tail)
    chunk = pad(65536)
    try:
        while left > 0:
            part = chunk[: min(left, len(chunk))]
            await resp.write(part)
            left -= len(part)
        await resp.write(tail)
        await resp.write_eof()
    except (ConnectionResetError, RuntimeError):
        pass  # the client gave up reading, which is what a capped client should do
    return resp
