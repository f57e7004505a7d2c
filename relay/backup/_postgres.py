"""Backups and restores of the PostgreSQL store (``relay247 relay backup | restore``).

A backup is pg_dump --format=custom of the relay's schema, taken inside a snapshot
exported by a repeatable-read transaction that also reads the log size the dump holds
(PostgreSQL docs, pg_dump --snapshot, and 9.27.5 "Snapshot Synchronization Functions"),
so the numbers printed are exactly what the file holds. pg_restore runs --clean
--if-exists --single-transaction: all of it or nothing. The client programs run with the
password in PGPASSWORD, never on their command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import asyncpg

from protocol.decimal import parse_decimal
from protocol.errors import ConfigError, MalformedError, StorageError
from relay.backup._files import (
    Snapshot,
    check_state,
    fsync_path,
    install,
    refuse_existing,
    require_file,
    restored,
    temp_beside,
)
from relay.config import RelayConfig
from relay.storage import SCHEMA_VERSION
from relay.storage._versions import unknown_error
from relay.storage.postgres._names import check_schema_name
from relay.storage.postgres._schema import application_prefix, connect, leader_lock_key

_TOOL_TIMEOUT = 3600.0  # seconds: pg_dump/pg_restore of a large log may take a while


def _tool(name: str) -> str:
    """Find a PostgreSQL client program on PATH.

    Raises:
        ConfigError: it is not installed.
    """
    found = shutil.which(name)
    if found is None:
        raise ConfigError(
            f"{name} not found on PATH: install the PostgreSQL client programs"
            " (the server's major version or newer)"
        )
    return found


def _libpq_target(dsn: str) -> tuple[str, dict[str, str]]:
    """Split a DSN into one without its password and the environment carrying it.

    Command lines are visible to every local user (ps); PGPASSWORD is not (libpq docs,
    34.15 "Environment Variables").
    """
    env = dict(os.environ)
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgres", "postgresql"):
        return dsn, env  # a key=value conninfo: passed on as given
    # In the URI form (libpq docs 34.1.1.2) a password is percent-encoded in the
    # authority, or a ``password=`` parameter (which parse_qsl decodes).
    password = None if parts.password is None else unquote(parts.password)
    kept = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "password":
            password = value
        else:
            kept.append((key, value))
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = f"{userinfo.split(':', 1)[0]}{at}{hostport}"
    if password is not None:
        env["PGPASSWORD"] = password
    clean = urlunsplit((parts.scheme, netloc, parts.path, urlencode(kept), parts.fragment))
    return clean, env


async def _run_tool(args: list[str], env: dict[str, str]) -> str:
    """Run a client program; return its stdout.

    Raises:
        StorageError: it failed (its last stderr lines are the detail).
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(proc.communicate(), _TOOL_TIMEOUT)
    except OSError as exc:
        raise StorageError(f"{Path(args[0]).name} could not run: {exc.strerror}") from None
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        raise StorageError(
            f"{Path(args[0]).name} failed (exit {proc.returncode})",
            detail=" | ".join(lines[-5:]),
        )
    return out.decode(errors="replace")


def pg_settings(config: RelayConfig) -> tuple[str, str]:
    """The configured DSN and schema.

    Raises:
        ConfigError: no DSN, or a schema name that is not a plain identifier.
    """
    dsn = config.storage.postgres_dsn
    if not dsn:
        raise ConfigError('storage.postgres_dsn: required when backend = "postgres"')
    return dsn, check_schema_name(config.storage.postgres_schema)


async def _pg_describe(conn: asyncpg.Connection) -> Snapshot:
    version = int(await conn.fetchval("SELECT version FROM schema_version"))
    size = int(await conn.fetchval("SELECT size FROM tree WHERE id = 0"))
    checkpoint = None
    if version >= 2:
        checkpoint = await conn.fetchval("SELECT MAX(size) FROM checkpoints")
    return Snapshot(version, size, None if checkpoint is None else int(checkpoint))


def _archive_schemas(listing: str) -> set[str]:
    # pg_restore --list: "<id>; <oid> <oid> SCHEMA - <name> <owner>" for each schema.
    names = set()
    for line in listing.splitlines():
        words = line.split()
        if len(words) >= 6 and not line.startswith(";") and words[3:5] == ["SCHEMA", "-"]:
            names.add(words[5])
    return names


async def _archive_version(restore_exe: str, src: Path, env: dict[str, str]) -> int:
    """The schema version stored in a pg_dump archive, read without restoring it.

    Raises:
        ConfigError: the archive holds no single schema_version row.
        StorageError: the version is unknown or newer than this release's.
    """
    script = await _run_tool(
        [restore_exe, "--file=-", "--data-only", "--table=schema_version", str(src)], env
    )
    lines = script.splitlines()
    rows = []
    for i, line in enumerate(lines):
        if line.startswith("COPY ") and ".schema_version (version) FROM stdin;" in line:
            rows = list(itertools.takewhile(lambda row: row != "\\.", lines[i + 1 :]))
    try:
        if len(rows) != 1:
            raise MalformedError("not one row")
        version = parse_decimal(rows[0], name="schema version")
    except MalformedError:
        raise ConfigError(f"{src}: holds no relay schema version") from None
    if not 1 <= version <= SCHEMA_VERSION:
        raise unknown_error(rows[0])
    return version


async def pg_backup(config: RelayConfig, out: Path) -> Snapshot:
    dsn, schema = pg_settings(config)
    dump_exe, restore_exe = _tool("pg_dump"), _tool("pg_restore")
    await asyncio.to_thread(refuse_existing, out)
    target, env = _libpq_target(dsn)
    tmp = temp_beside(out)
    conn = await connect(dsn, schema)
    try:
        # 0600 before pg_dump opens it (it keeps an existing file's mode): a backup
        # holds everything the relay holds.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600))
        # The dump and the numbers we report come from the same exported snapshot.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            if await conn.fetchval("SELECT to_regclass('schema_version')") is None:
                raise ConfigError(f"storage.postgres_schema: {schema!r} holds no relay data")
            snapshot = await _pg_describe(conn)
            name = await conn.fetchval("SELECT pg_export_snapshot()")
            await _run_tool(
                [
                    dump_exe,
                    "--format=custom",
                    f'--schema="{schema}"',
                    f"--snapshot={name}",
                    f"--file={tmp}",
                    f"--dbname={target}",
                ],
                env,
            )
        fsync_path(tmp)
        if schema not in _archive_schemas(await _run_tool([restore_exe, "--list", str(tmp)], env)):
            raise StorageError("backup failed: the archive does not hold the schema")
        install(tmp, out)
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StorageError("backup failed", detail=repr(exc)) from None
    except OSError as exc:
        raise StorageError(f"backup failed: {out}: {exc.strerror}") from None
    finally:
        await conn.close()
        tmp.unlink(missing_ok=True)
    return snapshot


async def _refuse_running(conn: asyncpg.Connection, schema: str) -> None:
    """Refuse while any other session of a relay247 process is connected to ``schema``.

    Raises:
        ConfigError: naming each process (pid@host as it named itself, connections,
            client address), exit 2.
    """
    prefix = application_prefix(schema) + "/"
    rows = await conn.fetch(
        "SELECT application_name, count(*), string_agg(DISTINCT"
        "   coalesce(host(client_addr), 'local socket'), ', ')"
        " FROM pg_stat_activity WHERE datname = current_database()"
        "   AND pid <> pg_backend_pid() AND left(application_name, length($1)) = $1"
        " GROUP BY application_name ORDER BY application_name",
        prefix,
    )
    if rows:
        running = "; ".join(
            f"{r[0][len(prefix) :]} ({r[1]} connection{'s' if r[1] > 1 else ''} from {r[2]})"
            for r in rows
        )
        raise ConfigError(
            f"relay247 processes are connected to schema {schema!r}: {running}."
            " Stop every relay instance (and any running backup or migrate) first"
        )


async def pg_restore(config: RelayConfig, passphrase: bytes, src: Path, *, force: bool) -> Snapshot:
    dsn, schema = pg_settings(config)
    restore_exe = _tool("pg_restore")
    await asyncio.to_thread(require_file, src)
    target, env = _libpq_target(dsn)
    try:
        listing = await _run_tool([restore_exe, "--list", str(src)], env)
    except StorageError as exc:
        raise ConfigError(f"{src}: not a pg_dump archive", detail=exc.detail) from None
    found = _archive_schemas(listing)
    if found != {schema}:
        raise ConfigError(
            f"{src}: holds schema(s) {', '.join(sorted(found)) or 'none'},"
            f" not storage.postgres_schema {schema!r}"
        )
    await _archive_version(restore_exe, src, env)  # a newer release's backup stops here
    conn = await connect(dsn, schema)
    try:
        previous = None
        if await conn.fetchval("SELECT to_regclass('schema_version')") is not None:
            if not force:
                raise ConfigError(
                    f"schema {schema!r} holds relay data already;"
                    " restore with --force to replace it"
                )
            with contextlib.suppress(asyncpg.PostgresError):
                previous = (await _pg_describe(conn)).checkpoint_size
        # Every instance's connections name themselves (application_name): followers
        # hold no lock, so the leader lock alone missed them (issue 11).
        await _refuse_running(conn, schema)
        # Holding the leader lock proves that no instance sequences this schema, and
        # keeps one from starting to while pg_restore runs.
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", leader_lock_key(schema)):
            raise ConfigError(
                f"a relay instance is serving schema {schema!r} (it holds the leader lock):"
                " stop every instance first"
            )
        await _run_tool(
            [
                restore_exe,
                "--clean",
                "--if-exists",
                "--single-transaction",
                "--exit-on-error",
                "--no-owner",
                f"--dbname={target}",
                str(src),
            ],
            env,
        )
        await conn.execute("SELECT pg_advisory_unlock($1)", leader_lock_key(schema))
        snapshot = await _pg_describe(conn)
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StorageError("restore failed", detail=repr(exc)) from None
    finally:
        await conn.close()
    checked = snapshot.schema_version == SCHEMA_VERSION
    if checked:
        await check_state(config, passphrase, None)
    return restored(snapshot, previous, checked=checked)
