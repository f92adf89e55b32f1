"""near-duplicate groups in the catalogue: media.canonical_id

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("media", sa.Column("canonical_id", sa.Integer(), nullable=True))
    op.create_index("ix_media_canonical_id", "media", ["canonical_id"], unique=False)
    op.create_foreign_key("media_canonical_id_fkey", "media", "media", ["canonical_id"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    op.drop_constraint("media_canonical_id_fkey", "media", type_="foreignkey")
    op.drop_index("ix_media_canonical_id", table_name="media")
    op.drop_column("media", "canonical_id")
