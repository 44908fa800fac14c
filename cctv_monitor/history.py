"""The per-day status summary behind the compliance trend (table ``status_daily``).

The scan pipeline (:mod:`cctv_monitor.scanning`) calls :func:`record_daily_status` after the device statuses
of a run are committed; the dashboard only reads the table. Each call replaces the snapshot of that day, so
several scans a day leave one row per (agency, project, status) and the trend never reads the observation
history.
"""

from __future__ import annotations

import logging
from datetime import date

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from cctv_monitor.models import Device, StatusDaily

LOGGER = logging.getLogger(__name__)


def record_daily_status(session: Session, day: date | None = None) -> int:
    """Replace the snapshot of ``day`` (default today) with current device counts; returns rows written."""
    day = day or date.today()
    counts = session.execute(select(Device.agency_id, Device.project_id, Device.status, func.count(Device.id))
                             .group_by(Device.agency_id, Device.project_id, Device.status)).all()
    session.execute(delete(StatusDaily).where(StatusDaily.day == day))
    session.add_all(StatusDaily(day=day, agency_id=agency_id, project_id=project_id, status=status, count=count)
                    for agency_id, project_id, status, count in counts)
    session.flush()
    LOGGER.info("status_daily %s: %d rows", day, len(counts))
    return len(counts)
