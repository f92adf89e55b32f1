"""task queue: procrastinate's schema (its jobs, workers, events and periodic defers, with their functions) and
the last error of each failing job

Revision ID: 0012
Revises: 0011
"""

from importlib import resources

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# Everything procrastinate's schema.sql creates is named procrastinate_*: dropped by name, whatever its version.
_DROP = """
DO $$
DECLARE item record;
BEGIN
    FOR item IN SELECT tgname, tgrelid::regclass AS rel FROM pg_trigger WHERE tgname LIKE 'procrastinate%' LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', item.tgname, item.rel);
    END LOOP;
    FOR item IN SELECT oid::regprocedure AS fn FROM pg_proc
                WHERE proname LIKE 'procrastinate%' AND pronamespace = 'public'::regnamespace LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', item.fn);
    END LOOP;
    FOR item IN SELECT tablename FROM pg_tables WHERE tablename LIKE 'procrastinate%' AND schemaname = 'public' LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', item.tablename);
    END LOOP;
    FOR item IN SELECT typname FROM pg_type
                WHERE typname LIKE 'procrastinate%' AND typnamespace = 'public'::regnamespace AND typtype IN ('e', 'c')
    LOOP
        EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', item.typname);
    END LOOP;
END $$;
"""


def _raw(sql: str) -> None:
    """Through the driver itself: the schema's plpgsql holds ``%`` and ``:`` that SQLAlchemy's text() would read
    as parameters. Same connection, so the same transaction as the rest of the migration."""
    op.get_bind().connection.driver_connection.execute(sql)  # type: ignore[union-attr]


def upgrade() -> None:
    _raw(resources.files("procrastinate.sql").joinpath("schema.sql").read_text())
    op.create_table(
        "job_errors",
        sa.Column("job_id", sa.BigInteger(), primary_key=True),
        sa.Column("task_name", sa.String(128), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("job_errors")
    _raw(_DROP)
