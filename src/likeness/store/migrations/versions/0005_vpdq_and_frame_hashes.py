"""vPDQ features (frame, time) on protected hashes; the frame and vPDQ shares of a hash match; later frames' PDQs

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("protected_hashes", sa.Column("frame", sa.Integer(), nullable=True))
    op.add_column("protected_hashes", sa.Column("time_s", sa.Float(), nullable=True))
    op.add_column("matches", sa.Column("frame", sa.Integer(), nullable=True))
    op.add_column("matches", sa.Column("detail", postgresql.JSONB(), nullable=True))
    op.create_table(
        "frame_hashes",
        sa.Column("media_id", sa.Integer(), sa.ForeignKey("media.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("frame", sa.Integer(), primary_key=True),
        sa.Column("digest", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("frame_hashes")
    op.drop_column("matches", "detail")
    op.drop_column("matches", "frame")
    op.drop_column("protected_hashes", "time_s")
    op.drop_column("protected_hashes", "frame")
