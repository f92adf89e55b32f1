"""hardening: crawl sources and item keys of any length; sightings unique by a hash of their location (a btree
entry cannot hold a location of several KB); the exact bytes of file names that are not UTF-8

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("crawl_state", "source", type_=sa.Text(), existing_nullable=False)
    op.alter_column("crawl_items", "source", type_=sa.Text(), existing_nullable=False)
    op.alter_column("crawl_items", "key", type_=sa.Text(), existing_nullable=False)
    op.add_column("sightings", sa.Column("location_raw", sa.LargeBinary(), nullable=True))
    op.add_column("sightings", sa.Column("location_hash", sa.LargeBinary(), nullable=True))
    op.execute("UPDATE sightings SET location_hash = sha256(convert_to(location, 'UTF8'))")
    op.alter_column("sightings", "location_hash", nullable=False)
    op.drop_constraint("sightings_media_id_location_key", "sightings", type_="unique")
    op.create_unique_constraint("sightings_media_id_location_hash_key", "sightings", ["media_id", "location_hash"])


def downgrade() -> None:
    op.drop_constraint("sightings_media_id_location_hash_key", "sightings", type_="unique")
    op.create_unique_constraint("sightings_media_id_location_key", "sightings", ["media_id", "location"])
    op.drop_column("sightings", "location_hash")
    op.drop_column("sightings", "location_raw")
    op.alter_column("crawl_items", "key", type_=sa.String(256), existing_nullable=False)
    op.alter_column("crawl_items", "source", type_=sa.String(256), existing_nullable=False)
    op.alter_column("crawl_state", "source", type_=sa.String(256), existing_nullable=False)
