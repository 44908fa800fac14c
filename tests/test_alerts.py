"""Alert digests delivered to a real local SMTP server (aiosmtpd) and a local HTTP receiver."""

from __future__ import annotations

import email
import json
import socket
import threading
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from cctv_monitor.alerts import AlertDeliveryError, send_webhook
from cctv_monitor.models import AlertEvent
from cctv_monitor.scanning import import_observations
from probes.results import ProbeStatus
from scan_helpers import add_project, make_obs

N = 1000  # "a scan of a thousand offline cameras sends one message"
HOSTS = [f"127.60.{i // 250}.{i % 250 + 1}" for i in range(N)]


class _Mailbox:
    """aiosmtpd handler keeping every message."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp():
    """A real SMTP server on 127.0.0.1."""
    box = _Mailbox()
    with socket.socket() as probe:  # aiosmtpd's readiness check cannot use port 0: pick a free port first
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=free)
    controller.start()
    try:
        yield controller.port, box
    finally:
        controller.stop()


@pytest.fixture
def hook():
    """A local HTTP receiver; POST bodies collected."""
    bodies: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", bodies
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_thousand_offline_cameras_make_one_digest(app, session, smtp, hook):
    port, box = smtp
    url, bodies = hook
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_FROM="cctv@maesai.go.th")
    add_project(session, ranges=("127.60.0.0/16",), alerts={"webhook": url, "emails": ["it@maesai.go.th"]})
    import_observations(app, "project", "CR-MS-2568-001", [make_obs(h) for h in HOSTS])
    # first scan: 1000 new unregistered cameras -> one webhook call and one e-mail
    assert len(bodies) == 1 and len(box.messages) == 1
    assert bodies[0]["counts"] == {"unregistered": N} and bodies[0]["total"] == N
    box.messages.clear()
    bodies.clear()
    run2 = import_observations(app, "project", "CR-MS-2568-001",
                               [make_obs(h, status=ProbeStatus.UNREACHABLE) for h in HOSTS])
    assert len(bodies) == 1 and len(box.messages) == 1
    body = bodies[0]
    assert body["counts"] == {"offline": N} and body["total"] == N
    assert body["agency"]["code"] == "maesai-mun" and body["scan_run"]["id"] == run2
    assert len(body["events"]) == 200 and body["not_listed"] == N - 200
    mail = box.messages[0]
    assert mail["To"] == "it@maesai.go.th" and "ออฟไลน์ 1000" in mail["Subject"]
    text = mail.get_content()
    assert "อีก 800 รายการ / 800 more" in text and "went offline" in text
    events = session.scalars(select(AlertEvent).where(AlertEvent.scan_run_id == run2)).all()
    assert len(events) == N and all(e.delivered_at is not None and e.delivery_error is None for e in events)
    # third scan, nothing changed: nothing sent
    bodies.clear()
    box.messages.clear()
    import_observations(app, "project", "CR-MS-2568-001",
                        [make_obs(h, status=ProbeStatus.UNREACHABLE) for h in HOSTS])
    assert bodies == [] and box.messages == []


def test_delivery_failures_are_recorded_not_raised(app, session):
    # nothing listens on these ports: the scan completes, each event says why it was not delivered
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=1)
    add_project(session, alerts={"webhook": "http://127.0.0.1:1/x", "emails": ["it@maesai.go.th"]})
    run_id = import_observations(app, "project", "CR-MS-2568-001", [make_obs("127.0.1.11")])
    (event,) = session.scalars(select(AlertEvent).where(AlertEvent.scan_run_id == run_id)).all()
    assert event.delivered_at is None
    assert "webhook http://127.0.0.1:1 unreachable" in event.delivery_error
    assert "mail server 127.0.0.1:1" in event.delivery_error


def test_agency_without_channels_and_bad_webhook_url(app, session):
    add_project(session)
    run_id = import_observations(app, "project", "CR-MS-2568-001", [make_obs("127.0.1.11")])
    (event,) = session.scalars(select(AlertEvent).where(AlertEvent.scan_run_id == run_id)).all()
    assert event.delivery_error == "no alert channel configured" and event.delivered_at is None
    with pytest.raises(AlertDeliveryError, match="not an http"):
        send_webhook("file:///etc/passwd", {})
