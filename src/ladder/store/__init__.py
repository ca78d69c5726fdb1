"""State on disk: SQLite (WAL) for metadata, files under generated ids for blobs."""

from ladder.store.db import Database, get_db

__all__ = ["Database", "get_db"]
