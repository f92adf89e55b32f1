"""frozen evidence: a case per match (its own data key) and the captures made of it

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def _now(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "evidence_cases",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("match_id", sa.Integer(), sa.ForeignKey("matches.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        _now("created_at"),
        sa.UniqueConstraint("match_id"),
    )
    op.create_table(
        "evidence_captures",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("evidence_cases.id", ondelete="CASCADE"), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("manifest_blob", sa.String(64), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        _now("captured_at"),
    )
    op.create_index("ix_evidence_captures_case_id", "evidence_captures", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_evidence_captures_case_id", table_name="evidence_captures")
    op.drop_table("evidence_captures")
    op.drop_table("evidence_cases")
