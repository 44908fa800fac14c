"""How many stream checks run at once: from the memory budget, capped, and at most N per site.

The per-site test serves the cameras' ONVIF from the simulator and puts, on each camera's RTSP port, a real
TCP server that accepts and never answers while it counts open connections across the site: what a site's
uplink would see.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from probes.results import ProbeStatus
from probes.scan import (Credential, Target, current_rss_mb, interleave_sites, plan_stream_checks, probe_many_sync,
                         site_of_host)
from probes.stream_budget import DECODER_MB, DEFAULT_DECODERS, READER_MB, stream_concurrency


def test_concurrency_comes_from_the_memory_budget_and_the_cap():
    """Readers = (budget - memory in use - decoder pool) / per-reader memory, at least 1, at most the cap."""
    assert stream_concurrency(600, 1000, base_mb=200, decoders=2) == int((600 - 200 - 2 * DECODER_MB) // READER_MB)
    assert stream_concurrency(600, 10, base_mb=200, decoders=2) == 10  # the cap (CCTV_STREAM_WORKERS)
    assert stream_concurrency(100, 1000, base_mb=200, decoders=2) == 1  # over budget already: one at a time
    doubled = stream_concurrency(1200, 10_000, base_mb=200, decoders=2)
    assert doubled > 2 * stream_concurrency(600, 10_000, base_mb=200, decoders=2)
    planned = plan_stream_checks(600, 10_000, other_mb=150)  # 150 MB: the stream checker process
    expected = max(1, (600 - current_rss_mb() - 150 - DEFAULT_DECODERS * DECODER_MB) // READER_MB)
    assert abs(planned - expected) <= 5  # RSS moves a little between the two readings
    # a test process that has grown past the budget (a long pytest session) plans one check at a time
    assert plan_stream_checks(1, 10_000) == 1


def test_site_of_a_host_is_its_lan():
    """Without a site register, cameras of one /24 count as one site."""
    assert site_of_host("10.20.30.40") == site_of_host("10.20.30.41") == "10.20.30.0/24"
    assert site_of_host("10.20.31.40") != site_of_host("10.20.30.40")
    assert site_of_host("cam.example") == "cam.example"


def test_targets_are_interleaved_across_sites():
    """A range list comes site by site; probed in that order, every probe task held a camera of the same
    few sites and waited for their per-site stream slots. Interleaved: each site's first camera, then each
    site's second, the order within a site kept."""
    targets = [Target(f"10.0.{site}.{i}", 80) for site in range(3) for i in range(1, 4 - site)]
    got = [t.host for t in interleave_sites(targets, site_of_host)]
    assert got == ["10.0.0.1", "10.0.1.1", "10.0.2.1", "10.0.0.2", "10.0.1.2", "10.0.0.3"]
    assert sorted(got) == sorted(t.host for t in targets)


class _CountingRtsp:
    """Silent RTSP stand-ins on several addresses; records the most RTSP sessions open at once."""

    def __init__(self, hosts: list[tuple[str, int]]) -> None:
        self.socks = []
        for host, port in hosts:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(32)
            sock.settimeout(0.1)
            self.socks.append(sock)
        self.spans: list[list[float]] = []  # [first request, closed] per RTSP session
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._serve, args=(s,), daemon=True) for s in self.socks]
        for thread in self.threads:
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        # An RTSP session counts from its first request on (a bare connect that sends nothing, like the
        # probe's reachability test after a timeout, is not a stream session).
        span: list[float] | None = None
        conn.settimeout(0.1)
        try:
            while not self.stop.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                if not data:
                    break  # the client gave up
                if span is None:
                    span = [time.monotonic(), float("inf")]
                    with self.lock:
                        self.spans.append(span)
        except OSError:
            pass
        finally:
            conn.close()
            if span is not None:
                span[1] = time.monotonic()

    @property
    def peak(self) -> int:
        """Most sessions open at once; a session closing within 50 ms of another's start does not overlap it
        (this server notices a close a moment after the client made it)."""
        events = sorted([(start, 1) for start, _ in self.spans] + [(end - 0.05, -1) for _, end in self.spans])
        peak = current = 0
        for _, step in events:
            current += step
            peak = max(peak, current)
        return peak

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(2)
        for sock in self.socks:
            sock.close()


@pytest.mark.slow
@pytest.mark.parametrize("per_site, site_of, most", [(2, site_of_host, 2), (2, lambda host: host, 6)],
                         ids=["per-lan", "per-host"])
def test_at_most_n_stream_checks_per_site(per_site, site_of, most):
    """Six cameras of one site whose RTSP never answers: with a limit of 2 per site the site never sees more
    than 2 connections at once; counted per host instead, all 6 run together. Every camera still ends
    with its own clear stream error after its own timeout."""
    from cctv_monitor.simulator.fleet import generate_fleet
    from cctv_monitor.simulator.testing import running_fleet

    fleet = generate_fleet(6, base="127.0.16.0", media2_every=0, name="site")
    with running_fleet(fleet, streams=False) as running:
        rtsp = _CountingRtsp([(c.host, 8554) for c in running])
        try:
            started = time.monotonic()
            observations = probe_many_sync([Target(c.host, c.port) for c in running],
                                           [Credential("admin", "Demo#2567")], with_streams=True,
                                           stream_timeout_s=1.0, stream_per_site=per_site, site_of=site_of,
                                           stream_memory_mb=100_000)  # the site limit decides, not the budget
            elapsed = time.monotonic() - started
        finally:
            rtsp.close()
    if most == per_site:
        assert rtsp.peak == per_site, sorted((round(a - rtsp.spans[0][0], 2), round(b - rtsp.spans[0][0], 2)) for a, b in rtsp.spans)
    else:  # all six at once (a connection closing as the next opens may be counted a moment late)
        assert rtsp.peak >= most - 1
    assert len(observations) == 6
    for obs in observations:
        assert obs.status is ProbeStatus.OK, obs.error
        check = obs.stream_checks[0]
        assert not check.ok and ("no video within 1 s" in check.error or "did not answer" in check.error), check
    # Each check costs its open timeout plus a 1 s DESCRIBE diagnosis: 3 rounds of 2, or 1 of 6 (plus the
    # checker process's start and the ONVIF reads on a loaded machine).
    assert elapsed < (6 / most) * 2.0 + 8.0
