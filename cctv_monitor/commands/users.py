"""``cctv-monitor users``: dashboard users (add, list, token, passwd, deactivate); each change is audited."""

from __future__ import annotations

import sys
from typing import Any

import click
from flask.cli import AppGroup
from sqlalchemy import select

from cctv_monitor import audit
from cctv_monitor.db import get_db
from cctv_monitor.models import Agency, User
from cctv_monitor.statuses import Role


def _existing(session: Any, username: str) -> User:
    """The user called ``username``, or a usage error naming it."""
    row = session.scalar(select(User).where(User.username == username))
    if row is None:
        raise click.BadParameter(f"no user {username!r}", param_hint="USERNAME")
    return row


def register(group: AppGroup) -> None:
    """Add the ``users`` group to ``group``."""

    @group.group("users")
    def users() -> None:
        """Dashboard users: roles admin (everything), auditor (read all), technician (own agency)."""

    @users.command("add")
    @click.argument("username")
    @click.option("--role", required=True, type=click.Choice([r.value for r in Role]), help="What the user may do.")
    @click.option("--agency", "agency_code", help="Agency code (required for technicians).")
    @click.option("--language", default="th", show_default=True, type=click.Choice(["th", "en"]))
    @click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
    @click.option("--password", help="The password (visible in the process list and history: prefer --password-stdin).")
    def add(username: str, role: str, agency_code: str | None, language: str, password_stdin: bool,
            password: str | None) -> None:
        """Create a user (or reset the password, role and agency of an existing one)."""
        from flask import current_app

        from cctv_monitor.accounts import MIN_PASSWORD_LENGTH, save_user

        if password_stdin == (password is not None):
            raise click.UsageError("give exactly one of --password-stdin or --password")
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        assert password is not None
        if len(password) < MIN_PASSWORD_LENGTH:
            raise click.BadParameter(f"must be at least {MIN_PASSWORD_LENGTH} characters", param_hint="password")
        if not username or len(username) > 64 or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise click.BadParameter("use 1-64 letters, digits, '.', '-' or '_'", param_hint="USERNAME")
        if role == Role.TECHNICIAN.value and not agency_code:
            raise click.BadParameter("a technician needs --agency CODE", param_hint="--agency")
        with get_db(current_app).session_scope() as session:
            agency_id = None
            if agency_code:
                agency = session.scalar(select(Agency).where(Agency.code == agency_code))
                if agency is None:
                    known = ", ".join(session.scalars(select(Agency.code).order_by(Agency.code))) or "none yet"
                    raise click.BadParameter(f"no agency {agency_code!r} (known: {known})", param_hint="--agency")
                agency_id = agency.id
            created = save_user(session, username, password=password, role=role, agency_id=agency_id,
                                language=language)
            audit.record(session, "user_created" if created else "user_updated", actor=audit.cli_actor(),
                         object_type="user", object_repr=username,
                         detail={"role": role, "agency": agency_code, "password_reset": not created})
        verb = "created" if created else "updated"
        click.echo(f"User {username} {verb} (role {role}{', agency ' + agency_code if agency_code else ''}).")

    @users.command("token")
    @click.argument("username")
    def token(username: str) -> None:
        """Make a new API token for USERNAME and print it once (the old one stops working)."""
        from flask import current_app

        from cctv_monitor.accounts import issue_token

        with get_db(current_app).session_scope() as session:
            row = _existing(session, username)
            value = issue_token(row)
            audit.record(session, "token_issued", actor=audit.cli_actor(), object_type="user", object_repr=username)
        click.echo(value)

    @users.command("passwd")
    @click.argument("username")
    @click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
    @click.option("--password", help="The password (visible in the process list and history: prefer --password-stdin).")
    def passwd(username: str, password_stdin: bool, password: str | None) -> None:
        """Change the password of USERNAME; every session of that user ends."""
        from flask import current_app

        from cctv_monitor.accounts import set_password

        if password_stdin == (password is not None):
            raise click.UsageError("give exactly one of --password-stdin or --password")
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        assert password is not None
        with get_db(current_app).session_scope() as session:
            row = _existing(session, username)
            try:
                set_password(row, password)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="password") from None
            audit.record(session, "user_password", actor=audit.cli_actor(), object_type="user",
                         object_repr=username)
        click.echo(f"Password of {username} changed; its sessions have ended.")

    @users.command("list")
    def list_users() -> None:
        """List users with role, agency and whether they have an API token."""
        from flask import current_app

        with get_db(current_app).session_scope() as session:
            for row in session.scalars(select(User).order_by(User.username)):
                agency = row.agency.code if row.agency else "-"
                click.echo(f"{row.username}\t{row.role}\t{agency}\t{'active' if row.active else 'inactive'}\t"
                           f"{'token' if row.api_token_hash else 'no token'}")

    @users.command("deactivate")
    @click.argument("username")
    def deactivate(username: str) -> None:
        """Block USERNAME from logging in and from the API (its sessions end at once)."""
        from flask import current_app

        from cctv_monitor.accounts import deactivate_user

        with get_db(current_app).session_scope() as session:
            row = _existing(session, username)
            deactivate_user(row)
            audit.record(session, "user_deactivated", actor=audit.cli_actor(), object_type="user",
                         object_repr=username)
        click.echo(f"User {username} deactivated; its sessions and API token no longer work.")
