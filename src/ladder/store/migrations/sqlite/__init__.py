"""SQLite migrations."""
