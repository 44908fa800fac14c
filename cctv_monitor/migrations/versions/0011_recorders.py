"""recorders: cameras behind a recorder (link and channel number) and a project's recorder spec profile

Revision ID: 0011_recorders
Revises: 0006_status_daily
"""

from alembic import op
import sqlalchemy as sa

revision = "0011_recorders"
down_revision = "0010_trust_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("device") as batch:
        batch.add_column(sa.Column("recorder_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("channel", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_device_recorder_id_device", "device", ["recorder_id"], ["id"],
                                 ondelete="SET NULL")
        batch.create_index("ix_device_recorder_id", ["recorder_id"], unique=False)
    with op.batch_alter_table("project") as batch:
        batch.add_column(sa.Column("recorder_spec_profile_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_project_recorder_spec_profile_id_spec_profile", "spec_profile",
                                 ["recorder_spec_profile_id"], ["id"], ondelete="RESTRICT")


def downgrade() -> None:
    with op.batch_alter_table("project") as batch:
        batch.drop_constraint("fk_project_recorder_spec_profile_id_spec_profile", type_="foreignkey")
        batch.drop_column("recorder_spec_profile_id")
    with op.batch_alter_table("device") as batch:
        batch.drop_index("ix_device_recorder_id")
        batch.drop_constraint("fk_device_recorder_id_device", type_="foreignkey")
        batch.drop_column("channel")
        batch.drop_column("recorder_id")
