"""Server-side authentication of a simulated camera: WS-Security UsernameToken and HTTP Digest.

Both are hand-written: aiohttp and zeep only implement the *client* side of these schemes, and the
simulator must not share code with the probes. The checks follow what cameras do: the UsernameToken
``Created`` time is compared with the camera's own (possibly skewed) clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from lxml import etree

LOGGER = logging.getLogger(__name__)

WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
MAX_SKEW_S = 5.0


@dataclass(frozen=True)
class AuthResult:
    """Outcome of a credential check; ``reason`` says why it failed (for logs, never the password)."""

    ok: bool
    reason: str = ""


def password_digest(nonce: bytes, created: str, password: str) -> str:
    """WS-Security PasswordDigest = Base64(SHA1(nonce + created + password))."""
    return base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()


def _parse_created(text: str) -> datetime | None:
    text = text.strip()
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:  # Created must be UTC; a naive time is read as UTC like most firmware does
        value = value.replace(tzinfo=timezone.utc)
    return value


def check_ws_security(envelope: etree._Element, username: str, password: str, camera_now: datetime) -> AuthResult:
    """Check the UsernameToken of a parsed SOAP envelope against the camera's credentials and clock."""
    token = envelope.find(f".//{{{WSSE_NS}}}UsernameToken")
    if token is None:
        return AuthResult(False, "no WS-Security UsernameToken")
    user = (token.findtext(f"{{{WSSE_NS}}}Username") or "").strip()
    pw_el = token.find(f"{{{WSSE_NS}}}Password")
    if user != username or pw_el is None:
        return AuthResult(False, f"unknown user {user!r}")
    pw_type = pw_el.get("Type", "")
    given = (pw_el.text or "").strip()
    if pw_type.endswith("#PasswordText"):
        ok = hmac.compare_digest(given.encode(), password.encode())
        return AuthResult(ok, "" if ok else "wrong password (text)")
    created_text = token.findtext(f"{{{WSU_NS}}}Created") or token.findtext(f"{{{WSSE_NS}}}Created") or ""
    nonce_text = token.findtext(f"{{{WSSE_NS}}}Nonce") or ""
    try:
        nonce = base64.b64decode(nonce_text.strip(), validate=True)
    except ValueError:
        return AuthResult(False, "nonce is not base64")
    created = _parse_created(created_text)
    if created is None:
        return AuthResult(False, f"Created {created_text!r} is not an ISO time")
    skew = abs((created - camera_now).total_seconds())
    if skew > MAX_SKEW_S:
        return AuthResult(False, f"time check failed: Created is {skew:.0f} s away from the camera clock")
    ok = hmac.compare_digest(given, password_digest(nonce, created_text.strip(), password))
    return AuthResult(ok, "" if ok else "wrong password (digest)")


class HttpDigest:
    """RFC 7616 HTTP Digest (MD5, qop=auth) with stateless nonces signed by a per-process key."""

    def __init__(self, realm: str) -> None:
        self.realm = realm
        self._key = os.urandom(16)

    def challenge(self) -> str:
        """Value of the WWW-Authenticate header."""
        stamp = f"{time.time():.0f}"
        sig = hmac.new(self._key, stamp.encode(), hashlib.sha256).hexdigest()[:16]
        return f'Digest realm="{self.realm}", qop="auth", nonce="{stamp}-{sig}", algorithm=MD5'

    def check(self, authorization: str | None, method: str, username: str, password: str) -> AuthResult:
        """Check an Authorization header."""
        if not authorization or not authorization.lower().startswith("digest "):
            return AuthResult(False, "no HTTP Digest Authorization header")
        fields = dict(
            (m.group(1).lower(), m.group(2) if m.group(2) is not None else m.group(3))
            for m in re.finditer(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', authorization[7:])
        )
        nonce = fields.get("nonce", "")
        stamp, _, sig = nonce.partition("-")
        expected_sig = hmac.new(self._key, stamp.encode(), hashlib.sha256).hexdigest()[:16]
        if not hmac.compare_digest(sig, expected_sig):
            return AuthResult(False, "stale or foreign digest nonce")
        if fields.get("username") != username or fields.get("realm") != self.realm:
            return AuthResult(False, f"unknown user {fields.get('username')!r}")

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - MD5 is what the RFC scheme uses

        ha1 = md5(f"{username}:{self.realm}:{password}")
        ha2 = md5(f"{method}:{fields.get('uri', '')}")
        if fields.get("qop"):
            expected = md5(f"{ha1}:{nonce}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:{fields['qop']}:{ha2}")
        else:
            expected = md5(f"{ha1}:{nonce}:{ha2}")
        ok = hmac.compare_digest(expected, fields.get("response", ""))
        return AuthResult(ok, "" if ok else "wrong HTTP Digest response")
