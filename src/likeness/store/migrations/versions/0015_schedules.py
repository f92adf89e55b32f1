"""schedules: crawl sources re-run on a cadence, subject tiers (free / protected / premium)

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = True, now: bool = False) -> sa.Column:
    default = sa.func.now() if now else None
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, server_default=default)


def upgrade() -> None:
    op.create_table(
        "crawl_schedules",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column("max_pages", sa.Integer(), nullable=False),
        sa.Column("every_s", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        _at("last_deferred_at"),
        _at("created_at", nullable=False, now=True),
    )
    op.create_table(
        "subject_tiers",
        sa.Column("subject_id", sa.Integer(), sa.ForeignKey("subjects.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tier", sa.String(16), nullable=False),
        _at("last_checked_at"),
        _at("updated_at", nullable=False, now=True),
    )


def downgrade() -> None:
    op.drop_table("subject_tiers")
    op.drop_table("crawl_schedules")
