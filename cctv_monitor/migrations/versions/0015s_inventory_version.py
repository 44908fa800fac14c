"""inventory_version: one counter row bumped by every transaction that writes what the recorder indexes

The ingest worker keeps a run's indexes (devices, register, sites, projects, active findings) between
batches while nobody else wrote those tables. On PostgreSQL a statement trigger on each of them bumps the
counter once per writing transaction (before the statement's first row lock, so every writer takes the
counter's row lock first and holds it to its commit); a batch bumps it first and learns in one statement
whether anyone else wrote since its last batch. SQLite (one writer) keeps comparing row counts.

Revision ID: 0015s_inventory_version
Revises: 0014s_target_text
"""

from alembic import op
import sqlalchemy as sa

revision = "0015s_inventory_version"
down_revision = "0014s_target_text"
branch_labels = None
depends_on = None

#: The tables whose rows the recorder's indexes hold (the models of cctv_monitor.scan.ingest._STAMPED).
TABLES = ("device", "register_entry", "site", "project", "finding")

FUNCTION = """
CREATE OR REPLACE FUNCTION cctv_inventory_written() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Once per transaction: the row lock taken here is held to the commit, so writers take turns on it.
    IF current_setting('cctv.inventory_txid', true) IS DISTINCT FROM txid_current()::text THEN
        UPDATE inventory_version SET version = version + 1 WHERE id = 1;
        PERFORM set_config('cctv.inventory_txid', txid_current()::text, true);
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "inventory_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inventory_version")),
    )
    op.execute(sa.text("INSERT INTO inventory_version (id, version) VALUES (1, 0)"))
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(sa.text(FUNCTION))
    for table in TABLES:
        op.execute(sa.text(f"CREATE TRIGGER {table}_inventory_written BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE "
                           f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION cctv_inventory_written()"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(sa.text(f"DROP TRIGGER IF EXISTS {table}_inventory_written ON {table}"))
        op.execute(sa.text("DROP FUNCTION IF EXISTS cctv_inventory_written()"))
    op.drop_table("inventory_version")
