"""owner keys and a keyed audit chain: personal data sealed per subject and per submission (crypto-shredding);
submissions as rows of their own, with an opaque id in place of the label; a gapless audit sequence number and
room for the sealed personal part of each record

The migration holds no keys: rows from before it (sealed with the master key, labels and embeddings in clear,
audit rows chained by plain SHA-256) are re-sealed under new owner keys and the audit chain keyed once, at the
next start (store/keys.py). Going back below 0008 cannot decrypt what owner keys sealed.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SUBMISSION_FK = "protected_hashes_submission_fkey"

# Each distinct label becomes a submission with a random id; hashes and vPDQ match details point at the id.
SUBMISSIONS_FROM_LABELS = """
INSERT INTO submissions (id, legacy_label)
    SELECT replace(gen_random_uuid()::text, '-', ''), label
    FROM (SELECT DISTINCT submission AS label FROM protected_hashes WHERE submission IS NOT NULL) labels;
UPDATE protected_hashes p SET submission = s.id FROM submissions s WHERE p.submission = s.legacy_label;
UPDATE matches m SET detail = jsonb_set(m.detail, '{submission}', to_jsonb(s.id))
    FROM submissions s WHERE m.detail ->> 'submission' = s.legacy_label;
"""

LABELS_FROM_SUBMISSIONS = """
UPDATE matches m SET detail = jsonb_set(m.detail, '{submission}', to_jsonb(coalesce(s.legacy_label, s.id)))
    FROM submissions s WHERE m.detail ->> 'submission' = s.id;
UPDATE protected_hashes p SET submission = coalesce(s.legacy_label, s.id) FROM submissions s WHERE p.submission = s.id;
"""

NUMBER_AUDIT_ROWS = """
ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
UPDATE audit_log a SET seq = n.rn FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM audit_log) n
    WHERE a.id = n.id;
ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only;
"""


def upgrade() -> None:
    op.add_column("subjects", sa.Column("key_id", sa.String(32), nullable=True))
    op.add_column("subjects", sa.Column("domains_enc", sa.LargeBinary(), nullable=True))
    op.add_column("subjects", sa.Column("centroid_enc", sa.LargeBinary(), nullable=True))
    op.add_column("subjects", sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("subject_references", sa.Column("embedding_enc", sa.LargeBinary(), nullable=True))
    op.alter_column("subject_references", "embedding", nullable=True)
    _submissions()
    _audit()


def _submissions() -> None:
    op.create_table(
        "submissions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("label_enc", sa.LargeBinary(), nullable=True),
        sa.Column("label_index", sa.SmallInteger(), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("legacy_label", sa.Text(), nullable=True),
    )
    op.create_index("ix_submissions_label_index", "submissions", ["label_index"], unique=False)
    op.execute(SUBMISSIONS_FROM_LABELS)
    op.create_foreign_key(SUBMISSION_FK, "protected_hashes", "submissions", ["submission"], ["id"])


def _audit() -> None:
    op.add_column("audit_log", sa.Column("seq", sa.BigInteger(), nullable=True))
    op.add_column("audit_log", sa.Column("key_id", sa.String(32), nullable=True))
    op.add_column("audit_log", sa.Column("personal", sa.LargeBinary(), nullable=True))
    op.add_column("audit_log", sa.Column("chain_version", sa.SmallInteger(), server_default="0", nullable=False))
    op.alter_column("audit_log", "chain_version", server_default=None)
    op.execute(NUMBER_AUDIT_ROWS)
    op.alter_column("audit_log", "seq", nullable=False)
    op.create_unique_constraint("audit_log_seq_key", "audit_log", ["seq"])


def downgrade() -> None:
    op.drop_constraint("audit_log_seq_key", "audit_log", type_="unique")
    for column in ("chain_version", "personal", "key_id", "seq"):
        op.drop_column("audit_log", column)
    op.drop_constraint(SUBMISSION_FK, "protected_hashes", type_="foreignkey")
    op.execute(LABELS_FROM_SUBMISSIONS)
    op.drop_index("ix_submissions_label_index", table_name="submissions")
    op.drop_table("submissions")
    # References only owner keys can read cannot go back to a clear embedding column.
    op.execute("DELETE FROM subject_references WHERE embedding IS NULL")
    op.alter_column("subject_references", "embedding", nullable=False)
    op.drop_column("subject_references", "embedding_enc")
    for column in ("withdrawn_at", "centroid_enc", "domains_enc", "key_id"):
        op.drop_column("subjects", column)
