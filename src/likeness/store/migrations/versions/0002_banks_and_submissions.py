"""banks (enable, per-bank threshold, negative banks) and submissions of protected hashes

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FK = "protected_hashes_bank_fkey"


def upgrade() -> None:
    op.create_table(
        "banks",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("negative", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("max_distance", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    # banks that hashes already name become rows, before the foreign key needs them
    op.execute("INSERT INTO banks (name) SELECT DISTINCT bank FROM protected_hashes")
    op.add_column("protected_hashes", sa.Column("submission", sa.String(length=128), nullable=True))
    op.alter_column("protected_hashes", "quality", existing_type=sa.INTEGER(), nullable=True)
    op.create_index("ix_protected_hashes_bank", "protected_hashes", ["bank"], unique=False)
    op.create_index("ix_protected_hashes_submission", "protected_hashes", ["submission"], unique=False)
    op.create_foreign_key(FK, "protected_hashes", "banks", ["bank"], ["name"], onupdate="CASCADE")


def downgrade() -> None:
    op.drop_constraint(FK, "protected_hashes", type_="foreignkey")
    op.drop_index("ix_protected_hashes_submission", table_name="protected_hashes")
    op.drop_index("ix_protected_hashes_bank", table_name="protected_hashes")
    op.execute("DELETE FROM protected_hashes WHERE quality IS NULL")
    op.alter_column("protected_hashes", "quality", existing_type=sa.INTEGER(), nullable=False)
    op.drop_column("protected_hashes", "submission")
    op.drop_table("banks")
