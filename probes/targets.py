"""What to probe and with which credentials (re-exported by :mod:`probes.scan`)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

__all__ = ["Target", "ClockReading", "Credential", "DEFAULT_PATH", "on_probed_host", "without_userinfo"]

DEFAULT_PATH = "/onvif/device_service"


@dataclass(frozen=True)
class ClockReading:
    """A device's clock as an unauthenticated GetSystemDateAndTime read it (the range sweep asks that call
    anyway): ``offset_s`` to add to our clock to get the device's, read at ``at`` (``time.monotonic()``)."""

    offset_s: float
    at: float


@dataclass(frozen=True)
class Target:
    """One ONVIF device address; ``xaddrs`` are the URLs WS-Discovery reported for it, if any; ``clock`` the
    device's clock when the sweep that found it read it (not part of the address: equal targets compare
    equal whatever their clock)."""

    host: str
    port: int = 80
    path: str = DEFAULT_PATH
    xaddrs: tuple[str, ...] = ()
    clock: ClockReading | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.host or any(c in self.host for c in "/ @?#"):
            raise ValueError(f"invalid host {self.host!r}")
        if not 0 < int(self.port) < 65536:
            raise ValueError(f"port {self.port} is out of range 1-65535")
        if not self.path.startswith("/"):
            raise ValueError(f"path {self.path!r} must start with '/'")

    @property
    def address(self) -> str:
        """``host:port`` (IPv6 hosts in brackets)."""
        return f"{_bracket(self.host)}:{self.port}"

    @property
    def url(self) -> str:
        """Device service URL (https on port 443)."""
        scheme = "https" if self.port == 443 else "http"
        return f"{scheme}://{self.address}{self.path}"

    @classmethod
    def parse(cls, text: str, *, default_port: int = 80) -> "Target":
        """Parse ``host``, ``host:port``, ``[v6]:port`` or an ``http(s)://host[:port]/path`` URL."""
        raw = text.strip()
        if not raw:
            raise ValueError("empty address")
        if "://" in raw:
            try:
                parts = urlsplit(raw)
                port = parts.port
            except ValueError as exc:
                raise ValueError(f"invalid device URL {text!r}: {exc}") from None
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"invalid device URL {text!r}: expected http(s)://host[:port]/path")
            return cls(parts.hostname, port or (443 if parts.scheme == "https" else 80), parts.path or DEFAULT_PATH,
                       (raw,))
        host, port = raw, default_port
        if raw.startswith("["):
            host, sep, rest = raw[1:].partition("]")
            if not sep:
                raise ValueError(f"invalid address {text!r}: missing ']'")
            if rest:
                if not rest.startswith(":"):
                    raise ValueError(f"invalid address {text!r}")
                port = _port(rest[1:], text)
        elif raw.count(":") == 1:
            host, _, port_text = raw.partition(":")
            port = _port(port_text, text)
        elif raw.count(":") > 1:
            try:
                ipaddress.IPv6Address(raw)
            except ValueError:
                raise ValueError(f"invalid address {text!r}: write IPv6 as [addr]:port") from None
        return cls(host, port)


@dataclass(frozen=True)
class Credential:
    """An ONVIF user; the password never appears in repr, logs or observations."""

    username: str
    password: str = field(repr=False, default="")
    #: Opaque fingerprint given by the caller (never the password); the observation reports which
    #: fingerprint the device accepted and which it rejected, so the next scan can order and skip.
    ref: str | None = field(default=None, compare=False)

    # Where it came from ("--user", "site market"): shown with the accepted user, never part of equality.
    source: str = field(default="", compare=False)

    @property
    def label(self) -> str:
        """``user (source)`` for tables and reports (never the password)."""
        return f"{self.username} ({self.source})" if self.source else self.username


def on_probed_host(uri: str, host: str) -> tuple[str, str | None]:
    """``uri`` aimed at the probed ``host`` (same scheme, port, path, query) and the host it named if another.

    A credential is only ever sent to the host that was probed: a camera naming another host in a stream,
    snapshot or service URI (NAT, a second NIC, or an attacker) would otherwise receive the site's password.
    """
    try:
        parts = urlsplit(uri)
        named, port = parts.hostname, parts.port
    except ValueError:
        return uri, None
    if not named or _same_host(named, host):
        return uri, None
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = _bracket(host) + (f":{port}" if port else "")
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), named


def without_userinfo(uri: str) -> str:
    """``uri`` with any ``user:password@`` removed (for contacting a host no credential belongs to)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, parts.query, parts.fragment))


def _same_host(a: str, b: str) -> bool:
    a, b = a.strip("[]").lower(), b.strip("[]").lower()
    if a == b:
        return True
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"invalid port in {whole!r}: expected 1-65535")
    return int(text)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
