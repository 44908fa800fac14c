"""Hostile wire behaviours of the fault matrix: replies that never end, break off, are noise, or drip.

Each function answers one request the way a broken or malicious device would, below the level of a
well-formed HTTP exchange where needed (raw bytes on the transport). The quirk names and parameters are
documented in config/fleets/FORMAT.md.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import struct
import zlib
from typing import Any, Mapping

from aiohttp import web

SOAP_CT = "application/soap+xml; charset=utf-8"


def _raw_reply(data: bytes) -> bytes:
    """A complete HTTP/1.1 reply around ``data``, as bytes (for behaviours that write the transport raw)."""
    head = (f"HTTP/1.1 200 OK\r\nContent-Type: {SOAP_CT}\r\nContent-Length: {len(data)}\r\n"
            "Connection: close\r\n\r\n").encode("ascii")
    return head + data


def reset(request: web.Request) -> None:
    """Close with RST (SO_LINGER 0), not FIN: what a crashing device's TCP stack sends."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport else None
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if transport is not None:
        transport.abort()


async def garbage_raw(request: web.Request, size: int) -> None:
    """``size`` random bytes instead of an HTTP reply, then close; ends the handler (CancelledError)."""
    transport = request.transport
    if transport is not None:
        transport.write(b"\x00\xff" + os.urandom(max(0, size - 2)))  # never starts like "HTTP/"
        transport.close()
    raise asyncio.CancelledError


def garbage_http(size: int) -> web.Response:
    """HTTP 200 with a SOAP content type and a body of random bytes."""
    return web.Response(body=b"\x00\xff" + os.urandom(max(0, size - 2)), content_type="application/soap+xml")


async def drip(request: web.Request, data: bytes, interval_s: float) -> None:
    """Write the whole reply (status line and headers too) one byte every ``interval_s``; ends the handler."""
    transport = request.transport
    if transport is None:
        raise asyncio.CancelledError
    for byte in _raw_reply(data):
        if transport.is_closing():  # the client gave up: stop dripping into nothing
            break
        transport.write(bytes((byte,)))
        await asyncio.sleep(interval_s)
    transport.close()
    raise asyncio.CancelledError


async def reset_mid_reply(request: web.Request, data: bytes, fraction: float) -> None:
    """Announce the full length, send ``fraction`` of the reply, then reset the connection; ends the handler."""
    transport = request.transport
    if transport is not None:
        raw = _raw_reply(data)
        head_len = len(raw) - len(data)
        transport.write(raw[: head_len + int(len(data) * fraction)])
        await asyncio.sleep(0.05)  # let the partial reply leave before the RST overtakes it
        reset(request)
    raise asyncio.CancelledError


async def endless(request: web.Request, data: bytes, params: Mapping[str, Any]) -> web.StreamResponse:
    """A chunked reply that starts like the real one and never ends (padding inside an element)."""
    # 4 MB/s by default: the 2 MB cap is met well inside a 2-5 s deadline without the fleet process (one
    # event loop for every camera) burning its CPU on padding; 0: as fast as the client reads
    rate_kb_s = float(params.get("rate_kb_s", 4096))
    resp = web.StreamResponse(headers={"Content-Type": SOAP_CT})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    head = data.partition(b"<env:Body>")
    chunk = b" " * 16384
    try:
        await resp.write(head[0] + head[1] + b"<Padding>")
        while True:
            await resp.write(chunk)
            await asyncio.sleep(len(chunk) / (rate_kb_s * 1024) if rate_kb_s > 0 else 0)
    except (ConnectionError, RuntimeError):  # the client closed the connection: the only way this ends
        pass
    return resp


async def huge(request: web.Request, data: bytes, size_mb: float, *, chunked: bool) -> web.StreamResponse:
    """Stream a reply padded with an XML comment to ``size_mb`` MB without holding it in memory.

    With ``chunked`` no Content-Length is announced, so the client's size cap must work while reading.
    """
    head, sep, tail = data.partition(b"<env:Header>")
    pad_total = max(0, int(size_mb * 1024 * 1024) - len(data) - 7)
    resp = web.StreamResponse(headers={"Content-Type": SOAP_CT})
    if chunked:
        resp.enable_chunked_encoding()
    else:
        resp.content_length = len(data) + pad_total + 7
    await resp.prepare(request)
    try:
        await resp.write(head + sep + b"<!--")
        chunk = b"x" * 65536
        left = pad_total
        while left > 0:
            part = chunk[: min(left, len(chunk))]
            await resp.write(part)
            left -= len(part)
        await resp.write(b"-->" + tail)
        await resp.write_eof()
    except (ConnectionError, RuntimeError):  # the client refused the rest (its size cap): expected
        pass
    return resp


@functools.lru_cache(maxsize=4)
def gzip_body(size_mb: int) -> bytes:
    """A gzip member of ``size_mb`` MB: an envelope start and spaces (about 1/1000 of that compressed)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # about 1000-fold for spaces
    block = b" " * (1024 * 1024)
    parts = [comp.compress(b'<?xml version="1.0"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope">')]
    parts.extend(comp.compress(block) for _ in range(size_mb))
    parts.append(comp.flush())
    return b"".join(parts)


async def gzip_bomb(size_mb: int) -> web.Response:
    """HTTP 200 whose small gzip body (``Content-Encoding: gzip``) inflates to ``size_mb`` MB."""
    # made once per size, off the event loop: every other camera of the fleet keeps answering meanwhile
    body = await asyncio.get_running_loop().run_in_executor(None, gzip_body, size_mb)
    return web.Response(body=body, headers={"Content-Encoding": "gzip", "Content-Type": SOAP_CT})
