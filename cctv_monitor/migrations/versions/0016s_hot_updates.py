"""device and finding updated in place: room on their pages, and no index on a column every scan rewrites

Every scan rewrites a few columns of each device it reaches (last_seen, last_ok, last_observation_id) and
of each of its active findings (scan_run_id, observation_id, last_seen). PostgreSQL can write such an update
as a heap-only tuple (HOT: no new entry in any of the table's indexes, about a third of the cost on
``device``'s eleven indexes) when no indexed column changes and the row's page has room. So:

- ``fillfactor`` 70 on both tables (PostgreSQL only): new pages are filled to 70 %, leaving the room;
  pages written before this migration get it as vacuum frees them.
- ``ix_finding_scan_run_id`` goes: nothing looks findings up by their last run (the dashboards go by device,
  project and rule), and it was the one indexed column among those a scan rewrites. The foreign key stays;
  scan runs are never deleted, so its ``ON DELETE SET NULL`` has nothing to look up.

Revision ID: 0016s_hot_updates
Revises: 0015s_inventory_version
"""

from alembic import op
import sqlalchemy as sa

revision = "0016s_hot_updates"
down_revision = "0015s_inventory_version"
branch_labels = None
depends_on = None

#: Tables rewritten by every scan, and the share of each new page left free for their updates.
FILLFACTOR = {"device": 50, "finding": 50}


def upgrade() -> None:
    with op.batch_alter_table("finding", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_finding_scan_run_id"))
    if op.get_bind().dialect.name == "postgresql":
        for table, percent in FILLFACTOR.items():
            op.execute(sa.text(f"ALTER TABLE {table} SET (fillfactor = {percent})"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in FILLFACTOR:
            op.execute(sa.text(f"ALTER TABLE {table} RESET (fillfactor)"))
    with op.batch_alter_table("finding", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_finding_scan_run_id"), ["scan_run_id"], unique=False)
