"""Shared fixtures: the app from the factory on a fresh database, on SQLite and on PostgreSQL.

Every database test gets the ``db_url`` fixture parametrized over both engines. PostgreSQL isolation:
each test gets a schema of its own (``search_path`` set on connect) that is dropped afterwards, so tests
never see each other's rows and can run in any order.
"""

from __future__ import annotations

import os
import uuid
from typing import Iterator

import pytest

PG_BASE_URL = os.environ.get("CCTV_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_available() -> str | None:
    """None when the test PostgreSQL answers, else the reason it does not."""
    try:
        import psycopg

        dsn = PG_BASE_URL.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means: cannot use it
        return f"PostgreSQL at {PG_BASE_URL} not reachable: {exc}"


_PG_REASON = _pg_available()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A fresh, empty database URL: a SQLite file, or a PostgreSQL schema of this test's own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    if _PG_REASON:
        if os.environ.get("CI"):
            pytest.fail(_PG_REASON)  # CI must run PostgreSQL tests, never skip them silently
        pytest.skip(_PG_REASON)
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    dsn = PG_BASE_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_BASE_URL else "?"
    try:
        yield f"{PG_BASE_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def app(db_url: str, tmp_path):
    """Application from the factory on the fresh database."""
    from cctv_monitor import create_app

    application = create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "test-secret",
                              "INSTANCE_PATH": str(tmp_path / "instance")})
    yield application
    application.extensions["cctv_db"].dispose()


@pytest.fixture
def client(app):
    """Test client."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """CLI runner bound to the app."""
    return app.test_cli_runner()


@pytest.fixture
def session(app):
    """A session on the app's database, closed afterwards."""
    from cctv_monitor.db import get_db

    with get_db(app).sessionmaker() as s:
        yield s


@pytest.fixture(scope="module")
def demo_fleet():
    """The demo fleet (config/fleets/demo.yaml) on loopback, ONVIF only, for one test module."""
    from cctv_monitor.simulator.testing import running_fleet

    with running_fleet("demo") as fleet:
        yield fleet


@pytest.fixture(scope="module")
def quirks_fleet():
    """The quirks fleet (config/fleets/quirks.yaml) on loopback, ONVIF only, for one test module."""
    from cctv_monitor.simulator.testing import running_fleet

    with running_fleet("quirks") as fleet:
        yield fleet
