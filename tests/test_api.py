"""JSON API and agency scoping on SQLite and PostgreSQL: tokens, filters, OpenAPI, and a technician of one
agency who can neither see nor change another agency's devices (through the API and through the web)."""

from __future__ import annotations

import json

import pytest

from cctv_monitor.simulator.sampledata import CAMERA_PASSWORD
from tests.dashboard_helpers import bearer, csrf_from, login, seeded


@pytest.fixture
def data(app):
    """Sample data (demo agencies plus a few bulk devices)."""
    return seeded(app, extra_devices=30, days=5)


def _all_devices(client, headers, **params):
    items, page = [], 1
    while True:
        response = client.get("/api/v1/devices", headers=headers, query_string={**params, "page": page,
                                                                                "per_page": 200})
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        items += body["items"]
        if page >= body["pages"]:
            return items
        page += 1


def test_token_required(client, data):
    """No token, a wrong token or another scheme: 401 with a JSON body and a WWW-Authenticate header."""
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic YWRtaW46eA=="}):
        response = client.get("/api/v1/devices", headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"] == "Unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_devices_filters_and_bad_parameters(client, data):
    """Filters work like the table's; invalid values get a 400 that names the parameter."""
    rows = _all_devices(client, bearer("admin"), status="non_compliant", agency="maesai-mun")
    addresses = {r["address"] for r in rows}
    assert {"127.0.1.13:8000", "127.0.1.17:8000"} <= addresses
    assert all(r["status"] == "non_compliant" and r["agency"] == "maesai-mun" for r in rows)
    for bad, name in (("status=broken", "status"), ("page=x", "page"), ("sort=password", "sort"),
                      ("per_page=100000", "per_page")):
        response = client.get(f"/api/v1/devices?{bad}", headers=bearer("admin"))
        assert response.status_code == 400, bad
        assert name in response.get_json()["detail"]


def test_device_detail_findings_projects_scans(client, data):
    """Device detail has findings and redacted profiles; findings, projects and scans list."""
    device_id = data.devices["127.0.1.17:8000"]
    body = client.get(f"/api/v1/devices/{device_id}", headers=bearer("auditor")).get_json()
    assert body["findings"][0]["rule_id"] == "stream_resolution"
    assert body["profiles"][0]["stream_uri"].startswith("rtsp://***@")
    assert "password=***" in body["profiles"][1]["stream_uri"]
    findings = client.get("/api/v1/findings?rule=codec", headers=bearer("auditor")).get_json()
    assert findings["total"] >= 1 and all(f["rule_id"] == "codec" for f in findings["items"])
    projects = client.get("/api/v1/projects", headers=bearer("auditor")).get_json()
    assert {p["code"] for p in projects["items"]} == {"CR-MS-2568-001", "CR-MS-2568-002", "CR-MS-2567-003"}
    project = client.get(f"/api/v1/projects/{data.projects['CR-MS-2567-003']}", headers=bearer("auditor")).get_json()
    assert project["approved_count"] == 8 and project["last_check"]["state"] == "completed"
    scans = client.get("/api/v1/scans", headers=bearer("auditor")).get_json()
    assert any(s["state"] == "failed" and "interrupted" in s["error"] for s in scans["items"])


def test_openapi_document(client, data):
    """The OpenAPI document lists every endpoint and the bearer scheme."""
    doc = client.get("/api/v1/openapi.json", headers=bearer("auditor")).get_json()
    assert doc["openapi"].startswith("3.")
    assert {"/devices", "/devices/{id}", "/findings", "/projects", "/projects/{id}", "/scans"} <= set(doc["paths"])
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_no_camera_password_anywhere_in_the_api(client, data):
    """No response of the API carries a camera password or the encrypted site credentials."""
    headers = bearer("admin")
    texts = [client.get(p, headers=headers).get_data(as_text=True) for p in (
        "/api/v1/devices?per_page=200", "/api/v1/findings?per_page=200", "/api/v1/projects", "/api/v1/scans",
        f"/api/v1/projects/{data.projects['CR-MS-2568-001']}")]
    texts += [client.get(f"/api/v1/devices/{i}", headers=headers).get_data(as_text=True) for i in data.devices.values()]
    for text in texts:
        assert CAMERA_PASSWORD not in text
        assert "gAAAAA" not in text
        assert '"password"' not in text


def test_technician_sees_only_own_agency_in_api(client, data):
    """tech-maesai lists only maesai-mun devices, gets 404 for others, and cannot filter its way out."""
    own = _all_devices(client, bearer("tech-maesai"))
    assert own and all(r["agency"] == "maesai-mun" for r in own)
    assert len(own) < len(_all_devices(client, bearer("admin")))
    assert _all_devices(client, bearer("tech-maesai"), agency="pongpha-sao") == []
    other = data.devices["127.0.4.17:8000"]
    assert client.get(f"/api/v1/devices/{other}", headers=bearer("tech-maesai")).status_code == 404
    findings = client.get("/api/v1/findings?per_page=200", headers=bearer("tech-maesai")).get_json()["items"]
    own_ids = {r["id"] for r in own}
    assert findings and all(f["device_id"] in own_ids for f in findings)
    projects = client.get("/api/v1/projects", headers=bearer("tech-maesai")).get_json()["items"]
    assert [p["code"] for p in projects] == ["CR-MS-2568-001"]
    assert client.get(f"/api/v1/projects/{data.projects['CR-MS-2567-003']}",
                      headers=bearer("tech-maesai")).status_code == 404
    scans = client.get("/api/v1/scans", headers=bearer("tech-maesai")).get_json()["items"]
    assert scans and all(s["target_value"].startswith("CR-MS-2568-001") for s in scans)


def test_technician_cannot_scan_other_agency_in_api(client, data):
    """A scan of another agency's site is refused (403); so are auditors; a malformed body is a 400."""
    response = client.post("/api/v1/scans", headers=bearer("tech-maesai"),
                           data=json.dumps({"target": "CR-MS-2567-003/office"}), content_type="application/json")
    assert response.status_code == 403
    response = client.post("/api/v1/scans", headers=bearer("auditor"),
                           data=json.dumps({"target": "CR-MS-2568-001/market"}), content_type="application/json")
    assert response.status_code == 403
    response = client.post("/api/v1/scans", headers=bearer("admin"), data="not json", content_type="application/json")
    assert response.status_code == 400
    # Discovery on an interface of the server: administrators only, and only an interface that exists.
    response = client.post("/api/v1/scans", headers=bearer("tech-maesai"),
                           json={"target": "CR-MS-2568-001/market", "interface": "lo"})
    assert response.status_code == 403 and "administrator" in response.get_json()["detail"]
    response = client.post("/api/v1/scans", headers=bearer("admin"), json={"target": "CR-MS-2568-001/market",
                                                                             "interface": "no-such-if0"})
    assert response.status_code == 409 and "no network interface called 'no-such-if0'" in response.get_json()["detail"]
    assert client.post("/api/v1/scans", headers=bearer("admin"),
                       json={"target": "CR-MS-2568-001/market", "interface": 7}).status_code == 400


def test_session_cannot_post_to_the_api(client, data):
    """A browser session may read the API but not change anything without a token (no CSRF hole)."""
    login(client, "admin")
    assert client.get("/api/v1/devices").status_code == 200
    response = client.post("/api/v1/scans", data=json.dumps({"target": "CR-MS-2568-001/market"}),
                           content_type="application/json")
    assert response.status_code == 401


def test_technician_scope_on_the_web(client, data):
    """tech-wiang: no Mae Sai devices in the table, 404 on their pages, exports and thumbnails, no scan."""
    login(client, "tech-wiang")
    table = client.get("/devices?per_page=200").get_data(as_text=True)
    assert "127.0.3.11:8000" in table
    assert "127.0.1.13:8000" not in table and "127.0.4.17" not in table
    maesai_device = data.devices["127.0.1.17:8000"]
    assert client.get(f"/devices/{maesai_device}").status_code == 404
    assert client.get(f"/devices/{maesai_device}/thumbnail/1.jpg").status_code == 404
    assert client.get(f"/projects/{data.projects['CR-MS-2568-001']}").status_code == 404
    csv_text = client.get("/exports/devices.csv").get_data(as_text=True)
    assert "127.0.3.11" in csv_text and "127.0.1." not in csv_text
    overview = client.get("/").get_data(as_text=True)
    assert "เทศบาลตำบลแม่สาย" not in overview
    unregistered = client.get("/unregistered").get_data(as_text=True)
    assert "127.0.3.31" in unregistered and "127.0.1.30" not in unregistered
    token = csrf_from(client, "/scans")
    scans_page = client.get("/scans").get_data(as_text=True)
    assert "CR-MS-2568-002/school" in scans_page and "CR-MS-2568-001/market" not in scans_page
    response = client.post("/scans/run", data={"target": "CR-MS-2568-001/market", "csrf_token": token})
    assert response.status_code == 403
    response = client.post("/unregistered/assign", data={"device_id": [str(data.devices["127.0.1.30:8000"])],
                                                         "project_id": data.projects["CR-MS-2568-002"],
                                                         "csrf_token": token})
    assert response.status_code == 403
