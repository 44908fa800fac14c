"""Which credentials a scan may try on which device, in which order (pure functions, no Flask, no database).

Rules (PITFALLS.md, lock-outs): a credential belongs to the sites whose address ranges hold the device;
another agency's credential is never tried; the credential that worked on the device last time goes first;
a credential the device rejected is not tried on it again until it changes; few attempts per device, so a
scan every 30 minutes cannot lock a camera's admin out.

Credentials are remembered by a keyed fingerprint (HMAC-SHA256 over user and password with the app's
secret key), never by the password itself: a stolen database does not give an offline guess check.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

from probes.targets import Credential

__all__ = [
    "SITE_PASSWORD_ENV_PREFIX",
    "password_env_problem",
    "fingerprint",
    "SiteCredentials",
    "DeviceMemory",
    "CredentialPlan",
    "remember",
    "DEFAULT_MAX_ATTEMPTS",
]

#: ``password_env`` may only name variables with this prefix: a project file from a contractor must not be
#: able to read ``CCTV_SECRET_KEY`` (or any other secret of the server) and send it to its own cameras.
SITE_PASSWORD_ENV_PREFIX = "CCTV_SITE_PW_"

#: Credentials tried per device and scan. Hikvision locks a user after 5 (non-admin) to 7 failures.
DEFAULT_MAX_ATTEMPTS = 3


def password_env_problem(name: str) -> str | None:
    """Why ``name`` may not be used as ``password_env`` (None when it may)."""
    if not name.startswith(SITE_PASSWORD_ENV_PREFIX) or len(name) == len(SITE_PASSWORD_ENV_PREFIX):
        return (f"environment variable {name!r} is not allowed: site passwords are read only from variables "
                f"named {SITE_PASSWORD_ENV_PREFIX}<SOMETHING> (e.g. {SITE_PASSWORD_ENV_PREFIX}MARKET)")
    if not all(c.isalnum() or c == "_" for c in name):
        return f"environment variable {name!r} is not allowed: use letters, digits and '_' only"
    return None


def fingerprint(key: bytes | str, credential: Credential) -> str:
    """Keyed fingerprint of a credential (hex, 32 characters); changes when the user or password does."""
    secret = key.encode() if isinstance(key, str) else key
    message = credential.username.encode("utf-8") + b"\x00" + credential.password.encode("utf-8")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class SiteCredentials:
    """The credentials of one site and the networks they are valid for."""

    networks: tuple[Any, ...]  # ipaddress networks of the site's ranges
    credentials: tuple[Credential, ...]
    agency_id: int | None = None
    prefixlen: int = 0  # of the most specific range, to rank sites holding the same address

    def holds(self, host: str) -> bool:
        """True when ``host`` lies inside one of the site's ranges."""
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip.version == n.version and ip in n for n in self.networks)


class CredentialList(list):  # type: ignore[type-arg]
    """Credentials for one device; ``skipped`` counts those left out because the device rejected them."""

    skipped: int = 0


@dataclass(frozen=True)
class DeviceMemory:
    """What the database knows of one device address: the fingerprint that worked, those rejected."""

    worked: str | None = None
    rejected: frozenset[str] = frozenset()


@dataclass
class CredentialPlan:
    """Per-target credential lists for one scan (callable, as :mod:`probes.scan` expects).

    Order per device: the credential that worked on it last time, then the credentials of the site whose
    range holds its address (only sites of ``agencies`` when the scan names them; else the agency of the
    most specific range), then those typed for this run. A check of a range for a project
    (``scope_default``) also tries that project's site credentials inside the range. Rejected ones are
    left out; at most ``max_attempts`` per device.
    """

    key: bytes
    sites: Sequence[SiteCredentials] = ()
    typed: Sequence[Credential] = ()  # what the operator gave for this run
    agencies: frozenset[int] | None = None  # agencies whose credentials this scan may use (None: by range)
    scope_default: Sequence[SiteCredentials] = ()  # check --project P --range R: P's sites, inside R only
    scope_networks: Sequence[Any] = ()  # R
    memory: dict[str, DeviceMemory] = field(default_factory=dict)  # by device address (host:port)
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    def candidates(self, host: str) -> list[Credential]:
        """Every credential this host may be tried with, in order (before memory and the attempt cap)."""
        out: list[Credential] = []
        if self.scope_default and _inside(host, self.scope_networks):
            for site in self.scope_default:
                _extend(out, site.credentials)
        holding = sorted((s for s in self.sites if s.holds(host)), key=lambda s: s.prefixlen, reverse=True)
        if self.agencies is not None:
            holding = [s for s in holding if s.agency_id in self.agencies]
        elif holding:
            # Ranges of two agencies may overlap: the most specific range says whose camera it is.
            holding = [s for s in holding if s.agency_id == holding[0].agency_id]
        for site in holding:
            _extend(out, site.credentials)
        _extend(out, self.typed)
        return out

    def __call__(self, target: Any) -> list[Credential]:
        """Credentials for ``target`` (a :class:`probes.targets.Target`), each carrying its fingerprint."""
        host = getattr(target, "host", str(target))
        memory = self.memory.get(getattr(target, "address", host), DeviceMemory())
        ordered = [replace(c, ref=fingerprint(self.key, c)) for c in self.candidates(host)]
        if memory.worked is not None:
            ordered.sort(key=lambda c: c.ref != memory.worked)  # stable: the rest keep their order
        usable = CredentialList(c for c in ordered if c.ref not in memory.rejected or c.ref == memory.worked)
        usable.skipped = len(ordered) - len(usable)
        del usable[max(1, self.max_attempts):]
        return usable


def remember(memory: DeviceMemory, accepted: str | None, rejected: Iterable[str]) -> DeviceMemory:
    """The memory after one probe: the accepted fingerprint, rejected ones added (capped, newest kept)."""
    rejected = list(rejected)
    refused = [r for r in dict.fromkeys([*sorted(memory.rejected), *rejected]) if r != accepted]
    # The credential that worked last time was refused now: the camera's password changed.
    worked = accepted or (memory.worked if memory.worked not in rejected else None)
    return DeviceMemory(worked=worked, rejected=frozenset(refused[-16:]))


def _inside(host: str, networks: Sequence[Any]) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(ip.version == n.version and ip in n for n in networks)


def _extend(out: list[Credential], more: Iterable[Credential]) -> None:
    for credential in more:
        if credential not in out:
            out.append(credential)
