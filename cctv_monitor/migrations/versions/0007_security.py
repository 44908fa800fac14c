"""security: auth version on users, log-in throttling state, audit log

Revision ID: 0007_security
Revises: 0006_status_daily
"""

from alembic import op
import sqlalchemy as sa

from cctv_monitor.models import UTCDateTime

revision = "0007_security"
down_revision = "0006_status_daily"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("app_user") as batch:
        batch.add_column(sa.Column("auth_version", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "auth_throttle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure", UTCDateTime(), nullable=True),
        sa.Column("blocked_until", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_throttle")),
        sa.UniqueConstraint("scope", "key", name="uq_auth_throttle_scope_key"),
    )
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=True),
        sa.Column("object_repr", sa.String(length=255), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entry")),
    )
    op.create_index("ix_audit_entry_time", "audit_entry", ["time"], unique=False)
    op.create_index("ix_audit_entry_action_time", "audit_entry", ["action", "time"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_entry_action_time", table_name="audit_entry")
    op.drop_index("ix_audit_entry_time", table_name="audit_entry")
    op.drop_table("audit_entry")
    op.drop_table("auth_throttle")
    with op.batch_alter_table("app_user") as batch:
        batch.drop_column("auth_version")
