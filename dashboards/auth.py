"""Log-in, log-out and the language switch."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from cctv_monitor.db import get_session
from cctv_monitor.models import User
from dashboards import i18n
from dashboards.lang import t
from dashboards.security import LoginUser, check_login

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
        row = check_login(get_session(), username, password)
        if row is None:
            LOGGER.warning("failed log-in for user %r from %s", username, request.remote_addr)
            error = t("login_failed")
        else:
            session.clear()
            session.permanent = True
            login_user(LoginUser.from_row(row))
            LOGGER.info("user %s logged in", row.username)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error, username=username), (401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    """Log out (POST with CSRF token, so another site cannot log a user out)."""
    lang = g.get("lang")
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
