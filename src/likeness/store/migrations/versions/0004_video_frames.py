"""videos and animations: the frame a face was seen in, and the media's duration

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("faces", sa.Column("frame", sa.Integer(), server_default="0", nullable=False))
    op.add_column("media", sa.Column("duration_s", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("media", "duration_s")
    op.drop_column("faces", "frame")
