"""Dashboard users and API tokens: passwords, tokens, and ending every session of a user.

Kept in the application (not the web package) because the command line manages users too. Sessions are
revoked by raising :attr:`User.auth_version`: the session stores the version it was issued under and every
request compares it (see ``dashboards``), so a log-out, a password change or a deactivation ends all of the
user's sessions at once, including a copy of the cookie held elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from cctv_monitor.models import User

__all__ = ["MIN_PASSWORD_LENGTH", "hash_password", "save_user", "set_password", "deactivate_user", "end_sessions",
           "check_login", "hash_token", "new_token", "issue_token", "user_for_token"]

# A real hash to compare against when the user does not exist, so a wrong username costs as much time
# as a wrong password (no user enumeration by timing).
_DUMMY_HASH = generate_password_hash("not-a-real-password")

MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    """Salted password hash (werkzeug's scrypt)."""
    return generate_password_hash(password)


def end_sessions(row: User) -> None:
    """End every session of ``row`` (the caller commits)."""
    row.auth_version = (row.auth_version or 0) + 1


def save_user(session: Session, username: str, *, password: str, role: str, agency_id: int | None = None,
              language: str = "th") -> bool:
    """Create ``username`` or reset its password, role, agency and language (and re-activate it).

    Returns True when the user was created. An existing user's sessions end (its password changed).
    """
    row = session.scalar(select(User).where(User.username == username))
    created = row is None
    if row is None:
        row = User(username=username, auth_version=0)
        session.add(row)
    else:
        end_sessions(row)
    row.password_hash = hash_password(password)
    row.role, row.agency_id, row.language, row.active = role, agency_id, language, True
    return created


def set_password(row: User, password: str) -> None:
    """Change the password of ``row`` and end its sessions; raises ValueError when it is too short."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"must be at least {MIN_PASSWORD_LENGTH} characters")
    row.password_hash = hash_password(password)
    end_sessions(row)


def deactivate_user(row: User) -> None:
    """Block ``row`` from logging in and from the API, and end its sessions."""
    row.active = False
    row.api_token_hash = None
    end_sessions(row)


def check_login(session: Session, username: str, password: str) -> User | None:
    """The active user with this username and password, else None (constant work either way)."""
    row = session.scalar(select(User).where(User.username == username))
    if row is None or not row.active:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return row if check_password_hash(row.password_hash, password) else None


def hash_token(token: str) -> str:
    """SHA-256 of an API token: tokens are 256-bit random, so a fast hash is enough and allows lookup."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh random API token (shown once, stored only as its hash)."""
    return secrets.token_urlsafe(32)


def issue_token(row: User) -> str:
    """Give ``row`` a new API token (the old one stops working) and return it; the caller commits."""
    value = new_token()
    row.api_token_hash = hash_token(value)
    return value


def user_for_token(session: Session, token: str) -> User | None:
    """The active user owning ``token``, or None."""
    if not token:
        return None
    digest = hash_token(token)
    row = session.scalar(select(User).where(User.api_token_hash == digest))
    if row is None or not row.active or not hmac.compare_digest(row.api_token_hash or "", digest):
        return None
    return row
