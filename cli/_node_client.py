"""How the operator commands reach the running node, and how its answers become exit codes.

The node's local API (``node.api_client``) raises ``TransportError`` when nothing
listens (exit 1, "node not running"), a ``PeerError`` carrying the wire code when it
refuses (exit 2 for input the officer must fix, 1 otherwise).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import aiohttp
import click
import msgspec

from cli import _node_render as nr
from cli._passphrase import CliError, CliUsageError
from node.api_client import NodeApiClient
from protocol.errors import ConfigError, PeerError, TransportError
from schemas.errors import ErrorCode
from schemas.messages import Body, kind_of
from schemas.node_api import CaseDetail, SendResult

T = TypeVar("T")
# Errors the officer fixes by changing the input (exit 2); any other refusal is exit 1.
_INPUT_CODES = frozenset(
    {ErrorCode.MALFORMED, ErrorCode.NOT_FOUND, ErrorCode.TOO_LARGE, ErrorCode.UNKNOWN_RECIPIENT}
)


def data_dir_of(data_dir: Path | None, config_path: Path | None) -> Path:
    """The node's data directory from ``--config`` (its ``data_dir``) or ``--data``.

    Raises:
        CliUsageError: the config file does not load.
    """
    if config_path is None:
        return data_dir or Path(".")
    from node.config import load_config

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise CliUsageError(exc.message) from None
    return Path(config.base_dir) / config.node.data_dir


def call(where: Path, fn: Callable[[NodeApiClient], Awaitable[T]]) -> T:
    """Run ``fn`` with a client of the node whose data directory is ``where``.

    Raises:
        CliError: the node is not running (no API port or token, connection refused)
            or refused at run time (exit 1).
        CliUsageError: the node refused the input or does not know the case (exit 2).
    """

    async def main() -> T:
        async with aiohttp.ClientSession() as session:
            return await fn(NodeApiClient.from_data_dir(where, session))

    try:
        return asyncio.run(main())
    except TransportError as exc:
        raise CliError(f"node not running in {where} ({exc.message})") from None
    except ConfigError as exc:
        raise CliError(f"node not running in {where} ({exc.message})") from None
    except PeerError as exc:
        cls = CliUsageError if exc.code in _INPUT_CODES else CliError
        raise cls(f"the node refused: {exc.message}") from None


async def find_case(client: NodeApiClient, case: str) -> CaseDetail:
    """Return the case whose id is ``case`` or starts with it.

    Raises:
        CliUsageError: no case, or several, start with ``case``.
        PeerError: the node answered an error (``not_found`` for an unknown id).
    """
    # A unique prefix is enough: officers read ids off a table.
    if len(case) < 32:
        matches = [c.case_id for c in (await client.cases()).cases if c.case_id.startswith(case)]
        if len(matches) != 1:
            what = "no case" if not matches else f"{len(matches)} cases"
            raise CliUsageError(f"{what} starting with {case!r}")
        case = matches[0]
    return await client.case(case)


def report_sent(result: SendResult, body: Body, to: str, as_json: bool) -> None:
    """Say what was queued (or print the node's answer as JSON)."""
    if as_json:
        nr.emit_json(result)
        return
    click.echo(f"queued {kind_of(body)} for {to} in case {result.case_id}")
    click.echo(f"  message {result.msg_id}; the node delivers it and records the receipt.")
    click.echo(f"  follow it with: relay247 node show {result.case_id[:12]}")


def send_built(
    where: Path, build: Callable[[CaseDetail], Body], case: str, dry_run: bool, as_json: bool
) -> None:
    """Fetch the case, build the body from it, then send it to the other side."""
    found: list[tuple[Body, str]] = []

    async def go(client: NodeApiClient) -> SendResult | None:
        detail = await find_case(client, case)
        body = build(detail)
        found.append((body, detail.summary.peer))
        return None if dry_run else await client.send(detail.summary.peer, body)

    result = call(where, go)
    body, peer = found[0]
    if result is None:
        click.echo(msgspec.json.format(msgspec.json.encode(body)).decode())
    else:
        report_sent(result, body, peer, as_json)
