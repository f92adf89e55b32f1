"""crawls: each source's checkpoint, the items it has dealt with, and the page a media was seen on

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sightings", sa.Column("page_url", sa.Text(), nullable=True))
    op.create_table(
        "crawl_state",
        sa.Column("source", sa.String(256), primary_key=True),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("backfilled", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("pages", sa.Integer(), server_default="0", nullable=False),
        sa.Column("items", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_table(
        "crawl_items",
        sa.Column("source", sa.String(256), primary_key=True),
        sa.Column("key", sa.String(256), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("media_id", sa.Integer(), sa.ForeignKey("media.id", ondelete="SET NULL"), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("page_url", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("meta", postgresql.JSONB(), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("crawl_items")
    op.drop_table("crawl_state")
    op.drop_column("sightings", "page_url")
