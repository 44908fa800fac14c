"""End to end: the demo fleet over real HTTP/SOAP, the shipped project files, ``cctv-monitor scan``.

The fleet is the demo fleet moved to 127.77.x.y (same cameras, same MACs), so these tests never collide
with a demo fleet another process serves on 127.0.x.y; the imported sites are moved the same way.
"""

from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from cctv_monitor.cli import cli
from probes.vocab import split_channel
from scan_helpers import import_moved
from cctv_monitor.models import AlertEvent, Agency, Device, DeviceChange, Finding, ScanRun

REPO = Path(__file__).resolve().parent.parent
DEMO = yaml.safe_load((REPO / "config" / "fleets" / "demo.yaml").read_text())
PREFIX_FROM, PREFIX_TO = "127.0.", "127.77."
STREAM_RULES = ("stream_", "image_")

pytestmark = pytest.mark.slow


def moved_fleet(**changes_by_name) -> dict:
    """The demo fleet on 127.77.x.y; ``changes_by_name`` updates cameras (dicts merged into the camera)."""
    fleet = copy.deepcopy(DEMO)
    for cam in fleet["cameras"]:
        cam["host"] = cam["host"].replace(PREFIX_FROM, PREFIX_TO, 1)
        cam.update(changes_by_name.get(cam["name"], {}))
    return fleet


def expected(streams: bool) -> dict[str, tuple[str, set[str]]]:
    """Status and rule ids per moved address, as the fleet file's ``expect`` blocks state."""
    result = {}
    for cam in DEMO["cameras"]:
        exp = cam["expect"]
        if exp["status"] == "outside_projects":
            continue  # vendor-API devices outside the shipped projects' ranges (tests/test_probes_vendor.py)
        if not streams and "without_streams" in exp:
            exp = exp["without_streams"]
        rules = set(exp.get("rules") or [])
        status = exp["status"]
        if not streams and rules and all(r.startswith(STREAM_RULES) for r in rules):
            status, rules = "compliant", set()  # only a stream measurement can see these
        host = cam["host"].replace(PREFIX_FROM, PREFIX_TO, 1)
        result[host] = (status, rules)
        if "channels" in exp:  # a recorder: each camera behind it is a device at the recorder's address + /chN
            bad = {int(k): set(v) for k, v in (exp["channels"].get("non_compliant") or {}).items()}
            for number in range(1, exp["channels"]["count"] + 1):
                result[f"{host}/ch{number}"] = (
                    ("offline", set()) if number in exp["channels"]["offline"] else
                    ("non_compliant", bad[number]) if number in bad else ("compliant", set()))
    return result


def import_demo_projects(app, session, ports: set[int]) -> None:
    """Import config/projects and move their sites and register addresses to 127.77.x.y."""
    import_moved(app, session, REPO / "config" / "projects", ports, PREFIX_FROM, PREFIX_TO)


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def webhook():
    """A local HTTP receiver on 127.0.0.1 collecting webhook bodies."""
    handler = type("Receiver", (_Receiver,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler.received
    finally:
        server.shutdown()
        server.server_close()


def _scan_all(runner) -> None:
    for agency in ("maesai-mun", "wiangphangkham-mun", "pongpha-sao"):
        result = runner.invoke(cli, args=["scan", "--agency", agency, "--no-progress"])
        assert result.exit_code == 0, result.output
        assert "completed" in result.output and "total" in result.output


def _state(session) -> dict[str, tuple[str, set[str]]]:
    session.expire_all()
    active: dict[int, set[str]] = {}
    for f in session.scalars(select(Finding).where(Finding.active.is_(True), Finding.device_id.is_not(None))):
        active.setdefault(f.device_id, set()).add(f.rule_id)
    return {_key(d.address): (d.status, active.get(d.id, set())) for d in session.scalars(select(Device)) if d.address}


def _key(address: str) -> str:
    """``host`` of ``host:port``; ``host/chN`` for a camera behind the recorder at ``host:port``."""
    base, channel = split_channel(address)
    host = base.rpartition(":")[0]
    return f"{host}/ch{channel}" if channel is not None else host


def _check_against_fleet(state, streams: bool) -> None:
    for host, (status, rules) in expected(streams).items():
        got_status, got_rules = state[host]
        assert got_status == status, f"{host}: {got_status} != {status} ({got_rules})"
        if status == "non_compliant":
            assert rules <= got_rules, f"{host}: rules {got_rules} lack {rules - got_rules}"
            assert all(r in rules for r in got_rules if r not in ("unregistered",)), f"{host}: extra {got_rules}"
        if status == "missing":
            assert "registered_missing" in got_rules
        if status == "unregistered":
            assert "unregistered" in got_rules


def test_demo_fleet_scan_drift_and_offline_alert(app, session, runner, webhook):
    from cctv_monitor.simulator.testing import running_fleet

    url, received = webhook
    with running_fleet(moved_fleet()) as fleet:
        import_demo_projects(app, session, {cam.port for cam in fleet})
        agency = session.scalar(select(Agency).where(Agency.code == "maesai-mun"))
        agency.alerts = {"webhook": url}
        session.commit()
        _scan_all(runner)
    state = _state(session)
    _check_against_fleet(state, streams=False)
    # project level: Pong Pha approved 8 and has 7; the control room approved 11 and one camera behind the
    # recorder is offline (the recorder says so), so 10 answered
    shortfall = session.scalars(select(Finding).where(Finding.rule_id == "count_shortfall",
                                                      Finding.active.is_(True))).all()
    assert sorted((f.expected, f.observed) for f in shortfall) == [("11", "10"), ("8", "7")]
    assert len(received) == 1 and received[0]["agency"]["code"] == "maesai-mun"  # first scan: one digest
    # + the control room: the recorder (retention, channels) and channels 3 and 5 non-compliant, channel 8 offline
    assert received[0]["counts"] == {"missing": 1, "non_compliant": 7, "offline": 1, "unregistered": 1}

    # drift: market camera 1 now streams 1280x720 main profile
    lowered = moved_fleet(**{"ms-market-01": {"profiles": [dict(DEMO["cameras"][0]["profiles"][0], width=1280,
                                                                height=720), DEMO["cameras"][0]["profiles"][1]]}})
    received.clear()
    with running_fleet(lowered):
        result = runner.invoke(cli, args=["scan", "--site", "market", "--no-progress"])
        assert result.exit_code == 0, result.output
    cam = session.scalar(select(Device).where(Device.address.like("127.77.1.11:%")))
    assert cam.status == "non_compliant"
    changes = [(c.attribute, c.old_value, c.new_value) for c in
               session.scalars(select(DeviceChange).where(DeviceChange.device_id == cam.id))]
    assert ("resolution", "1920x1080", "1280x720") in changes
    assert _state(session)["127.77.1.11"][1] == {"resolution"}
    assert [e["kind"] for e in received[0]["events"]] == ["non_compliant"]

    # stopping a camera: offline, and exactly one alert
    received.clear()
    stopped = moved_fleet(**{"ms-market-02": {"online": False}})
    with running_fleet(stopped):
        result = runner.invoke(cli, args=["scan", "--site", "market", "--no-progress"])
        assert result.exit_code == 0, result.output
    assert _state(session)["127.77.1.12"][0] == "offline"
    assert len(received) == 1 and received[0]["total"] == 1
    assert received[0]["events"][0]["kind"] == "offline" and "127.77.1.12" in received[0]["events"][0]["address"]
    offline_events = session.scalars(select(AlertEvent).where(AlertEvent.kind == "offline")).all()
    # the market camera once, and the camera its recorder reported offline in the first scan
    assert sorted(_key(session.get(Device, e.device_id).address) for e in offline_events) == [
        "127.77.1.12", "127.77.7.11/ch8"]
    assert all(e.delivered_at is not None for e in offline_events)
    runs = session.scalars(select(ScanRun)).all()
    assert {r.state for r in runs} == {"completed"} and len(runs) == 5

    # devices command: JSON with the documented keys, filter by status
    out = runner.invoke(cli, args=["devices", "--json", "--status", "offline"])
    assert out.exit_code == 0, out.output
    items = json.loads(out.output)
    assert sorted(_key(i["address"]) for i in items) == ["127.77.1.12", "127.77.7.11/ch8"]
    assert {"address", "manufacturer", "model", "serial", "status", "project", "findings", "recorder",
            "channel"} <= set(items[0])
    by_key = {_key(i["address"]): i for i in items}
    assert by_key["127.77.1.12"]["recorder"] is None and by_key["127.77.1.12"]["channel"] is None
    assert by_key["127.77.7.11/ch8"]["recorder"].startswith("127.77.7.11:") and by_key["127.77.7.11/ch8"]["channel"] == 8
    table = runner.invoke(cli, args=["devices", "--agency", "pongpha-sao"])
    assert table.exit_code == 0 and table.output.count("127.77.4.") == 7 and "bitrate" in table.output


@pytest.mark.rtsp
def test_demo_fleet_scan_with_streams_finds_what_only_the_stream_shows(app, session, runner):
    """`scan --streams` over the real RTSP streams: every camera ends as its fleet entry expects, including
    the finding only a measurement can make (127.0.1.17 claims 1920x1080 but streams 1280x720)."""
    from cctv_monitor.simulator.rtsp import rtsp_unavailable_reason
    from cctv_monitor.simulator.testing import running_fleet

    reason = rtsp_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with running_fleet(moved_fleet(), streams=True) as fleet:
        assert fleet.streams, fleet.streams_reason
        import_demo_projects(app, session, {cam.port for cam in fleet})
        for agency in ("maesai-mun", "wiangphangkham-mun", "pongpha-sao"):
            result = runner.invoke(cli, args=["scan", "--agency", agency, "--streams", "--no-progress"])
            assert result.exit_code == 0, result.output
    state = _state(session)
    _check_against_fleet(state, streams=True)
    liar = PREFIX_TO + "1.17"
    assert state[liar][0] == "non_compliant" and "stream_resolution" in state[liar][1]
