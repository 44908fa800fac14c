"""Credentials stay with their cameras (issue "Trust", item 1): a camera naming another host for its streams,
snapshots or ONVIF services never makes the probe send the site's credential there.

Real sockets: a simulated camera on 127.0.7.1 whose GetStreamUri, GetSnapshotUri and GetServices name
127.0.0.2, and a listener on 127.0.0.2 (same ports) that answers every request with a 401 challenge (so a
client holding a credential would send it) and records what arrived.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from probes.scan import Credential, Target, probe_many_sync
from probes.targets import on_probed_host

CAMERA_HOST = "127.0.7.1"
FOREIGN_HOST = "127.0.0.2"
ONVIF_PORT = 18791
RTSP_PORT = 18792
PASSWORD = "Site#Secret42"


class Recorder:
    """TCP listener that answers RTSP and HTTP with a 401 challenge and keeps every byte it was sent."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.received: list[bytes] = []
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(2.0)
        with conn:
            for _ in range(4):  # a few requests per connection: the client retries with its credential
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                self.received.append(data)
                cseq = next((line.split(b":", 1)[1].strip() for line in data.split(b"\r\n")
                             if line.lower().startswith(b"cseq:")), b"1")
                if data.startswith((b"OPTIONS", b"DESCRIBE", b"SETUP", b"PLAY")):
                    reply = (b"RTSP/1.0 401 Unauthorized\r\nCSeq: " + cseq +
                             b'\r\nWWW-Authenticate: Basic realm="trap"\r\n\r\n')
                else:
                    reply = (b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"trap\", "
                             b"nonce=\"abc\", qop=\"auth\"\r\nContent-Length: 0\r\n\r\n")
                try:
                    conn.sendall(reply)
                except OSError:
                    return

    def credentials_seen(self) -> list[bytes]:
        """Requests that carried any credential (HTTP/RTSP Authorization, WS-Security token, the password)."""
        return [r for r in self.received
                if b"authorization:" in r.lower() or b"UsernameToken" in r or PASSWORD.encode() in r]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def camera(**extra):
    cam = {"name": "names-another-host", "host": CAMERA_HOST, "onvif_port": ONVIF_PORT, "rtsp_port": RTSP_PORT,
           "manufacturer": "Hikvision", "model": "DS-2CD2143G2-I", "serial": "TRUST0001",
           "macs": ["c0:56:e3:00:07:01"], "username": "admin", "password": PASSWORD, "media2": False,
           "profiles": [{"token": "Profile_1", "name": "main", "encoding": "H264", "width": 1920, "height": 1080,
                         "fps": 25, "bitrate_kbps": 4096, "gov_length": 50}],
           "quirks": [{"name": "foreign_host", "host": FOREIGN_HOST}]}
    cam.update(extra)
    return {"fleet": "trust", "cameras": [cam]}


@pytest.fixture()
def trap():
    listeners = [Recorder(FOREIGN_HOST, ONVIF_PORT), Recorder(FOREIGN_HOST, RTSP_PORT)]
    try:
        yield listeners
    finally:
        for listener in listeners:
            listener.close()


def _probe(streams: bool):
    return probe_many_sync([Target(CAMERA_HOST, ONVIF_PORT)], [Credential("admin", PASSWORD)], with_streams=True,
                           timeout_s=3.0, stream_timeout_s=4.0, sample_s=1.0)[0]


def test_no_credential_reaches_the_host_a_camera_names(trap):
    """No RTSP server on the camera here: the stream check on the probed host fails, the named host is then
    tried without credentials. Before the fix the probe sent ``Authorization: Basic`` with the site's
    password to 127.0.0.2."""
    from cctv_monitor.simulator.testing import running_fleet

    with running_fleet(camera(), streams=False, port_fallback=False):
        obs = _probe(streams=False)
    time.sleep(0.3)  # let the listener threads store the last bytes
    onvif_trap, rtsp_trap = trap
    assert obs.ok, obs.error
    assert rtsp_trap.connections >= 1  # the named host was contacted ...
    assert rtsp_trap.credentials_seen() == []  # ... but never with a credential
    assert onvif_trap.credentials_seen() == []  # services named there were called on the probed host
    assert onvif_trap.connections == 0
    # The observation names the host the camera gave, and the finding says so.
    assert obs.foreign_hosts == (FOREIGN_HOST,)
    assert any(FOREIGN_HOST in w and "no credential" in w for w in obs.warnings), obs.warnings
    assert obs.profiles[0].stream_uri.startswith(f"rtsp://{FOREIGN_HOST}:{RTSP_PORT}/")
    assert obs.profiles[0].snapshot_uri.startswith(f"http://{FOREIGN_HOST}:{ONVIF_PORT}/")
    assert obs.services and "media" in obs.services
    from cctv_monitor.compliance.engine import evaluate_device
    from cctv_monitor.compliance.spec import Spec

    spec = Spec(code="none", name_th="none", device_class="any", requirements={})
    findings = [f for f in evaluate_device(obs, spec) if f.rule_id == "foreign_media_host"]
    assert [f.subject for f in findings] == [FOREIGN_HOST]


@pytest.mark.rtsp
@pytest.mark.slow
def test_stream_named_elsewhere_is_measured_on_the_probed_host(trap):
    """With the camera's RTSP server running, the stream is read on the probed host with the credential
    (same port and path as the URI the camera gave) and the named host is never contacted."""
    from cctv_monitor.simulator.rtsp import rtsp_unavailable_reason
    from cctv_monitor.simulator.testing import running_fleet

    reason = rtsp_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with running_fleet(camera(), streams=True, port_fallback=False) as running:
        assert running.streams, running.streams_reason
        obs = _probe(streams=True)
    onvif_trap, rtsp_trap = trap
    assert obs.ok, obs.error
    check = obs.stream_checks[0]
    assert check.ok, check.error
    assert (check.width, check.height) == (1920, 1080)
    assert rtsp_trap.connections == 0 and onvif_trap.connections == 0


def test_on_probed_host_keeps_port_path_and_query():
    assert on_probed_host("rtsp://127.0.0.2:18792/main?channel=1&subtype=0", "127.0.0.1") == \
        ("rtsp://127.0.0.1:18792/main?channel=1&subtype=0", "127.0.0.2")
    assert on_probed_host("rtsp://127.0.0.1:554/main", "127.0.0.1") == ("rtsp://127.0.0.1:554/main", None)
    assert on_probed_host("rtsp://[::1]/x", "::1") == ("rtsp://[::1]/x", None)
    assert on_probed_host("rtsp://evil.example/x", "10.0.0.5") == ("rtsp://10.0.0.5/x", "evil.example")

