"""records that say where: a sighting's platform, author and posted time; a reviewer's note on a match

Sightings of crawled items are filled from ``crawl_items`` (the platform's metadata was kept there).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BACKFILL = """
UPDATE sightings s SET
    platform = split_part(c.source, ':', 1),
    author = left(coalesce(c.meta->>'author', c.meta->>'username'), 1000),
    posted_at = CASE WHEN c.meta->>'created' ~ '^\\d{4}-\\d{2}-\\d{2}' THEN (c.meta->>'created')::timestamptz END
FROM crawl_items c
WHERE c.media_id = s.media_id AND c.url = s.location AND s.platform IS NULL
"""


def upgrade() -> None:
    op.add_column("sightings", sa.Column("platform", sa.Text(), nullable=True))
    op.add_column("sightings", sa.Column("author", sa.Text(), nullable=True))
    op.add_column("sightings", sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("matches", sa.Column("note_enc", sa.LargeBinary(), nullable=True))
    op.add_column("matches", sa.Column("note_key_id", sa.String(length=32), nullable=True))
    op.execute(_BACKFILL)


def downgrade() -> None:
    op.drop_column("matches", "note_key_id")
    op.drop_column("matches", "note_enc")
    op.drop_column("sightings", "posted_at")
    op.drop_column("sightings", "author")
    op.drop_column("sightings", "platform")
