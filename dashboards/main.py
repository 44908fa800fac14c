"""The dashboard pages: overview, devices, device detail, projects, unregistered devices, scans, exports."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Callable

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from cctv_monitor.serialize import observation_profiles, redact_uri
from sqlalchemy import select

from cctv_monitor import audit
from cctv_monitor.db import get_session
from cctv_monitor.models import (
    Device,
    DeviceChange,
    Observation,
    Project,
    RegisterEntry,
    ScanSchedule,
    Site,
)
from cctv_monitor.statuses import DeviceStatus
from dashboards import exports, figures, overview_cache, queries
from dashboards.lang import t
from dashboards.i18n import format_date
from dashboards.queries import DeviceFilters
from dashboards.recorders import recorder_view
from dashboards.security import project_scope, visible_agency_ids

LOGGER = logging.getLogger(__name__)

bp = Blueprint("main", __name__, template_folder="templates")

# Keys of observation JSON that must never reach a page, whatever a probe put there.
def _lang() -> str:
    from dashboards.lang import current_language

    return current_language()


# ------------------------------------------------------------------------------------------- overview


@bp.route("/")
def overview() -> Any:
    """Tiles per status, per-agency bars, trend, resolution/codec mix, top findings; filterable."""
    session = get_session()
    filters = DeviceFilters.from_args(request.args)
    lang = _lang()

    def build() -> dict[str, Any]:
        counts = queries.status_counts(session, filters, current_user)
        agencies = queries.agency_status_counts(session, filters, current_user)
        trend = queries.status_trend(session, filters, current_user)
        charts = {
            "agency": figures.cached_json(figures.agency_bars, agencies, lang),
            "trend": figures.cached_json(figures.trend, trend, lang),
            "resolution": figures.cached_json(figures.pie, queries.resolution_mix(session, filters, current_user),
                                              lang, "chart_resolution"),
            "codec": figures.cached_json(figures.pie, queries.codec_mix(session, filters, current_user), lang,
                                         "chart_codec"),
            "findings": figures.cached_json(figures.findings_bars,
                                            queries.top_findings(session, filters, current_user), lang),
        }
        return {"counts": counts, "charts": charts, "options": queries.filter_options(session, current_user),
                "rate": queries.compliance_rate(counts), "total": sum(counts.values()),
                "behind_recorders": queries.behind_recorder_count(session, filters, current_user)}

    context = overview_cache.overview_context(session, filters, current_user, lang, build)
    return render_template("overview.html", filters=filters, **context)


# -------------------------------------------------------------------------------------------- devices


@bp.route("/devices")
def devices() -> Any:
    """Device table: search, filters, sorting and server-side pagination."""
    session = get_session()
    filters = DeviceFilters.from_args(request.args)
    page = queries.device_page(session, filters, current_user)
    return render_template("devices.html", page=page, filters=filters,
                           options=overview_cache.filter_options(session, current_user))


def _profiles(obs: Observation | None) -> list[dict[str, Any]]:
    """Claimed profiles beside measured streams, from the latest observation, with URIs redacted again."""
    return observation_profiles(obs.data) if obs is not None else []


@bp.route("/devices/<id:device_id>")
def device(device_id: int) -> Any:
    """Identity, addresses, profiles, findings, history and the latest thumbnail of one device."""
    session = get_session()
    row = queries.device_row(session, device_id, current_user)
    if row is None:
        abort(404)
    last_obs = session.get(Observation, row.last_observation_id) if row.last_observation_id else None
    changes = list(session.scalars(select(DeviceChange).where(DeviceChange.device_id == row.id)
                                   .order_by(DeviceChange.changed_at.desc(), DeviceChange.id.desc()).limit(50)))
    xaddrs = []
    if last_obs is not None and isinstance(last_obs.data, dict):
        xaddrs = [redact_uri(x) for x in last_obs.data.get("xaddrs") or [] if isinstance(x, str)]
    return render_template("device.html", device=row, last_obs=last_obs, profiles=_profiles(last_obs),
                           recorder=recorder_view(session, row, last_obs),
                           findings=queries.device_findings(session, row.id),
                           history=queries.device_history(session, row.id), changes=changes, xaddrs=xaddrs,
                           thumbnail_id=queries.latest_thumbnail_id(session, row.id))


@bp.route("/devices/<id:device_id>/thumbnail/<id:observation_id>.jpg")
def thumbnail(device_id: int, observation_id: int) -> Any:
    """A stored JPEG thumbnail (only of a device the user may read)."""
    session = get_session()
    if queries.device_row(session, device_id, current_user) is None:
        abort(404)
    data = session.scalar(select(Observation.thumbnail_jpeg).where(Observation.id == observation_id,
                                                                   Observation.device_id == device_id))
    if not data or not bytes(data).startswith(b"\xff\xd8"):
        abort(404)
    response = Response(bytes(data), mimetype="image/jpeg")
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


# ------------------------------------------------------------------------------------------- projects


@bp.route("/projects")
def projects() -> Any:
    """Approved count vs found vs compliant per project."""
    return render_template("projects.html", projects=queries.project_summaries(get_session(), current_user))


@bp.route("/projects/<id:project_id>")
def project(project_id: int) -> Any:
    """One project: per-site counts, the last acceptance check and the device register."""
    detail = queries.project_detail(get_session(), project_id, current_user)
    if detail is None:
        abort(404)
    return render_template("project.html", **detail)


# --------------------------------------------------------------------------------------- unregistered


@bp.route("/unregistered")
def unregistered() -> Any:
    """Devices that answered but are in no register; admins can add them to a project's register."""
    session = get_session()
    filters = DeviceFilters.from_args(request.args)
    filters = replace(filters, registered="no")
    page = queries.device_page(session, filters, current_user)
    projects_rows = list(session.execute(project_scope(select(Project.id, Project.code, Project.title_th,
                                                              Project.title_en), current_user)
                                         .order_by(Project.code)))
    sites = list(session.execute(select(Site.id, Site.code, Site.project_id, Site.name_th, Site.name_en)
                                 .where(Site.project_id.in_([p.id for p in projects_rows] or [-1]))
                                 .order_by(Site.project_id, Site.code)))
    return render_template("unregistered.html", page=page, filters=filters, projects=projects_rows, sites=sites,
                           options=overview_cache.filter_options(session, current_user))


@bp.route("/unregistered/assign", methods=["POST"])
def assign() -> Any:
    """Add the selected unregistered devices to a project's register (admins only)."""
    if not current_user.is_admin:
        abort(403)
    session = get_session()
    try:
        ids = sorted({int(v) for v in request.form.getlist("device_id")})
        project_id = int(request.form.get("project_id") or 0)
        site_id = int(request.form.get("site_id") or 0) or None
    except ValueError:
        abort(400)
    if not ids:
        flash(t("assign_none"), "error")
        return redirect(url_for("main.unregistered"))
    project_row = session.get(Project, project_id)
    if project_row is None:
        abort(400)
    site = session.get(Site, site_id) if site_id else None
    if site_id and (site is None or site.project_id != project_row.id):
        flash(t("assign_bad_site"), "error")
        return redirect(url_for("main.unregistered"))
    done = assign_devices(session, ids, project_row, site, added_by=f"dashboard:{current_user.username}")
    audit.record(session, "register_assigned", actor=current_user.username, object_type="project",
                 object_repr=project_row.code, detail={"devices": ids, "site": site.code if site else None,
                                                       "added": done})
    session.commit()
    flash(t("assigned", n=done, project=project_row.code), "success")
    return redirect(url_for("main.unregistered"))


def assign_devices(session: Any, device_ids: list[int], project_row: Project, site: Site | None, *,
                   added_by: str) -> int:
    """Create register entries for devices (by MAC, else serial) and link the devices; returns how many."""
    from cctv_monitor.registry import normalise_mac

    done = 0
    rows = list(session.scalars(select(Device).where(Device.id.in_(device_ids))))
    for dev in rows:
        mac = normalise_mac(dev.mac) if dev.mac else None
        entry = None
        if mac:
            entry = session.scalar(select(RegisterEntry).where(RegisterEntry.project_id == project_row.id,
                                                               RegisterEntry.mac == mac))
        elif dev.serial:
            entry = session.scalar(select(RegisterEntry).where(RegisterEntry.project_id == project_row.id,
                                                               RegisterEntry.serial == dev.serial))
        if entry is None:
            entry = RegisterEntry(project_id=project_row.id, site_id=site.id if site else None, mac=mac,
                                  serial=dev.serial, label=(dev.name or dev.address or "")[:255] or None,
                                  address=dev.address, added_by=added_by[:64])
            session.add(entry)
            session.flush()
        dev.project_id = project_row.id
        dev.agency_id = project_row.agency_id
        dev.site_id = site.id if site else dev.site_id
        dev.register_entry_id = entry.id
        dev.registered = True
        # The compliance engine re-evaluates at the next scan; until then it is no longer "unregistered".
        if dev.status == DeviceStatus.UNREGISTERED.value:
            dev.status = DeviceStatus.UNKNOWN.value
            dev.status_changed = datetime.now(timezone.utc)
        LOGGER.info("%s: added to the register of %s by %s", dev.address, project_row.code, added_by)
        done += 1
    return done


# ----------------------------------------------------------------------------------------------- scans


def scan_starter() -> Callable[..., int] | None:
    """helper-4's ``start_scan_in_background`` when the scan pipeline is installed, else None."""
    try:
        from cctv_monitor.scanning import start_scan_in_background
    except ImportError:
        return None
    return start_scan_in_background


def schedule_syncer() -> Callable[..., Any] | None:
    """``cctv_monitor.scheduler.sync_schedules`` when the scheduler is installed, else None."""
    try:
        from cctv_monitor.scheduler import sync_schedules
    except ImportError:
        return None
    return sync_schedules


def _scannable_sites(session: Any) -> list[dict[str, Any]]:
    allowed = visible_agency_ids(current_user)
    stmt = (select(Site.id, Site.code, Site.name_th, Site.name_en, Project.code.label("project_code"),
                   Project.agency_id)
            .join(Project, Project.id == Site.project_id).order_by(Project.code, Site.code))
    if allowed is not None:
        stmt = stmt.where(Project.agency_id.in_(allowed or [-1]))
    rows = []
    for r in session.execute(stmt):
        if current_user.may_scan_agency(r.agency_id):
            rows.append({**dict(r._mapping), "target": queries.site_target(r.project_code, r.code)})
    return rows


@bp.route("/scans")
def scans() -> Any:
    """Scan runs with duration, counts and errors; scan now; schedules."""
    session = get_session()
    schedules = list(session.scalars(select(ScanSchedule).order_by(ScanSchedule.target_kind,
                                                                    ScanSchedule.target_value)))
    allowed = visible_agency_ids(current_user)
    if allowed is not None:
        mine = queries.scan_targets(session, allowed)
        schedules = [s for s in schedules if s.target_value in mine.get(s.target_kind, [])]
    from flask import current_app

    from cctv_monitor import zone_status

    runs = queries.scan_runs(session, current_user)
    broker = current_app.config.get("BROKER_URL")
    return render_template("scans.html", runs=runs, schedules=schedules,
                           units=zone_status.unit_counts(session, [r.id for r in runs]),
                           broker=bool(broker),
                           zones=zone_status.zones_of_sites(session) if broker else [],
                           zone_workers=zone_status.zone_workers(broker) if broker else None,
                           sites=_scannable_sites(session), scan_available=scan_starter() is not None,
                           targets=queries.scan_targets(session, None) if current_user.is_admin else {})


@bp.route("/scans/run", methods=["POST"])
def scan_now() -> Any:
    """Start a background scan of one site the user may scan."""
    start = scan_starter()
    if start is None:
        flash(t("scan_unavailable"), "error")
        return redirect(url_for("main.scans"))
    session = get_session()
    target = request.form.get("target") or ""
    allowed = {s["target"]: s for s in _scannable_sites(session)}
    if target not in allowed:
        abort(403)
    try:
        run_id = start(current_app._get_current_object(), "site", target,
                       with_streams=bool(request.form.get("with_streams")), trigger="manual",
                       started_by=current_user.username)
    except Exception as exc:  # noqa: BLE001 - ScanAlreadyRunning/ScanTargetError: tell the user, keep the page
        if type(exc).__name__ not in ("ScanAlreadyRunning", "ScanTargetError", "ScanError"):
            raise
        flash(f"{target}: {exc}", "error")
        return redirect(url_for("main.scans"))
    LOGGER.info("scan of %s started by %s (run %s)", target, current_user.username, run_id)
    flash(t("scan_started", target=target, id=run_id), "success")
    return redirect(url_for("main.scans"))


def _validate_cron(expr: str) -> str | None:
    """None if ``expr`` is a valid 5-field crontab, else the parser's message."""
    try:
        from apscheduler.triggers.cron import CronTrigger

        CronTrigger.from_crontab(expr)
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None


@bp.route("/scans/schedules", methods=["POST"])
@bp.route("/scans/schedules/<id:schedule_id>", methods=["POST"])
def schedule_save(schedule_id: int | None = None) -> Any:
    """Create or edit a scan schedule (admins only), then reload the scheduler."""
    if not current_user.is_admin:
        abort(403)
    session = get_session()
    row = session.get(ScanSchedule, schedule_id) if schedule_id else ScanSchedule()
    if row is None:
        abort(404)
    if schedule_id is None:
        kind = request.form.get("target_kind") or ""
        value = (request.form.get("target_value") or "").strip()
        targets = queries.scan_targets(session, None)
        if kind not in ("site", "project", "agency") or value not in targets.get(kind, []):
            flash(t("bad_request") + f": {kind} {value}", "error")
            return redirect(url_for("main.scans"))
        row.target_kind, row.target_value = kind, value
    cron = (request.form.get("cron") or "").strip()
    interval_raw = (request.form.get("interval_minutes") or "").strip()
    interval = None
    if interval_raw:
        if not interval_raw.isdigit() or not 1 <= int(interval_raw) <= 525600:
            flash(t("schedule_need_one"), "error")
            return redirect(url_for("main.scans"))
        interval = int(interval_raw)
    if bool(cron) == bool(interval):
        flash(t("schedule_need_one"), "error")
        return redirect(url_for("main.scans"))
    if cron:
        error = _validate_cron(cron)
        if error:
            flash(t("schedule_bad_cron", error=error), "error")
            return redirect(url_for("main.scans"))
    before = _schedule_state(row) if schedule_id else None
    row.cron, row.interval_minutes = cron or None, interval
    row.with_streams = bool(request.form.get("with_streams"))
    row.enabled = bool(request.form.get("enabled"))
    session.add(row)
    audit.record(session, "schedule_updated" if schedule_id else "schedule_created", actor=current_user.username,
                 object_type="schedule", object_repr=f"{row.target_kind} {row.target_value}",
                 detail={"before": before, "after": _schedule_state(row)})
    session.commit()
    _sync_schedules()
    flash(t("schedule_saved"), "success")
    return redirect(url_for("main.scans"))


@bp.route("/scans/schedules/<id:schedule_id>/delete", methods=["POST"])
def schedule_delete(schedule_id: int) -> Any:
    """Delete a scan schedule (admins only)."""
    if not current_user.is_admin:
        abort(403)
    session = get_session()
    row = session.get(ScanSchedule, schedule_id)
    if row is None:
        abort(404)
    audit.record(session, "schedule_deleted", actor=current_user.username, object_type="schedule",
                 object_repr=f"{row.target_kind} {row.target_value}", detail={"before": _schedule_state(row)})
    session.delete(row)
    session.commit()
    _sync_schedules()
    flash(t("schedule_deleted"), "success")
    return redirect(url_for("main.scans"))


def _schedule_state(row: ScanSchedule) -> dict[str, Any]:
    """The fields of a schedule the audit log keeps before and after a change."""
    return {"cron": row.cron, "interval_minutes": row.interval_minutes, "with_streams": bool(row.with_streams),
            "enabled": bool(row.enabled)}


def _sync_schedules() -> None:
    sync = schedule_syncer()
    if sync is None:
        flash(t("schedule_not_synced"), "info")
        return
    try:
        sync(current_app._get_current_object())
    except Exception:  # noqa: BLE001 - the row is saved; a scheduler problem must not lose the edit
        LOGGER.exception("reloading the scheduler failed")


# --------------------------------------------------------------------------------------------- exports


@bp.route("/exports")
def exports_page() -> Any:
    """Export links carrying the current device filters."""
    session = get_session()
    filters = DeviceFilters.from_args(request.args)
    total = queries.device_page(session, replace(filters, per_page=25), current_user).total
    return render_template("exports.html", filters=filters, total=total,
                           options=overview_cache.filter_options(session, current_user))


@bp.route("/exports/<kind>.<fmt>")
def export(kind: str, fmt: str) -> Any:
    """Devices or findings as CSV or XLSX, with the filters applied."""
    if kind not in ("devices", "findings") or fmt not in ("csv", "xlsx"):
        abort(404)
    session = get_session()
    filters = DeviceFilters.from_args(request.args)
    lang = _lang()
    if kind == "devices":
        headers, rows = exports.DEVICE_HEADERS[lang], exports.device_rows(session, filters, current_user, lang)
    else:
        headers, rows = exports.FINDING_HEADERS[lang], exports.finding_rows(session, filters, current_user, lang)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M")
    name = f"cctv-{kind}-{stamp}.{fmt}"
    LOGGER.info("export %s.%s by %s", kind, fmt, current_user.username)
    audit.record_now(current_app._get_current_object(), "export", actor=current_user.username, object_type=kind,
                     object_repr=name, detail=filters.args(page=1) or None)
    # Built whole (a few MB at 10,000 devices) rather than streamed, so the request's database session is
    # closed when the view returns instead of staying open for as long as a slow client reads; reused while
    # the data holds (overview_cache), so many users exporting the same thing cost one build.
    if fmt == "csv":
        body = overview_cache.export_file(session, kind, fmt, filters, current_user, lang,
                                          lambda: "".join(exports.to_csv(headers, rows)).encode("utf-8"))
        response = Response(body, mimetype="text/csv; charset=utf-8")
    else:
        body = overview_cache.export_file(session, kind, fmt, filters, current_user, lang,
                                          lambda: exports.to_xlsx(kind, headers, rows))
        response = Response(body, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.app_template_global()
def url_with(endpoint: str, filters: DeviceFilters, **changes: Any) -> str:
    """URL of ``endpoint`` with ``filters`` (changed by ``changes``) as query arguments."""
    return url_for(endpoint, **filters.args(**changes))


@bp.app_template_global()
def today_text() -> str:
    """Today's date in the page language."""
    return format_date(datetime.now(timezone.utc), _lang())
