"""Split signing: ``publish --unsigned``, ``network sign``, ``network combine`` (§3.5).

Each coordinator keeps its key on its own machine: the exact directory bytes travel
to it, only a ``DirectorySignature`` comes back, and ``combine`` checks the assembled
version exactly as a node will (D1–D8) before anything is written or posted.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import msgspec

from cli._files import read_user_file, write_whole
from cli._network import (
    _DIR_OPTION,
    _JSON_OPTION,
    TRUST,
    emit,
    post_or_explain,
    write_state,
)
from cli._passphrase import CliUsageError, fail_from, passphrase_option, read_passphrase
from protocol.codec import decode, decode_as, encode
from protocol.directory import TrustRoot, VerifiedDirectory, sign_bytes, verify_directory
from protocol.errors import ConfigError, PeerError, Relay247Error
from protocol.keys import SigningKey
from protocol.keystore import unlock
from schemas.directory import Directory, DirectorySignature, SignedDirectory, TrustRootFile
from serving.files import read_file

_SIG = msgspec.json.Decoder(DirectorySignature)
_MAX = 8 << 20  # bytes: a 4 MiB directory with its signatures fits


def export_unsigned(netdir: Path, directory: Directory, out: Path) -> dict[str, Any]:
    """Write the exact bytes of ``directory`` to sign and advance the working version.

    Versions need only increase, so a version exported but never combined is skipped.
    """
    raw = encode(directory)
    out.write_bytes(raw)
    write_state(netdir, msgspec.structs.replace(directory, version=directory.version + 1))
    return {"version": directory.version, "file": str(out), "sha256": _digest(raw)}


def _digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def read_chain(netdir: Path, now: datetime) -> tuple[TrustRoot, VerifiedDirectory | None]:
    """Verify every published ``directory-<v>.json`` from the pinned ``trust.json`` on.

    Returns:
        The trust root for the next version and the newest version (None before the first).

    Raises:
        ConfigError: trust.json is unreadable; DirectoryError and the like from D1–D8.
    """
    try:
        raw = read_file(netdir / TRUST, _MAX, what="trust root")
        pinned = decode_as(TrustRootFile, raw, "trust root", limit=_MAX)
    except PeerError as exc:
        raise ConfigError(f"{netdir / TRUST}: cannot read trust root: {exc}") from None
    root = TrustRoot(pinned.coordinators, pinned.threshold)
    current: VerifiedDirectory | None = None
    files = sorted(netdir.glob("directory-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    for path in files:
        current = verify_directory(read_file(path, _MAX), root, current=current, now=now)
        root = TrustRoot.of(current.directory)
    return root, current


def _read_unsigned(path: Path) -> Directory:
    # The signer reads what it signs: it is its own coordinator's decision, not input
    # it trusts; a file that is not a directory is refused before any signing.
    try:
        return decode_as(Directory, read_user_file(path, _MAX), "directory", limit=_MAX)
    except PeerError as exc:
        raise CliUsageError(f"{path}: not an unsigned directory: {exc}") from None


@click.command("sign")
@_DIR_OPTION
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="This coordinator's key file (coordinator-<i>.key).",
)
@click.argument("unsigned", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write this coordinator's signature.",
)
@passphrase_option
@_JSON_OPTION
def sign(
    *,
    netdir: Path,
    key_file: Path,
    unsigned: Path,
    out: Path,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Sign UNSIGNED with one coordinator key; write its signature to --out."""
    raw = read_user_file(unsigned, _MAX)
    directory = _read_unsigned(unsigned)
    secret = read_passphrase(passphrase_file, confirm=False)
    try:
        seed = unlock(read_user_file(key_file, _MAX), secret).keys.get("coordinator")
        if seed is None or len(seed) != 32:
            raise ConfigError(f"{key_file}: not a coordinator key file")
        key = SigningKey(seed)
        root, _ = read_chain(netdir, datetime.now(UTC))
    except Relay247Error as exc:
        raise fail_from(exc) from None
    # Signing with a key the verifiers do not count would only waste a round trip.
    known = {c.public for c in (*root.coordinators, *directory.coordinators)}
    if key.public not in known:
        raise CliUsageError(f"{key_file}: not a coordinator of this network")
    (signature,) = sign_bytes(raw, [key])
    out.write_bytes(encode(signature))
    emit(
        {
            "fingerprint": key.fingerprint,
            "network": directory.network,
            "version": directory.version,
            "members": len(directory.members),
            "sha256": _digest(raw),
            "file": str(out),
        },
        as_json,
    )


@click.command("combine")
@_DIR_OPTION
@click.argument("unsigned", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument(
    "sigs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the signed directory version.",
)
@click.option("--relay", "relay_url", default=None, help="Also POST it to this relay.")
@_JSON_OPTION
def combine(
    *,
    netdir: Path,
    unsigned: Path,
    sigs: tuple[Path, ...],
    out: Path,
    relay_url: str | None,
    as_json: bool,
) -> None:
    """Assemble UNSIGNED and SIGS into a signed version, verify it (D1-D8), write it."""
    raw = read_user_file(unsigned, _MAX)
    signatures = []
    for path in sigs:
        try:
            signatures.append(decode(_SIG, read_user_file(path, _MAX), "signature", limit=_MAX))
        except PeerError as exc:
            raise CliUsageError(f"{path}: not a directory signature: {exc}") from None
    signed = encode(SignedDirectory(directory=raw, signatures=tuple(signatures)))
    try:
        now = datetime.now(UTC)
        root, current = read_chain(netdir, now)
        verified = verify_directory(signed, root, current=current, now=now)
    except Relay247Error as exc:
        raise fail_from(exc) from None
    out.write_bytes(signed)
    write_whole(netdir / f"directory-{verified.version}.json", signed)  # read by every later one
    result: dict[str, Any] = {"version": verified.version, "file": str(out)}
    if relay_url is not None:
        path = netdir / f"directory-{verified.version}.json"
        result["leaf_index"] = post_or_explain(netdir, relay_url, path, signed)
    emit(result, as_json)


#: Added to ``relay247 network`` by cli/main.py.
COMMANDS = (sign, combine)
