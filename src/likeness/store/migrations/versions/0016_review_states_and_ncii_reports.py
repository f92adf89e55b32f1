"""review states and ncii reports: who made a match's last decision, labelled pairs for calibration, NCII cases

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = True, now: bool = False) -> sa.Column:
    default = sa.func.now() if now else None
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, server_default=default)


def upgrade() -> None:
    op.add_column("matches", sa.Column("reviewer", sa.String(128), nullable=True))
    op.create_table(
        "calibration_pairs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("match_id", sa.Integer(), sa.ForeignKey("matches.id", ondelete="SET NULL"), nullable=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("tier", sa.String(8), nullable=False),
        sa.Column("subject_id", sa.Integer(), sa.ForeignKey("subjects.id", ondelete="CASCADE"), nullable=True),
        sa.Column("hash_id", sa.Integer(), sa.ForeignKey("protected_hashes.id", ondelete="CASCADE"), nullable=True),
        sa.Column("reviewer", sa.String(128), nullable=False),
        _at("created_at", nullable=False, now=True),
    )
    op.create_index("ix_calibration_pairs_label", "calibration_pairs", ["label"])
    op.create_table(
        "ncii_cases",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("number", sa.String(16), nullable=False, unique=True),
        sa.Column("pin_hash", sa.Text(), nullable=True),
        sa.Column("pin_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("platforms", ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("details_enc", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(16), server_default="open", nullable=False),
        _at("withdrawn_at"),
        _at("created_at", nullable=False, now=True),
        _at("updated_at", nullable=False, now=True),
    )


def downgrade() -> None:
    op.drop_table("ncii_cases")
    op.drop_index("ix_calibration_pairs_label", table_name="calibration_pairs")
    op.drop_table("calibration_pairs")
    op.drop_column("matches", "reviewer")
