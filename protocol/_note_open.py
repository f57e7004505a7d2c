"""Parse a signed note and verify its signatures (C2SP signed-note, "Format" and "Signatures").

Shared by :func:`protocol.note.open` and :func:`protocol.cosignature.verify_cosignatures`;
the step numbers match docs/PROTOCOL.md, section "Signed notes".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from protocol._note_keys import b64decode_strict, valid_name
from protocol.errors import NoteError

MAX_NOTE_BYTES: Final = 1_000_000  # bytes; 100 post-quantum signatures of ~5 kB fit
MAX_SIGNATURES: Final = 100  # Go's limit; the spec asks for at least 16
SIG_PREFIX: Final = "\u2014 "  # em dash, space
_SIG_PREFIX_BYTES: Final = SIG_PREFIX.encode()


class NoteVerifier(Protocol):
    """What :func:`open_signatures` needs from a key: its name, key ID and a check."""

    @property
    def name(self) -> str:
        """The key name."""

    @property
    def key_hash(self) -> int:
        """The 32-bit key ID."""

    @property
    def public(self) -> bytes:
        """The raw public key, to tell a repeated key from a colliding one."""

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Return whether ``sig`` (the bytes after the key ID) signs ``msg``."""


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature line: key name, key ID and the bytes after the 4-byte key ID."""

    name: str
    key_hash: int
    raw: bytes


@dataclass(frozen=True, slots=True)
class Note:
    """An opened note: its text and the signatures that verified or were ignored."""

    text: str
    verified: list[Signature]
    unverified: list[Signature]


def check_chars(data: bytes) -> str:
    """Return ``data`` decoded if it is valid UTF-8 without control characters but newline.

    Signed notes MUST be valid UTF-8 and MUST NOT contain ASCII control characters other
    than newline (signed-note "Format").

    Raises:
        NoteError: invalid UTF-8 or a forbidden control character.
    """
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("malformed note", detail="not valid UTF-8") from None
    for ch in decoded:
        if ch < " " and ch != "\n":
            raise NoteError("malformed note", detail=f"control character U+{ord(ch):04X}")
    return decoded


def check_text(text: bytes) -> str:
    """Return ``text`` decoded if it is a legal note text.

    That is :func:`check_chars`, plus non-empty and ending in a newline (signed-note
    "Format").

    Raises:
        NoteError: the text is not a legal note text.
    """
    decoded = check_chars(text)
    if not decoded.endswith("\n"):
        raise NoteError("malformed note", detail="text does not end in a newline")
    return decoded


def verifier_table(verifiers: Sequence[NoteVerifier]) -> dict[tuple[str, int], NoteVerifier]:
    """Index verifiers by (name, key ID); the same key twice is fine, two keys are not.

    Raises:
        NoteError: two different public keys share a name and key ID, so a signature
            could not be attributed to one of them.
    """
    table: dict[tuple[str, int], NoteVerifier] = {}
    for v in verifiers:
        ident = (v.name, v.key_hash)
        known = table.get(ident)
        if known is not None and known.public != v.public:
            raise NoteError("ambiguous verifier keys", detail=f"{v.name}+{v.key_hash:08x}")
        table[ident] = v
    return table


def open_signatures(note: bytes, verifiers: Sequence[NoteVerifier]) -> Note:
    """Parse ``note`` and verify every signature from a known key.

    Unlike :func:`protocol.note.open` this does not require a verified signature; the
    caller applies its own policy (one log key, or a quorum of witnesses).

    Raises:
        NoteError: the note is malformed, too large, has too many signatures, or a
            signature from a known key does not verify.
    """
    # 1. Size limit, before any parsing.
    if len(note) > MAX_NOTE_BYTES:
        raise NoteError("note too large", detail=f"{len(note)} bytes")
    table = verifier_table(verifiers)
    # 2. The whole note is UTF-8 without control characters (the check is per note).
    check_chars(note)
    # 3. The text ends at the last blank line; the signature block follows it, non-empty
    #    and newline-terminated.
    split = note.rfind(b"\n\n")
    if split < 0:
        raise NoteError("malformed note", detail="no blank line before signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block or not block.endswith(b"\n"):
        raise NoteError("malformed note", detail="signature block missing or unterminated")
    lines = block[:-1].split(b"\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("too many signatures", detail=str(len(lines)))
    verified: list[Signature] = []
    unverified: list[Signature] = []
    seen_known: set[tuple[str, int]] = set()
    seen_unknown: set[bytes] = set()
    for line in lines:
        # 4. Each line: em dash, space, key name, space, base64(key ID || signature).
        sig = _parse_line(line)
        ident = (sig.name, sig.key_hash)
        v = table.get(ident)
        if v is None:
            # 5. Unknown (name, key ID): ignored, MUST NOT fail the note; kept once.
            if line not in seen_unknown:
                seen_unknown.add(line)
                unverified.append(sig)
            continue
        # 6. Known key: the signature MUST verify, even when repeated (fail closed).
        if not v.verify(text, sig.raw):
            raise NoteError("note signature does not verify", detail=f"key {sig.name}")
        # 7. A key counts once however many times it signed.
        if ident not in seen_known:
            seen_known.add(ident)
            verified.append(sig)
    return Note(text=text.decode("utf-8"), verified=verified, unverified=unverified)


def _parse_line(line: bytes) -> Signature:
    if not line.startswith(_SIG_PREFIX_BYTES):
        raise NoteError("malformed note", detail="signature line without em dash prefix")
    rest = line[len(_SIG_PREFIX_BYTES) :].decode("utf-8")
    name, sep, b64 = rest.partition(" ")
    if not sep or not valid_name(name):
        raise NoteError("malformed note", detail="bad key name in signature line")
    raw = b64decode_strict(b64)
    # At least the 4-byte key ID and one signature byte (as Go requires).
    if raw is None or len(raw) < 5:
        raise NoteError("malformed note", detail="signature is not canonical base64")
    return Signature(name=name, key_hash=int.from_bytes(raw[:4], "big"), raw=raw[4:])
