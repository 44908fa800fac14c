"""probe_many with stream checks: queued checks are never reported as timed out (real RTSP, real PyAV)."""

from __future__ import annotations

import pytest

from probes.results import ProbeStatus
from probes.scan import Credential, Target, probe_many_sync

pytestmark = [pytest.mark.rtsp, pytest.mark.slow]

CAMERAS = 16
SAMPLE_S = 1.0
OPEN_TIMEOUT_S = 3.0
#: probes.scan's outer bound on one check: open timeout + sample + 10 s.
OUTER_LIMIT_S = OPEN_TIMEOUT_S + SAMPLE_S + 10


@pytest.fixture(scope="module")
def stream_fleet():
    from cctv_monitor.simulator.fleet import generate_fleet
    from cctv_monitor.simulator.rtsp import rtsp_unavailable_reason
    from cctv_monitor.simulator.testing import running_fleet

    reason = rtsp_unavailable_reason()
    if reason:
        pytest.skip(reason)
    fleet = generate_fleet(CAMERAS, base="127.1.60.0", media2_every=0, name="queued-streams")
    with running_fleet(fleet, streams=True, port_fallback=True) as running:
        assert running.streams, running.streams_reason
        yield running


def test_checks_waiting_for_a_thread_are_not_timed_out(stream_fleet):
    """One stream thread, 16 cameras: each check samples at least 1 s, so the last one waits longer than the
    outer per-check limit (14 s) before a thread is free. Only time on a thread may count against it."""
    assert CAMERAS * SAMPLE_S > OUTER_LIMIT_S  # the queue really is longer than one check's limit
    targets = [Target(c.host, c.port) for c in stream_fleet]
    observations = probe_many_sync(targets, [Credential("admin", "Demo#2567")], with_streams=True,
                                   stream_workers=1, sample_s=SAMPLE_S, stream_timeout_s=OPEN_TIMEOUT_S)
    assert len(observations) == CAMERAS
    for obs in observations:
        assert obs.status is ProbeStatus.OK, (obs.address, obs.error)
        assert len(obs.stream_checks) == 1, obs.address
        check = obs.stream_checks[0]
        assert check.ok, (obs.address, check.error)
        assert (check.width, check.height) == (1920, 1080)
