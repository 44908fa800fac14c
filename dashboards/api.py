"""JSON API under ``/api/v1/`` (devices, findings, projects, scans) with an OpenAPI 3.1 document.

Authentication: ``Authorization: Bearer <token>`` (tokens made by ``cctv-monitor users token``, stored
hashed). A signed-in browser session may also read (GET) so the dashboard can link here, but changes
(POST) need a token: the API is exempt from CSRF, so a cookie alone must never be enough to change things.
The same access scope as the pages applies: technicians see their own agency only.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from flask import Blueprint, abort, current_app, g, jsonify, request
from flask_login import current_user
from cctv_monitor.serialize import device_summary, device_to_dict
from sqlalchemy import and_, func, select

from cctv_monitor import audit, throttle
from cctv_monitor.accounts import user_for_token
from cctv_monitor.db import get_session
from cctv_monitor.models import Agency, Device, Finding, Observation, Project, ScanRun
from dashboards import queries
from dashboards.openapi import openapi_document
from dashboards.queries import DeviceFilters, FilterError
from dashboards.security import LoginUser, device_scope

LOGGER = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _principal() -> Any:
    return g.api_user


@bp.before_request
def authenticate() -> Any:
    """Bearer token, or (for GET only) the browser session; 401 otherwise."""
    header = request.headers.get("Authorization", "")
    if header:
        app = current_app._get_current_object()
        keys = throttle.token_keys(request.remote_addr)
        policy = throttle.Policy.from_config(app.config)
        if throttle.remaining(app, keys) > 0:
            wait = throttle.register_failure(app, keys, policy)
            audit.record_now(app, "token_throttled", actor=None,
                             detail={"retry_after_s": int(throttle.retry_after(wait))})
            return _throttled(wait)
        scheme, _, token = header.partition(" ")
        row = user_for_token(get_session(), token.strip()) if scheme.lower() == "bearer" else None
        if row is None:
            throttle.register_failure(app, keys, policy)
            LOGGER.warning("API request with an invalid bearer token from %s", request.remote_addr)
            audit.record_now(app, "token_rejected", actor=None)
            return _error(401, "invalid or missing bearer token")
        g.api_user = LoginUser.from_row(row)
        return None
    if request.method == "GET" and current_user.is_authenticated:
        g.api_user = current_user._get_current_object()
        return None
    return _error(401, "authentication required: send 'Authorization: Bearer <token>'")


def _throttled(wait: float) -> Any:
    """429 naming the wait in English and Thai, with Retry-After."""
    seconds = throttle.retry_after(wait)
    response = jsonify({"error": "Too Many Requests",
                        "detail": f"too many invalid bearer tokens from this address: wait {seconds} s",
                        "detail_th": f"ใช้โทเคนไม่ถูกต้องหลายครั้งเกินไป กรุณารอ {seconds} วินาที"})
    response.status_code = 429
    response.headers["Retry-After"] = seconds
    return response


def _error(status: int, detail: str) -> Any:
    response = jsonify({"error": {401: "Unauthorized", 400: "Bad Request", 403: "Forbidden",
                                  404: "Not Found", 503: "Service Unavailable", 409: "Conflict",
                                  413: "Payload Too Large"}.get(status, "Error"), "detail": detail})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="cctv-monitor"'
    return response


def _filters() -> DeviceFilters:
    try:
        return DeviceFilters.from_args(request.args, strict=True)
    except FilterError as exc:
        abort(_error(400, str(exc)))
    raise AssertionError("unreachable")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _finding_json(f: Finding, confirmed: Any = None) -> dict[str, Any]:
    """A finding; ``confirmed``: when its device's latest observation was made, which confirms an active
    device finding (its row is not rewritten while it holds), shown as its ``last_seen``."""
    last_seen = confirmed if confirmed is not None and f.active and f.device_id is not None else f.last_seen
    return {"id": f.id, "device_id": f.device_id, "project_id": f.project_id, "rule_id": f.rule_id,
            "severity": f.severity, "subject": f.subject, "expected": f.expected, "observed": f.observed,
            "source": f.source, "message_th": f.message_th, "message_en": f.message_en, "active": f.active,
            "first_seen": _iso(f.first_seen), "last_seen": _iso(last_seen), "resolved_at": _iso(f.resolved_at)}


def _page_json(items: list[Any], total: int, page: int, per_page: int) -> dict[str, Any]:
    return {"items": items, "total": total, "page": page, "per_page": per_page,
            "pages": max(1, -(-total // per_page))}


@bp.get("/openapi.json")
def openapi() -> Any:
    """The OpenAPI document of this API."""
    return jsonify(openapi_document(request.host_url.rstrip("/")))


@bp.get("/devices")
def devices() -> Any:
    """Devices with the dashboard's filters, sorted and paginated."""
    page = queries.device_page(get_session(), _filters(), _principal())
    return jsonify(_page_json([device_summary(r) for r in page.rows], page.total, page.page, page.per_page))


@bp.get("/devices/<id:device_id>")
def device(device_id: int) -> Any:
    """One device with its active findings and the profiles of its latest observation (URIs redacted)."""
    session = get_session()
    row = queries.device_row(session, device_id, _principal())
    if row is None:
        return _error(404, f"device {device_id} not found")
    obs = session.get(Observation, row.last_observation_id) if row.last_observation_id else None
    body = device_to_dict(row, obs.data if obs is not None else None)
    confirmed = obs.observed_at if obs is not None else None
    body["findings"] = [_finding_json(f, confirmed) for f in queries.device_findings(session, row.id)]
    return jsonify(body)


@bp.get("/findings")
def findings() -> Any:
    """Active device findings (filter by the device filters and ``rule``), paginated."""
    filters = _filters()
    rule = (request.args.get("rule") or "").strip()
    if not rule.isprintable():
        return _error(400, "rule: control characters are not allowed")
    if rule:
        filters = replace(filters, finding=rule)
    session = get_session()
    stmt = (select(Finding, queries.LastObs.observed_at).select_from(Device)
            .join(Finding, and_(Finding.device_id == Device.id, Finding.active.is_(True)))
            .outerjoin(queries.LastObs, queries.LastObs.id == Device.last_observation_id)
            .outerjoin(Agency, Agency.id == Device.agency_id).outerjoin(Project, Project.id == Device.project_id))
    stmt = device_scope(stmt, _principal())
    conds = queries.device_conditions(filters)
    if rule:
        conds.append(Finding.rule_id == rule)
    if conds:
        stmt = stmt.where(and_(*conds))
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = session.execute(stmt.order_by(Finding.id).limit(filters.per_page)
                           .offset((filters.page - 1) * filters.per_page))
    return jsonify(_page_json([_finding_json(f, confirmed) for f, confirmed in rows], total, filters.page,
                              filters.per_page))


@bp.get("/projects")
def projects() -> Any:
    """Projects with approved, found and compliant counts."""
    items = [{"id": p["id"], "code": p["code"], "title_th": p["title_th"], "title_en": p["title_en"],
              "agency": p["agency_code"], "approved_count": p["approved_count"], "found": p["found"],
              "compliant": p["compliant"], "counts": dict(p["counts"])}
             for p in queries.project_summaries(get_session(), _principal())]
    return jsonify({"items": items, "total": len(items)})


@bp.get("/projects/<id:project_id>")
def project(project_id: int) -> Any:
    """One project: sites, register (with matched device), project findings, last check."""
    detail = queries.project_detail(get_session(), project_id, _principal())
    if detail is None:
        return _error(404, f"project {project_id} not found")
    p = detail["project"]
    check = detail["last_check"]
    return jsonify({
        "id": p.id, "code": p.code, "title_th": p.title_th, "title_en": p.title_en, "agency": p.agency.code,
        "spec_profile": p.spec_profile.code, "approved_count": p.approved_count, "found": detail["found"],
        "compliant": detail["compliant"], "counts": detail["counts"],
        "sites": [{"code": s["site"].code, "name_th": s["site"].name_th, "address_ranges": s["site"].address_ranges,
                   "registered": s["registered"], "found": s["found"], "compliant": s["compliant"]}
                  for s in detail["sites"]],
        "register": [{"label": r["entry"].label, "mac": r["entry"].mac, "serial": r["entry"].serial,
                      "site": r["site_code"], "device_id": r["device"].id if r["device"] else None,
                      "status": r["device"].status if r["device"] else None} for r in detail["register"]],
        "findings": [_finding_json(f) for f in detail["project_findings"]],
        "last_check": _scan_json(check) if check else None,
    })


def _scan_json(r: ScanRun) -> dict[str, Any]:
    duration = (r.finished - r.started).total_seconds() if r.started and r.finished else None
    return {"id": r.id, "target_kind": r.target_kind, "target_value": r.target_value, "trigger": r.trigger,
            "state": r.state, "started": _iso(r.started), "finished": _iso(r.finished), "duration_s": duration,
            "total": r.total, "done": r.done, "counts": r.counts or {}, "error": r.error,
            "started_by": r.started_by, "with_streams": r.with_streams}


@bp.get("/scans")
def scans() -> Any:
    """Latest scan runs the caller may see."""
    limit = request.args.get("limit", "100")
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        return _error(400, f"limit={limit!r}: expected 1..1000")
    from cctv_monitor.zone_status import unit_counts

    runs = queries.scan_runs(get_session(), _principal(), limit=int(limit))
    units = unit_counts(get_session(), [r.id for r in runs])  # runs across zones: their units per state
    items = [{**_scan_json(r), **({"units": units[r.id]} if r.id in units else {})} for r in runs]
    return jsonify({"items": items, "total": len(runs)})


@bp.post("/scans")
def start_scan() -> Any:
    """Start a scan of a site (``{"target": "PROJECT/site", "with_streams": false, "interface": "eth0"}``)."""
    from dashboards.main import scan_starter

    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("target"), str):
        return _error(400, 'expected a JSON body {"target": "PROJECT/site"}')
    user = _principal()
    session = get_session()
    allowed = queries.scan_targets(session, None if user.is_admin else
                                   ([user.agency_id] if user.is_technician and user.agency_id else []))
    if body["target"] not in allowed.get("site", []):
        return _error(403, f"you may not scan {body['target']!r}")
    interface = body.get("interface")
    if interface is not None and not isinstance(interface, str):
        return _error(400, "interface: expected the name of a network interface of the server")
    if interface is not None and not user.is_admin:  # multicasts on the server's own networks: admins only
        return _error(403, "only an administrator may name an interface of the server")
    start = scan_starter()
    if start is None:
        return _error(503, "the scan pipeline is not installed")
    try:
        run_id = start(current_app._get_current_object(), "site", body["target"],
                       with_streams=bool(body.get("with_streams")), trigger="manual", started_by=user.username,
                       **({"interface": interface} if interface else {}))
    except Exception as exc:  # noqa: BLE001 - only the scan pipeline's own refusals become 409
        if type(exc).__name__ not in ("ScanAlreadyRunning", "ScanTargetError", "ScanError"):
            raise
        return _error(409, str(exc))
    return jsonify({"scan_run_id": run_id}), 202


#: Largest body of POST /observations (bytes) and most observations in one batch (settings may lower them).
OBSERVATIONS_MAX_BYTES = 16 * 1024 * 1024
OBSERVATIONS_MAX_ITEMS = 2000


@bp.post("/observations")
def post_observations() -> Any:
    """Record observations made elsewhere (a zone worker, a field laptop): idempotent by observation id."""
    from cctv_monitor.fieldwork import BatchError, ingest_observations, outside_agency, parse_batch
    from cctv_monitor.scan.errors import ScanAlreadyRunning, ScanError

    app = current_app._get_current_object()
    user = _principal()
    if not (user.is_admin or user.is_technician):
        return _error(403, "only an admin or a technician may send observations")
    limit = int(app.config.get("API_OBSERVATIONS_MAX_BYTES", OBSERVATIONS_MAX_BYTES))
    if request.content_length is None or request.content_length > limit:
        return _error(413, f"body: send a Content-Length of at most {limit} bytes (split the batch)")
    body = request.get_json(silent=True)
    try:
        batch = parse_batch(body, max_observations=int(app.config.get("API_OBSERVATIONS_MAX_ITEMS",
                                                                      OBSERVATIONS_MAX_ITEMS)))
        if not user.is_admin:
            why = outside_agency(get_session(), user.agency_id, batch.target, batch.observations)
            if why:
                return _error(403, why)
        done = ingest_observations(app, batch.observations, target=batch.target, complete=batch.complete,
                                   source="api", started_by=user.username, client_run_id=batch.run,
                                   close=batch.complete or not batch.target)
    except BatchError as exc:
        return _error(exc.status, str(exc))
    except ScanAlreadyRunning as exc:
        return _error(409, f"target: {exc}")
    except ScanError as exc:
        return _error(400, f"target: {exc}")
    return jsonify({"scan_run_id": done.run_id, "new": done.new, "skipped": done.skipped, "failed": done.failed,
                    "closed": done.closed, "coverage": done.coverage}), 200
