"""Log-in, log-out and the language switch."""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from cctv_monitor import audit, throttle
from cctv_monitor.accounts import check_login, end_sessions
from cctv_monitor.db import get_session
from cctv_monitor.models import User
from dashboards import i18n
from dashboards.lang import current_language, t
from dashboards.security import LoginUser

#: Session keys: the user's auth version when the session was issued, and the log-in time (epoch seconds).
AUTH_VERSION_KEY = "_auth_version"
LOGIN_AT_KEY = "_login_at"

LOGGER = logging.getLogger(__name__)

bp = Blueprint("auth", __name__, template_folder="templates")


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths are followed after log-in (no open redirect)."""
    if not target:
        return url_for("main.overview")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("main.overview")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Log-in form; on success go to ``next`` (same site only)."""
    if current_user.is_authenticated:
        return redirect(url_for("main.overview"))
    error = None
    username = ""
    if request.method == "POST":
        username = (request.form.get("username") or "").strip()[:64]
        password = request.form.get("password") or ""
        app = current_app._get_current_object()
        policy = throttle.Policy.from_config(app.config)
        keys = throttle.login_keys(username, request.remote_addr)
        if throttle.remaining(app, keys) > 0:
            # Refused without looking at the password; the attempt still counts, so hammering only waits longer.
            wait = throttle.register_failure(app, keys, policy)
            LOGGER.warning("log-in for user %r from %s refused for %.0f s (too many failures)", username,
                           request.remote_addr, wait)
            audit.record_now(app, "login_throttled", actor=username, object_type="user", object_repr=username,
                             detail={"retry_after_s": int(throttle.retry_after(wait))})
            return _throttled(username, wait)
        row = check_login(get_session(), username, password)
        if row is None:
            wait = throttle.register_failure(app, keys, policy)
            LOGGER.warning("failed log-in for user %r from %s", username, request.remote_addr)
            audit.record_now(app, "login_failed", actor=username, object_type="user", object_repr=username)
            error = t("login_failed")
        else:
            throttle.register_success(app, keys)
            session.clear()
            session.permanent = True
            session[AUTH_VERSION_KEY] = row.auth_version or 0
            session[LOGIN_AT_KEY] = time.time()
            login_user(LoginUser.from_row(row))
            audit.record_now(app, "login", actor=row.username, object_type="user", object_repr=row.username)
            LOGGER.info("user %s logged in", row.username)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error, username=username), (401 if error else 200)


def _throttled(username: str, wait: float) -> Any:
    """429 with the wait in Thai and English (whoever is locked out may not have picked a language yet)."""
    seconds = throttle.retry_after(wait)
    lang = current_language()
    other = "en" if lang == "th" else "th"
    body = render_template("login.html", error=i18n.translate("login_throttled", lang, seconds=seconds),
                           error_other=i18n.translate("login_throttled", other, seconds=seconds), username=username)
    return body, 429, {"Retry-After": seconds}


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    """Log out (POST with CSRF token, so another site cannot log a user out)."""
    lang = g.get("lang")
    if current_user.is_authenticated:
        row = get_session().get(User, current_user.id)
        if row is not None:
            # Log-out ends every session of this user, including copies of this cookie.
            end_sessions(row)
            audit.record(get_session(), "logout", actor=row.username, object_type="user", object_repr=row.username)
            get_session().commit()
    logout_user()
    session.clear()
    if lang:
        session["lang"] = lang
    flash(i18n.translate("logged_out", lang or "th"), "info")
    return redirect(url_for("auth.login"))


@bp.route("/language", methods=["POST"])
def language() -> Any:
    """Switch the language; remembered on the user (and in the session before log-in)."""
    lang = request.form.get("lang")
    if lang not in i18n.LANGUAGES:
        lang = "en" if g.get("lang", "th") == "th" else "th"
    session["lang"] = lang
    if current_user.is_authenticated:
        db = get_session()
        row = db.get(User, current_user.id)
        if row is not None:
            row.language = lang
            db.commit()
    g.lang = lang
    return redirect(_safe_next(request.form.get("next")))
