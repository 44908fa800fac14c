"""Who may see and do what: log-in users, API tokens, roles and the agency scope of technicians.

Every query for devices, findings, projects or scans goes through :func:`device_scope` /
:func:`agency_scope` so that a technician of one agency never sees another agency's rows, whether the
request comes from a page, an export or the API.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask_login import AnonymousUserMixin, UserMixin
from sqlalchemy import Select

from cctv_monitor.accounts import (  # noqa: F401 - re-exported: the web package's callers import them here
    MIN_PASSWORD_LENGTH,
    check_login,
    hash_password,
    hash_token,
    new_token,
    save_user,
    user_for_token,
)
from cctv_monitor.models import Device, Project, User
from cctv_monitor.statuses import Role

LOGGER = logging.getLogger(__name__)


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
