"""Attachments at the command line (PROTOCOL.md §15.2): send, list, save.

``node send --attach FILE`` streams each file to the running node, which encrypts it
into its data directory; the body then names them and the node uploads them before it
submits the message. ``node show`` lists a case's attachments; ``node attachment CASE N
--out FILE`` writes attachment N's verified plaintext, never a partial file.
"""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING

import click
import msgspec

from cli import _node_client as ncl
from cli import _node_options as no
from cli import _node_render as nr
from cli._numbers import AsciiIntRange
from cli._passphrase import CliUsageError
from protocol.codec import convert, decode_as
from protocol.errors import MalformedError
from schemas import MAX_ATTACHMENTS, Attachment
from schemas import node_api as api
from schemas._attachment import BAD_FILE_NAME, file_name_refused
from schemas.messages import Body

if TYPE_CHECKING:
    from node.api import NodeApiClient

ATTACH = click.option(
    "--attach",
    "attach",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Attach this file (repeatable): encrypted by the node, sent with the message.",
)


def _meta(path: Path) -> api.AttachmentUpload:
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    try:
        meta = convert({"name": path.name, "media_type": media_type}, api.AttachmentUpload, "file")
    except MalformedError as exc:
        raise CliUsageError(f"{path}: cannot attach a file named so ({exc.problem})") from None
    if file_name_refused(meta.name):  # S14 (§15.2): the send would be refused
        raise CliUsageError(f"{path}: cannot attach a file named so ({BAD_FILE_NAME})")
    return meta


def check_files(files: tuple[Path, ...], body: Body) -> None:
    """Refuse before anything is uploaded: too many files, or a name no receiver takes."""
    have = () if isinstance(body.attachments, msgspec.UnsetType) else body.attachments
    if len(have) + len(files) > MAX_ATTACHMENTS:
        raise CliUsageError(f"at most {MAX_ATTACHMENTS} attachments on one message")
    for path in files:
        _meta(path)


async def with_files(client: NodeApiClient, body: Body, files: tuple[Path, ...], to: str) -> Body:
    """``body`` with each file uploaded to the node and named in ``attachments``.

    Each upload names ``to``: the node refuses a member that cannot take attachments
    before it reads (let alone encrypts) the first file.
    """
    if not files:
        return body
    made: list[Attachment] = []
    for path in files:
        meta = _meta(path)
        made.append(
            await client.upload_attachment(path, name=meta.name, media_type=meta.media_type, to=to)
        )
    have = () if isinstance(body.attachments, msgspec.UnsetType) else body.attachments
    return msgspec.structs.replace(body, attachments=(*have, *made))


def print_attachments(listing: api.AttachmentList) -> None:
    """The case's attachments, numbered as ``node attachment`` takes them."""
    if not listing.attachments:
        return
    click.echo("")
    click.echo("attachments:")
    for e in listing.attachments:
        kept = "" if e.kept else "  (not kept here)"
        arrow = "received" if e.direction == "in" else "sent"
        click.echo(
            f"  {e.n:>3}  {arrow:<8} {e.name}  {e.media_type}  {e.size:,} bytes"
            f"  sha256 {e.sha256[:16]}…{kept}"
        )


class _LinkedId(msgspec.Struct, frozen=True):
    case_id: str


class _LinkedIds(msgspec.Struct, frozen=True):
    """The one field of the node's own bundle read here: its linked cases' ids."""

    linked: tuple[_LinkedId, ...] = ()


def bundle_case_ids(case_id: str, bundle: bytes) -> tuple[str, ...]:
    """``case_id`` and the ids of the cases linked into ``bundle`` (``--with-linked``):
    the cases whose attachments go beside it (§7.3, §17.6)."""
    linked = decode_as(_LinkedIds, bundle, "evidence bundle", limit=len(bundle)).linked
    return (case_id, *(c.case_id for c in linked))


async def export_files(client: NodeApiClient, case_id: str, where: Path) -> list[Path]:
    """Write each kept attachment's ciphertext of the case to ``where/<blob_id>.ct``.

    Each file is checked against the body's ``ct_len`` and ``ct_sha256`` on the way
    (and ``audit verify-bundle`` checks it against the log's). Attachments this node
    does not keep (a refused message) are left out: the bundle still names their hashes.
    """
    listing = await client.attachments(case_id)
    written: list[Path] = []
    for entry in listing.attachments:
        if not entry.kept:
            continue
        await asyncio.to_thread(where.mkdir, exist_ok=True)
        path = where / f"{entry.blob_id}.ct"
        await client.save_attachment(case_id, entry, path, ciphertext=True)
        written.append(path)
    return written


@click.command("attachment")
@click.argument("case")
@click.argument("n", type=AsciiIntRange(1))
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the file (never replaced without --force).",
)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@no.data_options
@no.json_option
def attachment(
    *,
    case: str,
    n: int,
    out: Path,
    force: bool,
    data_dir: Path | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Write attachment N of CASE (numbers as `node show` lists them) to --out.

    The node decrypts the kept ciphertext; the file is written under a temporary name,
    its size and SHA-256 checked against the sealed body's, fsynced, then renamed: a
    failure leaves no file at --out.
    """
    where = ncl.data_dir_of(data_dir, config_path)
    if out.exists() and not force:
        raise CliUsageError(f"{out}: exists already; refusing to overwrite (--force replaces it)")

    async def go(client: NodeApiClient) -> api.AttachmentEntry:
        detail = await ncl.find_case(client, case)
        listing = await client.attachments(detail.summary.case_id)
        if n > len(listing.attachments):
            raise CliUsageError(f"case {case} has {len(listing.attachments)} attachments")
        entry = listing.attachments[n - 1]
        await client.save_attachment(detail.summary.case_id, entry, out)
        return entry

    entry = ncl.call(where, go)
    if as_json:
        nr.emit_json(entry)
        return
    click.echo(f"wrote {entry.name} ({entry.size:,} bytes, SHA-256 verified) to {out}")


#: Added to ``relay247 node`` by cli/main.py.
COMMANDS = (attachment,)
