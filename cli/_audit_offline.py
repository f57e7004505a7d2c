"""``relay247 audit verify-bundle`` and ``audit witnesses``: the auditor's offline commands.

Both start from what the auditor pins (the coordinators' ``trust.json``, the log key), so
that what they print proves who signed, not only that a file agrees with itself.
Importing this module registers them on the ``audit`` group of ``cli._audit``.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console

from audit.attachments import check_attachments
from audit.exhibit import MAX_EXHIBIT_BYTES
from cli._audit import (
    _FILE,
    _JSON_OPTION,
    _TRUST_HELP,
    _echo_json,
    _err,
    _read,
    _trust_root,
    _witnesses,
)
from cli._audit_exhibit import check_pages, open_input
from cli._numbers import AsciiIntRange
from cli._passphrase import CliError, CliUsageError, fail_from
from protocol.cosignature import cosignature_verifier_key
from protocol.directory import MAX_DIRECTORY_BYTES
from protocol.errors import Relay247Error
from protocol.evidence import verify_bundle, verify_chain
from schemas.directory import KeyUse


@click.command("verify-bundle")
@click.argument("bundle", type=_FILE)
@click.option("--trust-root", type=_FILE, default=None, help="Coordinators' trust.json (pin).")
@click.option("--log-key", default=None, help="The log's verifier key (pin).")
@click.option("--witnesses", type=_FILE, default=None, help="Witness keys file.")
@click.option(
    "--quorum",
    default=1,
    show_default=True,
    type=AsciiIntRange(1, 100),
    help="With --witnesses: how many of them must have cosigned the checkpoint.",
)
@click.option(
    "--accept-bundle-keys",
    is_flag=True,
    help="Without --trust-root or --log-key, accept the keys the bundle names and exit 0 "
    "on internal consistency alone.",
)
@click.option(
    "--attachments",
    "attachments_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="The attachments' ciphertexts (<blob_id>.ct); default BUNDLE.attachments if present.",
)
@_JSON_OPTION
def verify_bundle_cmd(
    *,
    bundle: Path,
    attachments_dir: Path | None,
    trust_root: Path | None,
    log_key: str | None,
    witnesses: Path | None,
    quorum: int,
    accept_bundle_keys: bool,
    as_json: bool,
) -> None:
    """Check an evidence bundle offline and say what it proves.

    BUNDLE may be a court exhibit (`node export-case --pdf`): the bundle embedded in it
    is checked, then every page is compared with a fresh rendering of that bundle.

    With both pins (--trust-root, --log-key) a verified bundle proves who signed what.
    Without them it proves internal consistency only (the bundle could name keys its
    maker chose), and the command exits 1 unless --accept-bundle-keys is given.
    """
    data = _read(bundle, limit=MAX_EXHIBIT_BYTES)
    try:
        given = open_input(data)  # a court exhibit (PDF): X1-X4 take its bundle out
        if given is not None:
            data = given.bundle
        report = verify_bundle(
            data,
            trust_root=_trust_root(trust_root),
            now=datetime.now(UTC),
            log_key=log_key,
            witnesses=None if witnesses is None else _witnesses(witnesses),
            quorum=quorum,
        )
        beside = bundle.with_name(bundle.name + ".attachments")
        where = attachments_dir or (beside if beside.is_dir() else None)
        files = check_attachments(data, where)
        pages = [] if given is None else [check_pages(given)]  # X5
    except Relay247Error as exc:
        _err.print(f"REFUSED: {exc.diagnostics()}", markup=False, highlight=False)
        raise fail_from(exc) from None
    proven = report.pinned or accept_bundle_keys
    lines = (
        report.lines()
        + [
            f"attachment {f.blob_id} of message {f.msg_id}: {f.ct_len} bytes, SHA-256 "
            f"{f.ct_sha256} "
            + (
                "- the file matches the hash the log committed to"
                if f.outcome == "verified"
                else "- ciphertext not included (only its logged hash)"
            )
            for f in files
        ]
        + pages
    )
    if as_json:
        _echo_json(
            {
                "case_id": report.case_id,
                "verified": True,
                "pinned": report.pinned,
                "result": "verified" if report.pinned else "internally_consistent_only",
                "log_origin": report.log_origin,
                "size": report.size,
                "root_hash": report.root_hash.hex(),
                "witnesses": list(report.witnesses),
                "directory_versions": list(report.directory_versions),
                "messages": len(report.messages),
                "warnings": list(report.warnings),
                "attachments": [
                    {
                        "msg_id": f.msg_id,
                        "blob_id": f.blob_id,
                        "ct_sha256": f.ct_sha256,
                        "outcome": f.outcome,
                    }
                    for f in files
                ],
                "lines": lines,
            }
        )
    else:
        out = Console(soft_wrap=True)
        for line in lines:
            out.print(line, markup=False, highlight=False)
        sys.stdout.flush()
    if not proven:
        missing = [n for n, v in (("--trust-root", trust_root), ("--log-key", log_key)) if not v]
        raise CliError(
            "internally consistent only: not verified against pinned keys "
            f"(give {' and '.join(missing)}, or --accept-bundle-keys to accept the bundle's own)"
        )


@click.command("witnesses")
@click.option("--trust-root", required=True, type=_FILE, help=_TRUST_HELP)
@click.option(
    "--directory",
    "directories",
    required=True,
    multiple=True,
    type=_FILE,
    help="A signed directory (directory-N.json, or GET /v1/directory of a relay); repeat "
    "oldest first when the coordinators changed since trust.json.",
)
@click.option("--member", "members", multiple=True, help="Only this member (repeatable).")
@_JSON_OPTION
def witnesses_cmd(
    *, trust_root: Path, directories: tuple[Path, ...], members: tuple[str, ...], as_json: bool
) -> None:
    """Print the witness keys file `audit verify --witnesses` needs.

    The directory is verified against the pinned trust root (D1-D8) first; each member
    witnesses with its directory signing key, so the file lists one cosignature key
    (PROTOCOL.md §9.5) per member signing key, e.g.
    `relay247 audit witnesses --trust-root trust.json --directory directory-3.json > witnesses.txt`.
    """
    root = _trust_root(trust_root)
    assert root is not None  # --trust-root is required
    try:
        chain = verify_chain(
            [_read(d, limit=MAX_DIRECTORY_BYTES) for d in directories],
            root,
            datetime.now(UTC),
            what="--directory",
        )
    except Relay247Error as exc:
        raise CliUsageError(exc.message) from None
    newest = chain[-1].directory
    known = {m.id for m in newest.members}
    unknown = [m for m in members if m not in known]
    if unknown:
        raise CliUsageError(f"not in directory version {newest.version}: {', '.join(unknown)}")
    rows = [
        (m.id, cosignature_verifier_key(m.id, k.public), k.not_after)
        for m in newest.members
        if not members or m.id in members
        for k in m.keys
        if k.use is KeyUse.SIGNING
    ]
    if as_json:
        _echo_json({"directory_version": newest.version, "witnesses": [r[1] for r in rows]})
        return
    click.echo(
        f"# witness keys: the members' signing keys in directory version {newest.version} "
        f"of {newest.network}, verified against {trust_root.name}"
    )
    for member, key, not_after in rows:
        click.echo(f"# {member} (key valid until {not_after:%Y-%m-%d})")
        click.echo(key)


#: Added to ``relay247 audit`` by cli/main.py.
COMMANDS = (verify_bundle_cmd, witnesses_cmd)
