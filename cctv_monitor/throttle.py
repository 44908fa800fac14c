"""Log-in and API-token throttling: a growing delay after repeated failures, shared through the database.

Failures are counted per *key*: ``("user", name)`` and ``("address", client)`` for the log-in form,
``("token", client)`` for bearer tokens. After ``free_failures`` failures a key is refused for
``base_delay_s * 2**(failures - free_failures)`` seconds, capped at ``max_delay_s``; an attempt made while
refused counts as one more failure, so hammering only lengthens the wait. A key's count is forgotten
``forget_after_s`` after its last failure, and a successful log-in clears the user name's count (not the
address's, or one good account would let an address guess every other one).

State lives in the ``auth_throttle`` table, so every waitress thread and every process (SQLite or
PostgreSQL) sees the same counts. Each update starts with an ``UPDATE`` of the row, which takes SQLite's
write lock or PostgreSQL's row lock first, so concurrent failures are never lost.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from flask import Flask
from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cctv_monitor.models import AuthThrottle, utcnow

__all__ = ["Policy", "address_key", "login_keys", "token_keys", "remaining", "register_failure",
           "register_success", "retry_after"]

Key = tuple[str, str]


@dataclass(frozen=True)
class Policy:
    """How many failures are free, and how the delay grows after them."""

    free_failures: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 900.0
    forget_after_s: float = 3600.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Policy":
        """The policy of the app's ``LOGIN_THROTTLE_*`` settings."""
        return cls(free_failures=int(config.get("LOGIN_THROTTLE_FREE_FAILURES", cls.free_failures)),
                   base_delay_s=float(config.get("LOGIN_THROTTLE_BASE_S", cls.base_delay_s)),
                   max_delay_s=float(config.get("LOGIN_THROTTLE_MAX_S", cls.max_delay_s)),
                   forget_after_s=float(config.get("LOGIN_THROTTLE_FORGET_S", cls.forget_after_s)))

    def delay_for(self, failures: int) -> float:
        """Seconds a key with ``failures`` failures is refused."""
        if failures < self.free_failures:
            return 0.0
        return min(self.max_delay_s, self.base_delay_s * 2.0 ** min(failures - self.free_failures, 60))


def address_key(address: str | None) -> str:
    """The throttling key of a client address: the address, or its /64 for IPv6 (one host owns a /64)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return (address or "unknown")[:128]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def login_keys(username: str, address: str | None) -> list[Key]:
    """Keys of a log-in attempt: the user name (case-folded) and the client address."""
    keys = [("address", address_key(address))]
    if username:
        keys.insert(0, ("user", username.casefold()[:128]))
    return keys


def token_keys(address: str | None) -> list[Key]:
    """Keys of a bearer-token attempt: the client address (a token names no user before it is checked)."""
    return [("token", address_key(address))]


def _sessionmaker(app: Flask) -> Any:
    from cctv_monitor.db import get_db

    return get_db(app).sessionmaker


def remaining(app: Flask, keys: Sequence[Key], now: datetime | None = None) -> float:
    """Seconds until every key in ``keys`` may try again (0: not refused)."""
    now = now or utcnow()
    with _sessionmaker(app)() as session:
        until = session.scalars(select(AuthThrottle.blocked_until).where(
            tuple_(AuthThrottle.scope, AuthThrottle.key).in_(list(keys)))).all()
    waits = [(u - now).total_seconds() for u in until if u is not None]
    return max([0.0, *waits])


def _bump(session: Session, key: Key, policy: Policy, now: datetime) -> float:
    """Count one failure of ``key`` and return the delay it now earns (the caller commits)."""
    scope, value = key
    where = (AuthThrottle.scope == scope, AuthThrottle.key == value)
    # The UPDATE comes first so the row is locked (PostgreSQL) / the write lock held (SQLite) before reading.
    changed = session.execute(update(AuthThrottle).where(*where).values(failures=AuthThrottle.failures + 1))
    if changed.rowcount == 0:
        row = AuthThrottle(scope=scope, key=value, failures=1, last_failure=now)
        session.add(row)
        session.flush()  # IntegrityError here: another thread inserted it first; the caller retries
    else:
        row = session.scalars(select(AuthThrottle).where(*where)).one()
        if row.last_failure is not None and (now - row.last_failure).total_seconds() > policy.forget_after_s:
            row.failures = 1
    row.last_failure = now
    delay = policy.delay_for(row.failures)
    row.blocked_until = now + timedelta(seconds=delay) if delay > 0 else None
    return delay


def register_failure(app: Flask, keys: Sequence[Key], policy: Policy, now: datetime | None = None) -> float:
    """Count one failure for each key; returns the longest delay now in force (0: none yet)."""
    now = now or utcnow()
    for attempt in range(5):
        with _sessionmaker(app)() as session:
            try:
                delay = max(_bump(session, key, policy, now) for key in keys)
                session.commit()
                return delay
            except IntegrityError:
                session.rollback()
                if attempt == 4:
                    raise
    raise AssertionError("unreachable")


def register_success(app: Flask, keys: Sequence[Key]) -> None:
    """Forget the failures of the user-name keys among ``keys`` after a successful log-in."""
    users = [k for k in keys if k[0] == "user"]
    if not users:
        return
    with _sessionmaker(app)() as session:
        session.execute(delete(AuthThrottle).where(tuple_(AuthThrottle.scope, AuthThrottle.key).in_(users)))
        session.commit()


def retry_after(seconds: float) -> str:
    """The ``Retry-After`` header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
