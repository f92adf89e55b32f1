"""abuse controls: trust scores, token buckets, measures (blocks, bans, flags), uploads and probes seen, held
submissions and the append-only abuse log

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_APPEND_ONLY = """
CREATE FUNCTION abuse_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'abuse_log is append-only: % refused', TG_OP;
END $$;
CREATE TRIGGER abuse_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON abuse_log
    FOR EACH STATEMENT EXECUTE FUNCTION abuse_log_append_only();
"""


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    _state_tables()
    _measures()
    _observations()
    _log()


def _state_tables() -> None:
    op.create_table(
        "abuse_trust",
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("score", sa.Float(), nullable=False),
        _at("updated_at"),
    )
    op.create_table(
        "abuse_buckets",
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        _at("updated_at"),
    )


def _measures() -> None:
    op.create_table(
        "abuse_measures",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("network", postgresql.CIDR(), nullable=True),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("ip", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        _at("created_at"),
        _at("expires_at", nullable=True),
        _at("lifted_at", nullable=True),
        sa.Column("lifted_by", sa.String(128), nullable=True),
    )
    op.create_index("ix_abuse_measures_kind_subject", "abuse_measures", ["kind", "subject"])
    op.create_index("ix_abuse_measures_account", "abuse_measures", ["account_id"])


def _observations() -> None:
    op.create_table(
        "abuse_uploads",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("who", sa.Text(), nullable=False),
        sa.Column("sha256", sa.LargeBinary(), nullable=False),
        sa.Column("pdq", postgresql.BIT(256), nullable=True),
        _at("at"),
    )
    op.create_index("ix_abuse_uploads_sha256", "abuse_uploads", ["sha256"])
    op.create_index("ix_abuse_uploads_at", "abuse_uploads", ["at"])
    op.create_table(
        "abuse_probes",
        sa.Column("who", sa.Text(), primary_key=True),
        sa.Column("mac", sa.LargeBinary(), primary_key=True),
        _at("at"),
    )
    op.create_index("ix_abuse_probes_who_at", "abuse_probes", ["who", "at"])
    op.create_table(
        "abuse_held",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("token_id", sa.BigInteger(), nullable=True),
        sa.Column("ip", sa.Text(), nullable=False),
        sa.Column("what", sa.String(64), nullable=False),
        sa.Column("detail", postgresql.JSONB(), server_default="{}", nullable=False),
        _at("created_at"),
    )
    op.create_index("ix_abuse_held_account_id", "abuse_held", ["account_id"])


def _log() -> None:
    op.create_table(
        "abuse_log",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        _at("at"),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("decision", sa.String(32), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("token_id", sa.BigInteger(), nullable=True),
        sa.Column("ip", sa.Text(), nullable=True),
        sa.Column("measure_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", postgresql.JSONB(), server_default="{}", nullable=False),
    )
    op.create_index("ix_abuse_log_at", "abuse_log", ["at"])
    op.execute(_APPEND_ONLY)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS abuse_log_append_only ON abuse_log")
    op.execute("DROP FUNCTION IF EXISTS abuse_log_append_only()")
    for table in ("abuse_log", "abuse_held", "abuse_probes", "abuse_uploads", "abuse_measures"):
        op.drop_table(table)
    op.drop_table("abuse_buckets")
    op.drop_table("abuse_trust")
