"""Answering and following up a case: ``reply``, ``extend``, ``withdraw``, ``mla-submitted``.

Each command reads the case from the node, fills what the case already says (the case
id, the request answered, both references, languages, priority), adds the officer's
options (or a ``--file`` of fields, options winning), checks the result with the wire
decoder and the semantic rules, and sends it to the other side of the case.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import click

from cli import _node_bodies as nb
from cli import _node_client as ncl
from cli import _node_options as no
from cli._files import read_user_file
from cli._passphrase import CliUsageError
from node import replies
from schemas._bodies_other import AssistanceOutcome
from schemas._bodies_request import MlaStatus, WithdrawalReason
from schemas._bodies_response import (
    ImpossibilityReason,
    PreservationScope,
    RefusalGround,
    WarningReason,
)
from schemas.messages import Body
from schemas.node_api import CaseDetail

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _choices(enum: Any) -> str:
    return ", ".join(str(m.value) for m in enum)


def _given(**opts: Any) -> dict[str, Any]:
    return {k: v for k, v in opts.items() if v is not None and v != ()}


@click.command("reply")
@click.argument("case")
@click.option(
    "--kind",
    "kind",
    required=True,
    type=click.Choice(sorted(replies.REPLY_KINDS)),
    help="The answer: the options below name the kinds they belong to.",
)
@click.option("--file", "file", type=_FILE, default=None, help="JSON fields (// comments ok).")
@click.option("--ref", default=None, help="Our reference (default: the one used in the case).")
@click.option("--officer-name", default=None, help="taken-in-charge: officer in charge.")
@click.option("--officer-email", default=None, help="taken-in-charge: officer's e-mail.")
@click.option("--officer-phone", default=None, help="taken-in-charge: officer's phone (E.164).")
@click.option("--expected-by", default=None, help="taken-in-charge: answer expected by.")
@click.option("--until", default=None, help="preserved: preserved until (date or time).")
@click.option("--preserved-at", default=None, help="preserved: when (default: now).")
@click.option("--scope", default=None, help=f"preserved: {_choices(PreservationScope)}.")
@click.option("--categories", default=None, help="preserved: comma-separated categories.")
@click.option("--custodian-ref", default=None, help="preserved: the provider's reference.")
@click.option("--national-basis", default=None, help="preserved: national legal basis.")
@click.option("--note", default=None, help="taken-in-charge note, or preserved scope note.")
@click.option(
    "--reason",
    multiple=True,
    help=f"warning: {_choices(WarningReason)}; impossible: {_choices(ImpossibilityReason)}.",
)
@click.option("--ground", default=None, help=f"refused: {_choices(RefusalGround)}.")
@click.option("--explanation", default=None, help="warning, refused, impossible: free text.")
@click.option("--legal-basis", default=None, help="refused: legal basis.")
@click.option("--alternatives", default=None, help="refused: other ways to help.")
@click.option("--redirect-country", default=None, help="impossible: country to ask instead.")
@click.option("--decision-by", default=None, help="warning: decision needed by.")
@click.option("--outcome", default=None, help=f"answer: {_choices(AssistanceOutcome)}.")
@click.option("--text", default=None, help="answer: the answer; traffic-data: the data.")
@no.data_options
@no.dry_run_option
@no.json_option
def reply(
    *,
    case: str,
    kind: str,
    file: Path | None,
    ref: str | None,
    data_dir: Path | None,
    config_path: Path | None,
    dry_run: bool,
    as_json: bool,
    **opts: Any,
) -> None:
    """Answer the request of CASE with the --kind of answer chosen (see below).

    The case id, the request answered and the references are filled from the case.
    Give the fields with the options below, or in a --file of JSON fields.
    """
    given = _given(**opts)
    extra = nb.parse_fields_file(read_user_file(file, nb.MAX_FILE), str(file)) if file else {}

    where = ncl.data_dir_of(data_dir, config_path)
    tz = ncl.node_zone(where)

    def build(detail: CaseDetail) -> Body:
        now = datetime.now(tz) if tz is not None else datetime.now().astimezone()
        with _usage():
            return replies.reply_body(detail, kind, given, now=now, tz=tz, ref=ref, extra=extra)

    ncl.send_built(where, build, case, dry_run, as_json)


@contextmanager
def _usage() -> Iterator[None]:
    # node.replies names the field (and the option) at fault: exit 2, the officer fixes it
    try:
        yield
    except replies.ReplyError as exc:
        raise CliUsageError(exc.message) from None


def _sequel(
    case: str,
    kind: str,
    *,
    ref: str | None,
    fields: dict[str, Any],
    where: Path,
    dry_run: bool,
    as_json: bool,
) -> None:
    def build(detail: CaseDetail) -> Body:
        with _usage():
            return replies.sequel_body(detail, kind, fields, ref)

    ncl.send_built(where, build, case, dry_run, as_json)


# The follow-ups of a case (extend, withdraw, mla-submitted) differ only in their kind,
# their own options and how those become fields: one row each, one command builder.
_Decorator = Callable[[Callable[..., None]], Callable[..., None]]


@dataclass(frozen=True)
class _Sequel:
    name: str  # the command
    kind: str  # the body kind it sends
    help: str
    options: tuple[_Decorator, ...]  # its own options, in --help order
    fields: Callable[..., dict[str, Any]]  # its options' values -> body fields


def _mla_fields(
    *, mla_ref: str, sent_to: str, on: str | None, channel: str | None
) -> dict[str, Any]:
    return replies.mla_fields(
        mla_ref=mla_ref, sent_to=sent_to, on=on, channel=channel, today=date.today()
    )


_SEQUELS: Final = (
    _Sequel(
        "extend",
        "preservation_extension",
        "Ask the other side to keep the data of CASE preserved for longer.",
        (
            click.option(
                "--until", default=None, help="Preservation requested until (YYYY-MM-DD)."
            ),
            click.option(
                "--mla-status",
                required=True,
                type=click.Choice([m.value for m in MlaStatus]),
                help="Where the mutual legal assistance request stands.",
            ),
            click.option(
                "--reason", required=True, help="Why the extension is needed (free text)."
            ),
        ),
        replies.extend_fields,
    ),
    _Sequel(
        "withdraw",
        "preservation_withdrawal",
        "Withdraw the preservation request of CASE (the data may be released).",
        (
            click.option(
                "--reason",
                required=True,
                type=click.Choice([m.value for m in WithdrawalReason]),
                help="Why the request is withdrawn.",
            ),
            click.option("--explanation", default=None, help="Free text."),
        ),
        replies.withdraw_fields,
    ),
    _Sequel(
        "mla-submitted",
        "mla_submitted",
        "Tell the other side of CASE that the MLA request was submitted (Art. 29(7)).",
        (
            click.option("--mla-ref", required=True, help="Reference of the MLA request."),
            click.option("--sent-to", required=True, help="Central authority it was sent to."),
            click.option("--on", "on", default=None, help="Date submitted (default: today)."),
            click.option("--channel", default=None, help="How it was sent."),
        ),
        _mla_fields,
    ),
)


def _sequel_command(row: _Sequel) -> click.Command:
    def run(
        *,
        case: str,
        ref: str | None,
        data_dir: Path | None,
        config_path: Path | None,
        dry_run: bool,
        as_json: bool,
        **opts: Any,
    ) -> None:
        with _usage():
            fields = row.fields(**opts)
        where = ncl.data_dir_of(data_dir, config_path)
        _sequel(
            case, row.kind, ref=ref, fields=fields, where=where, dry_run=dry_run, as_json=as_json
        )

    decorators: list[_Decorator] = [
        click.argument("case"),
        *row.options,
        click.option("--ref", default=None, help="Our reference (default: our request's)."),
        no.data_options,
        no.dry_run_option,
        no.json_option,
    ]
    for decorate in reversed(decorators):
        run = decorate(run)
    return click.command(row.name, help=row.help)(run)


#: Added to ``relay247 node`` by cli/main.py.
COMMANDS = (reply, *(_sequel_command(row) for row in _SEQUELS))
