"""Numbered SQL migrations, one folder per engine (sqlite/, postgresql/).

Append-only: never edit a released file, add the next number. A change to the schema adds a file to
both folders (the two schemas hold the same data; only the knowledge-base indexes differ: FTS5 and a
float32 blob on SQLite, tsvector and pgvector on PostgreSQL).
"""
