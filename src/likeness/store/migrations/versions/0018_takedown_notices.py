"""takedown notices: drafted from a match, sent through a channel, owed removal by a deadline, re-checked

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = True, now: bool = False) -> sa.Column:
    default = sa.func.now() if now else None
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, server_default=default)


def upgrade() -> None:
    op.create_table(
        "takedown_notices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("match_id", sa.Integer(), sa.ForeignKey("matches.id", ondelete="CASCADE"), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("pdq", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(16), server_default="drafted", nullable=False),
        sa.Column("channel", sa.Text(), nullable=True),
        _at("drafted_at", nullable=False, now=True),
        _at("sent_at"),
        _at("deadline_at"),
        _at("checked_at"),
        sa.Column("finding", sa.Text(), nullable=True),
        sa.Column("response_enc", sa.LargeBinary(), nullable=True),
        sa.Column("response_key_id", sa.String(32), nullable=True),
    )
    op.create_index("ix_takedown_notices_match_id", "takedown_notices", ["match_id"])


def downgrade() -> None:
    op.drop_index("ix_takedown_notices_match_id", table_name="takedown_notices")
    op.drop_table("takedown_notices")
