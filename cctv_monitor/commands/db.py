"""Database maintenance commands."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup


def register(group: AppGroup) -> None:
    """Add ``init-db`` to ``group``."""

    @group.command("init-db")
    def init_db() -> None:
        """Create or upgrade the database schema (also done automatically on every start)."""
        # create_app already ran the migrations; say where the data lives (password hidden).
        from sqlalchemy.engine import make_url

        url = make_url(current_app.config["DATABASE_URL"]).render_as_string(hide_password=True)
        click.echo(f"Database schema is up to date: {url}")
