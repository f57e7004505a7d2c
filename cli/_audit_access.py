"""``relay247 audit access-log``: verify a node's access log offline (issue 13 §2).

It reads node.db and never writes it; PROTOCOL.md §14.3 lists its steps. The
checkpoint key is pinned with ``--vkey`` (from the node's published directory entry,
or printed by ``relay247 node officer`` commands); without it the signing key in
DATA/member.json is used and the output says so, since a key read from the directory
being audited proves less than one pinned from outside. ``--keep FILE`` holds the
last checkpoint this auditor verified: the log must still extend it (no rewritten or
truncated history), and it is replaced by the newest one after a clean run.
``--db FILE`` verifies a copy of node.db on its own (an exported file); it then needs
``--vkey``, whose key name is the log's origin.
Exit codes: 0 verified, 1 an anomaly (the first altered entry is named), 2 bad input.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli._audit import _JSON_OPTION, _echo_json
from cli._files import read_user_file
from cli._node_options import data_options
from cli._officers_common import node_config
from cli._passphrase import CliError, CliUsageError
from protocol.codec import decode_as
from protocol.domains import ACCESS_LOG_ORIGIN
from protocol.errors import (
    ConfigError,
    NoteError,
    Relay247Error,
    StorageError,
    StorageUnavailableError,
)
from serving.files import read_file, write_file

if TYPE_CHECKING:
    pass

_MAX_KEPT = 64 * 1024  # bytes: a checkpoint note is a few hundred


_MAX_MEMBER = 65_536  # bytes: a member.json lists a few keys and contacts


def _member_key(path: Path, member: str) -> bytes:
    from schemas.directory import KeyUse, Member

    try:
        raw = read_file(path, _MAX_MEMBER, what="the node's public keys")
        entry = decode_as(Member, raw, "member file", limit=_MAX_MEMBER)
    except ConfigError as exc:  # not a regular file, too large (named with its path)
        raise CliUsageError(f"cannot read the node's public keys: {exc.message}") from None
    except Relay247Error as exc:
        raise CliUsageError(f"{path}: cannot read the node's public keys ({exc.message})") from None
    if entry.id != member:
        raise CliUsageError(f"{path}: is member {entry.id}, the config says {member}")
    for key in entry.keys:
        if key.use == KeyUse.SIGNING:
            return bytes(key.public)
    raise CliUsageError(f"{path}: lists no signing key")


@click.command("access-log")
@data_options
@click.option(
    "--db",
    "db_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A copy of node.db (a backup, a file handed over) instead of a node; needs --vkey.",
)
@click.option("--vkey", "vkeys", multiple=True, help="Pinned checkpoint key (repeatable).")
@click.option(
    "--keep",
    "kept_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File with the last checkpoint you verified; updated after a clean run.",
)
@_JSON_OPTION
def access_log(
    *,
    data_dir: Path | None,
    config_path: Path | None,
    db_path: Path | None,
    vkeys: tuple[str, ...],
    kept_path: Path | None,
    as_json: bool,
) -> None:
    """Verify the node's access log: every entry, root and checkpoint signature."""
    from node.officers import open_db, origin_of, verifier_of, verify_access_log
    from protocol.note import Verifier

    try:
        keys = [Verifier.from_key(v) for v in vkeys]
    except NoteError as exc:
        raise CliUsageError(f"--vkey: {exc.message}") from None
    source = "--vkey"
    if db_path is not None:
        # a file on its own: the pinned key's name is the log's origin (PROTOCOL.md §14.2)
        if not keys:
            raise CliUsageError("--db needs --vkey: a file alone cannot vouch for itself")
        origin = keys[0].name
        if not origin.startswith(ACCESS_LOG_ORIGIN) or any(k.name != origin for k in keys):
            raise CliUsageError(f"--vkey: names must all be {ACCESS_LOG_ORIGIN}<member>")
        database = db_path
    else:
        config = node_config(data_dir, config_path)
        member = config.node.member
        origin = origin_of(member)
        database = config.path(config.node.database)
        if not keys:
            keys = [verifier_of(member, _member_key(config.path("member.json"), member))]
            source = "member.json (not pinned: compare it with the published directory)"
    kept = None
    if kept_path is not None and kept_path.exists():
        kept = read_user_file(kept_path, _MAX_KEPT)
    try:
        conn = open_db(database, create=False)
    except StorageError as exc:
        raise CliUsageError(exc.message) from None
    try:
        report = verify_access_log(conn, keys, origin, now=datetime.now(UTC), kept=kept)
    finally:
        conn.close()
    result = {
        "origin": origin,
        "entries": report.size,
        "checkpoints": report.checkpoints,
        "redacted": report.redacted,
        "key": f"{keys[0].key_string()} from {source}",
        "first_altered_entry": report.first_bad,
        "problems": report.problems,
        "ok": not report.problems,
    }
    if as_json:
        _echo_json(result)
    else:
        for problem in report.problems:
            click.echo(f"ANOMALY: {problem}")
        click.echo(f"access log {origin}: {report.size} entries, {report.checkpoints} checkpoints")
        if report.redacted:
            click.echo(f"{report.redacted} entries redacted after their legal period (§14.6)")
        click.echo(f"key: {result['key']}")
    if report.problems:
        where = report.first_bad
        raise CliError(
            f"{len(report.problems)} anomaly(ies)"
            + ("" if where is None else f"; first altered entry: {where}")
        )
    if kept_path is not None and report.latest is not None:
        try:  # whole or not at all, durably: the next run's rollback check trusts it
            write_file(kept_path, report.latest)
        except StorageUnavailableError as exc:  # disk full, I/O error: exit 1
            raise CliError(f"cannot keep the checkpoint: {exc.message}") from None
        except ConfigError as exc:
            raise CliUsageError(f"cannot keep the checkpoint: {exc.message}") from None
    if not as_json:
        click.echo("verified")


COMMANDS = (access_log,)
