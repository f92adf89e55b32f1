"""shared politeness: per-host token buckets, Retry-After pauses and circuit breakers for every crawling process

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "polite_hosts",
        sa.Column("host", sa.Text(), primary_key=True),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        _at("counted_at"),
        _at("not_before", nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        _at("open_until", nullable=True),
    )


def downgrade() -> None:
    op.drop_table("polite_hosts")
