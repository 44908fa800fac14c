"""Alerts on state changes: one digest per agency per scan, sent as a JSON webhook and/or an e-mail.

The scan pipeline stores an :class:`~cctv_monitor.models.AlertEvent` for each state change only (new
non-compliance, offline, back online, new unregistered device, missing device). At the end of a run,
:func:`deliver_run_alerts` groups the run's undelivered events by agency and sends ONE message per agency
and channel, so a thousand cameras going offline at once make one message, not a thousand.

Where alerts go: the agency's ``alerts`` setting ``{"webhook": "https://...", "emails": ["a@b.go.th"]}``;
events without an agency (devices outside every project) go to the global ``ALERT_WEBHOOK`` /
``ALERT_EMAILS`` settings. SMTP server: ``SMTP_HOST``, ``SMTP_PORT`` (25), ``SMTP_FROM``,
``SMTP_USERNAME``, ``SMTP_PASSWORD``, ``SMTP_STARTTLS`` (app settings or ``CCTV_SMTP_*`` variables).

Outbound safety: STARTTLS verifies the server's certificate and name (``ssl.create_default_context``; a
private CA can be named with ``SMTP_CA_FILE``), and a password is never sent over a connection without TLS
unless ``SMTP_ALLOW_PLAINTEXT_AUTH`` says so explicitly. Webhooks are not redirected: a 3xx answer is a
delivery error, so a receiver cannot bounce the digest (agency names, camera addresses) to another host.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Sequence
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from cctv_monitor.models import Agency, AlertEvent, Device, ScanRun, utcnow

LOGGER = logging.getLogger(__name__)

__all__ = ["Digest", "build_digests", "deliver_run_alerts", "send_webhook", "send_email", "smtp_settings",
           "AlertDeliveryError", "KIND_LABELS"]

#: Events listed in full in one message; the rest are counted (the counts are always complete).
MAX_LISTED = 200
TIMEOUT_S = 10.0

KIND_LABELS = {
    "non_compliant": ("ไม่ตรงตามข้อกำหนด", "non-compliant"),
    "offline": ("ออฟไลน์", "offline"),
    "online": ("กลับมาออนไลน์", "back online"),
    "unregistered": ("ไม่ได้ลงทะเบียน", "unregistered"),
    "missing": ("ไม่พบอุปกรณ์", "missing"),
}


class AlertDeliveryError(Exception):
    """A webhook or mail server refused or could not be reached; the message says which and why."""


@dataclass
class Digest:
    """All alert events of one agency in one scan run."""

    agency: Agency | None
    run: ScanRun | None
    events: list[AlertEvent]
    addresses: dict[int, str] = field(default_factory=dict)  # device id -> address

    @property
    def counts(self) -> dict[str, int]:
        """Events per kind."""
        return dict(sorted(Counter(e.kind for e in self.events).items()))

    def subject(self) -> str:
        """E-mail subject: agency and counts, Thai first."""
        who = self.agency.name_th if self.agency else "อุปกรณ์นอกโครงการ"
        parts = ", ".join(f"{KIND_LABELS.get(k, (k, k))[0]} {n}" for k, n in self.counts.items())
        return f"[CCTV] {who}: {parts}"

    def to_json(self) -> dict[str, Any]:
        """The webhook body."""
        listed = self.events[:MAX_LISTED]
        return {
            "type": "cctv-monitor.alert-digest",
            "agency": ({"code": self.agency.code, "name_th": self.agency.name_th, "name_en": self.agency.name_en}
                       if self.agency else None),
            "scan_run": ({"id": self.run.id, "target_kind": self.run.target_kind,
                          "target_value": self.run.target_value, "state": self.run.state,
                          "finished": self.run.finished.isoformat() if self.run.finished else None}
                         if self.run else None),
            "counts": self.counts,
            "total": len(self.events),
            "events": [{"kind": e.kind, "device_id": e.device_id, "address": self.addresses.get(e.device_id or 0),
                        "message_th": e.message_th, "message_en": e.message_en,
                        "at": e.created.isoformat() if e.created else None} for e in listed],
            "not_listed": max(0, len(self.events) - MAX_LISTED),
        }

    def text(self) -> str:
        """Plain-text e-mail body (Thai, then English)."""
        lines = [self.subject(), ""]
        for kind, n in self.counts.items():
            th, en = KIND_LABELS.get(kind, (kind, kind))
            lines.append(f"- {th} / {en}: {n}")
        lines.append("")
        for event in self.events[:MAX_LISTED]:
            lines.append(f"* {event.message_th}")
            lines.append(f"  {event.message_en}")
        if len(self.events) > MAX_LISTED:
            lines.append(f"... อีก {len(self.events) - MAX_LISTED} รายการ / {len(self.events) - MAX_LISTED} more")
        if self.run is not None:
            lines += ["", f"Scan run #{self.run.id}: {self.run.target_kind} {self.run.target_value}"]
        return "\n".join(lines) + "\n"


def build_digests(session: Session, run_id: int) -> list[Digest]:
    """Undelivered events of a run, one digest per agency (events without agency in one more)."""
    events = list(session.scalars(select(AlertEvent).where(AlertEvent.scan_run_id == run_id,
                                                           AlertEvent.delivered_at.is_(None),
                                                           AlertEvent.delivery_error.is_(None))
                                  .order_by(AlertEvent.id)))
    if not events:
        return []
    run = session.get(ScanRun, run_id)
    device_ids = {e.device_id for e in events if e.device_id}
    addresses = {d_id: addr or "" for d_id, addr in session.execute(
        select(Device.id, Device.address).where(Device.id.in_(device_ids)))} if device_ids else {}
    by_agency: dict[int | None, list[AlertEvent]] = {}
    for event in events:
        by_agency.setdefault(event.agency_id, []).append(event)
    agencies = {a.id: a for a in session.scalars(select(Agency).where(
        Agency.id.in_([k for k in by_agency if k is not None])))} if any(by_agency) else {}
    return [Digest(agency=agencies.get(agency_id) if agency_id else None, run=run, events=items,
                   addresses=addresses) for agency_id, items in by_agency.items()]


def _setting(app: Flask, name: str, default: Any = None) -> Any:
    value = app.config.get(name)
    if value in (None, ""):
        value = os.environ.get(f"CCTV_{name}")
    return default if value in (None, "") else value


def smtp_settings(app: Flask) -> dict[str, Any] | None:
    """SMTP settings, or None when no SMTP_HOST is set (e-mail off)."""
    host = _setting(app, "SMTP_HOST")
    if not host:
        return None
    try:
        port = int(_setting(app, "SMTP_PORT", 25))
    except ValueError:
        raise AlertDeliveryError(f"SMTP_PORT={_setting(app, 'SMTP_PORT')!r}: expected a port number") from None
    starttls = _flag(_setting(app, "SMTP_STARTTLS", "0"))
    return {"host": host, "port": port, "sender": _setting(app, "SMTP_FROM", "cctv-monitor@localhost"),
            "username": _setting(app, "SMTP_USERNAME"), "password": _setting(app, "SMTP_PASSWORD"),
            "starttls": starttls, "ca_file": _setting(app, "SMTP_CA_FILE"),
            "allow_plaintext_auth": _flag(_setting(app, "SMTP_ALLOW_PLAINTEXT_AUTH", "0"))}


def _flag(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("1", "true", "yes", "on")


def _channels(app: Flask, agency: Agency | None) -> tuple[str | None, list[str]]:
    """(webhook URL, e-mail recipients) for an agency, or the global ones for events without agency."""
    if agency is not None:
        conf = agency.alerts or {}
        emails = conf.get("emails") or []
        if isinstance(emails, str):
            emails = [e.strip() for e in emails.split(",") if e.strip()]
        return conf.get("webhook") or None, list(emails)
    emails = _setting(app, "ALERT_EMAILS") or []
    if isinstance(emails, str):
        emails = [e.strip() for e in emails.split(",") if e.strip()]
    return _setting(app, "ALERT_WEBHOOK"), list(emails)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse every redirect: urllib then raises the 3xx answer as an HTTPError."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        """Never build the follow-up request."""
        return None


def send_webhook(url: str, payload: dict[str, Any], *, timeout_s: float = TIMEOUT_S) -> int:
    """POST ``payload`` as JSON; returns the HTTP status, raises :class:`AlertDeliveryError` otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AlertDeliveryError(f"webhook URL {url!r} is not an http(s) URL")
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8",
                                              "User-Agent": "cctv-monitor"})
    # Never follow proxies from the environment for alerts: the receiver is named explicitly. Nor redirects.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
    try:
        with opener.open(request, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        extra = " (redirects are not followed: configure the final URL)" if 300 <= exc.code < 400 else ""
        raise AlertDeliveryError(f"webhook {parts.scheme}://{parts.netloc} answered HTTP {exc.code}{extra}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AlertDeliveryError(f"webhook {parts.scheme}://{parts.netloc} unreachable: {reason}") from None


def send_email(settings: dict[str, Any], recipients: Sequence[str], subject: str, body: str) -> None:
    """Send one plain-text UTF-8 e-mail; raises :class:`AlertDeliveryError` naming the server on failure."""
    message = EmailMessage()
    message["From"] = settings["sender"]
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message.set_content(body)
    where = f"{settings['host']}:{settings['port']}"
    if settings.get("username") and not settings.get("starttls") and not settings.get("allow_plaintext_auth"):
        raise AlertDeliveryError(f"mail server {where}: refusing to send the SMTP password without TLS; set "
                                 "SMTP_STARTTLS=1 (or SMTP_ALLOW_PLAINTEXT_AUTH=1 to accept the risk)")
    try:
        with smtplib.SMTP(settings["host"], settings["port"], timeout=TIMEOUT_S) as smtp:
            if settings.get("starttls"):
                # A verifying context (certificate chain and host name); smtplib's default would verify nothing.
                smtp.starttls(context=ssl.create_default_context(cafile=settings.get("ca_file") or None))
            if settings.get("username"):
                smtp.login(settings["username"], settings.get("password") or "")
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:  # ssl.SSLError is an OSError
        raise AlertDeliveryError(f"mail server {where}: {type(exc).__name__}: {exc}") from None


def deliver_run_alerts(app: Flask, session: Session, run_id: int) -> int:
    """Send the digests of one run; returns how many messages went out. Failures are stored per event."""
    digests = build_digests(session, run_id)
    sent = 0
    smtp = None
    smtp_error = None
    try:
        smtp = smtp_settings(app)
    except AlertDeliveryError as exc:
        smtp_error = str(exc)
    for digest in digests:
        webhook, emails = _channels(app, digest.agency)
        errors: list[str] = []
        delivered = False
        if webhook:
            try:
                send_webhook(webhook, digest.to_json())
                delivered = True
                sent += 1
            except AlertDeliveryError as exc:
                errors.append(str(exc))
        if emails:
            if smtp is None:
                errors.append(smtp_error or "e-mail recipients are set but SMTP_HOST is not")
            else:
                try:
                    send_email(smtp, emails, digest.subject(), digest.text())
                    delivered = True
                    sent += 1
                except AlertDeliveryError as exc:
                    errors.append(str(exc))
        if not webhook and not emails:
            # Not an error: the agency simply has no alert settings; stored so the dashboard can say so.
            for event in digest.events:
                event.delivery_error = "no alert channel configured"
            continue
        now = utcnow()
        for event in digest.events:
            event.delivered_at = now if delivered else None
            event.delivery_error = "; ".join(errors)[:4000] or None
        if errors:
            LOGGER.warning("alerts of run %s for %s: %s", run_id,
                           digest.agency.code if digest.agency else "(no agency)", "; ".join(errors))
    session.commit()
    return sent
