"""scan_run.target_value as text: a scan of a long list of ranges no longer fails on PostgreSQL

Revision ID: 0014s_target_text
Revises: 0013_zones
"""

from alembic import op
import sqlalchemy as sa

revision = "0014s_target_text"
down_revision = "0013_zones"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scan_run") as batch:
        batch.alter_column("target_value", existing_type=sa.String(length=255), type_=sa.Text(),
                           existing_nullable=False)


def downgrade() -> None:
    # Values longer than 255 characters do not fit back: they are cut (the start names the ranges).
    op.execute(sa.text("UPDATE scan_run SET target_value = substr(target_value, 1, 255) "
                       "WHERE length(target_value) > 255"))
    with op.batch_alter_table("scan_run") as batch:
        batch.alter_column("target_value", existing_type=sa.Text(), type_=sa.String(length=255),
                           existing_nullable=False)
