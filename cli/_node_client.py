"""How the operator commands reach the running node, and how its answers become exit codes.

The node's local API (``node.api.client``) raises ``NodeNotRunningError`` when nothing
listens (exit 1, "node not running"), another ``TransportError`` when its answer did not
arrive whole (exit 1, saying what happened: a running node that broke off is not "not
running"), a ``PeerError`` carrying the wire code when it refuses (exit 2 for input the
officer must fix, 1 otherwise).
"""

from __future__ import annotations

import asyncio
import re
import shlex
from collections.abc import Awaitable, Callable
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import aiohttp
import click
import msgspec
from click.core import ParameterSource

from cli import _node_render as nr
from cli._passphrase import CliError, CliUsageError
from cli._program import program
from node.api import NodeApiClient, NodeNotRunningError
from protocol.codec import decode_as
from protocol.errors import ConfigError, PeerError, TransportError
from schemas.errors import ErrorCode
from schemas.messages import Body, kind_of
from schemas.node_api import CaseDetail, SendResult, TimelineEntry
from serving.files import read_file

if TYPE_CHECKING:
    from node.config import NodeConfig

T = TypeVar("T")
#: what can start a case id (32 lowercase hex digits; an officer may type capitals)
_CASE_PREFIX = re.compile(r"[0-9a-fA-F]{1,31}")
# Errors the officer fixes by changing the input (exit 2); any other refusal is exit 1.
_INPUT_CODES = frozenset(
    {ErrorCode.MALFORMED, ErrorCode.NOT_FOUND, ErrorCode.TOO_LARGE, ErrorCode.UNKNOWN_RECIPIENT}
)


def _config_of(config_path: Path) -> NodeConfig:
    from node.config import load_config

    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise CliUsageError(exc.message) from None


def _from_env(name: str) -> bool:
    ctx = click.get_current_context(silent=True)
    return ctx is not None and ctx.get_parameter_source(name) is ParameterSource.ENVIRONMENT


def data_dir_of(data_dir: Path | None, config_path: Path | None) -> Path:
    """The node's data directory from ``--config`` (its ``data_dir``) or ``--data``.

    Both given must name the same directory; ``$RELAY247_NODE_DATA`` is only a default,
    so an explicit ``--config`` wins over it.

    Raises:
        CliUsageError: the config file does not load, or ``--data`` names another
            directory than the config's ``data_dir`` (exit 2).
    """
    if config_path is None:
        return data_dir or Path(".")
    config = _config_of(config_path)
    where = Path(config.base_dir) / config.node.data_dir
    explicit = data_dir is not None and not _from_env("data_dir")
    if explicit and data_dir is not None and data_dir.resolve() != where.resolve():
        raise CliUsageError(
            f"--data {data_dir} and --config {config_path} (data_dir {where}) name "
            "different nodes; give one of them"
        )
    return where


def trust_root_of(where: Path) -> Path:
    """The trust.json the node in ``where`` pins (its node.toml's ``trust_root``)."""
    config_file = where / "node.toml"
    if config_file.is_file():
        try:
            config = _config_of(config_file)
        except CliUsageError:
            return where / "trust.json"
        return config.path(config.directory.trust_root)
    return where / "trust.json"


def node_zone(where: Path) -> tzinfo | None:
    """The node's own time zone: ``time_zone`` of its member entry (``member.json``, the
    file the coordinators enrolled), so every screen shows instants in it. ``None`` (each
    instant keeps the offset it was written with) when the file or zone is unknown.
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from schemas.directory import Member

    try:
        raw = read_file(where / "member.json", 1 << 20)
        member = decode_as(Member, raw, "member", limit=len(raw))
        return ZoneInfo(member.time_zone)
    except (ConfigError, PeerError, ZoneInfoNotFoundError, ValueError):
        return None


def call(where: Path, fn: Callable[[NodeApiClient], Awaitable[T]]) -> T:
    """Run ``fn`` with a client of the node whose data directory is ``where``.

    Raises:
        CliError: the node is not running (no API port, connection refused), its answer
            did not arrive whole (cut short, too slow, too large), or it refused at run
            time (exit 1).
        CliUsageError: the node refused the input or does not know the case (exit 2).
    """

    async def main() -> T:
        async with aiohttp.ClientSession() as session:
            return await fn(NodeApiClient.from_data_dir(where, session))

    try:
        return asyncio.run(main())
    except NodeNotRunningError as exc:
        raise CliError(
            f"node not running in {where} ({exc.detail or exc.message}): start it with"
            f" `{program()} node serve --data {shlex.quote(str(where))}`, or name the node's"
            " data directory with --data DIR or $RELAY247_NODE_DATA"
        ) from None
    except TransportError as exc:
        raise CliError(f"node in {where}: {exc.message}") from None
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
        hexed = _CASE_PREFIX.fullmatch(case) is not None
        page = await client.cases_page(limit=2, prefix=case.lower()) if hexed else None
        matches = [] if page is None else [c.case_id for c in page.cases]
        if len(matches) != 1:
            what = "no case" if not matches else f"{len(matches)} cases"
            raise CliUsageError(f"{what} starting with {case!r}")
        case = matches[0]
    return await client.case(case)


async def identical_sent(client: NodeApiClient, body: Body, to: str) -> TimelineEntry | None:
    """The message of ``body``'s case this node already sent to ``to`` with the same
    content (kind and every field: the canonical encoding, so comments and layout of the
    request file do not count), if any; copies that were never delivered are ignored.
    """
    try:
        detail = await client.case(body.case_id)
    except PeerError as exc:
        if exc.code is ErrorCode.NOT_FOUND:
            return None
        raise
    if detail.summary.peer != to:
        return None
    mine = msgspec.json.encode(body)
    for entry in detail.timeline:
        if entry.direction != "out" or entry.status == "failed" or entry.body is None:
            continue
        if msgspec.json.encode(entry.body) == mine:
            return entry
    return None


def report_sent(result: SendResult, body: Body, to: str, as_json: bool, where: Path) -> None:
    """Say what was queued (or print the node's answer as JSON)."""
    if as_json:
        nr.emit_json(result)
        return
    click.echo(f"queued {kind_of(body)} for {to} in case {result.case_id}")
    click.echo(f"  message {result.msg_id}; the node delivers it and records the receipt.")
    show = f"{program()} node show {result.case_id[:12]} --data {shlex.quote(str(where))}"
    click.echo(f"  follow it with: {show}")


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
        report_sent(result, body, peer, as_json, where)
