"""Numbered SQL migrations (append-only: never edit a released file, add the next number)."""
