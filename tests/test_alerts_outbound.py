"""Outbound safety of alerts against real local servers: SMTP STARTTLS verifies the certificate, a password
is never sent in clear unless allowed, and a webhook that redirects is not followed."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Flask

from cctv_monitor.alerts import AlertDeliveryError, send_email, send_webhook, smtp_settings

PASSWORD = "smtp-secret-2568"


def _certificate(tmp_path, name: str, san: x509.GeneralName) -> tuple[str, str]:
    """A self-signed certificate and key (PEM files) for ``san``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).add_extension(x509.SubjectAlternativeName([san]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True).sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


class _Server:
    """aiosmtpd handler and authenticator that keep what they saw."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        self.messages.append(envelope.content)
        return "250 OK"

    def __call__(self, server, session, envelope, mechanism, auth_data):  # aiosmtpd authenticator API
        self.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=True)


def _free_port() -> int:
    with socket.socket() as probe:  # aiosmtpd's readiness check cannot use port 0
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_tls(tmp_path):
    """A real SMTP server on 127.0.0.1 offering STARTTLS with a self-signed certificate for 127.0.0.1."""
    cert, key = _certificate(tmp_path, "mail", x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    seen = _Server()
    controller = Controller(seen, hostname="127.0.0.1", port=_free_port(), tls_context=context,
                            authenticator=seen, auth_require_tls=True, server_hostname="127.0.0.1")
    controller.start()
    try:
        yield controller.port, seen, cert
    finally:
        controller.stop()


@pytest.fixture
def smtp_plain():
    """A real SMTP server on 127.0.0.1 without TLS that would accept a password in clear."""
    seen = _Server()
    controller = Controller(seen, hostname="127.0.0.1", port=_free_port(), authenticator=seen,
                            auth_require_tls=False)
    controller.start()
    try:
        yield controller.port, seen
    finally:
        controller.stop()


def _settings(**config) -> dict:
    app = Flask(__name__)
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_FROM="cctv@maesai.go.th", **config)
    settings = smtp_settings(app)
    assert settings is not None
    return settings


def test_starttls_refuses_a_certificate_it_cannot_verify(smtp_tls):
    """An unknown self-signed certificate stops the delivery before the password is sent."""
    port, seen, _cert = smtp_tls
    settings = _settings(SMTP_PORT=port, SMTP_STARTTLS="1", SMTP_USERNAME="alerts", SMTP_PASSWORD=PASSWORD)
    with pytest.raises(AlertDeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
        send_email(settings, ["it@maesai.go.th"], "subject", "body")
    assert seen.logins == [] and seen.messages == []


def test_starttls_checks_the_host_name(tmp_path, smtp_tls):
    """A trusted certificate issued to another name is refused too."""
    port, seen, _cert = smtp_tls
    other, _key = _certificate(tmp_path, "other", x509.DNSName("mail.other.example"))
    settings = _settings(SMTP_PORT=port, SMTP_STARTTLS="1", SMTP_CA_FILE=other)
    with pytest.raises(AlertDeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
        send_email(settings, ["it@maesai.go.th"], "subject", "body")
    assert seen.messages == []


def test_starttls_with_the_right_ca_delivers_and_logs_in(smtp_tls):
    """With the server's CA named in SMTP_CA_FILE the message goes out, the password only inside TLS."""
    port, seen, cert = smtp_tls
    settings = _settings(SMTP_PORT=port, SMTP_STARTTLS="1", SMTP_CA_FILE=cert, SMTP_USERNAME="alerts",
                         SMTP_PASSWORD=PASSWORD)
    send_email(settings, ["it@maesai.go.th"], "subject", "body")
    assert seen.logins == [(b"alerts", PASSWORD.encode())] and len(seen.messages) == 1


def test_password_is_not_sent_in_clear_unless_allowed(smtp_plain):
    """Without STARTTLS a configured password is refused with a message naming the settings."""
    port, seen = smtp_plain
    settings = _settings(SMTP_PORT=port, SMTP_USERNAME="alerts", SMTP_PASSWORD=PASSWORD)
    with pytest.raises(AlertDeliveryError, match="SMTP_STARTTLS=1.*SMTP_ALLOW_PLAINTEXT_AUTH"):
        send_email(settings, ["it@maesai.go.th"], "subject", "body")
    assert seen.logins == [] and seen.messages == []
    allowed = _settings(SMTP_PORT=port, SMTP_USERNAME="alerts", SMTP_PASSWORD=PASSWORD,
                        SMTP_ALLOW_PLAINTEXT_AUTH="1")
    send_email(allowed, ["it@maesai.go.th"], "subject", "body")
    assert seen.logins == [(b"alerts", PASSWORD.encode())] and len(seen.messages) == 1
    # without a user name nothing secret travels, so plain SMTP stays allowed
    send_email(_settings(SMTP_PORT=port), ["it@maesai.go.th"], "subject", "body")
    assert len(seen.messages) == 2


@pytest.fixture
def redirecting():
    """Two local HTTP servers: one redirects every POST (code from the path) to the other, which counts hits."""
    hits: list[str] = []

    class Target(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        do_GET = do_POST  # noqa: N815 - a followed 302 may arrive as GET

        def log_message(self, *args):
            pass

    target = ThreadingHTTPServer(("127.0.0.1", 0), Target)

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(int(self.path.strip("/")))
            self.send_header("Location", f"http://127.0.0.1:{target.server_address[1]}/stolen")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    source = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    for server in (target, source):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{source.server_address[1]}", hits
    finally:
        for server in (source, target):
            server.shutdown()
            server.server_close()


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_webhook_does_not_follow_redirects(redirecting, code):
    """A 3xx answer is a delivery error naming the code; the host it points to is never contacted."""
    base, hits = redirecting
    with pytest.raises(AlertDeliveryError, match=f"HTTP {code} \\(redirects are not followed"):
        send_webhook(f"{base}/{code}", {"type": "test"})
    assert hits == []
