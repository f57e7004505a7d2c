"""``relay247 node export-case``: a case's evidence bundle (JSON) and its court exhibit
(PDF/A-3u with the bundle embedded, issue 18 §1, PROTOCOL.md §21)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import click
import msgspec

from cli import _node_attach as na
from cli import _node_client as ncl
from cli import _node_options as no
from cli import _node_render as nr
from cli._passphrase import CliUsageError, fail_from
from cli._program import program
from protocol.codec import decode_as
from protocol.errors import Relay247Error

if TYPE_CHECKING:
    from node.api import NodeApiClient

_EXHIBIT_LANGUAGES = ("en", "fr", "es", "ar")


@click.command("export-case")
@click.argument("case")
@click.option(
    "--out",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The bundle file to write (never replaced without --force).",
)
@click.option(
    "--pdf",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also (or only) write the court exhibit: a PDF/A-3u of the case with the bundle"
    " embedded (never replaced without --force).",
)
@click.option(
    "--lang",
    type=click.Choice(_EXHIBIT_LANGUAGES),
    default="en",
    show_default=True,
    help="With --pdf: the reader's language (free text is shown as written).",
)
@click.option("--force", is_flag=True, help="Replace --out and --pdf if they exist.")
@click.option("--with-linked", is_flag=True, help="Include the linked cases in the bundle.")
@click.option(
    "--with-attachments",
    is_flag=True,
    help="Also write each attachment's ciphertext to OUT.attachments/ (checked by verify-bundle).",
)
@no.data_options
@no.json_option
def export_case(
    *,
    case: str,
    out: Path | None,
    pdf: Path | None,
    lang: str,
    force: bool,
    with_linked: bool,
    with_attachments: bool,
    data_dir: Path | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Write CASE's evidence bundle to --out, its court exhibit to --pdf, or both (check
    either with `relay247 audit verify-bundle`).

    An existing file is never replaced without --force (exit 2): a bundle handed to a
    court must not be overwritten by a later export by mistake.
    """
    where = ncl.data_dir_of(data_dir, config_path)
    if out is None and pdf is None:
        raise CliUsageError("give --out BUNDLE.json, --pdf EXHIBIT.pdf, or both")
    if with_attachments and out is None:
        raise CliUsageError("--with-attachments writes beside --out: give --out too")
    for path in (out, pdf):
        if path is not None and path.exists() and not force:
            raise CliUsageError(
                f"{path}: exists already; refusing to overwrite (--force replaces it)"
            )

    files: list[Path] = []

    async def go(client: NodeApiClient) -> tuple[str, bytes]:
        detail = await ncl.find_case(client, case)
        case_id = detail.summary.case_id
        data = await client.export_case(case_id, with_linked=with_linked)
        if with_attachments and out is not None:
            beside = out.with_name(out.name + ".attachments")
            for one in na.bundle_case_ids(case_id, data):  # linked cases' files too
                files.extend(await na.export_files(client, one, beside))
        return case_id, data

    case_id, data = ncl.call(where, go)
    exhibit = None
    if pdf is not None:
        zone = ncl.node_zone(where)
        name = getattr(zone, "key", None) or "UTC"
        from console._exhibit import render_exhibit  # WeasyPrint: only for --pdf

        try:
            exhibit = render_exhibit(data, language=lang, zone=name)
        except Relay247Error as exc:
            raise fail_from(exc) from None
    written = [(p, d) for p, d in ((out, data), (pdf, exhibit)) if p is not None and d]
    for path, content in written:
        _write(path, content, force=force)
    trust = ncl.trust_root_of(where).resolve()
    # The node's own bundle, just written: read one field, no J1 over 256 MiB.
    log_key = decode_as(_BundleKeys, data, "bundle", limit=len(data), unique_keys=False).log_key
    verify = [
        f"{program()} audit verify-bundle {shlex.quote(str(path))} "
        f"--trust-root {shlex.quote(str(trust))} --log-key {shlex.quote(log_key)}"
        for path, _ in written
    ]
    if as_json:
        nr.emit_json(
            {
                "case_id": case_id,
                "file": None if out is None else str(out),
                "bytes": len(data),
                "pdf": None if pdf is None else str(pdf),
                "pdf_bytes": None if exhibit is None else len(exhibit),
                "attachments": [str(f) for f in files],
                "verify": verify[0],
                "verify_all": verify,
            }
        )
        return
    if out is not None:
        click.echo(f"evidence bundle of case {case_id} written to {out} ({len(data):,} bytes)")
    if pdf is not None and exhibit is not None:
        click.echo(
            f"court exhibit of case {case_id} ({lang}, PDF/A-3u, bundle embedded) written to"
            f" {pdf} ({len(exhibit):,} bytes)"
        )
    if files:
        click.echo(f"  {len(files)} attachment ciphertexts in {files[0].parent}")
    click.echo("  verify it offline, with the trust root and log key this node pins:")
    for line in verify:
        click.echo(f"  {line}")


def _write(path: Path, content: bytes, *, force: bool) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL), 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
    except FileExistsError:
        raise CliUsageError(f"{path}: exists already; refusing to overwrite") from None
    except OSError as exc:
        raise CliUsageError(f"{path}: cannot write: {exc.strerror}") from None


class _BundleKeys(msgspec.Struct):
    """The one field of our own bundle the hint needs (the node just wrote it)."""

    log_key: str


#: Added to ``relay247 node`` by cli/main.py.
COMMANDS = (export_case,)
