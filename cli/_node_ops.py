"""The officer's commands under ``relay247 node`` (issue 5 item 3).

They talk to the running node through its local API (``DATA/api.port``, bearer token
in ``DATA/api.token``): the node validates, seals, queues and delivers; these commands
build the right body from the case, check it exactly as a receiver would, and show
what the node knows. Exit codes: 0 done, 1 the node is not running or refused at run
time, 2 invalid input (the message names the field path) or an unknown case.

Importing this module registers the commands on the ``node`` group of ``cli._node``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import msgspec

from cli import _node_bodies as nb
from cli import _node_client as ncl
from cli import _node_options as no
from cli import _node_render as nr
from cli._node import node
from cli._passphrase import CliUsageError
from schemas.examples import EXAMPLES
from schemas.messages import KINDS, kind_of

if TYPE_CHECKING:
    from node.api_client import NodeApiClient

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_TEMPLATES = {"preservation": "preservation_request", **{k: k for k in KINDS}}


# -- files: template, new, send ------------------------------------------------------


@node.command("template")
@click.argument("kind", type=click.Choice(sorted(_TEMPLATES)), default="preservation")
def template(kind: str) -> None:
    """Print an annotated request file for KIND (default: an Art. 29 preservation request).

    The file is JSON in which lines starting with // are comments. It starts from a
    realistic example with a new case id; edit it, check it with `relay247 node new`.
    """
    body = EXAMPLES[_TEMPLATES[kind]]
    fresh: dict[str, Any] = {"case_id": _new_id()}
    if hasattr(body, "issued_at"):
        fresh["issued_at"] = nr.now_local()
    click.echo(nr.annotated_template(msgspec.structs.replace(body, **fresh)), nl=False)


def _new_id() -> str:
    import os

    return os.urandom(16).hex()


@node.command("new")
@click.argument("file", type=_FILE)
@no.json_option
def new(*, file: Path, as_json: bool) -> None:
    """Check a request FILE (schema and rules); errors name the field (exit 2)."""
    body = nb.parse_request_file(file.read_bytes(), str(file))
    to = nb.addressee(body)
    if as_json:
        nr.emit_json({"valid": True, "kind": kind_of(body), "case_id": body.case_id, "to": to})
        return
    click.echo(f"{file}: valid {nb.describe(body)}")
    click.echo(f"  send it with: relay247 node send {file} --to {to or 'MEMBER'}")


@node.command("send")
@click.argument("file", type=_FILE)
@click.option("--to", "to", required=True, help="Recipient member id, e.g. US.")
@no.data_options
@no.json_option
def send(
    *, file: Path, to: str, data_dir: Path | None, config_path: Path | None, as_json: bool
) -> None:
    """Check a request FILE and send it to member --to through the running node."""
    body = nb.parse_request_file(file.read_bytes(), str(file))
    named = nb.addressee(body)
    if named is not None and named != to:
        raise CliUsageError(f"{file}: $.requested.member is {named} but --to is {to}")
    result = ncl.call(ncl.data_dir_of(data_dir, config_path), lambda c: c.send(to, body))
    ncl.report_sent(result, body, to, as_json)


# -- reading: status, inbox, cases, show ---------------------------------------------


@node.command("status")
@no.data_options
@no.json_option
def status(*, data_dir: Path | None, config_path: Path | None, as_json: bool) -> None:
    """Show whether the node runs, its directory version, relays and queues."""
    answer = ncl.call(ncl.data_dir_of(data_dir, config_path), lambda c: c.status())
    nr.emit_json(answer) if as_json else nr.print_status(answer)


@node.command("inbox")
@click.option("--after", default=0, type=click.IntRange(0), help="Only messages after this #.")
@no.data_options
@no.lang_option
@no.json_option
def inbox(
    *, after: int, data_dir: Path | None, config_path: Path | None, lang: str, as_json: bool
) -> None:
    """List incoming messages, newest last."""
    answer = ncl.call(ncl.data_dir_of(data_dir, config_path), lambda c: c.inbox_all(after=after))
    nr.emit_json(answer) if as_json else nr.print_inbox(answer.messages, lang)


@node.command("cases")
@no.data_options
@no.lang_option
@no.json_option
def cases(*, data_dir: Path | None, config_path: Path | None, lang: str, as_json: bool) -> None:
    """List cases with their state and next deadline, most recent first."""
    answer = ncl.call(ncl.data_dir_of(data_dir, config_path), lambda c: c.cases())
    nr.emit_json(answer) if as_json else nr.print_cases(answer.cases, lang)


@node.command("show")
@click.argument("case")
@click.option("--brief", is_flag=True, help="Only the timeline, not each message's fields.")
@no.data_options
@no.lang_option
@no.json_option
def show(
    *,
    case: str,
    brief: bool,
    data_dir: Path | None,
    config_path: Path | None,
    lang: str,
    as_json: bool,
) -> None:
    """Show CASE (its id or a unique prefix): messages, receipts, states, deadlines."""
    detail = ncl.call(ncl.data_dir_of(data_dir, config_path), lambda c: ncl.find_case(c, case))
    nr.emit_json(detail) if as_json else nr.print_case(detail, lang, brief=brief)


@node.command("export-case")
@click.argument("case")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@no.data_options
@no.json_option
def export_case(
    *, case: str, out: Path, data_dir: Path | None, config_path: Path | None, as_json: bool
) -> None:
    """Write CASE's evidence bundle to --out (check it with `relay247 audit verify-bundle`)."""

    async def go(client: NodeApiClient) -> tuple[str, bytes]:
        detail = await ncl.find_case(client, case)
        return detail.summary.case_id, await client.export_case(detail.summary.case_id)

    case_id, data = ncl.call(ncl.data_dir_of(data_dir, config_path), go)
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise CliUsageError(f"{out}: cannot write: {exc.strerror}") from None
    if as_json:
        nr.emit_json({"case_id": case_id, "file": str(out), "bytes": len(data)})
        return
    click.echo(f"evidence bundle of case {case_id} written to {out} ({len(data):,} bytes)")
    click.echo(f"  verify it offline: relay247 audit verify-bundle {out} --trust-root trust.json")


from cli import _node_replies as _replies  # noqa: E402  (registers reply, extend, ...)

__all__ = ["_replies", "node"]
