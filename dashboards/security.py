"""Who may see and do what: log-in users, API tokens, roles and the agency scope of technicians.

Every query for devices, findings, projects or scans goes through :func:`device_scope` /
:func:`agency_scope` so that a technician of one agency never sees another agency's rows, whether the
request comes from a page, an export or the API.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from flask_login import AnonymousUserMixin, UserMixin
from sqlalchemy import Select, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from cctv_monitor.models import Device, Project, User
from cctv_monitor.statuses import Role

LOGGER = logging.getLogger(__name__)

# A real hash to compare against when the user does not exist, so a wrong username costs as much time
# as a wrong password (no user enumeration by timing).
_DUMMY_HASH = generate_password_hash("not-a-real-password")

MIN_PASSWORD_LENGTH = 8


@dataclass
class LoginUser(UserMixin):
    """The signed-in user as the session sees it (a plain copy, never the ORM row)."""

    id: int
    username: str
    role: str
    agency_id: int | None
    language: str

    def get_id(self) -> str:
        """Session key."""
        return str(self.id)

    @property
    def is_admin(self) -> bool:
        """Administrators may do everything."""
        return self.role == Role.ADMIN.value

    @property
    def is_technician(self) -> bool:
        """Technicians read and scan their own agency only."""
        return self.role == Role.TECHNICIAN.value

    @property
    def sees_all(self) -> bool:
        """Admins and auditors read every agency."""
        return self.role in (Role.ADMIN.value, Role.AUDITOR.value)

    def may_scan_agency(self, agency_id: int | None) -> bool:
        """Admins scan anything; technicians their own agency; auditors nothing."""
        if self.is_admin:
            return True
        return self.is_technician and agency_id is not None and agency_id == self.agency_id

    @classmethod
    def from_row(cls, row: User) -> "LoginUser":
        """Copy the fields the request needs from a :class:`User` row."""
        return cls(id=row.id, username=row.username, role=row.role, agency_id=row.agency_id,
                   language=row.language or "th")


class AnonymousUser(AnonymousUserMixin):
    """Not signed in."""

    role = ""
    agency_id = None
    is_admin = False
    is_technician = False
    sees_all = False


def hash_password(password: str) -> str:
    """Salted password hash (werkzeug's scrypt)."""
    return generate_password_hash(password)


def save_user(session: Session, username: str, *, password: str, role: str, agency_id: int | None = None,
              language: str = "th") -> bool:
    """Create ``username`` or reset its password, role, agency and language (and re-activate it).

    Returns True when the user was created. Used by ``users add`` and by the demo.
    """
    row = session.scalar(select(User).where(User.username == username))
    created = row is None
    if row is None:
        row = User(username=username)
        session.add(row)
    row.password_hash = hash_password(password)
    row.role, row.agency_id, row.language, row.active = role, agency_id, language, True
    return created


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


def user_for_token(session: Session, token: str) -> User | None:
    """The active user owning ``token``, or None."""
    if not token:
        return None
    digest = hash_token(token)
    row = session.scalar(select(User).where(User.api_token_hash == digest))
    if row is None or not row.active or not hmac.compare_digest(row.api_token_hash or "", digest):
        return None
    return row


def device_scope(stmt: Select[Any], user: Any) -> Select[Any]:
    """Restrict a statement over :class:`Device` to what ``user`` may read."""
    if getattr(user, "sees_all", False):
        return stmt
    agency_id = getattr(user, "agency_id", None)
    if agency_id is None:
        return stmt.where(Device.id == -1)  # a technician without an agency sees nothing
    return stmt.where(Device.agency_id == agency_id)


def project_scope(stmt: Select[Any], user: Any) -> Select[Any]:
    """Restrict a statement over :class:`Project` to what ``user`` may read."""
    if getattr(user, "sees_all", False):
        return stmt
    agency_id = getattr(user, "agency_id", None)
    if agency_id is None:
        return stmt.where(Project.id == -1)
    return stmt.where(Project.agency_id == agency_id)


def visible_agency_ids(user: Any) -> list[int] | None:
    """None when ``user`` reads every agency, else the list of agency ids allowed."""
    if getattr(user, "sees_all", False):
        return None
    agency_id = getattr(user, "agency_id", None)
    return [agency_id] if agency_id is not None else []
