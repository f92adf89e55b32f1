"""Alembic environment: migrations always run on the connection ``likeness.store.db.upgrade`` hands in."""

from alembic import context

from likeness.store.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
