"""Checks of the PostgreSQL settings that need no server (and no asyncpg): the schema name
and the DSN. ``load_config`` runs them, so a bad value stops ``relay serve`` and
``relay init`` with exit 2 and the config key named, before any connection is tried.
"""

from __future__ import annotations

import re

from protocol.errors import ConfigError

# An unquoted lower-case identifier: safe to splice into DDL and search_path as is.
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# Key words that cannot name a schema unquoted (PostgreSQL docs, Appendix C, "SQL Key
# Words": the "reserved" and "reserved (can be function or type)" columns; a schema
# name is a ColId in the grammar). pg_get_keywords() catcode R and T of PostgreSQL 15,
# plus system_user (reserved since 16); tests/integration/test_store_pg_schema.py checks
# that the server's list is contained in this one.
_WORDS = """
    all analyse analyze and any array as asc asymmetric authorization binary both case
    cast check collate collation column concurrently constraint create cross
    current_catalog current_date current_role current_schema current_time
    current_timestamp current_user default deferrable desc distinct do else end except
    false fetch for foreign freeze from full grant group having ilike in initially inner
    intersect into is isnull join lateral leading left like limit localtime
    localtimestamp natural not notnull null offset on only or order outer overlaps
    placing primary references returning right select session_user similar some
    symmetric system_user table tablesample then to trailing true union unique user
    using variadic verbose when where window with
"""
RESERVED = frozenset(_WORDS.split())

_KEY = "storage.postgres_schema"
_DSN_KEY = "storage.postgres_dsn"


def check_schema_name(schema: str) -> str:
    """Return ``schema`` if PostgreSQL takes it as a plain, unquoted schema name.

    Raises:
        ConfigError: naming ``storage.postgres_schema`` and why (it is spliced into DDL
            and ``search_path``, so only such names are accepted).
    """
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ConfigError(
            f"{_KEY}: {schema!r} is not a lower-case identifier"
            " (a letter or _, then letters a-z, digits, _; at most 63)"
        )
    if schema in RESERVED:
        raise ConfigError(
            f"{_KEY}: {schema!r} is a reserved SQL key word in PostgreSQL; choose another"
            " name (e.g. relay247)"
        )
    if schema.startswith("pg_"):
        raise ConfigError(f"{_KEY}: {schema!r}: names starting with pg_ are PostgreSQL's own")
    return schema


def check_dsn(dsn: str) -> str:
    """Return ``dsn`` if it is a libpq connection URI (``postgresql://...``).

    asyncpg reads only the URI form; a key=value string (``host=db dbname=relay``) is
    refused here with the URI it would be, instead of failing at connect time.

    Raises:
        ConfigError: naming ``storage.postgres_dsn``.
    """
    text = dsn.strip()
    if re.match(r"(?i)postgres(ql)?://", text):
        return dsn
    if "=" in text and "://" not in text:
        raise ConfigError(
            f"{_DSN_KEY}: key=value connection strings are not supported; write it as a"
            f" URI: {_as_uri(text)}"
            " (libpq docs, 34.1.1.2 Connection URIs; a password belongs in ~/.pgpass)"
        )
    raise ConfigError(
        f"{_DSN_KEY}: not a PostgreSQL connection URI; expected postgresql://user@host:port/dbname"
    )


def _as_uri(conninfo: str) -> str:
    """The URI a simple key=value string stands for (a hint; never echoes a password)."""
    fields: dict[str, str] = {}
    for part in conninfo.split():
        key, sep, value = part.partition("=")
        if sep:
            fields[key.strip().lower()] = value.strip().strip("'")
    user = fields.get("user", "USER")
    host = fields.get("host", "HOST")
    port = f":{fields['port']}" if "port" in fields else ""
    dbname = fields.get("dbname", "DBNAME")
    return f"postgresql://{user}@{host}{port}/{dbname}"
