"""web portal: consent texts as shown and which one each subject agreed to, takedowns a subject asked for,
subject accounts waiting to enroll

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_texts",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.add_column("subjects", sa.Column("consent_sha256", sa.String(64), sa.ForeignKey("consent_texts.sha256")))
    op.add_column("subjects", sa.Column("consented_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("subjects", sa.Column("enrolled_by", sa.String(16), server_default="operator", nullable=False))
    op.add_column("matches", sa.Column("takedown_requested_at", sa.DateTime(timezone=True), nullable=True))
    # A subject account without a subject now waits to enroll; those left unbound by a withdrawal are disabled.
    op.execute(
        "UPDATE accounts SET disabled_at = now() WHERE role = 'subject' AND subject_id IS NULL AND disabled_at IS NULL"
    )


def downgrade() -> None:
    op.drop_column("matches", "takedown_requested_at")
    op.drop_column("subjects", "enrolled_by")
    op.drop_column("subjects", "consented_at")
    op.drop_column("subjects", "consent_sha256")
    op.drop_table("consent_texts")
