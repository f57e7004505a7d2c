"""The PostgreSQL backend of :class:`relay.storage.Store`, for several relay instances.

The store itself is :class:`relay.storage.postgres.store.PostgresStore`, imported where
it is used, so that a SQLite relay and the config check never load asyncpg.
"""
