"""status_daily: per-day device counts per status for the dashboard's compliance trend

Revision ID: 0006_status_daily
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa

revision = "0006_status_daily"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "status_daily",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=True),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"], name=op.f("fk_status_daily_agency_id_agency"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"], name=op.f("fk_status_daily_project_id_project"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_daily")),
    )
    op.create_index("ix_status_daily_day_agency", "status_daily", ["day", "agency_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_status_daily_day_agency", table_name="status_daily")
    op.drop_table("status_daily")
