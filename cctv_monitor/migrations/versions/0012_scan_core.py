"""scan_core: run leases (owner, expiry), run source and client run id, ingested observation receipts,
several observations of one device per run

Revision ID: 0012_scan_core
Revises: 0006_status_daily
"""

from alembic import op
import sqlalchemy as sa

from cctv_monitor.models import UTCDateTime

revision = "0012_scan_core"
down_revision = "0006_status_daily"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scan_run") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("lease_expires", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("source", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("client_run_id", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("coverage", sa.String(length=16), nullable=True))
        batch.create_index("ix_scan_run_client_run_id", ["client_run_id"], unique=False)
    with op.batch_alter_table("observation") as batch:
        # A field file or an API run may hold several observations of one camera.
        batch.drop_constraint("uq_observation_scan_device", type_="unique")
        batch.create_index("ix_observation_scan_device", ["scan_run_id", "device_id"], unique=False)
    op.create_table(
        "observation_receipt",
        sa.Column("observation_uid", sa.String(length=128), nullable=False),
        sa.Column("scan_run_id", sa.Integer(), nullable=True),
        sa.Column("received_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["scan_run_id"], ["scan_run.id"],
                                name=op.f("fk_observation_receipt_scan_run_id_scan_run"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("observation_uid", name=op.f("pk_observation_receipt")),
    )
    op.create_index("ix_observation_receipt_scan_run_id", "observation_receipt", ["scan_run_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_observation_receipt_scan_run_id", table_name="observation_receipt")
    op.drop_table("observation_receipt")
    with op.batch_alter_table("observation") as batch:
        batch.drop_index("ix_observation_scan_device")
        batch.create_unique_constraint("uq_observation_scan_device", ["scan_run_id", "device_id"])
    with op.batch_alter_table("scan_run") as batch:
        batch.drop_index("ix_scan_run_client_run_id")
        batch.drop_column("coverage")
        batch.drop_column("client_run_id")
        batch.drop_column("source")
        batch.drop_column("lease_expires")
        batch.drop_column("lease_owner")
