"""trust_identity: per-device credential memory (fingerprints of the credential that worked and of rejected ones)

Revision ID: 0010_trust_identity
Revises: 0006_status_daily
"""

from alembic import op
import sqlalchemy as sa

revision = "0010_trust_identity"
down_revision = "0007_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("device") as batch:
        batch.add_column(sa.Column("credential_ref", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("rejected_credential_refs", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("device") as batch:
        batch.drop_column("rejected_credential_refs")
        batch.drop_column("credential_ref")
