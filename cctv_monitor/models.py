"""Inventory model (SQLAlchemy 2.x, typed).

Agencies own approved projects; a project follows a spec profile and has sites (address ranges) and an
optional device register. Scans record one observation per device per run; findings and attribute
changes are kept, never overwritten. Every table has ``created``/``updated`` and named constraints so
that Alembic migrations are stable on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Named constraints: Alembic needs stable names, SQLite batch migrations need them at all.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Timezone-aware current UTC time."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """DateTime stored as UTC and always returned timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        """Normalise to UTC before storing."""
        if value is None or value.tzinfo is timezone.utc:
            return value
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        """Attach UTC on the way out."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base with the naming convention."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class Timestamped:
    """``created``/``updated`` columns for every table."""

    created: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False)


class Agency(Timestamped, Base):
    """A Ministry of Interior unit or local government organisation (อปท.) that owns cameras."""

    __tablename__ = "agency"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_th: Mapped[str] = mapped_column(String(255))
    name_en: Mapped[Optional[str]] = mapped_column(String(255))
    province: Mapped[str] = mapped_column(String(128))
    district: Mapped[Optional[str]] = mapped_column(String(128))
    subdistrict: Mapped[Optional[str]] = mapped_column(String(128))
    # Alert settings per agency: {"webhook": url, "emails": [...]}
    alerts: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)

    projects: Mapped[list["Project"]] = relationship(back_populates="agency")


class SpecProfile(Timestamped, Base):
    """A camera class specification (thresholds as data, each with its source)."""

    __tablename__ = "spec_profile"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_th: Mapped[str] = mapped_column(String(255))
    name_en: Mapped[Optional[str]] = mapped_column(String(255))
    device_class: Mapped[str] = mapped_column(String(32))  # fixed_indoor, fixed_outdoor, ptz, analytics, nvr
    requirements: Mapped[dict[str, Any]] = mapped_column(JSON)  # the YAML body, validated on import
    source: Mapped[Optional[str]] = mapped_column(Text)
    content_hash: Mapped[Optional[str]] = mapped_column(String(64))


class Project(Timestamped, Base):
    """A CCTV project approved by the ministry or the provincial committee."""

    __tablename__ = "project"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    title_th: Mapped[str] = mapped_column(String(500))
    title_en: Mapped[Optional[str]] = mapped_column(String(500))
    agency_id: Mapped[int] = mapped_column(ForeignKey("agency.id", ondelete="RESTRICT"), index=True)
    approval_ref: Mapped[Optional[str]] = mapped_column(String(255))
    approval_date: Mapped[Optional[date]] = mapped_column(Date)
    committee_level: Mapped[Optional[str]] = mapped_column(String(32))  # ministry | province
    budget_thb: Mapped[Optional[Decimal]] = mapped_column(Numeric(14, 2))
    spec_profile_id: Mapped[int] = mapped_column(ForeignKey("spec_profile.id", ondelete="RESTRICT"), index=True)
    # Recorders (NVR/DVR) of the project are judged by this profile; None: by ``spec_profile`` like cameras.
    recorder_spec_profile_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("spec_profile.id", ondelete="RESTRICT"))
    approved_count: Mapped[int] = mapped_column(Integer, default=0)
    source_file: Mapped[Optional[str]] = mapped_column(String(500))
    content_hash: Mapped[Optional[str]] = mapped_column(String(64))

    agency: Mapped[Agency] = relationship(back_populates="projects")
    spec_profile: Mapped[SpecProfile] = relationship(foreign_keys=[spec_profile_id])
    recorder_spec_profile: Mapped[Optional[SpecProfile]] = relationship(foreign_keys=[recorder_spec_profile_id])
    sites: Mapped[list["Site"]] = relationship(back_populates="project", cascade="all, delete-orphan")
    register: Mapped[list["RegisterEntry"]] = relationship(back_populates="project", cascade="all, delete-orphan")


class Site(Timestamped, Base):
    """An installation site of a project, with the address ranges its cameras live in."""

    __tablename__ = "site"
    __table_args__ = (UniqueConstraint("project_id", "code", name="uq_site_project_code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name_th: Mapped[str] = mapped_column(String(255))
    name_en: Mapped[Optional[str]] = mapped_column(String(255))
    address_ranges: Mapped[list[Any]] = mapped_column(JSON, default=list)  # CIDRs or host:port
    ports: Mapped[Optional[list[Any]]] = mapped_column(JSON)  # ONVIF ports to sweep; None = defaults
    latitude: Mapped[Optional[float]] = mapped_column(Float)
    longitude: Mapped[Optional[float]] = mapped_column(Float)
    # Camera credentials, encrypted at rest (Fernet token of a JSON list of {username, password}).
    credentials_encrypted: Mapped[Optional[str]] = mapped_column(Text)
    # Network zone whose workers can reach the site's cameras (README "Running a province").
    zone: Mapped[str] = mapped_column(String(64), default="central", server_default="central")

    project: Mapped[Project] = relationship(back_populates="sites")


class RegisterEntry(Timestamped, Base):
    """One camera the project declared (its device register): MAC and/or serial and location."""

    __tablename__ = "register_entry"
    __table_args__ = (
        UniqueConstraint("project_id", "mac", name="uq_register_entry_project_mac"),
        UniqueConstraint("project_id", "serial", name="uq_register_entry_project_serial"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[Optional[int]] = mapped_column(ForeignKey("site.id", ondelete="SET NULL"), index=True)
    mac: Mapped[Optional[str]] = mapped_column(String(17), index=True)
    serial: Mapped[Optional[str]] = mapped_column(String(128), index=True)
    label: Mapped[Optional[str]] = mapped_column(String(255))
    location: Mapped[Optional[str]] = mapped_column(String(500))
    address: Mapped[Optional[str]] = mapped_column(String(64))  # expected host[:port], optional
    added_by: Mapped[Optional[str]] = mapped_column(String(64))  # import | check --register | dashboard

    project: Mapped[Project] = relationship(back_populates="register")


class Device(Timestamped, Base):
    """A camera (or NVR) as we know it: identity by MAC, then serial, then address."""

    __tablename__ = "device"
    __table_args__ = (
        Index("ix_device_status_agency", "status", "agency_id"),
        Index("ix_device_serial_model", "serial", "model"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    mac: Mapped[Optional[str]] = mapped_column(String(17), index=True)  # primary MAC used for identity
    macs: Mapped[list[Any]] = mapped_column(JSON, default=list)
    serial: Mapped[Optional[str]] = mapped_column(String(128))
    manufacturer: Mapped[Optional[str]] = mapped_column(String(255))
    model: Mapped[Optional[str]] = mapped_column(String(255), index=True)
    firmware: Mapped[Optional[str]] = mapped_column(String(255))
    hardware_id: Mapped[Optional[str]] = mapped_column(String(255))
    name: Mapped[Optional[str]] = mapped_column(String(500))  # camera-supplied, hostile
    location_text: Mapped[Optional[str]] = mapped_column(String(500))  # camera-supplied, hostile
    address: Mapped[Optional[str]] = mapped_column(String(64), index=True)  # current host:port
    first_seen: Mapped[Optional[datetime]] = mapped_column()
    last_seen: Mapped[Optional[datetime]] = mapped_column()  # last time anything answered
    last_ok: Mapped[Optional[datetime]] = mapped_column()  # last complete ONVIF read
    agency_id: Mapped[Optional[int]] = mapped_column(ForeignKey("agency.id", ondelete="SET NULL"), index=True)
    project_id: Mapped[Optional[int]] = mapped_column(ForeignKey("project.id", ondelete="SET NULL"), index=True)
    site_id: Mapped[Optional[int]] = mapped_column(ForeignKey("site.id", ondelete="SET NULL"), index=True)
    register_entry_id: Mapped[Optional[int]] = mapped_column(ForeignKey("register_entry.id", ondelete="SET NULL"))
    registered: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(32), default="unknown", index=True)
    status_changed: Mapped[Optional[datetime]] = mapped_column()
    identity_conflict: Mapped[Optional[str]] = mapped_column(Text)  # why identity is doubtful
    # Keyed fingerprints (cctv_monitor.credentials.fingerprint), never passwords: the credential that
    # worked last (tried first next time) and those the device rejected (not retried until they change).
    credential_ref: Mapped[Optional[str]] = mapped_column(String(64))
    rejected_credential_refs: Mapped[Optional[list[Any]]] = mapped_column(JSON, default=list)
    # Set when a distributed run closed without reaching this device (its zone was offline): status kept, stale.
    not_reached_run_id: Mapped[Optional[int]] = mapped_column(Integer)
    last_observation_id: Mapped[Optional[int]] = mapped_column(Integer)  # no FK: avoids a cycle
    # The latest observation that read it fully (probe status ok): media drift is measured against it.
    last_ok_observation_id: Mapped[Optional[int]] = mapped_column(Integer)
    # A camera seen only through a recorder: the recorder's device and the channel it occupies there.
    recorder_id: Mapped[Optional[int]] = mapped_column(ForeignKey("device.id", ondelete="SET NULL"), index=True)
    channel: Mapped[Optional[int]] = mapped_column(Integer)

    agency: Mapped[Optional[Agency]] = relationship()
    project: Mapped[Optional[Project]] = relationship()
    site: Mapped[Optional[Site]] = relationship()
    recorder: Mapped[Optional["Device"]] = relationship(remote_side=[id], foreign_keys=[recorder_id])


class ScanRun(Timestamped, Base):
    """One scan: over a site, project, agency or address range; survives interruption."""

    __tablename__ = "scan_run"
    id: Mapped[int] = mapped_column(primary_key=True)
    target_kind: Mapped[str] = mapped_column(String(16))  # site | project | agency | range | check
    target_value: Mapped[str] = mapped_column(Text)  # a range list can be long (migration 0014s)
    trigger: Mapped[str] = mapped_column(String(16), default="manual")  # manual | schedule | check | demo
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    started: Mapped[Optional[datetime]] = mapped_column()
    finished: Mapped[Optional[datetime]] = mapped_column()
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)  # per status at the end
    error: Mapped[Optional[str]] = mapped_column(Text)
    pid: Mapped[Optional[int]] = mapped_column(Integer)  # to mark runs of dead processes interrupted
    host: Mapped[Optional[str]] = mapped_column(String(255))
    started_by: Mapped[Optional[str]] = mapped_column(String(128))
    with_streams: Mapped[bool] = mapped_column(Boolean, default=False)
    # Liveness by lease: the owner (any machine) renews ``lease_expires``; whoever looks after it passed
    # marks the run interrupted (cctv_monitor.scan.runs).
    lease_owner: Mapped[Optional[str]] = mapped_column(String(255))
    lease_expires: Mapped[Optional[datetime]] = mapped_column()
    source: Mapped[Optional[str]] = mapped_column(String(16))  # scan | file | api | worker
    client_run_id: Mapped[Optional[str]] = mapped_column(String(128), index=True)  # the sender's run name
    coverage: Mapped[Optional[str]] = mapped_column(String(16))  # target | devices (set when closed)
    deadline: Mapped[Optional[datetime]] = mapped_column()  # distributed runs close by then
    distributed: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class ScanUnit(Timestamped, Base):
    """A chunk of one zone's addresses in a distributed run: queued, running, done, failed or expired."""

    __tablename__ = "scan_unit"
    __table_args__ = (UniqueConstraint("scan_run_id", "seq", name="uq_scan_unit_run_seq"),
                      Index("ix_scan_unit_run_state", "scan_run_id", "state"))
    id: Mapped[int] = mapped_column(primary_key=True)
    scan_run_id: Mapped[int] = mapped_column(ForeignKey("scan_run.id", ondelete="CASCADE"))
    zone: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    addresses: Mapped[list[Any]] = mapped_column(JSON, default=list)  # hosts (and host:port) of the unit
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    observations: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[Optional[str]] = mapped_column(Text)
    finished: Mapped[Optional[datetime]] = mapped_column()


class ObservationReceipt(Base):
    """An observation id already ingested: the same observation sent again is skipped (idempotent ingest)."""

    __tablename__ = "observation_receipt"
    observation_uid: Mapped[str] = mapped_column(String(128), primary_key=True)
    scan_run_id: Mapped[Optional[int]] = mapped_column(ForeignKey("scan_run.id", ondelete="SET NULL"), index=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class Observation(Timestamped, Base):
    """One probe result of one device (or one dead address) in one scan; the full JSON is kept."""

    __tablename__ = "observation"
    __table_args__ = (
        Index("ix_observation_device_time", "device_id", "observed_at"),
        # Not unique: a field file or an API run may hold several observations of one camera (probed twice).
        Index("ix_observation_scan_device", "scan_run_id", "device_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    # Looked up by run through ix_observation_scan_device (no index of its own: 0016s).
    scan_run_id: Mapped[Optional[int]] = mapped_column(ForeignKey("scan_run.id", ondelete="SET NULL"))
    device_id: Mapped[Optional[int]] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(64))
    observed_at: Mapped[datetime] = mapped_column(default=utcnow)
    probe_status: Mapped[str] = mapped_column(String(32))
    error: Mapped[Optional[str]] = mapped_column(Text)
    firmware: Mapped[Optional[str]] = mapped_column(String(255))
    encoding: Mapped[Optional[str]] = mapped_column(String(16))  # main profile
    width: Mapped[Optional[int]] = mapped_column(Integer)
    height: Mapped[Optional[int]] = mapped_column(Integer)
    fps: Mapped[Optional[float]] = mapped_column(Float)
    measured_width: Mapped[Optional[int]] = mapped_column(Integer)
    measured_height: Mapped[Optional[int]] = mapped_column(Integer)
    measured_fps: Mapped[Optional[float]] = mapped_column(Float)
    clock_offset_s: Mapped[Optional[float]] = mapped_column(Float)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)  # probes.results.Observation.to_dict() w/o thumbnails
    thumbnail_jpeg: Mapped[Optional[bytes]] = mapped_column()
    # Flush order only (never loaded, never set): the unit of work writes the device before its rows, so a
    # batch whose ids were drawn in advance is written in one flush (cctv_monitor.scan.ids).
    device_dep: Mapped[Optional[Device]] = relationship(foreign_keys=[device_id], lazy="raise")


class Finding(Timestamped, Base):
    """A rule's verdict on a device or a project; active until a later scan resolves it."""

    __tablename__ = "finding"
    __table_args__ = (
        Index("ix_finding_active_rule", "active", "rule_id"),
        Index("ix_finding_device_active", "device_id", "active"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[Optional[int]] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"))
    project_id: Mapped[Optional[int]] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    register_entry_id: Mapped[Optional[int]] = mapped_column(ForeignKey("register_entry.id", ondelete="CASCADE"))
    # Not indexed: every scan rewrites it, and an index on it would keep those updates from being HOT (0016s).
    scan_run_id: Mapped[Optional[int]] = mapped_column(ForeignKey("scan_run.id", ondelete="SET NULL"))
    observation_id: Mapped[Optional[int]] = mapped_column(ForeignKey("observation.id", ondelete="SET NULL"))
    rule_id: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    subject: Mapped[Optional[str]] = mapped_column(String(128))  # e.g. profile token, site code
    expected: Mapped[Optional[str]] = mapped_column(Text)
    observed: Mapped[Optional[str]] = mapped_column(Text)
    source: Mapped[Optional[str]] = mapped_column(Text)
    message_th: Mapped[str] = mapped_column(Text)
    message_en: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[Optional[datetime]] = mapped_column()
    # Flush order only (never loaded, never set): the unit of work writes the device before its rows, so a
    # batch whose ids were drawn in advance is written in one flush (cctv_monitor.scan.ids).
    device_dep: Mapped[Optional[Device]] = relationship(foreign_keys=[device_id], lazy="raise")
    observation_dep: Mapped[Optional[Observation]] = relationship(foreign_keys=[observation_id], lazy="raise")


class DeviceChange(Timestamped, Base):
    """A change of one device attribute between two observations (drift), with before/after."""

    __tablename__ = "device_change"
    __table_args__ = (Index("ix_device_change_device_time", "device_id", "changed_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"))
    observation_id: Mapped[Optional[int]] = mapped_column(ForeignKey("observation.id", ondelete="SET NULL"))
    scan_run_id: Mapped[Optional[int]] = mapped_column(ForeignKey("scan_run.id", ondelete="SET NULL"))
    attribute: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[Optional[str]] = mapped_column(Text)
    new_value: Mapped[Optional[str]] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Flush order only (never loaded, never set): the unit of work writes the device before its rows, so a
    # batch whose ids were drawn in advance is written in one flush (cctv_monitor.scan.ids).
    device_dep: Mapped[Optional[Device]] = relationship(foreign_keys=[device_id], lazy="raise")
    observation_dep: Mapped[Optional[Observation]] = relationship(foreign_keys=[observation_id], lazy="raise")


class ScanSchedule(Timestamped, Base):
    """A periodic scan of a site or agency (cron or interval), editable from the dashboard."""

    __tablename__ = "scan_schedule"
    __table_args__ = (UniqueConstraint("target_kind", "target_value", name="uq_scan_schedule_target"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    target_kind: Mapped[str] = mapped_column(String(16))  # site | agency | project | range
    target_value: Mapped[str] = mapped_column(String(255))
    cron: Mapped[Optional[str]] = mapped_column(String(128))  # crontab "m h dom mon dow"
    interval_minutes: Mapped[Optional[int]] = mapped_column(Integer)
    with_streams: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_run_id: Mapped[Optional[int]] = mapped_column(ForeignKey("scan_run.id", ondelete="SET NULL"))


class AlertEvent(Timestamped, Base):
    """A state change that was (or will be) alerted; delivered in digests, one per agency per scan."""

    __tablename__ = "alert_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[Optional[int]] = mapped_column(ForeignKey("agency.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[Optional[int]] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"))
    scan_run_id: Mapped[Optional[int]] = mapped_column(ForeignKey("scan_run.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(32))  # non_compliant | offline | online | unregistered | missing
    message_th: Mapped[str] = mapped_column(Text)
    message_en: Mapped[str] = mapped_column(Text)
    delivered_at: Mapped[Optional[datetime]] = mapped_column()
    delivery_error: Mapped[Optional[str]] = mapped_column(Text)
    # Flush order only (never loaded, never set): the unit of work writes the device before its rows, so a
    # batch whose ids were drawn in advance is written in one flush (cctv_monitor.scan.ids).
    device_dep: Mapped[Optional[Device]] = relationship(foreign_keys=[device_id], lazy="raise")


class User(Timestamped, Base):
    """A dashboard user (admin, auditor, technician of one agency)."""

    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    agency_id: Mapped[Optional[int]] = mapped_column(ForeignKey("agency.id", ondelete="SET NULL"))
    language: Mapped[str] = mapped_column(String(2), default="th")
    api_token_hash: Mapped[Optional[str]] = mapped_column(String(128), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Copied into the session at log-in and compared on every request: raising it (log-out, password change,
    # deactivation) ends every session of the user at once, also cookies copied elsewhere.
    auth_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    agency: Mapped[Optional[Agency]] = relationship()


class AuthThrottle(Base):
    """Failed authentication attempts per user name, client address or token source, and the lock they earn.

    Kept in the database (not in process memory) so every waitress thread and every process shares it.
    """

    __tablename__ = "auth_throttle"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_auth_throttle_scope_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))  # user | address | token
    key: Mapped[str] = mapped_column(String(128))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure: Mapped[Optional[datetime]] = mapped_column()
    blocked_until: Mapped[Optional[datetime]] = mapped_column()


class AuditEntry(Base):
    """Who did what, when, from where (after NetBox's change log): log-ins, scans, schedules, registers,
    users, tokens, exports. Rows are only ever added."""

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_time", "time"),
        Index("ix_audit_entry_action_time", "action", "time"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    time: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[Optional[str]] = mapped_column(String(128))  # user name (kept when the user goes), or "cli"
    address: Mapped[Optional[str]] = mapped_column(String(64))  # client address, None outside a request
    action: Mapped[str] = mapped_column(String(32))
    object_type: Mapped[Optional[str]] = mapped_column(String(32))
    object_repr: Mapped[Optional[str]] = mapped_column(String(255))
    detail: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)  # before/after or context, never secrets


class StatusDaily(Base):
    """Devices per status per agency/project on one day: the small table the compliance trend reads.

    Filled by :func:`cctv_monitor.history.record_daily_status` after each scan (one snapshot per day,
    replaced by later scans of the same day), so the trend never scans the observation table.
    """

    __tablename__ = "status_daily"
    __table_args__ = (Index("ix_status_daily_day_agency", "day", "agency_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    agency_id: Mapped[Optional[int]] = mapped_column(ForeignKey("agency.id", ondelete="CASCADE"))
    project_id: Mapped[Optional[int]] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(32))
    count: Mapped[int] = mapped_column(Integer, default=0)
