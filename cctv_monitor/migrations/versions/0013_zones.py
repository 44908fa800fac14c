"""zones: a network zone per site, work units of distributed runs, run deadline, "not reached this run"

Revision ID: 0013_zones
Revises: 0006_status_daily
"""

from alembic import op
import sqlalchemy as sa

revision = "0013_zones"
down_revision = "0012_scan_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("site") as batch:
        batch.add_column(sa.Column("zone", sa.String(length=64), nullable=False, server_default="central"))
    with op.batch_alter_table("scan_run") as batch:
        batch.add_column(sa.Column("deadline", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("distributed", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("device") as batch:
        batch.add_column(sa.Column("not_reached_run_id", sa.Integer(), nullable=True))
    op.create_table(
        "scan_unit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scan_run_id", sa.Integer(), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("addresses", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("observations", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("finished", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["scan_run_id"], ["scan_run.id"], name=op.f("fk_scan_unit_scan_run_id_scan_run"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scan_unit")),
        sa.UniqueConstraint("scan_run_id", "seq", name="uq_scan_unit_run_seq"),
    )
    op.create_index("ix_scan_unit_run_state", "scan_unit", ["scan_run_id", "state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_scan_unit_run_state", table_name="scan_unit")
    op.drop_table("scan_unit")
    with op.batch_alter_table("device") as batch:
        batch.drop_column("not_reached_run_id")
    with op.batch_alter_table("scan_run") as batch:
        batch.drop_column("distributed")
        batch.drop_column("deadline")
    with op.batch_alter_table("site") as batch:
        batch.drop_column("zone")
