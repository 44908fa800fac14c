"""The web dashboard: blueprints (auth, main, api, assets), log-in, CSRF, languages and security headers.

``init_app(app)`` is called by :func:`cctv_monitor.create_app`. Every page needs a signed-in user except the
log-in page and the static assets; the JSON API under ``/api/v1/`` authenticates with bearer tokens instead
of the session and is exempt from CSRF (it never reads the session cookie).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from flask import Flask, g, redirect, render_template, request, session, url_for
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy import select
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from cctv_monitor.db import get_session
from cctv_monitor.models import User
from cctv_monitor.statuses import DeviceStatus, Severity
from dashboards import i18n
from dashboards.lang import current_language, t  # noqa: F401 - the package's public helpers
from dashboards.security import AnonymousUser, LoginUser

LOGGER = logging.getLogger(__name__)

csrf = CSRFProtect()
login_manager = LoginManager()

#: Largest row id every database stores (PostgreSQL INTEGER ids: signed 32-bit); URL ids are bounded by it.
ROW_ID_MAX = 2**31 - 1

#: Endpoints reachable without signing in.
PUBLIC_ENDPOINTS = {"auth.login", "auth.language", "assets.static", "assets.plotly_js", "assets.fonts_css", "assets.font_file",
                    "static"}

# Plotly.js injects <style> elements at run time, so styles need 'unsafe-inline'; scripts do not.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")


class RowIdConverter(IntegerConverter):
    """``<id:name>``: a database row id, 1 .. 2**31-1; anything bigger is a 404, not a driver overflow (500)."""

    def __init__(self, url_map: Any) -> None:
        super().__init__(url_map, min=1, max=ROW_ID_MAX)


def init_app(app: Flask) -> None:
    """Register the dashboard on ``app``."""
    app.url_map.converters["id"] = RowIdConverter  # before the blueprints: their rules use it
    app.config.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("REMEMBER_COOKIE_SECURE", app.config.get("SESSION_COOKIE_SECURE", False))
    app.config.setdefault("PERMANENT_SESSION_LIFETIME",
                          timedelta(seconds=int(app.config.get("SESSION_ABSOLUTE_LIFETIME_S", 12 * 3600))))
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", 12 * 3600)

    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"
    login_manager.anonymous_user = AnonymousUser
    login_manager.user_loader(_load_user)

    from dashboards.api import bp as api_bp
    from dashboards.assets import bp as assets_bp
    from dashboards.audit import bp as audit_bp
    from dashboards.auth import bp as auth_bp
    from dashboards.main import bp as main_bp

    app.register_blueprint(assets_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(main_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(audit_bp)
    csrf.exempt(api_bp)

    app.before_request(_require_login)
    app.after_request(_security_headers)
    app.context_processor(_template_helpers)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _server_error)
    app.jinja_env.filters["bedate"] = lambda v, short=False: i18n.format_date(v, current_language(), short=short)
    app.jinja_env.filters["zip_self"] = lambda seq: [(x, x) for x in seq]
    app.jinja_env.filters["bedatetime"] = lambda v: i18n.format_datetime(v, current_language())
    app.jinja_env.filters["probe_reason"] = _probe_reason


def _load_user(user_id: str) -> LoginUser | None:
    """The session's user, unless the session was revoked (auth version) or is older than its lifetime."""
    from flask import current_app

    from dashboards.auth import AUTH_VERSION_KEY, LOGIN_AT_KEY

    try:
        # the seven columns it needs as a plain row, not the ORM object (every request comes here)
        row = get_session().execute(select(User.id, User.username, User.role, User.agency_id, User.language,
                                           User.active, User.auth_version)
                                    .where(User.id == int(user_id))).one_or_none()
    except (TypeError, ValueError):
        return None
    login_at = session.get(LOGIN_AT_KEY)
    max_age = int(current_app.config.get("SESSION_ABSOLUTE_LIFETIME_S", 12 * 3600))
    expired = not isinstance(login_at, (int, float)) or time.time() - login_at > max_age
    revoked = row is None or not row.active or session.get(AUTH_VERSION_KEY) != (row.auth_version or 0)
    if expired or revoked:
        LOGGER.info("session of user #%s ended (%s)", user_id, "expired" if expired else "revoked")
        lang = session.get("lang")
        session.clear()  # the cookie that comes back says nothing of the old log-in
        if lang:
            session["lang"] = lang
        return None
    return LoginUser.from_row(row)


def _probe_reason(probe_status: str | None) -> str:
    """Why a device could not be read (wrong password, ONVIF off, timeout...) in the page's language; '' if read."""
    from cctv_monitor.compliance.engine import unreachable_reason

    if not probe_status or probe_status == "ok":
        return ""
    th, en = unreachable_reason(probe_status)
    return th if current_language() == "th" else en


def _require_login() -> Any:
    endpoint = request.endpoint or ""
    if endpoint in PUBLIC_ENDPOINTS or endpoint.startswith("api."):
        return None
    if not endpoint and request.path.startswith("/api/"):
        return None  # an unknown API path is a JSON 404, not a redirect to the log-in page
    if not current_user.is_authenticated:
        if request.method == "GET":
            return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))
        return redirect(url_for("auth.login"))
    return None


def _security_headers(response: Any) -> Any:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.endpoint and not request.endpoint.startswith("assets."):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _template_helpers() -> dict[str, Any]:
    lang = current_language()
    return {
        "t": t,
        "lang": lang,
        "statuses": list(DeviceStatus),
        "status_of": _status_of,
        "severity_of": _severity_of,
        "rule_label": lambda rule_id: i18n.rule_label(rule_id, lang),
        "fmt_duration": lambda s: i18n.format_duration(s, lang),
        "role_label": lambda role: t(f"role_{role}") if role else "",
    }


def _status_of(value: str | None) -> DeviceStatus:
    try:
        return DeviceStatus(value)
    except ValueError:
        return DeviceStatus.UNKNOWN


def _severity_of(value: str | None) -> Severity | None:
    try:
        return Severity(value)
    except ValueError:
        return None


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _csrf_error(exc: CSRFError) -> Any:
    LOGGER.warning("CSRF check failed on %s: %s", request.path, exc.description)
    return render_template("error.html", code=400, message=t("csrf_error")), 400


def _http_error(exc: HTTPException) -> Any:
    if _wants_json():
        from flask import jsonify

        return jsonify({"error": exc.name, "detail": exc.description}), exc.code
    key = {403: "forbidden", 404: "not_found_page"}.get(exc.code or 0, "bad_request")
    return render_template("error.html", code=exc.code, message=t(key)), exc.code


def _server_error(exc: Exception) -> Any:
    """Roll the request's session back, log, and answer 500 without leaking details."""
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    if "db_session" in g:
        g.db_session.rollback()
    LOGGER.exception("unhandled error on %s", request.path)
    if _wants_json():
        from flask import jsonify

        return jsonify({"error": "Internal Server Error"}), 500
    return render_template("error.html", code=500, message=t("server_error")), 500
