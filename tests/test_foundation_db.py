"""The schema is created by migrations on both engines, and the basic model round-trips."""

from __future__ import annotations

from datetime import date, timezone
from decimal import Decimal

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from cctv_monitor.db import get_db
from cctv_monitor.models import Agency, Project, SpecProfile


def test_migrations_create_every_table(app):
    """All model tables exist after create_app, plus alembic's version table."""
    from cctv_monitor.models import Base

    names = set(inspect(get_db(app).engine).get_table_names())
    assert set(Base.metadata.tables) <= names
    assert "alembic_version" in names


def test_agency_project_round_trip(session):
    """Typed columns come back typed; timestamps are timezone-aware UTC."""
    agency = Agency(code="maesai-mun", name_th="เทศบาลตำบลแม่สาย", name_en="Mae Sai Subdistrict Municipality",
                    province="เชียงราย", district="แม่สาย")
    profile = SpecProfile(code="fixed_outdoor", name_th="กล้องชนิดติดตั้งถาวรภายนอกอาคาร", device_class="fixed_outdoor",
                          requirements={"min_width": 1920})
    session.add(Project(code="P-1", title_th="โครงการ", agency=agency, spec_profile=profile, approved_count=12,
                        budget_thb=Decimal("1234567.89"), approval_date=date(2024, 10, 25)))
    session.commit()
    project = session.scalars(select(Project)).one()
    assert project.budget_thb == Decimal("1234567.89")
    assert project.approval_date == date(2024, 10, 25)
    assert project.created.tzinfo is not None and project.created.utcoffset() == timezone.utc.utcoffset(None)
    assert project.agency.name_th == "เทศบาลตำบลแม่สาย"


def test_unique_codes_enforced(session):
    """A second agency with the same code violates the named unique constraint."""
    session.add(Agency(code="dup", name_th="ก", province="เชียงราย"))
    session.commit()
    session.add(Agency(code="dup", name_th="ข", province="เชียงราย"))
    with pytest.raises(IntegrityError):
        session.commit()


def test_scan_run_target_holds_a_long_range_list(app, session):
    """A scan of many ranges stores its whole target text (it was String(255): PostgreSQL refused it), and
    the migration 0014s_target_text goes down (cutting long targets to 255) and up again."""
    from cctv_monitor.migrate import alembic_config
    from cctv_monitor.models import ScanRun
    from alembic import command

    target = ",".join(f"127.70.{i}.0/24" for i in range(200))
    assert len(target) > 2000
    session.add(ScanRun(target_kind="range", target_value=target))
    session.commit()
    assert session.scalar(select(ScanRun.target_value)) == target
    session.close()
    engine = get_db(app).engine
    command.downgrade(alembic_config(engine), "0013_zones")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT target_value FROM scan_run").scalar() == target[:255]
    command.upgrade(alembic_config(engine), "heads")
    with engine.begin() as conn:
        conn.execute(ScanRun.__table__.update().values(target_value=target))
        assert conn.execute(select(ScanRun.target_value)).scalar() == target


def test_scan_tables_migrations_0016s_0017s(app, session):
    """0016s: no index on finding.scan_run_id, none on observation.scan_run_id alone and, on PostgreSQL, room on device and finding pages (HOT
    updates); 0017s fills ``device.last_ok_observation_id`` from the history: the latest ok observation of
    each device, none for a device never read. Both go down and up again."""
    from datetime import datetime, timezone

    from sqlalchemy import inspect

    from alembic import command
    from cctv_monitor.migrate import alembic_config
    from cctv_monitor.models import Device, Observation

    engine = get_db(app).engine
    assert "ix_finding_scan_run_id" not in {i["name"] for i in inspect(engine).get_indexes("finding")}
    assert "ix_observation_scan_run_id" not in {i["name"] for i in inspect(engine).get_indexes("observation")}
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            options = dict(conn.exec_driver_sql(
                "SELECT relname, reloptions FROM pg_class WHERE relname IN ('device', 'finding') "
                "AND relnamespace = to_regnamespace(current_schema())").all())
        assert options == {"device": ["fillfactor=50"], "finding": ["fillfactor=50"]}
        with engine.connect() as conn:
            lz4 = conn.exec_driver_sql("SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                                       "WHERE name = 'default_toast_compression'").scalar()
            method = conn.exec_driver_sql(
                "SELECT attcompression FROM pg_attribute WHERE attrelid = to_regclass('observation') "
                "AND attname = 'data'").scalar()
        assert method == ("l" if lz4 else "")
    read, never = Device(address="127.0.9.1:80"), Device(address="127.0.9.2:80")
    session.add_all([read, never])
    session.flush()
    now = datetime.now(timezone.utc)
    rows = [Observation(device_id=read.id, address="127.0.9.1:80", probe_status=s, observed_at=now, data={})
            for s in ("ok", "ok", "auth_failed")]
    rows.append(Observation(device_id=never.id, address="127.0.9.2:80", probe_status="auth_failed",
                            observed_at=now, data={}))
    session.add_all(rows)
    session.commit()
    ids = (read.id, never.id)
    session.close()
    command.downgrade(alembic_config(engine), "0015s_inventory_version")
    assert "ix_finding_scan_run_id" in {i["name"] for i in inspect(engine).get_indexes("finding")}
    command.upgrade(alembic_config(engine), "heads")
    with engine.connect() as conn:
        got = dict(conn.execute(select(Device.id, Device.last_ok_observation_id).where(Device.id.in_(ids))).all())
    assert got == {ids[0]: rows[1].id, ids[1]: None}
