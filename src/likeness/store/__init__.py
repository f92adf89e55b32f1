"""PostgreSQL + pgvector, the one system of record."""

from likeness.store.db import Store, open_store

__all__ = ["Store", "open_store"]
