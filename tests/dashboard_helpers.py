"""Helpers shared by the dashboard tests: seeding, CSRF-aware log-in."""

from __future__ import annotations

import re
from typing import Any

from cctv_monitor.db import get_db
from cctv_monitor.simulator.sampledata import USERS, SampleData, seed

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def seeded(app: Any, **kwargs: Any) -> SampleData:
    """Seed the app's empty database with the sample data."""
    with get_db(app).session_scope() as session:
        return seed(session, **kwargs)


def csrf_from(client: Any, path: str = "/login") -> str:
    """The CSRF token of the form on ``path``."""
    body = client.get(path).get_data(as_text=True)
    match = CSRF_RE.search(body)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client: Any, username: str, password: str | None = None) -> Any:
    """Log in through the real form (with its CSRF token)."""
    password = password if password is not None else USERS[username][0]
    token = csrf_from(client, "/login")
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def bearer(username: str) -> dict[str, str]:
    """Authorization header with the sample API token of ``username``."""
    return {"Authorization": f"Bearer {USERS[username][3]}"}
