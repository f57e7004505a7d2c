"""C2SP transparency-log checkpoints (c2sp.org/tlog-checkpoint) as signed notes.

The note text is: origin, tree size (ASCII decimal, no leading zeros), root hash (base64
of the 32-byte RFC 6962 root), then optional non-empty extension lines, each ending in a
newline. Every failure raises :class:`NoteError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocol import note as _note
from protocol._note_keys import b64decode_strict, b64encode
from protocol._note_open import check_chars
from protocol.decimal import parse_decimal
from protocol.errors import MalformedError, NoteError

MAX_TREE_SIZE: Final = 2**64 - 1  # sizes are uint64 in every C2SP implementation


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's tree head: origin, tree size, root hash and extension lines.

    Raises:
        NoteError: (on construction) empty origin, size outside uint64, hash not 32
            bytes, an empty extension line, or a newline or control character in a line.
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin:
            raise NoteError("malformed checkpoint", detail="empty origin")
        if isinstance(self.size, bool) or not 0 <= self.size <= MAX_TREE_SIZE:
            raise NoteError("malformed checkpoint", detail="tree size outside uint64")
        if len(self.root_hash) != 32:
            raise NoteError("malformed checkpoint", detail="root hash is not 32 bytes")
        for line in (self.origin, *self.extensions):
            if not line or "\n" in line:
                raise NoteError("malformed checkpoint", detail="empty or multi-line line")
            check_chars(line.encode("utf-8", "surrogatepass"))


def encode(cp: Checkpoint) -> str:
    """Return the note text of ``cp`` (tlog-checkpoint "Note text").

    Args:
        cp: the checkpoint.

    Returns:
        ``origin\\nsize\\nbase64(root)\\n`` followed by one line per extension.
    """
    lines = [cp.origin, str(cp.size), b64encode(cp.root_hash), *cp.extensions]
    return "".join(line + "\n" for line in lines)


def parse(text: str) -> Checkpoint:
    """Parse a checkpoint note text strictly.

    Args:
        text: the note text (as :attr:`protocol.note.Note.text`), ending in a newline.

    Returns:
        The checkpoint; ``encode(parse(text)) == text`` always holds.

    Raises:
        NoteError: fewer than three lines, an empty line, a size that is not canonical
            ASCII decimal within uint64, or a root hash that is not canonical base64 of
            32 bytes.
    """
    if not text.endswith("\n"):
        raise NoteError("malformed checkpoint", detail="text does not end in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("malformed checkpoint", detail="fewer than three lines")
    origin, size_text, hash_text, *extensions = lines
    try:
        size = parse_decimal(size_text, name="tree size", high=MAX_TREE_SIZE)
    except MalformedError:
        raise NoteError(
            "malformed checkpoint", detail="tree size is not canonical decimal"
        ) from None
    root = b64decode_strict(hash_text)
    if root is None or len(root) != 32:
        raise NoteError("malformed checkpoint", detail="root hash is not base64 of 32 bytes")
    return Checkpoint(origin, size, root, tuple(extensions))


def sign_checkpoint(cp: Checkpoint, signer: _note.Signer) -> bytes:
    """Return ``cp`` as a note signed by the log's key.

    Raises:
        NoteError: the checkpoint text cannot be signed (see :func:`protocol.note.sign`).
    """
    return _note.sign(encode(cp), [signer])


def open_checkpoint(
    note: bytes, log_verifier: _note.Verifier, origin: str
) -> tuple[Checkpoint, _note.Note]:
    """Verify a checkpoint note from the log ``origin`` and parse it.

    Steps: 1 the note opens with the log's key as the only known key (so the log's own
    signature is required; witness and unknown lines are ignored here), 2 the text parses
    as a checkpoint, 3 its origin is exactly ``origin``.

    Args:
        note: the signed checkpoint bytes, exactly as received.
        log_verifier: the log's pinned verifier key.
        origin: the expected origin line.

    Returns:
        The checkpoint and the opened note (its ``unverified`` list holds the other lines).

    Raises:
        NoteError: malformed note, missing or bad log signature, malformed checkpoint, or
            another origin.
    """
    # 1. Verify before decoding.
    opened = _note.open(note, [log_verifier])
    # 2. Strict parse of the verified text.
    cp = parse(opened.text)
    # 3. A valid signature over another log's checkpoint is still the wrong checkpoint.
    if cp.origin != origin:
        raise NoteError("checkpoint is for another log", detail=f"origin {cp.origin!r}")
    return cp, opened
