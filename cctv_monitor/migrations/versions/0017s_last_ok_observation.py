"""device.last_ok_observation_id: the latest ok observation of each device, kept as scans record it

Media drift compares an observation with the device's latest ok one. Every scan and every ingest batch
loaded those by grouping the whole observation history (``max(id) ... WHERE probe_status = 'ok' GROUP BY
device_id``): a full pass over a table that grows by a province's cameras every scan. The device now names
it, so the load is one primary-key lookup per device. Filled here from the history, once.

Revision ID: 0017s_last_ok_observation
Revises: 0016s_hot_updates
"""

from alembic import op
import sqlalchemy as sa

revision = "0017s_last_ok_observation"
down_revision = "0016s_hot_updates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_ok_observation_id", sa.Integer(), nullable=True))
    op.execute(sa.text(
        "UPDATE device SET last_ok_observation_id = (SELECT max(o.id) FROM observation o "
        "WHERE o.device_id = device.id AND o.probe_status = 'ok')"))


def downgrade() -> None:
    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.drop_column("last_ok_observation_id")
