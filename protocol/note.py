"""C2SP signed notes with Ed25519 keys (c2sp.org/signed-note, golang.org/x/mod/sumdb/note).

A note is a UTF-8 text ending in a newline, a blank line, then one or more lines
``— <key name> base64(key ID || signature)``. The audit log's checkpoints are notes
(:mod:`protocol.checkpoint`), witnesses add cosignature lines (:mod:`protocol.cosignature`).

Key strings are the ones Go's ``sumdb/note`` reads and writes, so keys can be shared with
Go tools (see :mod:`protocol._note_keys`). Every failure raises :class:`NoteError`.
"""

from __future__ import annotations

from collections.abc import Sequence

from protocol import _note_keys as nk
from protocol._note_open import (
    MAX_SIGNATURES,
    SIG_PREFIX,
    Note,
    NoteVerifier,
    Signature,
    check_text,
    open_signatures,
)
from protocol.errors import NoteError, VerificationError
from protocol.keys import verify_raw

__all__ = [
    "MAX_SIGNATURES",
    "Note",
    "NoteVerifier",
    "Signature",
    "Signer",
    "Verifier",
    "generate_key",
    "open",
    "sign",
    "verifier_key",
]


class Verifier(nk.VerifierBase):
    """An Ed25519 note verifier (signature type 0x01).

    Args:
        name: the key name (non-empty, no spaces, no ``+``).
        public: the 32-byte Ed25519 public key.

    Raises:
        NoteError: invalid name or key length.
    """

    ALG = nk.ALG_ED25519
    __slots__ = ()

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Return whether ``sig`` is this key's Ed25519 signature of ``msg``."""
        try:
            verify_raw(self.public, msg, sig)
        except VerificationError:
            return False
        return True


class Signer(nk.SignerBase):
    """An Ed25519 note signer (signature type 0x01).

    Args:
        name: the key name (non-empty, no spaces, no ``+``).
        key: the Ed25519 signing key.

    Raises:
        NoteError: invalid name.
    """

    ALG = nk.ALG_ED25519
    __slots__ = ()

    def verifier(self) -> Verifier:
        """Return the matching verifier."""
        return Verifier(self.name, self._key.public)

    def sign_bytes(self, msg: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of ``msg`` (no prefix, as the spec says)."""
        return self._key.sign_raw(msg)


def generate_key(name: str, seed: bytes | None = None) -> tuple[str, str]:
    """Return a new (signer key, verifier key) pair of strings for ``name``.

    Args:
        name: the key name; a schema-less URL such as ``relay.example/log`` is recommended.
        seed: a 32-byte Ed25519 seed, for reproducible keys; random when omitted.

    Returns:
        ``(skey, vkey)`` in Go ``sumdb/note`` format.

    Raises:
        NoteError: invalid name or seed length.
    """
    key = nk.new_signing_key(name, seed)
    return nk.format_skey(name, nk.ALG_ED25519, key), verifier_key(name, key.public)


def verifier_key(name: str, public: bytes) -> str:
    """Return the verifier key string ``<name>+<hex8>+base64(0x01 || public)``.

    Raises:
        NoteError: invalid name or key length.
    """
    return Verifier(name, public).key_string()


def sign(text: str | bytes, signers: Sequence[Signer]) -> bytes:
    """Sign ``text`` and return the note: text, blank line, one line per signer.

    Args:
        text: the note text; UTF-8, ending in a newline, no control characters but newline.
        signers: one or more signers with distinct (name, key ID).

    Returns:
        The signed note bytes.

    Raises:
        NoteError: illegal text, no signer, too many, or the same key twice.
    """
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    check_text(data)
    if not signers:
        raise NoteError("a note needs at least one signer")
    if len(signers) > MAX_SIGNATURES:
        raise NoteError("too many signers", detail=str(len(signers)))
    if len({(s.name, s.key_hash) for s in signers}) != len(signers):
        raise NoteError("the same signer key is given twice")
    lines = []
    for s in signers:
        payload = s.key_hash.to_bytes(4, "big") + s.sign_bytes(data)
        lines.append(f"{SIG_PREFIX}{s.name} {nk.b64encode(payload)}\n")
    return data + b"\n" + "".join(lines).encode("utf-8")


def open(note: bytes, verifiers: Sequence[NoteVerifier]) -> Note:
    """Parse ``note`` and verify it against the known keys ``verifiers``.

    Numbered steps (docs/PROTOCOL.md, "Signed notes"): 1 size, 2 characters, 3 blank line
    and signature block, 4 line syntax, 5 unknown keys ignored, 6 known keys verified,
    7 one entry per key, 8 at least one verified signature.

    Args:
        note: the signed note bytes, exactly as received.
        verifiers: the trusted keys.

    Returns:
        The note text, the verified signatures (one per key) and the ignored ones.

    Raises:
        NoteError: malformed note, a known key's signature does not verify, or no
            signature from a known key (unknown signatures alone never suffice).
    """
    opened = open_signatures(note, verifiers)
    # 8. At least one known key MUST have signed (signed-note "Signatures").
    if not opened.verified:
        raise NoteError("note has no signature from a known key")
    return opened
