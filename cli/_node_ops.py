"""The officer's commands under ``relay247 node`` (issue 5 item 3).

They talk to the running node through its local API (``DATA/api.port``, bearer token
in ``DATA/api.token``): the node validates, seals, queues and delivers; these commands
build the right body from the case, check it exactly as a receiver would, and show
what the node knows. Exit codes: 0 done, 1 the node is not running or refused at run
time, 2 invalid input (the message names the field path) or an unknown case.

Importing this module registers the commands on the ``node`` group of ``cli._node``.
"""

from __future__ import annotations

import os
import shlex
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click
import msgspec

from cli import _node_attach as na
from cli import _node_bodies as nb
from cli import _node_client as ncl
from cli import _node_links as nl
from cli import _node_options as no
from cli import _node_render as nr
from cli import _node_retention as nret
from cli._files import read_user_file
from cli._node_template import annotated_template
from cli._numbers import AsciiIntRange
from cli._passphrase import CliError, CliUsageError
from cli._program import program
from node.render import format_time
from schemas.examples import EXAMPLES
from schemas.messages import KINDS, Body, kind_of

if TYPE_CHECKING:
    from node.api import NodeApiClient
    from schemas.node_api import CaseDetail, SendResult

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_TEMPLATES = {"preservation": "preservation_request", **{k: k for k in KINDS}}
# The day the examples were written as issued: every template date moves with it.
_EXAMPLE_ISSUED: Final[datetime] = getattr(EXAMPLES["preservation_request"], "issued_at")  # noqa: B009


# -- files: template, new, send ------------------------------------------------------


@click.command("template")
# metavar: the usage line would otherwise list every kind, cut mid-word at 80 columns;
# the kinds are listed once, in the help text.
@click.argument(
    "kind", type=click.Choice(sorted(_TEMPLATES)), default="preservation", metavar="[KIND]"
)
@click.option("--to", "to", default=None, help="Address it to this member (requested.member).")
@click.option(
    "--from",
    "sender",
    default=None,
    help="Send it as this member (requesting.member); the example's is FR.",
)
def template(kind: str, to: str | None, sender: str | None) -> None:
    """Print an annotated request file for KIND (default: an Art. 29 preservation request).

    The file is JSON in which lines starting with // are comments. It starts from a
    realistic example with a new case id, and every date in it moved to today (the
    example's dates keep their distance from its issue date), so nothing is overdue at
    once; edit it, check it with `relay247 node new`. A request names both members:
    give --to and --from (your own member), or the node refuses a requesting member
    other than itself.

    KIND: preservation (the same as preservation_request), or any message kind:
    assistance_answer, assistance_request, emergency_disclosure_answer,
    emergency_disclosure_request, follow_up, impossible_to_execute, mla_submitted,
    onward_transfer_answer, onward_transfer_request, preservation_extension,
    preservation_warning, preservation_withdrawal, preserved, refusal,
    security_incident_notice, statistics_report, taken_in_charge, traffic_data_disclosure,
    warning_decision.
    """
    body = dated_template(EXAMPLES[_TEMPLATES[kind]], nr.now_local())
    fresh: dict[str, Any] = {"case_id": _new_id()}
    requested = getattr(body, "requested", None)
    if to is not None and requested is not None:
        fresh["requested"] = msgspec.structs.replace(requested, member=to)
    requesting = getattr(body, "requesting", None)
    if sender is not None and requesting is not None:
        fresh["requesting"] = msgspec.structs.replace(requesting, member=sender)
    click.echo(annotated_template(msgspec.structs.replace(body, **fresh)), nl=False)


def dated_template(body: Body, now: datetime) -> Body:
    """``body`` with every date and instant moved by whole days so that the example's
    issue day becomes ``now``'s day, and ``issued_at`` (if any) set to ``now``.
    """
    days = timedelta(days=(now.date() - _EXAMPLE_ISSUED.date()).days)
    moved = _shift(body, days)
    assert isinstance(moved, msgspec.Struct)
    if hasattr(moved, "issued_at"):
        moved = msgspec.structs.replace(moved, issued_at=now)
    return moved  # type: ignore[return-value]  # same type as body


def _shift(value: Any, days: timedelta) -> Any:
    if isinstance(value, datetime | date):  # datetime is a date: both move by whole days
        return value + days
    if isinstance(value, tuple):
        return tuple(_shift(v, days) for v in value)
    if isinstance(value, msgspec.Struct):
        changed = {f: _shift(getattr(value, f), days) for f in value.__struct_fields__}
        return msgspec.structs.replace(value, **changed)
    return value


def _new_id() -> str:

    return os.urandom(16).hex()


@click.command("new")
@click.argument("file", type=_FILE)
@no.json_option
def new(*, file: Path, as_json: bool) -> None:
    """Check a request FILE (schema and rules); errors name the field (exit 2)."""
    body = nb.parse_request_file(read_user_file(file, nb.MAX_FILE), str(file))
    to = nb.addressee(body)
    if as_json:
        nr.emit_json({"valid": True, "kind": kind_of(body), "case_id": body.case_id, "to": to})
        return
    click.echo(f"{file}: valid {nb.describe(body)}")
    click.echo(
        f"  send it with: {program()} node send {shlex.quote(str(file))} --to {to or 'MEMBER'}"
    )


@click.command("send")
@click.argument("file", type=_FILE)
@click.option("--to", "to", required=True, help="Recipient member id, e.g. US.")
@click.option(
    "--again",
    is_flag=True,
    help="Send even if this exact message already went to --to in this case.",
)
@click.option(
    "--link",
    "links",
    multiple=True,
    metavar="CASE:TYPE",
    help="Link the message's case to CASE (repeatable); TYPE: " + ", ".join(nl.TYPE_NAMES),
)
@na.ATTACH
@no.data_options
@no.json_option
def send(
    *,
    file: Path,
    to: str,
    again: bool,
    links: tuple[str, ...],
    attach: tuple[Path, ...],
    data_dir: Path | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Check a request FILE and send it to member --to through the running node.

    Sending the same file twice would open a second request (a second Art. 29 request,
    with its own clocks) in the same case. So a message whose content is identical to
    one this node already sent to --to in the case (same kind and the same fields once
    comments and layout are set aside; a copy that failed to be delivered does not
    count) is sent again only with --again, or when the officer confirms at a terminal.
    Piped or with --json it is refused (exit 2).

    --link adds links (PROTOCOL.md §17) to those of the file. A link goes to --to only
    when its node reads links and the linked case is shared with --to; otherwise it is
    kept on this node and the command says so.
    """
    body = nb.parse_request_file(read_user_file(file, nb.MAX_FILE), str(file))
    given = tuple(nl.parse_link(x) for x in links)
    na.check_files(attach, body)
    named = nb.addressee(body)
    if named is not None and named != to:
        raise CliUsageError(f"{file}: $.requested.member is {named} but --to is {to}")
    where = ncl.data_dir_of(data_dir, config_path)
    if not again:
        prior = ncl.call(where, lambda c: ncl.identical_sent(c, body, to))
        if prior is not None:
            what = (
                f"{file}: this {kind_of(body)} was already sent to {to} in case "
                f"{body.case_id[:12]} (message {prior.msg_id}, "
                f"{format_time(prior.at, ncl.node_zone(where))})"
            )
            if as_json or not interactive():
                raise CliUsageError(f"{what}; not sent again (--again sends it anyway)")
            if not click.confirm(f"{what}. Send it again?", default=False):
                raise CliError("not sent")
    sent: list[Body] = []

    async def go(client: NodeApiClient) -> SendResult:
        extra = await nl.resolve_links(client, given)
        sent.append(await na.with_files(client, nl.with_links(body, extra), attach, to))
        return await client.send(to, sent[0])

    result = ncl.call(where, go)
    ncl.report_sent(result, sent[0], to, as_json, where)
    if not as_json:
        for line in nl.kept_lines(result.links_kept_local):
            click.echo(line)


def interactive() -> bool:
    """True when an officer sits at a terminal to answer a question (stdin and stdout)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


# -- reading: status, inbox, cases, show ---------------------------------------------


@click.command("status")
@no.data_options
@no.json_option
def status(*, data_dir: Path | None, config_path: Path | None, as_json: bool) -> None:
    """Show whether the node runs, its directory version, relays and queues."""
    answer = ncl.call(ncl.data_dir_of(data_dir, config_path), lambda c: c.status())
    nr.emit_json(answer) if as_json else nr.print_status(answer)


@click.command("inbox")
@click.option("--after", default=0, type=AsciiIntRange(0), help="Only messages after this #.")
@no.data_options
@no.lang_option
@no.json_option
def inbox(
    *, after: int, data_dir: Path | None, config_path: Path | None, lang: str, as_json: bool
) -> None:
    """List incoming messages, newest last."""
    where = ncl.data_dir_of(data_dir, config_path)
    answer = ncl.call(where, lambda c: c.inbox_all(after=after))
    if as_json:
        nr.emit_json(answer)
    else:
        nr.print_inbox(answer.messages, lang, ncl.node_zone(where))


@click.command("cases")
@no.data_options
@no.lang_option
@no.json_option
def cases(*, data_dir: Path | None, config_path: Path | None, lang: str, as_json: bool) -> None:
    """List cases with their state and next deadline, most recent first."""
    where = ncl.data_dir_of(data_dir, config_path)
    answer = ncl.call(where, lambda c: c.cases())
    nr.emit_json(answer) if as_json else nr.print_cases(answer.cases, lang, ncl.node_zone(where))


@click.command("show")
@click.argument("case")
@click.option("--brief", is_flag=True, help="Only the timeline, not each message's fields.")
@click.option("--follow", is_flag=True, help="Also show each linked case this node knows.")
@no.data_options
@no.lang_option
@no.json_option
def show(
    *,
    case: str,
    brief: bool,
    follow: bool,
    data_dir: Path | None,
    config_path: Path | None,
    lang: str,
    as_json: bool,
) -> None:
    """Show CASE (its id or a unique prefix): messages, receipts, states, deadlines, and
    its links both ways (with --follow, the linked cases too)."""
    where = ncl.data_dir_of(data_dir, config_path)

    async def go(client: NodeApiClient) -> tuple[CaseDetail, list[CaseDetail]]:
        detail = await ncl.find_case(client, case)
        return detail, (await nl.linked_details(client, detail)) if follow else []

    detail, linked = ncl.call(where, go)
    if as_json:
        nr.emit_json({"case": detail, "linked": linked} if follow else detail)
        return
    from cli._emergency_common import print_case_section

    tz = ncl.node_zone(where)
    nr.print_case(detail, lang, brief=brief, tz=tz)
    if any(e.body is not None and e.body.attachments for e in detail.timeline):
        case_id = detail.summary.case_id
        na.print_attachments(ncl.call(where, lambda c: c.attachments(case_id)))
    print_case_section(data_dir, config_path, detail, lang)
    nl.print_links(detail, lang, tz)
    nret.print_retention(where, detail, lang, tz)
    for other in linked:
        click.echo("")
        nr.print_case(other, lang, brief=True, tz=tz)
        nl.print_links(other, lang, tz)


#: Added to ``relay247 node`` by cli/main.py.
COMMANDS = (template, new, send, status, inbox, cases, show)
