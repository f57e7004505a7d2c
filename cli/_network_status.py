"""``relay247 network status``: stale, unreachable and expiring members (§3.5).

Activity comes from the relay's ``GET /v1/members/status`` (members only, so the
request is signed with a member node's transport key); key expiry comes from the
newest directory version this coordinator directory published, verified from
``trust.json`` on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import msgspec

from cli._network import _DIR_OPTION, _JSON_OPTION
from cli._network_split import read_chain
from cli._numbers import AsciiIntRange
from cli._passphrase import CliError, CliUsageError, fail_from, passphrase_option, read_passphrase
from protocol.directory import key_valid_at
from protocol.errors import Relay247Error
from protocol.keys import SigningKey
from schemas.directory import Directory
from schemas.relay_api import MembersStatus

_MAX_ANSWER = 4 << 20  # bytes


@dataclass(frozen=True)
class Thresholds:
    """When a member counts as stale, and how soon a key expiry is worth a warning."""

    stale: timedelta
    expiry: timedelta


def assess(directory: Directory, status: MembersStatus, limits: Thresholds) -> list[dict[str, Any]]:
    """Return one row per member with its problems (empty list of problems: healthy).

    ``unreachable``: the relay has never seen it; ``stale``: last seen
    longer ago than ``limits.stale``; ``witness-stale`` likewise for cosignatures;
    ``expiring:<use>``: no key of that use stays valid beyond ``limits.expiry``.
    """
    now = status.now
    seen = {m.id: m for m in status.members}
    rows = []
    for member in directory.members:
        problems = []
        activity = seen.get(member.id)
        last = activity.last_seen if activity else None
        cosigned = activity.last_cosigned if activity else None
        if last is None:
            problems.append("unreachable")
        elif now - last > limits.stale:
            problems.append("stale")
        if cosigned is not None and now - cosigned > limits.stale:
            problems.append("witness-stale")
        horizon = now + limits.expiry
        for use in sorted({k.use for k in member.keys}):
            keys = [k for k in member.keys if k.use is use and key_valid_at(k, now)]
            if not any(key_valid_at(k, horizon) for k in keys):
                problems.append(f"expiring:{use.value}")
        rows.append(
            {
                "member": member.id,
                "last_seen": last.isoformat() if last else None,
                "last_cosigned": cosigned.isoformat() if cosigned else None,
                "problems": problems,
            }
        )
    return rows


async def fetch_status(url: str, key: SigningKey, *, now: int | None = None) -> MembersStatus:
    """GET /v1/members/status signed with a member's transport key.

    Args:
        url: the relay's base URL.
        key: a member's transport key.
        now: signing time in Unix seconds (default: the wall clock).

    Raises:
        CliError: the relay cannot be reached, refuses, or answers something else.
    """
    from client import RelayClient

    def clock() -> datetime:
        return datetime.now(UTC) if now is None else datetime.fromtimestamp(now, UTC)

    async with RelayClient(url, key, clock=clock, limit=_MAX_ANSWER) as client:
        try:
            return await client.members_status()
        except Relay247Error as exc:
            # The client names the address itself when it could not reach it.
            where = "" if exc.message.startswith(url) else f"{url}: "
            raise CliError(f"{where}{exc.message}") from None


@click.command("status")
@_DIR_OPTION
@click.option("--relay", "relay_url", required=True, help="The relay to ask.")
@click.option(
    "--keys",
    "key_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A member node's key file: the endpoint is served to members only.",
)
@click.option(
    "--stale-hours",
    default=24,
    show_default=True,
    type=AsciiIntRange(1, 24 * 365),
    help="A member the relay has not heard from (or whose witness has not cosigned) "
    "for this many hours is stale.",
)
@click.option(
    "--expiry-days",
    default=30,
    show_default=True,
    type=AsciiIntRange(0, 3650),
    help="Name members whose last key of one use (signing, encryption, transport) "
    "expires within this many days.",
)
@passphrase_option
@_JSON_OPTION
def status(
    *,
    netdir: Path,
    relay_url: str,
    key_file: Path,
    stale_hours: int,
    expiry_days: int,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Show members that are stale, unreachable or close to key expiry."""
    from node.keyfile import load_keys

    secret = read_passphrase(passphrase_file, confirm=False)
    try:
        keys = load_keys(key_file, secret)
        _, current = read_chain(netdir, datetime.now(UTC))
    except Relay247Error as exc:
        raise fail_from(exc) from None
    if current is None:
        raise CliUsageError(f"{netdir}: no directory published yet")
    answer = asyncio.run(fetch_status(relay_url, keys.transport))
    limits = Thresholds(timedelta(hours=stale_hours), timedelta(days=expiry_days))
    rows = assess(current.directory, answer, limits)
    if as_json:
        click.echo(
            msgspec.json.encode({"relay_directory": answer.directory_version, "members": rows})
        )
        return
    click.echo(f"relay directory version {answer.directory_version}, now {answer.now.isoformat()}")
    for row in rows:
        state = ", ".join(row["problems"]) or "ok"
        click.echo(f"{row['member']}: {state} (last seen {row['last_seen'] or 'never'})")


#: Added to ``relay247 network`` by cli/main.py.
COMMANDS = (status,)
