"""``relay247 node link`` / ``unlink`` and how ``node show`` prints links (PROTOCOL.md §17).

A link made here stays on this node (it is recorded with no officer name: the local API
token names none); a link reaches the other side only inside a message's body, through
``node send --link CASE:TYPE`` or ``links`` in the JSON file.
"""

from __future__ import annotations

from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click
import msgspec

from cli import _node_client as ncl
from cli import _node_options as no
from cli import _node_render as nr
from cli._passphrase import CliUsageError
from node.render import format_time, load_catalog, printable
from schemas._links import CaseLink, LinkType
from schemas.messages import Body
from schemas.node_api import CaseDetail
from schemas.node_api_links import CaseLinkView, KeptLink, LinkRequest

if TYPE_CHECKING:
    from node.api import NodeApiClient

TYPE_NAMES: Final = tuple(t.value for t in LinkType)
_TYPES: Final = click.Choice(TYPE_NAMES)
#: How an incoming link reads from the linked case's side ("this case <word> that one").
_INVERSE: Final = {
    "en": {
        "related": "Related case",
        "continues_emergency": "Emergency continued by",
        "mla_follows": "Preservation followed by the mutual legal assistance request",
        "supersedes": "Superseded by",
    },
    "fr": {
        "related": "Affaire connexe",
        "continues_emergency": "Urgence suivie par",
        "mla_follows": "Conservation suivie de la demande d'entraide judiciaire",
        "supersedes": "Remplacée par",
    },
}
_WORDS: Final = {
    "en": {
        "links": "Links",
        "unknown": "unknown to this node",
        "local": "this node only",
        "sent": "sent",
        "received": "received",
        "recipient_not_supported": "kept here: the recipient's node does not read links",
        "other_member_case": "kept here: that case is shared with another member",
    },
    "fr": {
        "links": "Liens",
        "unknown": "inconnue de ce nœud",
        "local": "ce nœud seulement",
        "sent": "envoyé",
        "received": "reçu",
        "recipient_not_supported": "gardé ici : le nœud destinataire ne lit pas les liens",
        "other_member_case": "gardé ici : cette affaire est partagée avec un autre membre",
    },
}


def link_label(link: CaseLinkView, lang: str) -> str:
    """The link's type as read from this case, in ``lang``."""
    if link.direction == "incoming":
        return _INVERSE[lang][link.type.value]
    return load_catalog(lang).enums.get("LinkType", {}).get(link.type.value, link.type.value)


def print_links(detail: CaseDetail, lang: str, tz: tzinfo | None) -> None:
    """Print a case's links, outgoing then incoming, one line each."""
    if not detail.links:
        return
    words = _WORDS[lang]
    out = nr.console()
    out.print(words["links"], markup=False, highlight=False)
    for link in sorted(detail.links, key=lambda x: x.direction != "outgoing"):
        arrow = "→" if link.direction == "outgoing" else "←"
        other = link.case_id if link.known else f"{link.case_id} ({words['unknown']})"
        origin = words.get(link.kept_local or "", words[link.origin])
        parts = [f"  {arrow} {link_label(link, lang)}: {other}", origin]
        parts += [link.peer] if link.peer else []
        if link.sender_ref:  # the other side's text: never drives the terminal
            parts.append(printable(link.sender_ref))
        if link.note:
            note = printable(link.note)
            parts.append(f"« {note} »" if lang == "fr" else f'"{note}"')
        parts.append(format_time(link.created_at, tz))
        out.print(" · ".join(parts), markup=False, highlight=False)


def parse_link(text: str) -> tuple[str, LinkType]:
    """``CASE:TYPE`` (a case id or unique prefix, and a link type) from ``--link``.

    Raises:
        CliUsageError: not ``CASE:TYPE``, or an unknown type.
    """
    case, sep, kind = text.rpartition(":")
    if not sep or not case:
        raise CliUsageError(f"--link {text!r}: write CASE:TYPE, e.g. 4f0c2a9e:related")
    try:
        return case, LinkType(kind)
    except ValueError:
        choices = ", ".join(t.value for t in LinkType)
        raise CliUsageError(f"--link {text!r}: unknown link type (one of {choices})") from None


async def resolve_links(
    client: NodeApiClient, given: tuple[tuple[str, LinkType], ...]
) -> tuple[CaseLink, ...]:
    """The ``--link`` options as links, each case prefix resolved to its full id."""
    out = []
    for case, kind in given:
        detail = await ncl.find_case(client, case)
        out.append(CaseLink(type=kind, case_id=detail.summary.case_id))
    return tuple(out)


@click.command("link")
@click.argument("case")
@click.argument("other")
@click.option("--type", "link_type", required=True, type=_TYPES, help="How CASE relates to OTHER.")
@click.option("--note", default=None, help="A short note kept with the link (≤ 256 characters).")
@no.data_options
@no.json_option
def link(
    *,
    case: str,
    other: str,
    link_type: str,
    note: str | None,
    data_dir: Path | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Link CASE to OTHER on this node (ids or unique prefixes); nothing is sent.

    Read it as "CASE <type> OTHER": `--type mla_follows` says CASE is the mutual legal
    assistance request that follows the preservation in OTHER. To tell the other side,
    send a message of CASE with `node send --link OTHER:TYPE`.
    """
    where = ncl.data_dir_of(data_dir, config_path)

    async def go(client: NodeApiClient) -> CaseLinkView:
        this = (await ncl.find_case(client, case)).summary.case_id
        that = (await ncl.find_case(client, other)).summary.case_id
        return await client.link(
            this, LinkRequest(type=LinkType(link_type), case_id=that, note=note)
        )

    view = ncl.call(where, go)
    if as_json:
        nr.emit_json(view)
        return
    click.echo(f"linked on this node: {case} {link_type} {view.case_id}")
    click.echo("  not sent; `node send --link` carries a link to the other side.")


@click.command("unlink")
@click.argument("case")
@click.argument("other")
@click.option("--type", "link_type", default=None, type=_TYPES, help="Only links of this type.")
@no.data_options
@no.json_option
def unlink(
    *,
    case: str,
    other: str,
    link_type: str | None,
    data_dir: Path | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Remove this node's links from CASE to OTHER (the removal is recorded).

    Links carried by messages are part of what was signed and cannot be removed.
    """
    where = ncl.data_dir_of(data_dir, config_path)

    async def go(client: NodeApiClient) -> int:
        this = (await ncl.find_case(client, case)).summary.case_id
        that = (await ncl.find_case(client, other)).summary.case_id
        return (await client.unlink(this, that, link_type)).removed

    removed = ncl.call(where, go)
    if as_json:
        nr.emit_json({"removed": removed})
    else:
        click.echo(f"removed {removed} link(s) of this node from {case} to {other}")


async def linked_details(client: NodeApiClient, detail: CaseDetail) -> list[CaseDetail]:
    """The linked cases this node knows, each once (``node show --follow``)."""
    seen = {detail.summary.case_id}
    out = []
    for link in detail.links:
        if link.known and link.case_id not in seen:
            seen.add(link.case_id)
            out.append(await client.case(link.case_id))
    return out


def with_links(body: Body, extra: tuple[CaseLink, ...]) -> Body:
    """``body`` with ``extra`` links after its own (the node checks them all)."""
    if not extra:
        return body
    own = body.links if isinstance(body.links, tuple) else ()
    return msgspec.structs.replace(body, links=own + extra)


def kept_lines(kept: tuple[KeptLink, ...]) -> list[str]:
    """What ``node send`` says of links that stayed on this node."""
    words = _WORDS["en"]
    return [f"  link {k.type.value} to {k.case_id}: {words.get(k.reason, k.reason)}" for k in kept]


#: Added to ``relay247 node`` by cli/main.py.
COMMANDS = (link, unlink)
