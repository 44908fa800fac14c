"""The OpenAPI 3.1 document of ``/api/v1/`` (hand-written: seven endpoints do not justify a generator)."""

from __future__ import annotations

from typing import Any

from cctv_monitor.statuses import DeviceStatus
from dashboards.queries import MAX_PAGE, PER_PAGE_CHOICES, SORT_COLUMNS


def _param(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


DEVICE_FILTERS = [
    _param("q", "Search in name, address, MAC, serial and model (case-insensitive substring)"),
    _param("status", "Device status", {"type": "string", "enum": [s.value for s in DeviceStatus]}),
    _param("agency", "Agency id or code"),
    _param("project", "Project id or code"),
    _param("finding", "Rule id of an active finding the device has"),
    _param("model", "Exact model"),
    _param("firmware", "Exact firmware"),
    _param("province", "Agency province (Thai name)"),
    _param("district", "Agency district (Thai name)"),
    _param("registered", "yes: in a register; no: unregistered", {"type": "string", "enum": ["yes", "no"]}),
    _param("behind", "yes: cameras seen only through a recorder; no: devices with an address of their own",
           {"type": "string", "enum": ["yes", "no"]}),
    _param("page", "Page number (1-based)", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
    _param("per_page", "Rows per page", {"type": "integer", "minimum": 1, "maximum": max(PER_PAGE_CHOICES)}),
]

_NULL_STR = {"type": ["string", "null"]}
_ROW_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}  # a bigger id is a 404 (dashboards.RowIdConverter)
_NULL_INT = {"type": ["integer", "null"]}


def openapi_document(server_url: str) -> dict[str, Any]:
    """The document, with ``server_url`` as the server."""
    page = {"type": "object", "required": ["items", "total", "page", "per_page", "pages"],
            "properties": {"total": {"type": "integer"}, "page": {"type": "integer"},
                           "per_page": {"type": "integer"}, "pages": {"type": "integer"}}}
    ok = {"description": "OK"}
    errors = {"401": {"$ref": "#/components/responses/Unauthorized"},
              "400": {"$ref": "#/components/responses/BadRequest"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "CCTV compliance monitor API", "version": "1.0.0",
                 "description": "Devices, findings, projects and scans. Technicians see only their own agency. "
                                "Camera passwords are never returned; stream URIs are redacted."},
        "servers": [{"url": f"{server_url}/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "Token from `cctv-monitor users token USERNAME`"}},
            "responses": {
                "Unauthorized": {"description": "No or invalid token",
                                 "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "BadRequest": {"description": "A parameter is invalid; detail names it",
                               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "NotFound": {"description": "Does not exist or not visible to the caller",
                             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "string"}, "detail": {"type": "string"}}},
                "Device": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "name": _NULL_STR, "address": _NULL_STR, "mac": _NULL_STR,
                    "serial": _NULL_STR, "manufacturer": _NULL_STR, "model": _NULL_STR, "firmware": _NULL_STR,
                    "status": {"type": "string", "enum": [s.value for s in DeviceStatus]},
                    "registered": {"type": "boolean"}, "agency": _NULL_STR, "project": _NULL_STR,
                    "encoding": _NULL_STR, "width": _NULL_INT, "height": _NULL_INT,
                    "fps": {"type": ["number", "null"]}, "first_seen": _NULL_STR, "last_seen": _NULL_STR,
                    "recorder_id": _NULL_INT, "channel": _NULL_INT}},
                "Finding": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "device_id": _NULL_INT, "project_id": _NULL_INT,
                    "rule_id": {"type": "string"}, "severity": {"type": "string"}, "subject": _NULL_STR,
                    "expected": _NULL_STR, "observed": _NULL_STR, "source": _NULL_STR,
                    "message_th": {"type": "string"}, "message_en": {"type": "string"},
                    "active": {"type": "boolean"}, "first_seen": _NULL_STR,
                    "last_seen": {**_NULL_STR, "description": "last confirmed: for an active device finding, "
                                  "when the device's latest observation was made; for a resolved one, the "
                                  "observation before the one that resolved it"}}},
                "Project": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "code": {"type": "string"}, "agency": {"type": "string"},
                    "approved_count": {"type": "integer"}, "found": {"type": "integer"},
                    "compliant": {"type": "integer"}}},
                "ScanRun": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "target_kind": {"type": "string"}, "target_value": {"type": "string"},
                    "state": {"type": "string"}, "started": _NULL_STR, "finished": _NULL_STR,
                    "duration_s": {"type": ["number", "null"]}, "counts": {"type": "object"}, "error": _NULL_STR,
                    "units": {"type": "object", "description": "A run across zones only: its work units per state "
                                                               "(queued, running, done, failed, expired)"}}},
            },
        },
        "paths": {
            "/devices": {"get": {
                "summary": "List devices", "parameters": DEVICE_FILTERS + [
                    _param("sort", "Sort column", {"type": "string", "enum": list(SORT_COLUMNS)}),
                    _param("direction", "Sort direction", {"type": "string", "enum": ["asc", "desc"]})],
                "responses": {"200": {**ok, "content": {"application/json": {"schema": {
                    "allOf": [page, {"properties": {"items": {"type": "array",
                                                              "items": {"$ref": "#/components/schemas/Device"}}}}]}}}},
                              **errors}}},
            "/devices/{id}": {"get": {
                "summary": "One device with findings and media profiles",
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": _ROW_ID}],
                "responses": {"200": ok, "404": {"$ref": "#/components/responses/NotFound"}, **errors}}},
            "/findings": {"get": {
                "summary": "Active device findings",
                "parameters": DEVICE_FILTERS + [_param("rule", "Rule id")],
                "responses": {"200": {**ok, "content": {"application/json": {"schema": {
                    "allOf": [page, {"properties": {"items": {"type": "array",
                                                              "items": {"$ref": "#/components/schemas/Finding"}}}}]}}}},
                              **errors}}},
            "/projects": {"get": {"summary": "Projects with approved / found / compliant counts",
                                  "responses": {"200": ok, **errors}}},
            "/projects/{id}": {"get": {
                "summary": "One project: sites, register, findings, last check",
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": _ROW_ID}],
                "responses": {"200": ok, "404": {"$ref": "#/components/responses/NotFound"}, **errors}}},
            "/scans": {
                "get": {"summary": "Latest scan runs",
                        "parameters": [_param("limit", "At most this many", {"type": "integer", "minimum": 1,
                                                                              "maximum": 1000})],
                        "responses": {"200": ok, **errors}},
                "post": {"summary": "Start a scan of a site (admin, or technician of the site's agency)",
                         "requestBody": {"required": True, "content": {"application/json": {"schema": {
                             "type": "object", "required": ["target"],
                             "properties": {"target": {"type": "string", "description": "PROJECT/site"},
                                            "with_streams": {"type": "boolean"},
                                            "interface": {"type": "string", "description": (
                                                "admins: also run WS-Discovery, SADP and Dahua discovery on "
                                                "this interface of the server")}}}}}},
                         "responses": {"202": {"description": "Started; body has scan_run_id"},
                                       "403": {"description": "Not your agency's site"},
                                       "503": {"description": "Scan pipeline not installed"}, **errors}}},
            "/observations": {"post": {
                "summary": "Record observations made elsewhere (admin, or technician for its agency's sites only)",
                "description": "Idempotent: an observation whose observation_id was stored before is skipped. "
                               "Batches of one run share the run id; with a target, the run stays open until "
                               "a batch says complete (then it covers the whole target: registered cameras "
                               "not seen become missing). Without complete, only the devices sent change.",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["run", "observations"],
                    "properties": {
                        "run": {"type": "string", "maxLength": 128, "description": "the sender's run id"},
                        "target": {"type": "string", "description": "PROJECT/site, project:CODE or agency:CODE"},
                        "complete": {"type": "boolean", "default": False,
                                     "description": "last batch of a run that covers its whole target"},
                        "observations": {"type": "array", "maxItems": 2000, "items": {
                            "type": "object", "required": ["address", "status", "observation_id"],
                            "description": "probe --json objects (schema_version 1-3) with an observation_id",
                            "properties": {"address": {"type": "string"}, "status": {"type": "string"},
                                           "observation_id": {"type": "string", "maxLength": 128},
                                           "schema_version": {"type": "integer"}}}}}}}}},
                "responses": {"200": {"description": "Recorded; body: scan_run_id, new, skipped, failed, closed, "
                                                     "coverage"},
                              "403": {"description": "Not your agency's target or addresses; detail names the field"},
                              "409": {"description": "Another run of the target is open"},
                              "413": {"description": "Body or batch too large"}, **errors}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": ok}}},
        },
    }
