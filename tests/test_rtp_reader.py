"""The stream check's own RTSP/RTP reader (probes/rtp_reader.py): depacketising, SDP, authentication, and
a live read through a Digest-authenticating proxy in front of the simulator (its fallback to FFmpeg too).

The ground truth of what it measures (fps, bitrate, keyframe interval, size, image checks for H.264 and
H.265) is in tests/test_stream_packets.py, which reads the simulator's streams through it.
"""

from __future__ import annotations

import hashlib
import re
import socket
import threading

import pytest

from probes.rtp_reader import _INTER, _KEY, Unsupported, _Conn, _depacketize, _extradata, _parse_challenge, _video_media
from probes.stream import check_stream

START = b"\x00\x00\x00\x01"


def _run(payloads: list[bytes], h265: bool = False) -> tuple[bytes, int, int]:
    chunks: list[bytes] = []
    added, kinds = 0, 0
    for payload in payloads:
        a, k = _depacketize(bytearray(payload), 0, len(payload), h265, chunks)
        added, kinds = added + a, kinds | k
    return b"".join(chunks), added, kinds


def test_h264_fu_a_stap_a_and_single_nal_units_come_out_as_annex_b():
    idr = bytes([0x65]) + bytes(range(256)) * 12  # nal_ref_idc 3, type 5
    fus = []
    body = idr[1:]
    for i in range(0, len(body), 1000):
        start, end = i == 0, i + 1000 >= len(body)
        fus.append(bytes([(idr[0] & 0xE0) | 28, (0x80 if start else 0) | (0x40 if end else 0) | 5]) + body[i:i + 1000])
    data, added, kinds = _run(fus)
    assert data == START + idr and added == len(data) and kinds == _KEY
    sps, pps = bytes([0x67, 0x42, 0xC0, 0x28]), bytes([0x68, 0xCE, 0x3C, 0x80])
    stap = bytes([24]) + len(sps).to_bytes(2, "big") + sps + len(pps).to_bytes(2, "big") + pps
    data, added, kinds = _run([stap])
    assert data == START + sps + START + pps and added == len(data) and kinds == 0
    data, added, kinds = _run([bytes([0x41, 1, 2, 3])])  # a P slice
    assert data == START + bytes([0x41, 1, 2, 3]) and kinds == _INTER
    # Only measured (no bytes kept): the same size.
    assert _depacketize(bytearray(fus[0]), 0, len(fus[0]), False, None) == (len(fus[0]) - 2 + 5, _KEY)


def test_h265_fragmentation_and_aggregation_units_come_out_as_annex_b():
    idr = bytes([19 << 1, 0x01]) + bytes(range(200)) * 10  # IDR_W_RADL
    body = idr[2:]
    fus = []
    for i in range(0, len(body), 700):
        start, end = i == 0, i + 700 >= len(body)
        fus.append(bytes([(49 << 1) | (idr[0] & 0x81), idr[1], (0x80 if start else 0) | (0x40 if end else 0) | 19])
                   + body[i:i + 700])
    data, added, kinds = _run(fus, h265=True)
    assert data == START + idr and added == len(data) and kinds == _KEY
    vps, trail = bytes([32 << 1, 1, 9, 9]), bytes([1 << 1, 1, 7, 7])  # a VPS and a TRAIL_R slice
    ap = bytes([48 << 1, 1]) + len(vps).to_bytes(2, "big") + vps + len(trail).to_bytes(2, "big") + trail
    data, added, kinds = _run([ap], h265=True)
    assert data == START + vps + START + trail and kinds == _INTER


SDP_H264 = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\na=control:*\r\nm=audio 0 RTP/AVP 0\r\n"
            "a=control:stream=1\r\nm=video 0 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 H264/90000\r\n"
            "a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0LAKNoB4AiflwEQAAADABAAAAMDKPGDKg==,aM48gA==\r\n"
            "a=control:stream=0\r\n")


def test_sdp_video_section_codec_control_and_parameter_sets():
    media = _video_media(SDP_H264)
    assert (media["pt"], media["codec"], media["clock"], media["control"]) == (96, "h264", 90000, "stream=0")
    extradata = _extradata(media)
    assert extradata is not None and extradata.count(START) == 2 and extradata[4] == 0x67
    with pytest.raises(Unsupported):  # MJPEG is read by FFmpeg
        _video_media(SDP_H264.replace("H264/90000", "JPEG/90000"))
    with pytest.raises(Unsupported):  # H.265 with DONL fields
        _video_media(SDP_H264.replace("H264/90000", "H265/90000").replace("packetization-mode=1",
                                                                          "sprop-max-don-diff=2"))
    with pytest.raises(Unsupported):
        _video_media(SDP_H264.split("m=video")[0])


def test_digest_answer_matches_rfc_2617_example():
    conn = _Conn.__new__(_Conn)
    conn.user, conn.password = "Mufasa", "Circle Of Life"
    conn.auth = _parse_challenge('Digest realm="testrealm@host.com", qop="auth,auth-int", '
                                 'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    header = conn._authorization("GET", "/dir/index.html", cnonce="0a4f113b")
    assert 'response="6629fae49393a05397450978507c4ef1"' in header
    assert 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in header
    offered = _parse_challenge('Basic realm="cam"\nDigest realm="cam", nonce="abc"')  # two headers
    assert (offered["scheme"], offered["nonce"]) == ("digest", "abc")
    conn.auth = _parse_challenge('Basic realm="cam"')
    assert conn._authorization("DESCRIBE", "rtsp://x/") == "Basic TXVmYXNhOkNpcmNsZSBPZiBMaWZl"
    with pytest.raises(Unsupported):
        _parse_challenge('Digest realm="x", nonce="y", algorithm=SHA-256')


# -- live: a Digest-authenticating proxy in front of the simulator's RTSP server --------------------------

REALM, NONCE, USER, PASSWORD = "cam", "4f2b9c", "admin", "s3cret"


class DigestProxy:
    """Answers 401 until a request carries the right Digest answer, then relays it (and the media) to the
    simulator. Records each request's User-Agent, so a test sees which client read the stream."""

    def __init__(self, upstream: str) -> None:
        self.upstream = re.match(r"rtsp://([^/]+)", upstream).group(1)
        self.sock = socket.socket()
        self.sock.bind(("127.0.14.210", 0))
        self.sock.listen(8)
        self.netloc = f"127.0.14.210:{self.sock.getsockname()[1]}"
        self.agents: list[str] = []
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str) -> str:
        return f"rtsp://{self.netloc}{path}"

    def _accept(self) -> None:
        while not self.stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    @staticmethod
    def _message(sock: socket.socket, buf: bytearray) -> bytes | None:
        while b"\r\n\r\n" not in buf:
            data = sock.recv(65536)
            if not data:
                return None
            buf += data
        end = buf.index(b"\r\n\r\n") + 4
        length = re.search(rb"(?i)content-length:\s*(\d+)", bytes(buf[:end]))
        end += int(length.group(1)) if length else 0
        while len(buf) < end:
            buf += sock.recv(65536)
        message = bytes(buf[:end])
        del buf[:end]
        return message

    def _serve(self, client: socket.socket) -> None:
        host, port = self.upstream.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        cbuf, ubuf = bytearray(), bytearray()
        try:
            while True:
                request = self._message(client, cbuf)
                if request is None:
                    return
                head = request.decode("latin-1")
                method, uri = head.split(" ", 2)[:2]
                agent = re.search(r"(?i)user-agent:\s*(.*)\r\n", head)
                self.agents.append(agent.group(1) if agent else "")
                cseq = re.search(r"(?i)cseq:\s*(\d+)", head).group(1)
                auth = re.search(r'(?i)authorization: digest .*response="([0-9a-f]+)"', head)
                ha1 = hashlib.md5(f"{USER}:{REALM}:{PASSWORD}".encode()).hexdigest()
                ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
                if not auth or auth.group(1) != hashlib.md5(f"{ha1}:{NONCE}:{ha2}".encode()).hexdigest():
                    client.sendall(f'RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\nWWW-Authenticate: Digest '
                                   f'realm="{REALM}", nonce="{NONCE}"\r\n\r\n'.encode())
                    continue
                head = re.sub(r"(?im)^authorization:.*\r\n", "", head).replace(self.netloc, self.upstream)
                upstream.sendall(head.encode("latin-1"))
                reply = self._message(upstream, ubuf)
                if reply is None:
                    return
                client.sendall(reply.replace(self.upstream.encode(), self.netloc.encode()))
                if method == "PLAY":
                    client.sendall(bytes(ubuf))
                    while data := upstream.recv(65536):
                        client.sendall(data)
                    return
        except OSError:
            return
        finally:
            upstream.close()
            client.close()

    def close(self) -> None:
        self.stop = True
        self.sock.close()


@pytest.fixture(scope="module")
def proxied_camera():
    from cctv_monitor.simulator.rtsp import rtsp_unavailable_reason
    from cctv_monitor.simulator.testing import running_fleet

    if reason := rtsp_unavailable_reason():
        pytest.skip(reason)
    mapping = {"fleet": "rtp-reader", "cameras": [{
        "name": "digest-cam", "host": "127.0.14.211", "macs": ["00:12:41:00:0e:d3"], "media2": True,
        "profiles": [{"token": "P1", "encoding": "H264", "width": 640, "height": 360, "fps": 25,
                      "bitrate_kbps": 512, "gov_length": 25}]}]}
    with running_fleet(mapping, streams=True) as fleet:
        assert fleet.streams, fleet.streams_reason
        url = fleet.cameras[0].rtsp_urls["P1"]
        proxy = DigestProxy(url)
        try:
            yield proxy, proxy.url(re.sub(r"^rtsp://[^/]+", "", url))
        finally:
            proxy.close()


@pytest.mark.rtsp
def test_reader_answers_a_digest_challenge_and_measures_the_stream(proxied_camera):
    proxy, url = proxied_camera
    proxy.agents.clear()
    check = check_stream(url, username=USER, password=PASSWORD, profile_token="P1", sample_s=2.5, thumbnail=False)
    assert check.ok, check.error
    assert (check.codec, check.width, check.height, check.keyframe_interval) == ("H264", 640, 360, 25)
    assert abs(check.fps - 25) < 25 * 0.05
    assert set(proxy.agents) == {"cctv-monitor-probe"}  # read by our reader, not by FFmpeg


@pytest.mark.rtsp
def test_a_refused_login_is_one_attempt_and_the_error_names_the_credentials(proxied_camera):
    proxy, url = proxied_camera
    proxy.agents.clear()
    check = check_stream(url, username=USER, password="wrong", profile_token="P1", sample_s=2.5, timeout_s=3,
                         thumbnail=False)
    assert not check.ok and "rejected the credentials" in check.error, check.error
    assert "wrong" not in check.error
    # Not tried again by FFmpeg: a second failed login would count towards the camera's lock-out.
    assert proxy.agents and set(proxy.agents) == {"cctv-monitor-probe"}, proxy.agents


# -- hostile servers: a read ends, and its memory stays bounded -------------------------------------------

SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
       "a=fmtp:96 packetization-mode=1\r\na=control:track1\r\n")


class HostileServer:
    """An RTSP server that answers DESCRIBE, SETUP and PLAY, then sends ``media()`` (bytes) for ever."""

    def __init__(self, media) -> None:  # noqa: ANN001
        self.media = media
        self.sock = socket.socket()
        self.sock.bind(("127.0.14.212", 0))
        self.sock.listen(4)
        self.url = f"rtsp://127.0.14.212:{self.sock.getsockname()[1]}/live"
        self.sent = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            client, _ = self.sock.accept()
        except OSError:
            return
        with client:
            buf = bytearray()
            try:
                for _ in range(3):
                    request = DigestProxy._message(client, buf)
                    if request is None:
                        return
                    cseq = re.search(rb"(?i)cseq:\s*(\d+)", request).group(1).decode()
                    head = f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n"
                    if request.startswith(b"DESCRIBE"):
                        client.sendall(f"{head}Content-Type: application/sdp\r\nContent-Length: {len(SDP)}\r\n\r\n"
                                       f"{SDP}".encode())
                    elif request.startswith(b"SETUP"):
                        client.sendall(f"{head}Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"
                                       "Session: 42\r\n\r\n".encode())
                    else:
                        client.sendall(f"{head}Session: 42\r\n\r\n".encode())
                while True:
                    chunk = self.media()
                    client.sendall(chunk)
                    self.sent += len(chunk)
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()


def _rtp(seq: int, stamp: int, payload: bytes, marker: bool = False) -> bytes:
    header = bytes([0x80, (0x80 if marker else 0) | 96]) + seq.to_bytes(2, "big") + stamp.to_bytes(4, "big") + \
        b"\x00\x00\x00\x01"
    packet = header + payload
    return b"$\x00" + len(packet).to_bytes(2, "big") + packet


def test_a_frame_without_end_stops_the_read_at_the_frame_cap():
    """One IDR frame of FU-A fragments for ever (one timestamp, no marker): the read stops once the frame
    passes the cap instead of keeping every byte until the timeout."""
    from probes.rtp_reader import _MAX_FRAME, read_rtp
    from probes.stream import PacketSample

    seq = iter(range(10**9))
    fragment = bytes([0x7C, 0x05]) + b"\x11" * 1400  # FU-A of an IDR slice (type 5), middle fragment
    server = HostileServer(lambda: b"".join(_rtp(next(seq) & 0xFFFF, 1000, fragment) for _ in range(64)))
    try:
        sample = PacketSample()
        assert read_rtp(server.url, sample, 2.5, 20.0) is True
        assert sample.stalled and not sample.pts  # no frame finished
        assert _MAX_FRAME < server.sent < 4 * _MAX_FRAME  # stopped soon after the cap, not at the timeout
    finally:
        server.close()


def test_a_huge_rtsp_message_inside_the_stream_stops_the_read():
    """A message announcing a 1 TB body between the RTP packets: the read stops at once."""
    from probes.rtp_reader import read_rtp
    from probes.stream import PacketSample

    sent = []

    def media() -> bytes:
        if not sent:
            sent.append(1)
            return b"ANNOUNCE rtsp://x/ RTSP/1.0\r\nCSeq: 9\r\nContent-Length: 1000000000000\r\n\r\n"
        return b"\x00" * 65536

    server = HostileServer(media)
    try:
        sample = PacketSample()
        assert read_rtp(server.url, sample, 2.5, 20.0) is True
        assert sample.stalled and not sample.pts
        assert server.sent < 16 * 1024 * 1024
    finally:
        server.close()
