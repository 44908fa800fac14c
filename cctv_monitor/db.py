"""Database engine and sessions: one session per request (cached on ``g``) and one per job.

SQLite is the embedded default (a file in the instance folder, WAL journal, busy timeout so a scan
writing and the dashboard reading do not trip over each other). Any SQLAlchemy URL works through
``CCTV_DATABASE_URL``. The schema is created and upgraded by Alembic on start (see migrations).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Iterator

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from cctv_monitor.instance import prepare_sqlite_file, secure_folder

LOGGER = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Connections a process keeps open: waitress's 8 threads, each with its request session and at times a
#: second one (audit entries are written in a transaction of their own), plus the scheduler's jobs. With
#: SQLAlchemy's default of 5, connections beyond it were closed on return and opened again on the next
#: request (a new SQLite connection reads the schema again; a new PostgreSQL one forks a backend).
POOL_SIZE = 16
#: Memory-mapped reads for SQLite (bytes of the file mapped): while a scan writes, every read transaction
#: of the dashboard starts with its page cache dropped; mapped pages are read without a copy per page.
SQLITE_MMAP_BYTES = 256 * 1024 * 1024


def default_url(instance_path: str) -> str:
    """SQLite file URL inside the instance folder (made 0700)."""
    secure_folder(instance_path)
    return f"sqlite:///{Path(instance_path) / 'cctv_monitor.sqlite3'}"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and enforced foreign keys."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database not in (None, "", ":memory:") and not parsed.database.startswith("file:"):
            prepare_sqlite_file(parsed.database)  # 0600 before SQLite creates it (and its -wal/-shm)
        kwargs.setdefault("connect_args", {})
        kwargs["connect_args"].setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        kwargs["connect_args"].setdefault("check_same_thread", False)
        memory = parsed.database in (None, "", ":memory:")
        if not memory:
            kwargs.setdefault("pool_size", POOL_SIZE)
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", POOL_SIZE)
    return create_engine(url, **kwargs)


class Database:
    """Engine plus session factory bound to one app."""

    def __init__(self, url: str) -> None:
        """Create the engine for ``url``."""
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def session_scope(self) -> Iterator[Session]:
        """A session for a job or command: committed on success, rolled back on error, always closed."""
        session = self.sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def init_app(app: Flask) -> Database:
    """Bind a :class:`Database` to ``app`` and close the request session on teardown."""
    url = app.config.get("DATABASE_URL") or default_url(app.instance_path)
    app.config["DATABASE_URL"] = url
    database = Database(url)
    app.extensions["cctv_db"] = database
    app.teardown_appcontext(_close_session)
    return database


def get_db(app: Flask | None = None) -> Database:
    """The :class:`Database` of ``app`` (default: the current app)."""
    return (app or current_app).extensions["cctv_db"]


def get_session() -> Session:
    """The session of the current request or app context, created on first use."""
    if "db_session" not in g:
        g.db_session = get_db().sessionmaker()
    return g.db_session


def _close_session(exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        if exc is not None:
            session.rollback()
        session.close()
