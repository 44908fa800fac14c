"""API fuzzing: schemathesis generates valid and invalid requests from ``/api/v1/openapi.json`` and sends them,
with a token, to the app on a database with the demo data. No request may cause a 500; every 400 names the
parameter (or body field) that is wrong.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from cctv_monitor.simulator import sampledata

TOKEN = sampledata.USERS["admin"][3]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fuzz_app(request, tmp_path_factory):
    """The app with the demo agencies, projects, devices, findings, scans and users, on SQLite and on
    PostgreSQL (a schema of its own, dropped afterwards: as conftest's ``db_url``, for a whole module)."""
    import uuid

    from conftest import _PG_REASON, PG_BASE_URL

    from cctv_monitor import create_app
    from cctv_monitor.db import get_db

    folder = tmp_path_factory.mktemp("fuzz")
    schema_name = None
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'fuzz.sqlite3'}"
    else:
        if _PG_REASON:
            pytest.skip(_PG_REASON)
        import psycopg

        schema_name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_BASE_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema_name}"')
        url = f"{PG_BASE_URL}{'&' if '?' in PG_BASE_URL else '?'}options=-csearch_path%3D{schema_name}"
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "fuzz",
                      "INSTANCE_PATH": str(folder / "instance")})
    try:
        with get_db(app).session_scope() as session:
            sampledata.seed(session, days=3)
        yield app
    finally:
        get_db(app).dispose()
        if schema_name:
            import psycopg

            with psycopg.connect(PG_BASE_URL.replace("postgresql+psycopg://", "postgresql://"),
                                 autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE')


@pytest.fixture(scope="module")
def api_schema(fuzz_app):
    """The API's own OpenAPI document, loaded through the app (WSGI, no socket)."""
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app, headers={"Authorization": f"Bearer {TOKEN}"})


schema = schemathesis.pytest.from_fixture("api_schema")


def _names_a_parameter(detail: str, case) -> bool:
    sent = [*(case.query or {}), *(case.path_parameters or {})]
    if isinstance(case.body, dict):
        sent.extend(case.body)
    # the POST /scans body (or its absence) is named as such; POST /observations names its required fields
    words = sent + ["target", "JSON body", "run", "observations"]
    return any(word and str(word) in detail for word in words)


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_answers_500_and_every_400_names_the_parameter(case):
    """Valid and invalid queries, paths and bodies: 2xx/4xx only; a 400's detail names what was wrong."""
    response = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code < 500, (case.method, case.formatted_path, case.query, case.body, response.text[:500])
    if response.status_code == 400:
        detail = response.json().get("detail", "")
        assert _names_a_parameter(detail, case), (case.formatted_path, case.query, case.body, detail)


BIG = "99999999999999999999"


@pytest.mark.parametrize("url, status, named", [
    (f"/api/v1/devices/{BIG}", 404, None),  # beyond the ids a database holds: not found, not an overflow
    ("/api/v1/devices/2147483648", 404, None),  # PostgreSQL INTEGER ids end at 2**31-1
    (f"/api/v1/projects/{BIG}", 404, None),
    (f"/api/v1/devices?page={BIG}", 400, "page"),
    ("/api/v1/devices?page=0", 400, "page"),
    (f"/api/v1/findings?page={BIG}", 400, "page"),
    (f"/api/v1/devices?agency={BIG}", 200, None),  # no agency has that id: an empty page
    (f"/api/v1/devices?project={BIG}", 200, None),
    ("/api/v1/devices?agency=%C2%B2", 200, None),  # '²' is a digit to str.isdigit, not to int()
    ("/api/v1/devices?q=a%00b", 400, "q"),  # PostgreSQL refuses NUL in a parameter
    ("/api/v1/findings?rule=a%00b", 400, "rule"),
    ("/api/v1/devices?per_page=0", 400, "per_page"),
    ("/api/v1/scans?limit=x", 400, "limit"),
])
def test_what_the_fuzzer_found_stays_fixed(fuzz_app, url, status, named):
    """Found by fuzzing: huge ids and pages, odd digits and NUL bytes gave 500s (SQLite overflow, psycopg)."""
    response = fuzz_app.test_client().get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == status, response.get_data(as_text=True)
    if named:
        assert response.get_json()["detail"].startswith(named), response.get_json()
