"""A lean RTSP client for the stream check: H.264 / H.265 over RTP interleaved in the RTSP connection (TCP).

Why not FFmpeg for this part: FFmpeg's RTSP demuxer reads an interleaved RTP packet in three blocking reads
('$', the 3-byte header, the payload), each after a poll: about 3,400 polls and 3,400 recvs for the 800
RTP packets of one 2-second 1080p GOP at 4 Mbit/s, then runs the H.264 parser over every byte. Reading the
socket in 256 KB ``recv_into`` calls and splitting RTP in Python cut the reading CPU of a check from 0.015
to 0.008 CPU-s (76 H.264 streams at once, benchmarks/stream_checks.py's fleet; measured here), about 30 % of
a whole check. The measurement is the same: each frame's RTP timestamp, its size (the NAL units it carries
with their start codes, as in FFmpeg's packets), its keyframe flag from the NAL types (H.264 IDR, H.265
IRAP, as FFmpeg's parsers flag them), and the keyframes' bytes for the decoder pool.

Only the common case is handled here; for anything else :func:`read_rtp` returns False *before any media
is read*, and the caller (:func:`probes.stream.read_packets`) opens the stream with FFmpeg as before: a
reply other than 200, another codec (MJPEG, MPEG-4), RTSPS, a
transport the server changes, H.265 with DONL fields, H.264 interleaved packetisation, or a reply we cannot
parse. A timeout is not a reason to retry: it is raised (TimeoutError), so a silent server costs one
timeout, as before; a server that answers something other than RTSP raises :class:`NotRtsp`, one that refuses
our answer to its challenge :class:`LoginRefused` (OSErrors both), which the caller explains from its own
DESCRIBE without credentials. Not covered: an H.264 camera that never sends an IDR
(intra refresh with recovery-point SEI only) reads as "no keyframe" here, where FFmpeg's parser would flag
the recovery point as one.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["read_rtp", "Unsupported", "NotRtsp", "LoginRefused"]

_MAX_REPLY = 65536  # an RTSP reply (headers + SDP) larger than this is not a camera we read here
_RECV = 262144
_START = b"\x00\x00\x00\x01"
#: At the live edge each read returns a packet or two (the server sends each RTP packet as it goes), and
#: 96 reader threads then hand the GIL around for every one of them. A read that returned less than
#: _SMALL_READ waits _BATCH_S before the next, so the next returns a batch: 11 % less CPU per check at 32
#: checks in flight (0.020 to 0.018 CPU-s), 7 % at 96, with the same checks per second (measured here).
#: A check ends up to 0.1 s later; 100 ms of a 4 Mbit/s stream (50 KB) waits in the socket meanwhile.
_BATCH_S = 0.1
_SMALL_READ = 32768
_CODECS = {"H264": "h264", "H265": "hevc"}
#: A frame's bytes kept at most (a 4K H.265 keyframe is well under 2 MB): a server that sends one frame
#: without end (one timestamp, no marker) stops the read instead of filling memory.
_MAX_FRAME = 8 * 1024 * 1024


class Unsupported(Exception):
    """Not a stream this reader handles (the caller falls back to FFmpeg)."""


class NotRtsp(OSError):
    """The server answered something that is not RTSP: the caller explains it (no second try with FFmpeg)."""


class LoginRefused(OSError):
    """The server refused our answer to its challenge: the caller explains it. No second try with FFmpeg,
    which would be a second failed login on the camera (lock-outs count them, PITFALLS.md)."""


@dataclass
class _Reply:
    status: int
    headers: dict[str, str]
    body: bytes


class _Conn:
    """One RTSP connection: requests with CSeq and authentication, replies, then interleaved data."""

    def __init__(self, uri: str, deadline: float) -> None:
        parts = urlsplit(uri)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else ""
        host = parts.hostname or ""
        netloc = host if ":" not in host else f"[{host}]"
        if parts.port:
            netloc += f":{parts.port}"
        self.url = urlunsplit(("rtsp", netloc, parts.path or "/", parts.query, ""))
        self.deadline = deadline
        self.sock = socket.create_connection((host, parts.port or 554), timeout=self._left())
        self.buf = bytearray()
        self.last = 0  # bytes the last read returned
        self._chunk = bytearray(_RECV)
        self._view = memoryview(self._chunk)
        self.pos = 0
        self.cseq = 0
        self.auth: dict[str, str] | None = None  # the challenge once the server sent one
        self.session: str | None = None

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("RTSP read timed out")
        return left

    def fill(self) -> bool:
        """Read what the socket has (up to 256 KB) into the buffer; False at the end of the stream."""
        self.sock.settimeout(self._left())
        n = self.sock.recv_into(self._chunk)  # into one buffer: a fresh 256 KB bytes per call costs page faults
        self.buf += self._view[:n]
        self.last = n
        return n > 0

    def request(self, method: str, url: str, headers: str = "") -> _Reply:
        """Send a request (answering a digest or basic challenge once) and return the reply."""
        for attempt in (0, 1):
            self.cseq += 1
            extra = headers + (f"Session: {self.session}\r\n" if self.session else "")
            if self.auth is not None:
                extra += f"Authorization: {self._authorization(method, url)}\r\n"
            self.sock.sendall(f"{method} {url} RTSP/1.0\r\nCSeq: {self.cseq}\r\nUser-Agent: cctv-monitor-probe\r\n"
                              f"{extra}\r\n".encode("utf-8"))
            reply = self._reply()
            if reply.status == 401 and attempt == 0 and self.user and self.auth is None:
                challenge = reply.headers.get("www-authenticate", "")
                self.auth = _parse_challenge(challenge)
                continue
            return reply
        return reply

    def _reply(self) -> _Reply:
        """The next RTSP reply. Interleaved packets ahead of it (a server may start sending before it
        answers PLAY) stay in the buffer, in front of where the reply was."""
        while True:
            at = self.pos
            while len(self.buf) - at >= 4 and self.buf[at] == 0x24:
                size = 4 + int.from_bytes(self.buf[at + 2:at + 4], "big")
                if len(self.buf) - at < size:
                    break
                at += size
            if len(self.buf) - at >= 5 and self.buf[at] != 0x24 and self.buf[at:at + 5] != b"RTSP/":
                raise NotRtsp(f"not an RTSP reply: {bytes(self.buf[at:at + 40])!r}")
            end = self.buf.find(b"\r\n\r\n", at) if at < len(self.buf) and self.buf[at] != 0x24 else -1
            if end >= 0:
                lines = bytes(self.buf[at:end]).decode("latin-1").split("\r\n")
                match = re.match(r"RTSP/1\.\d (\d{3})", lines[0])
                if not match:
                    raise Unsupported(f"not an RTSP reply: {lines[0][:60]!r}")
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    name = name.strip().lower()
                    if name == "www-authenticate" and name in headers:  # one challenge per scheme offered
                        value = headers[name] + "\n" + value.strip()
                    headers[name] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                if length > _MAX_REPLY:
                    raise Unsupported("RTSP reply too large")
                while len(self.buf) < end + 4 + length:
                    if not self.fill():
                        raise ConnectionError("RTSP connection closed")
                body = bytes(self.buf[end + 4:end + 4 + length])
                del self.buf[at:end + 4 + length]
                return _Reply(int(match.group(1)), headers, body)
            if len(self.buf) - at > _MAX_REPLY:
                raise Unsupported("RTSP reply too large")
            if not self.fill():
                raise ConnectionError("RTSP connection closed")

    def _authorization(self, method: str, url: str, cnonce: str | None = None) -> str:
        """The Authorization header for the server's challenge (Basic, or Digest MD5 with or without qop)."""
        auth = self.auth or {}
        if auth.get("scheme") == "basic":
            token = base64.b64encode(f"{self.user}:{self.password}".encode("utf-8")).decode("ascii")
            return f"Basic {token}"
        realm, nonce = auth.get("realm", ""), auth.get("nonce", "")
        ha1 = _md5(f"{self.user}:{realm}:{self.password}")
        ha2 = _md5(f"{method}:{url}")
        fields = f'username="{self.user}", realm="{realm}", nonce="{nonce}", uri="{url}"'
        if "auth" in [q.strip() for q in auth.get("qop", "").split(",")]:
            cnonce = cnonce or os.urandom(8).hex()
            response = _md5(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}")
            fields += f', qop=auth, nc=00000001, cnonce="{cnonce}"'
        else:
            response = _md5(f"{ha1}:{nonce}:{ha2}")
        if "opaque" in auth:
            fields += f', opaque="{auth["opaque"]}"'
        return f'Digest {fields}, response="{response}"'

    def close(self) -> None:
        try:
            if self.session:
                self.sock.settimeout(0.2)
                self.sock.sendall(f"TEARDOWN {self.url} RTSP/1.0\r\nCSeq: {self.cseq + 1}\r\n"
                                  f"Session: {self.session}\r\n\r\n".encode("utf-8"))
        except OSError:
            pass
        self.sock.close()


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def _parse_challenge(header: str) -> dict[str, str]:
    """The challenge to answer (Digest when offered, as FFmpeg prefers it; only MD5): scheme and parameters.
    ``header`` holds one WWW-Authenticate value per line."""
    offers = [line.strip() for line in header.split("\n") if line.strip()] or [""]
    chosen = next((o for o in offers if o.lower().startswith("digest")), offers[0])
    scheme, _, rest = chosen.partition(" ")
    scheme = scheme.lower()
    if scheme not in ("basic", "digest"):
        raise Unsupported(f"authentication scheme {scheme!r}")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)\s*=\s*"?([^",]*)"?', rest)}
    if scheme == "digest" and params.get("algorithm", "MD5").upper() != "MD5":
        raise Unsupported(f"digest algorithm {params['algorithm']}")
    params["scheme"] = scheme
    return params


def _video_media(sdp: str) -> dict:
    """The first video section of an SDP: payload type, codec, clock rate, control, fmtp parameters."""
    session, _, rest = sdp.partition("\nm=video ")
    if not rest:
        raise Unsupported("no video in the SDP")
    section = rest.split("\nm=", 1)[0]
    fields = section.split("\r\n" if "\r\n" in section else "\n")
    pts = fields[0].split()[2:]  # "<port> <proto> <formats...>" (after "m=video ")
    if not pts:
        raise Unsupported("no payload type")
    pt = pts[0]
    media: dict = {"pt": int(pt), "fmtp": {}, "control": None}
    for line in fields[1:]:
        line = line.strip()
        if line.startswith(f"a=rtpmap:{pt} "):
            name, _, clock = line.split(" ", 1)[1].partition("/")
            media["codec"] = _CODECS.get(name.upper().replace("HEVC", "H265"))
            media["clock"] = int(clock.split("/")[0] or 90000)
        elif line.startswith(f"a=fmtp:{pt} "):
            for item in line.split(" ", 1)[1].split(";"):
                key, _, value = item.strip().partition("=")
                media["fmtp"][key.lower()] = value
        elif line.startswith("a=control:"):
            media["control"] = line[len("a=control:"):]
    if not media.get("codec"):
        raise Unsupported("codec not read here")
    if int(media["fmtp"].get("sprop-max-don-diff", "0") or 0) > 0:
        raise Unsupported("H.265 with DONL")
    if media["fmtp"].get("packetization-mode", "0").strip() == "2":
        raise Unsupported("H.264 interleaved packetization (STAP-B, MTAP, FU-B)")
    return media


def _extradata(media: dict) -> bytes | None:
    """Annex B parameter sets from the SDP (what FFmpeg's RTP demuxer makes its extradata from)."""
    fmtp = media["fmtp"]
    keys = ("sprop-parameter-sets",) if media["codec"] == "h264" else ("sprop-vps", "sprop-sps", "sprop-pps")
    out = b""
    try:
        for key in keys:
            for item in filter(None, fmtp.get(key, "").split(",")):
                out += _START + base64.b64decode(item + "=" * (-len(item) % 4))
    except ValueError:
        return None
    return out or None


def _track_url(base: str, control: str | None) -> str:
    if not control or control == "*":
        return base
    if control.lower().startswith("rtsp://"):
        return control
    return base.rstrip("/") + "/" + control


def read_rtp(open_uri: str, sample: Any, sample_s: float, timeout_s: float) -> bool:
    """Fill ``sample`` (a probes.stream.PacketSample; not imported, as that module imports this one) from
    the stream's RTP packets. False when the stream is not one read here (nothing was read from it then);
    raises TimeoutError, or OSError when the connection fails or the server does not speak RTSP."""
    started = time.monotonic()
    deadline = started + timeout_s
    if urlsplit(open_uri).scheme.lower() != "rtsp":
        return False
    conn = _Conn(open_uri, deadline)  # refused or unreachable: OSError, as FFmpeg's open would fail
    try:
        try:
            reply = conn.request("DESCRIBE", conn.url, "Accept: application/sdp\r\n")
            if reply.status == 401 and conn.auth is not None:
                raise LoginRefused("the RTSP server refused the credentials")
            if reply.status != 200:
                return False
            media = _video_media(reply.body.decode("utf-8", "replace"))
            base = reply.headers.get("content-base") or reply.headers.get("content-location") or conn.url
            track = _track_url(base, media["control"])
            reply = conn.request("SETUP", track, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
            if reply.status != 200:
                return False
            transport = reply.headers.get("transport", "")
            match = re.search(r"interleaved=(\d+)", transport)
            if "TCP" not in transport.upper() or not match:
                return False
            channel = int(match.group(1))
            conn.session = reply.headers.get("session", "").split(";")[0].strip() or None
            reply = conn.request("PLAY", _track_url(base, None), "Range: npt=0.000-\r\n")
            if reply.status != 200:
                return False
        except (Unsupported, ValueError, IndexError, UnicodeError, ConnectionError):
            return False  # FFmpeg opens it, and explains a failure as before
        sample.codec = media["codec"]
        sample.extradata = _extradata(media)
        sample.time_base = Fraction(1, media["clock"])
        _read_frames(conn, channel, media, sample, sample_s, started, deadline)
        return True
    finally:
        conn.close()


def _read_frames(conn: _Conn, channel: int, media: dict, sample: Any, sample_s: float,
                 started: float, deadline: float) -> None:
    """Split interleaved RTP into frames and feed them to ``sample`` until its rule says done."""
    h265 = media["codec"] == "hevc"
    chunks: list[bytes] = []  # the current frame's NAL units, Annex B
    size, key, skip, vcl, ts, last_ts, unwrapped = 0, False, False, False, None, None, 0

    def finish() -> bool:
        nonlocal chunks, size, key, skip, vcl
        if ts is None or not vcl:
            # No picture yet (parameter sets or SEI sent with a timestamp of their own): they belong to
            # the next frame, as FFmpeg's parser joins them to the access unit that follows.
            return False
        if key:
            sample.key_index.append(len(sample.pts))
            if sample.first_key_s is None:
                sample.first_key_s = time.monotonic() - started
            if len(sample.keyframes) == 2:
                sample.keyframes.pop()
            sample.keyframes.append(b"".join(chunks))
        sample.add_pts(unwrapped)
        sample.sizes.append(size)
        chunks, size, key, skip, vcl = [], 0, False, False, False
        return sample.done(sample_s)

    buf = conn.buf
    while True:
        pos = conn.pos
        while len(buf) - pos >= 4:
            if buf[pos] != 0x24:  # an RTSP message from the server (e.g. a request): skip its headers and body
                end = buf.find(b"\r\n\r\n", pos)
                if end < 0:
                    if len(buf) - pos > _MAX_REPLY:  # neither RTP nor RTSP: the stream is broken here
                        conn.pos, sample.stalled = pos, True
                        return
                    break
                length = re.search(rb"(?i)content-length:\s*(\d+)", bytes(buf[pos:end]))
                body = int(length.group(1)) if length else 0
                if body > _MAX_REPLY or end - pos > _MAX_REPLY:  # a message no server sends: stop reading
                    conn.pos, sample.stalled = pos, True
                    return
                nxt = end + 4 + body
                if nxt > len(buf):
                    break
                pos = nxt
                continue
            n = (buf[pos + 2] << 8) | buf[pos + 3]
            end = pos + 4 + n
            if end > len(buf):
                break
            if buf[pos + 1] != channel or n < 12:
                pos = end
                continue
            p = pos + 4
            pos = end  # the next interleaved block
            b0, b1 = buf[p], buf[p + 1]
            head = p + 12 + 4 * (b0 & 0x0F)
            if b0 & 0x10 and head + 4 <= end:  # header extension
                head += 4 + 4 * ((buf[head + 2] << 8) | buf[head + 3])
            if b0 & 0x20:  # padding
                end -= buf[end - 1]
            stamp = int.from_bytes(buf[p + 4:p + 8], "big")
            if head >= end or (b1 & 0x7F) != media["pt"]:
                continue
            if stamp != ts:
                if finish():
                    conn.pos = pos
                    return
                if last_ts is not None:
                    unwrapped += (stamp - last_ts + 0x80000000) % 0x100000000 - 0x80000000
                ts = last_ts = stamp
            try:
                added, kinds = _depacketize(buf, head, end, h265, None if skip else chunks)
            except IndexError:  # a payload shorter than its own headers say: not a frame of ours
                continue
            size += added
            if size > _MAX_FRAME:  # one frame without end: the stream is broken here
                conn.pos, sample.stalled = pos, True
                return
            vcl = vcl or bool(kinds)
            if kinds & _KEY:
                key = True
            elif kinds & _INTER and not key:
                skip = True  # another picture than a keyframe: measure it, keep none of its bytes
                chunks.clear()
            if b1 & 0x80 and finish():  # marker: the frame is complete
                conn.pos = pos
                return
        conn.pos = pos
        if time.monotonic() > deadline:
            sample.stalled = True
            return
        if pos > _RECV:  # drop what was read (the bytearray shrinks in place)
            del buf[:pos]
            conn.pos = 0
        if conn.last < _SMALL_READ and _BATCH_S:
            # At the live edge a read returns one or two RTP packets: let a batch gather (see _BATCH_S).
            time.sleep(min(_BATCH_S, max(0.0, deadline - time.monotonic())))
        try:
            if not conn.fill():
                sample.stalled = True
                return
        except OSError:  # TimeoutError included: with no frame yet, the caller reports it as before
            if not sample.pts:
                raise
            sample.stalled = True
            return
        buf = conn.buf


_KEY, _INTER = 1, 2  # what a payload's NAL units are: a keyframe's, or another picture's


def _nal_kind(nal_type: int, h265: bool) -> int:
    if h265:
        return _KEY if 16 <= nal_type <= 23 else _INTER if nal_type < 16 else 0  # IRAP; other VCL
    return _KEY if nal_type == 5 else _INTER if 1 <= nal_type <= 4 else 0  # IDR; other slices


def _depacketize(buf: bytearray, head: int, end: int, h265: bool, chunks: list[bytes] | None) -> tuple[int, int]:
    """One RTP payload: (bytes its NAL units make in Annex B, _KEY / _INTER flags); its NAL units are
    appended to ``chunks`` unless that is None (a frame that is not a keyframe is only measured)."""
    if h265:
        kind = (buf[head] >> 1) & 0x3F
        if kind == 49:  # fragmentation unit: 2-byte payload header, 1-byte FU header
            fu = buf[head + 2]
            nal_type = fu & 0x3F
            added = end - head - 3 + (6 if fu & 0x80 else 0)
            if chunks is not None:
                if fu & 0x80:
                    chunks.append(_START + bytes(((buf[head] & 0x81) | (nal_type << 1), buf[head + 1])))
                chunks.append(bytes(buf[head + 3:end]))
            return added, _nal_kind(nal_type, True)
        if kind == 48:  # aggregation packet
            return _aggregate(buf, head + 2, end, True, chunks)
        nal_type, skip = kind, 0
    else:
        kind = buf[head] & 0x1F
        if kind == 28:  # FU-A: indicator, FU header
            fu = buf[head + 1]
            nal_type = fu & 0x1F
            added = end - head - 2 + (5 if fu & 0x80 else 0)
            if chunks is not None:
                if fu & 0x80:
                    chunks.append(_START + bytes(((buf[head] & 0xE0) | nal_type,)))
                chunks.append(bytes(buf[head + 2:end]))
            return added, _nal_kind(nal_type, False)
        if kind == 24:  # STAP-A
            return _aggregate(buf, head + 1, end, False, chunks)
        nal_type, skip = kind, 0
    if chunks is not None:
        chunks.append(_START + bytes(buf[head + skip:end]))
    return 4 + end - head - skip, _nal_kind(nal_type, h265)


def _aggregate(buf: bytearray, pos: int, end: int, h265: bool, chunks: list[bytes] | None) -> tuple[int, int]:
    added, kinds = 0, 0
    while pos + 2 < end:
        n = (buf[pos] << 8) | buf[pos + 1]
        pos += 2
        if n == 0 or pos + n > end:
            break
        nal_type = (buf[pos] >> 1) & 0x3F if h265 else buf[pos] & 0x1F
        kinds |= _nal_kind(nal_type, h265)
        if chunks is not None:
            chunks.append(_START + bytes(buf[pos:pos + n]))
        added += 4 + n
        pos += n
    return added, kinds
