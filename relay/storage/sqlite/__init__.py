"""The embedded SQLite (WAL) backend of :class:`relay.storage.Store`."""

from __future__ import annotations

from relay.storage.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
