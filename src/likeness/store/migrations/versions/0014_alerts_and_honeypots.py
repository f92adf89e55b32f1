"""alerts and honeypots: alert rules (sealed targets), deliveries unique per (rule, match) and (rule, plant),
honeypot subjects and their planted copies

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False, now: bool = False) -> sa.Column:
    default = sa.text("now()") if now else None
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, server_default=default)


def upgrade() -> None:
    _honeypots()
    _rules()
    _deliveries()


def _honeypots() -> None:
    op.create_table(
        "honeypots",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("subject_id", sa.Integer(), sa.ForeignKey("subjects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("picture", sa.String(32), nullable=False),
        _at("created_at", now=True),
        sa.UniqueConstraint("subject_id"),
    )
    op.create_table(
        "honeypot_plants",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("honeypot_id", sa.Integer(), sa.ForeignKey("honeypots.id", ondelete="CASCADE"), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        _at("planted_at", now=True),
        _at("due_at"),
    )
    op.create_index("ix_honeypot_plants_honeypot_id", "honeypot_plants", ["honeypot_id"])


def _rules() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("min_tier", sa.String(8), nullable=False),
        sa.Column("subject_id", sa.Integer(), sa.ForeignKey("subjects.id", ondelete="CASCADE"), nullable=True),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("target_enc", sa.LargeBinary(), nullable=False),
        sa.Column("digest_s", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locations", sa.Boolean(), server_default="false", nullable=False),
        _at("last_sent_at", nullable=True),
        _at("created_at", now=True),
    )


def _deliveries() -> None:
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("rule_id", sa.Integer(), sa.ForeignKey("alert_rules.id", ondelete="CASCADE"), nullable=False),
        sa.Column("match_id", sa.Integer(), sa.ForeignKey("matches.id", ondelete="CASCADE"), nullable=True),
        sa.Column("plant_id", sa.Integer(), sa.ForeignKey("honeypot_plants.id", ondelete="CASCADE"), nullable=True),
        sa.Column("event", sa.String(24), nullable=False),
        sa.Column("status", sa.String(8), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _at("created_at", now=True),
        _at("sent_at", nullable=True),
        sa.UniqueConstraint("rule_id", "match_id"),
        sa.UniqueConstraint("rule_id", "plant_id"),
    )
    op.create_index("ix_alert_deliveries_pending", "alert_deliveries", ["rule_id", "status"])


def downgrade() -> None:
    op.drop_table("alert_deliveries")
    op.drop_table("alert_rules")
    op.drop_table("honeypot_plants")
    op.drop_table("honeypots")
