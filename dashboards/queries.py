"""Read queries of the dashboard, the exports and the API: filters, aggregates and one page of devices.

Everything the overview shows is a GROUP BY over the device table (a few thousand rows), the current
observation of each device is reached through ``device.last_observation_id`` (a primary-key join), and the
trend reads the small ``status_daily`` table, so no page ever scans the observation history. Rows come
back as plain tuples/dicts, not ORM objects, so no lazy load can fire per row.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any, Mapping

from sqlalchemy import Select, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from cctv_monitor.models import (
    Agency,
    Device,
    Finding,
    Observation,
    Project,
    RegisterEntry,
    ScanRun,
    Site,
    StatusDaily,
)
from cctv_monitor.statuses import DeviceStatus
from dashboards.security import device_scope, project_scope, visible_agency_ids

LOGGER = logging.getLogger(__name__)

PER_PAGE_CHOICES = (25, 50, 100, 200)
DEFAULT_PER_PAGE = 50
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Highest page number accepted (200 rows a page: 200 million rows); keeps OFFSET inside 64 bits.
MAX_PAGE = 1_000_000
STATUS_VALUES = tuple(s.value for s in DeviceStatus)
AGENCY_BAR_STATUSES = DeviceStatus.group("charted")
RATE_STATUSES = DeviceStatus.group("evaluated")

LastObs = aliased(Observation, name="last_obs")

SORT_COLUMNS: dict[str, Any] = {
    "name": Device.name,
    "address": Device.address,
    "mac": Device.mac,
    "status": Device.status,
    "agency": Agency.code,
    "project": Project.code,
    "model": Device.model,
    "firmware": Device.firmware,
    "last_seen": Device.last_seen,
}


class FilterError(ValueError):
    """A filter value that cannot be used; the message names the parameter."""


@dataclass(frozen=True)
class DeviceFilters:
    """Filters shared by the overview, the device table, the exports and the API."""

    q: str = ""
    status: str = ""
    agency: str = ""  # id or code
    project: str = ""  # id or code
    finding: str = ""  # rule id with an active finding
    model: str = ""
    firmware: str = ""
    province: str = ""
    district: str = ""
    registered: str = ""  # "", "yes", "no"
    behind: str = ""  # "", "yes" (cameras seen only through a recorder), "no"
    sort: str = "address"
    direction: str = "asc"
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    FIELDS = ("q", "status", "agency", "project", "finding", "model", "firmware", "province", "district",
              "registered", "behind")

    @classmethod
    def from_args(cls, args: Mapping[str, str], *, strict: bool = False) -> "DeviceFilters":
        """Read filters from query arguments; bad values are dropped, or raise :class:`FilterError` if strict."""
        values: dict[str, Any] = {}
        for name in cls.FIELDS:
            raw = (args.get(name) or "").strip()
            if _CONTROL.search(raw):
                # PostgreSQL refuses NUL in a string parameter (a 500); no filter value needs control characters
                if strict:
                    raise FilterError(f"{name}: control characters are not allowed")
                raw = _CONTROL.sub("", raw)
            values[name] = raw[:200]
        if values["status"] and values["status"] not in STATUS_VALUES:
            if strict:
                raise FilterError(f"status={values['status']!r}: expected one of {', '.join(STATUS_VALUES)}")
            values["status"] = ""
        for name in ("registered", "behind"):
            if values[name] not in ("", "yes", "no"):
                if strict:
                    raise FilterError(f"{name}={values[name]!r}: expected yes or no")
                values[name] = ""
        sort = args.get("sort") or "address"
        if sort not in SORT_COLUMNS:
            if strict:
                raise FilterError(f"sort={sort!r}: expected one of {', '.join(SORT_COLUMNS)}")
            sort = "address"
        direction = args.get("direction") or "asc"
        if direction not in ("asc", "desc"):
            if strict:
                raise FilterError(f"direction={direction!r}: expected asc or desc")
            direction = "asc"
        page = _int_arg(args, "page", 1, strict)
        if not 1 <= page <= MAX_PAGE:
            if strict:
                raise FilterError(f"page={page}: expected 1..{MAX_PAGE}")
            page = min(max(page, 1), MAX_PAGE)  # the offset stays within what the databases accept
        per_page = _int_arg(args, "per_page", DEFAULT_PER_PAGE, strict)
        if per_page not in PER_PAGE_CHOICES:
            if strict and not 1 <= per_page <= max(PER_PAGE_CHOICES):
                raise FilterError(f"per_page={per_page}: expected 1..{max(PER_PAGE_CHOICES)}")
            per_page = min(max(per_page, 1), max(PER_PAGE_CHOICES)) if strict else DEFAULT_PER_PAGE
        return cls(sort=sort, direction=direction, page=max(page, 1), per_page=per_page, **values)

    def args(self, **changes: Any) -> dict[str, Any]:
        """Query arguments that reproduce these filters (with ``changes``), empty ones left out."""
        current = replace(self, **changes) if changes else self
        out: dict[str, Any] = {name: getattr(current, name) for name in self.FIELDS if getattr(current, name)}
        if current.sort != "address":
            out["sort"] = current.sort
        if current.direction != "asc":
            out["direction"] = current.direction
        if current.page != 1:
            out["page"] = current.page
        if current.per_page != DEFAULT_PER_PAGE:
            out["per_page"] = current.per_page
        return out

    @property
    def active(self) -> bool:
        """True when any filter (not sorting or paging) is set."""
        return any(getattr(self, name) for name in self.FIELDS)


def _int_arg(args: Mapping[str, str], name: str, default: int, strict: bool) -> int:
    raw = args.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        if strict:
            raise FilterError(f"{name}={raw!r}: expected a whole number") from None
        return default


def _id_or_code(column_id: Any, column_code: Any, value: str) -> Any:
    # ASCII digits only ('²'.isdigit() is true, int('²') fails), and within the ids the databases hold
    if value.isascii() and value.isdigit() and len(value) <= 10 and int(value) <= _ROW_ID_MAX:
        return column_id == int(value)
    return column_code == value


_ROW_ID_MAX = 2**31 - 1  # PostgreSQL INTEGER ids


def _place_conditions(filters: DeviceFilters, agency_id: Any, project_id: Any) -> list[Any]:
    """The agency / project / province / district filters, over whichever columns hold the agency and
    project ids (Agency and Project must be joined)."""
    conds: list[Any] = []
    if filters.agency:
        conds.append(_id_or_code(agency_id, Agency.code, filters.agency))
    if filters.project:
        conds.append(_id_or_code(project_id, Project.code, filters.project))
    if filters.province:
        conds.append(Agency.province == filters.province)
    if filters.district:
        conds.append(Agency.district == filters.district)
    return conds


def device_conditions(filters: DeviceFilters) -> list[Any]:
    """WHERE clauses for ``filters`` over Device (joined to Agency and Project as outer joins)."""
    conds: list[Any] = []
    if filters.q:
        pattern = f"%{filters.q.lower()}%"
        conds.append(or_(func.lower(Device.name).like(pattern), func.lower(Device.address).like(pattern),
                         func.lower(Device.mac).like(pattern), func.lower(Device.serial).like(pattern),
                         func.lower(Device.model).like(pattern)))
    if filters.status:
        conds.append(Device.status == filters.status)
    conds.extend(_place_conditions(filters, Device.agency_id, Device.project_id))
    if filters.model:
        conds.append(Device.model == filters.model)
    if filters.firmware:
        conds.append(Device.firmware == filters.firmware)
    if filters.registered == "yes":
        conds.append(Device.registered.is_(True))
    elif filters.registered == "no":
        conds.append(Device.registered.is_(False))
    if filters.behind == "yes":
        conds.append(Device.recorder_id.is_not(None))
    elif filters.behind == "no":
        conds.append(Device.recorder_id.is_(None))
    if filters.finding:
        conds.append(Device.id.in_(
            select(Finding.device_id).where(Finding.active.is_(True), Finding.rule_id == filters.finding,
                                            Finding.device_id.is_not(None))))
    return conds


def _device_base(stmt: Select[Any], filters: DeviceFilters, user: Any) -> Select[Any]:
    stmt = stmt.select_from(Device).outerjoin(Agency, Agency.id == Device.agency_id)
    stmt = stmt.outerjoin(Project, Project.id == Device.project_id)
    stmt = device_scope(stmt, user)
    conds = device_conditions(filters)
    return stmt.where(and_(*conds)) if conds else stmt


DEVICE_COLUMNS = (
    Device.id, Device.name, Device.address, Device.mac, Device.serial, Device.manufacturer, Device.model,
    Device.firmware, Device.status, Device.registered, Device.last_seen, Device.first_seen,
    Device.agency_id, Agency.code.label("agency_code"), Agency.name_th.label("agency_name_th"),
    Agency.name_en.label("agency_name_en"), Device.project_id, Project.code.label("project_code"),
    LastObs.encoding.label("encoding"), LastObs.width.label("width"), LastObs.height.label("height"),
    LastObs.fps.label("fps"), LastObs.measured_width.label("measured_width"),
    LastObs.measured_height.label("measured_height"), LastObs.measured_fps.label("measured_fps"),
    Device.recorder_id, Device.channel,
    LastObs.probe_status.label("probe_status"),
)


@dataclass
class DevicePage:
    """One page of the device table."""

    rows: list[dict[str, Any]]
    total: int
    page: int
    per_page: int
    pages: int = field(init=False)

    def __post_init__(self) -> None:
        """Number of pages (at least one)."""
        self.pages = max(1, -(-self.total // self.per_page))


def device_page(session: Session, filters: DeviceFilters, user: Any) -> DevicePage:
    """Count and fetch one sorted page of devices matching ``filters`` that ``user`` may read."""
    total = session.scalar(_device_base(select(func.count(Device.id)), filters, user)) or 0
    pages = max(1, -(-total // filters.per_page))
    page = min(filters.page, pages)
    rows = list(_device_rows(session, filters, user, limit=filters.per_page,
                             offset=(page - 1) * filters.per_page))
    return DevicePage(rows=rows, total=total, page=page, per_page=filters.per_page)


def _device_rows(session: Session, filters: DeviceFilters, user: Any, *, limit: int | None = None,
                 offset: int = 0) -> Any:
    for row in device_result(session, filters, user, DEVICE_COLUMNS, limit=limit, offset=offset):
        yield dict(row._mapping)


def device_result(session: Session, filters: DeviceFilters, user: Any, columns: tuple[Any, ...], *,
                  limit: int | None = None, offset: int = 0) -> Any:
    """``columns`` (over Device, Agency, Project and ``LastObs``) of the devices matching ``filters`` that
    ``user`` may read, sorted, as a SQLAlchemy result."""
    stmt = _device_base(select(*columns), filters, user)
    stmt = stmt.outerjoin(LastObs, LastObs.id == Device.last_observation_id)
    column = SORT_COLUMNS[filters.sort]
    order = column.desc() if filters.direction == "desc" else column.asc()
    # NULLs last in both engines, then id so that paging is stable.
    stmt = stmt.order_by(case((column.is_(None), 1), else_=0), order, Device.id)
    if limit is not None:
        stmt = stmt.limit(limit).offset(offset)
    return session.execute(stmt)


def filter_options(session: Session, user: Any) -> dict[str, Any]:
    """Choices for the filter selects, limited to what ``user`` may read."""
    agency_stmt = select(Agency.id, Agency.code, Agency.name_th, Agency.name_en, Agency.province,
                         Agency.district).order_by(Agency.province, Agency.code)
    allowed = visible_agency_ids(user)
    if allowed is not None:
        agency_stmt = agency_stmt.where(Agency.id.in_(allowed or [-1]))
    agencies = [dict(r._mapping) for r in session.execute(agency_stmt)]
    projects = [dict(r._mapping) for r in session.execute(
        project_scope(select(Project.id, Project.code, Project.title_th, Project.title_en, Project.agency_id),
                      user).order_by(Project.code))]
    models = [r[0] for r in session.execute(device_scope(
        select(Device.model).where(Device.model.is_not(None)).distinct(), user).order_by(Device.model))]
    firmwares = [r[0] for r in session.execute(device_scope(
        select(Device.firmware).where(Device.firmware.is_not(None)).distinct(), user).order_by(Device.firmware))]
    rules = [r[0] for r in session.execute(
        select(Finding.rule_id).where(Finding.active.is_(True)).distinct().order_by(Finding.rule_id))]
    return {
        "agencies": agencies,
        "projects": projects,
        "provinces": sorted({a["province"] for a in agencies if a["province"]}),
        "districts": sorted({a["district"] for a in agencies if a["district"]}),
        "models": models,
        "firmwares": firmwares,
        "rules": rules,
        "statuses": list(DeviceStatus),
    }


# --------------------------------------------------------------------------------------------- overview


def status_counts(session: Session, filters: DeviceFilters, user: Any) -> dict[str, int]:
    """Devices per status (every status present, zero when none), plus extra missing register entries."""
    stmt = _device_base(select(Device.status, func.count(Device.id)), filters, user).group_by(Device.status)
    counts = {s.value: 0 for s in DeviceStatus}
    for status, count in session.execute(stmt):
        counts[status] = counts.get(status, 0) + count
    for _agency_id, count in missing_register_counts(session, filters, user).items():
        counts["missing"] += count
    return counts


def behind_recorder_count(session: Session, filters: DeviceFilters, user: Any) -> int:
    """Cameras seen only through a recorder (no address of their own the scan could reach)."""
    stmt = _device_base(select(func.count(Device.id)), filters, user).where(Device.recorder_id.is_not(None))
    return int(session.scalar(stmt) or 0)


def recorder_channels(session: Session, recorder_id: int, user: Any) -> list[Device]:
    """The camera devices behind one recorder that ``user`` may read, by channel number."""
    stmt = device_scope(select(Device).where(Device.recorder_id == recorder_id), user)
    return list(session.scalars(stmt.order_by(Device.channel, Device.id)))


def missing_register_counts(session: Session, filters: DeviceFilters, user: Any) -> dict[int | None, int]:
    """Register entries reported missing (active ``registered_missing`` findings) that have no device row.

    A registered camera that never answered has no device row: the overview adds it per agency.
    """
    if filters.status not in ("", "missing") or filters.q or filters.model or filters.firmware \
            or filters.registered == "no" or (filters.finding and filters.finding != "registered_missing"):
        return {}
    linked = select(Device.register_entry_id).where(Device.register_entry_id.is_not(None))
    stmt = (select(Project.agency_id, func.count(Finding.id))
            .select_from(Finding).join(Project, Project.id == Finding.project_id)
            .join(Agency, Agency.id == Project.agency_id)
            .where(Finding.active.is_(True), Finding.rule_id == "registered_missing", Finding.device_id.is_(None),
                   or_(Finding.register_entry_id.is_(None), Finding.register_entry_id.not_in(linked)))
            .group_by(Project.agency_id))
    stmt = project_scope(stmt, user)
    for cond in _place_conditions(filters, Project.agency_id, Project.id):
        stmt = stmt.where(cond)
    return {agency_id: count for agency_id, count in session.execute(stmt)}


def agency_status_counts(session: Session, filters: DeviceFilters, user: Any) -> list[dict[str, Any]]:
    """Per agency: code, names and device counts per status (stacked-bar data)."""
    stmt = _device_base(select(Device.agency_id, Device.status, func.count(Device.id)), filters, user)
    stmt = stmt.group_by(Device.agency_id, Device.status)
    per: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for agency_id, status, count in session.execute(stmt):
        per[agency_id][status] += count
    for agency_id, count in missing_register_counts(session, filters, user).items():
        per[agency_id]["missing"] += count
    ids = [i for i in per if i is not None]
    names = {r.id: r for r in session.execute(
        select(Agency.id, Agency.code, Agency.name_th, Agency.name_en).where(Agency.id.in_(ids or [-1])))}
    out = []
    for agency_id, counts in per.items():
        info = names.get(agency_id)
        out.append({"agency_id": agency_id, "code": info.code if info else None,
                    "name_th": info.name_th if info else None, "name_en": info.name_en if info else None,
                    "counts": dict(counts), "total": sum(counts.values())})
    out.sort(key=lambda a: (a["code"] is None, a["code"] or ""))
    return out


def resolution_mix(session: Session, filters: DeviceFilters, user: Any) -> list[tuple[str, int]]:
    """Devices per main-stream resolution (measured where the stream was opened, else claimed)."""
    width = func.coalesce(LastObs.measured_width, LastObs.width)
    height = func.coalesce(LastObs.measured_height, LastObs.height)
    stmt = _device_base(select(width, height, func.count(Device.id)), filters, user)
    stmt = stmt.join(LastObs, LastObs.id == Device.last_observation_id).group_by(width, height)
    rows = [(f"{w}x{h}" if w and h else None, c) for w, h, c in session.execute(stmt)]
    rows.sort(key=lambda r: -r[1])
    return rows


def codec_mix(session: Session, filters: DeviceFilters, user: Any) -> list[tuple[str | None, int]]:
    """Devices per main-profile codec."""
    stmt = _device_base(select(LastObs.encoding, func.count(Device.id)), filters, user)
    stmt = stmt.join(LastObs, LastObs.id == Device.last_observation_id).group_by(LastObs.encoding)
    rows = [(enc, c) for enc, c in session.execute(stmt)]
    rows.sort(key=lambda r: -r[1])
    return rows


def top_findings(session: Session, filters: DeviceFilters, user: Any, limit: int = 10) -> list[tuple[str, int]]:
    """The active device findings that occur most (rule id, count)."""
    stmt = _device_base(select(Finding.rule_id, func.count(Finding.id)), filters, user)
    stmt = stmt.join(Finding, and_(Finding.device_id == Device.id, Finding.active.is_(True)))
    stmt = stmt.group_by(Finding.rule_id).order_by(func.count(Finding.id).desc(), Finding.rule_id).limit(limit)
    return [(rule, count) for rule, count in session.execute(stmt)]


def status_trend(session: Session, filters: DeviceFilters, user: Any, days: int = 365,
                 today: date | None = None) -> dict[date, dict[str, int]]:
    """Per day: devices per status, from ``status_daily`` for past days and live counts for today."""
    today = today or date.today()
    start = today - timedelta(days=days - 1)
    stmt = (select(StatusDaily.day, StatusDaily.status, func.sum(StatusDaily.count))
            .select_from(StatusDaily)
            .outerjoin(Agency, Agency.id == StatusDaily.agency_id)
            .outerjoin(Project, Project.id == StatusDaily.project_id)
            .where(StatusDaily.day >= start, StatusDaily.day < today)
            .group_by(StatusDaily.day, StatusDaily.status))
    allowed = visible_agency_ids(user)
    if allowed is not None:
        stmt = stmt.where(StatusDaily.agency_id.in_(allowed or [-1]))
    if filters.agency:
        stmt = stmt.where(_id_or_code(StatusDaily.agency_id, Agency.code, filters.agency))
    if filters.project:
        stmt = stmt.where(_id_or_code(StatusDaily.project_id, Project.code, filters.project))
    if filters.province:
        stmt = stmt.where(Agency.province == filters.province)
    if filters.district:
        stmt = stmt.where(Agency.district == filters.district)
    if filters.status:
        stmt = stmt.where(StatusDaily.status == filters.status)
    trend: dict[date, dict[str, int]] = defaultdict(dict)
    for day, status, count in session.execute(stmt):
        trend[day][status] = int(count or 0)
    live = status_counts(session, replace(filters, q="", model="", firmware="", finding="", registered="", behind=""), user)
    trend[today] = {k: v for k, v in live.items() if v}
    return dict(sorted(trend.items()))


def compliance_rate(counts: Mapping[str, int]) -> float | None:
    """Compliant share of the devices evaluated against a project (percent), None when there are none."""
    evaluated = sum(counts.get(s, 0) for s in RATE_STATUSES)
    return round(100.0 * counts.get("compliant", 0) / evaluated, 1) if evaluated else None


# ----------------------------------------------------------------------------------------------- device


def device_row(session: Session, device_id: int, user: Any) -> Device | None:
    """The device with ``device_id`` if ``user`` may read it, else None (same answer as not existing)."""
    return session.scalar(device_scope(select(Device).where(Device.id == device_id), user))


def device_findings(session: Session, device_id: int) -> list[Finding]:
    """Active findings of a device, most severe first."""
    severity_order = case({"critical": 0, "major": 1, "minor": 2, "info": 3}, value=Finding.severity, else_=4)
    return list(session.scalars(select(Finding).where(Finding.device_id == device_id, Finding.active.is_(True))
                                .order_by(severity_order, Finding.rule_id)))


def device_history(session: Session, device_id: int, limit: int = 30) -> list[dict[str, Any]]:
    """Latest observations of a device (without the JSON body or thumbnail)."""
    stmt = (select(Observation.id, Observation.observed_at, Observation.address, Observation.probe_status,
                   Observation.error, Observation.firmware, Observation.encoding, Observation.width,
                   Observation.height, Observation.fps, Observation.measured_width, Observation.measured_height,
                   Observation.measured_fps, Observation.clock_offset_s, Observation.scan_run_id)
            .where(Observation.device_id == device_id)
            .order_by(Observation.observed_at.desc(), Observation.id.desc()).limit(limit))
    return [dict(r._mapping) for r in session.execute(stmt)]


def latest_thumbnail_id(session: Session, device_id: int) -> int | None:
    """Id of the latest observation of the device that carries a thumbnail."""
    return session.scalar(select(Observation.id).where(Observation.device_id == device_id,
                                                       Observation.thumbnail_jpeg.is_not(None))
                          .order_by(Observation.observed_at.desc(), Observation.id.desc()).limit(1))


# --------------------------------------------------------------------------------------------- projects


def project_summaries(session: Session, user: Any) -> list[dict[str, Any]]:
    """Per project: approved count, devices found (registered and seen), compliant, per status."""
    projects = list(session.execute(project_scope(
        select(Project.id, Project.code, Project.title_th, Project.title_en, Project.approved_count,
               Project.agency_id, Agency.code.label("agency_code"), Agency.name_th.label("agency_name_th"),
               Agency.name_en.label("agency_name_en"))
        .join(Agency, Agency.id == Project.agency_id), user).order_by(Project.code)))
    per = _project_site_counts(session, [p.id for p in projects])
    out = []
    for p in projects:
        counts = per.get((p.id, None), {})
        out.append({**dict(p._mapping), **_found_compliant(counts), "counts": counts})
    return out


FOUND_STATUSES = DeviceStatus.group("found")


def _found_compliant(counts: Mapping[str, int]) -> dict[str, int]:
    return {"found": sum(counts.get(s, 0) for s in FOUND_STATUSES), "compliant": counts.get("compliant", 0)}


def _project_site_counts(session: Session, project_ids: list[int]) -> dict[tuple[int, int | None], dict[str, int]]:
    """Registered devices per (project, site) and per (project, None) by status."""
    out: dict[tuple[int, int | None], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    if not project_ids:
        return out
    stmt = (select(Device.project_id, Device.site_id, Device.status, func.count(Device.id))
            .where(Device.project_id.in_(project_ids), Device.registered.is_(True))
            .group_by(Device.project_id, Device.site_id, Device.status))
    for project_id, site_id, status, count in session.execute(stmt):
        out[(project_id, site_id)][status] += count
        out[(project_id, None)][status] += count
    return out


def project_detail(session: Session, project_id: int, user: Any) -> dict[str, Any] | None:
    """Everything the project page shows, or None when ``user`` may not read it."""
    project = session.scalar(project_scope(select(Project).where(Project.id == project_id), user))
    if project is None:
        return None
    per = _project_site_counts(session, [project.id])
    sites = list(session.scalars(select(Site).where(Site.project_id == project.id).order_by(Site.code)))
    approved_per_site: dict[int | None, int] = defaultdict(int)
    for site_id, count in session.execute(select(RegisterEntry.site_id, func.count(RegisterEntry.id))
                                          .where(RegisterEntry.project_id == project.id)
                                          .group_by(RegisterEntry.site_id)):
        approved_per_site[site_id] = count
    site_rows = [{"site": s, "registered": approved_per_site.get(s.id, 0), **_found_compliant(per.get((project.id, s.id), {})),
                  "counts": dict(per.get((project.id, s.id), {}))} for s in sites]
    device_by_entry = {r.register_entry_id: r for r in session.execute(
        select(Device.register_entry_id, Device.id, Device.status, Device.address, Device.name)
        .where(Device.register_entry_id.is_not(None), Device.project_id == project.id))}
    register = []
    site_codes = {s.id: s.code for s in sites}
    for entry in session.scalars(select(RegisterEntry).where(RegisterEntry.project_id == project.id)
                                 .order_by(RegisterEntry.site_id, RegisterEntry.label, RegisterEntry.mac)):
        register.append({"entry": entry, "site_code": site_codes.get(entry.site_id),
                         "device": device_by_entry.get(entry.id)})
    last_check = session.scalar(select(ScanRun).where(ScanRun.target_kind == "check",
                                                      ScanRun.target_value == project.code)
                                .order_by(ScanRun.id.desc()).limit(1))
    project_findings = list(session.scalars(select(Finding).where(Finding.project_id == project.id,
                                                                  Finding.device_id.is_(None),
                                                                  Finding.active.is_(True))
                                            .order_by(Finding.rule_id, Finding.subject)))
    totals = per.get((project.id, None), {})
    return {"project": project, "sites": site_rows, "register": register, "last_check": last_check,
            "project_findings": project_findings, "counts": dict(totals), **_found_compliant(totals)}


# ----------------------------------------------------------------------------------------------- scans


def scan_runs(session: Session, user: Any, limit: int = 100) -> list[ScanRun]:
    """Latest scan runs; technicians see runs of their own agency's sites, projects and agency."""
    stmt = select(ScanRun).order_by(ScanRun.id.desc()).limit(limit)
    allowed = visible_agency_ids(user)
    if allowed is not None:
        stmt = stmt.where(or_(*scan_target_conditions(session, allowed)) if allowed else literal(False))
    return list(session.scalars(stmt))


def scan_target_conditions(session: Session, agency_ids: list[int]) -> list[Any]:
    """Conditions on ScanRun/ScanSchedule-like targets that belong to ``agency_ids`` (by kind and value)."""
    targets = scan_targets(session, agency_ids)
    conds = []
    for kind, values in targets.items():
        if values:
            conds.append(and_(ScanRun.target_kind == kind, ScanRun.target_value.in_(values)))
    return conds or [literal(False)]


def scan_targets(session: Session, agency_ids: list[int] | None) -> dict[str, list[str]]:
    """Target values per kind (agency, project, check, site) of ``agency_ids`` (None: every agency)."""
    agency_stmt = select(Agency.id, Agency.code)
    project_stmt = select(Project.id, Project.code, Project.agency_id)
    if agency_ids is not None:
        agency_stmt = agency_stmt.where(Agency.id.in_(agency_ids or [-1]))
        project_stmt = project_stmt.where(Project.agency_id.in_(agency_ids or [-1]))
    agencies = list(session.execute(agency_stmt))
    projects = list(session.execute(project_stmt))
    project_codes = {p.id: p.code for p in projects}
    sites = list(session.execute(select(Site.project_id, Site.code)
                                 .where(Site.project_id.in_(list(project_codes) or [-1]))))
    return {
        "agency": [a.code for a in agencies],
        "project": list(project_codes.values()),
        "check": list(project_codes.values()),
        "site": [site_target(project_codes[s.project_id], s.code) for s in sites],
    }


def site_target(project_code: str, site_code: str) -> str:
    """Target value of a site for scans and schedules: ``PROJECT/site``."""
    return f"{project_code}/{site_code}"
