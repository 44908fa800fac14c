"""The audit log page and its CSV export (administrators only)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask_login import current_user

from cctv_monitor import audit
from cctv_monitor.db import get_session
from dashboards import exports
from dashboards.lang import current_language

bp = Blueprint("audit", __name__, template_folder="templates")

PER_PAGE = 100


def _day(value: str | None, name: str) -> datetime | None:
    """A ``YYYY-MM-DD`` query argument as UTC midnight; 400 naming the argument otherwise."""
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError:
        abort(400, description=f"{name}={value!r}: expected YYYY-MM-DD")
    raise AssertionError("unreachable")


def _filters() -> audit.AuditFilter:
    """The page's filters from the query string (unknown actions are refused, not ignored)."""
    if not current_user.is_admin:
        abort(403)
    action = request.args.get("action") or None
    if action is not None and action not in audit.ACTIONS:
        abort(400, description=f"action={action!r}: unknown")
    until = _day(request.args.get("until"), "until")
    return audit.AuditFilter(action=action, actor=(request.args.get("actor") or "").strip()[:128] or None,
                             since=_day(request.args.get("since"), "since"),
                             until=until + timedelta(days=1) if until else None)


@bp.route("/audit")
def audit_log() -> Any:
    """Newest entries first, filtered by action, actor and day."""
    filters = _filters()
    page = request.args.get("page", "1")
    page_no = int(page) if page.isdigit() and int(page) >= 1 else 1
    rows, total = audit.entries(get_session(), filters, limit=PER_PAGE, offset=(page_no - 1) * PER_PAGE)
    lang = current_language()
    labels = {key: pair[0] if lang == "th" else pair[1] for key, pair in audit.ACTIONS.items()}
    return render_template("audit.html", rows=rows, total=total, page=page_no, per_page=PER_PAGE,
                           labels=labels, args={k: v for k, v in request.args.items() if k != "page" and v})


@bp.route("/audit.csv")
def audit_csv() -> Any:
    """Every matching entry as CSV (formula cells neutralised); the download itself is recorded."""
    filters = _filters()
    lang = current_language()
    body = "".join(exports.to_csv(audit.CSV_HEADERS[lang], audit.csv_rows(get_session(), filters, lang)))
    audit.record_now(current_app._get_current_object(), "audit_export", actor=current_user.username,
                     detail={k: v for k, v in request.args.items() if v} or None)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M")
    response = Response(body, mimetype="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="cctv-audit-{stamp}.csv"'
    return response
