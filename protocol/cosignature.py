"""Witness cosignatures ``cosignature/v1`` with Ed25519 (c2sp.org/tlog-cosignature).

A cosignature is a note signature line on a checkpoint, from a key of signature type
0x04: key ID ``SHA-256(name || 0x0A || 0x04 || public key)[:4]``, payload
``key ID (4) || timestamp (u64 big-endian) || Ed25519 signature (64)``, signed message
``"cosignature/v1\\ntime <timestamp>\\n" || checkpoint note text``.

Key strings (same layout as Go ``sumdb/note`` with type byte 0x04, as transparency-dev
``NewVerifierForCosignatureV1`` reads them):

- verifier: ``<name>+<hex8 key ID>+base64(0x04 || 32-byte public key)``
- signer: ``PRIVATE+KEY+<name>+<hex8 key ID>+base64(0x04 || 32-byte seed)``

Type 0x01 keys are refused: convert a plain note key with
:func:`cosignature_verifier_key` so that one key string never means two things.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from protocol import _note_keys as nk
from protocol._note_open import SIG_PREFIX, open_signatures, verifier_table
from protocol.checkpoint import parse as parse_checkpoint
from protocol.errors import NoteError, VerificationError
from protocol.keys import verify_raw

HEADER: Final = b"cosignature/v1\n"
MAX_TIMESTAMP: Final = 2**63 - 1  # tlog-cosignature: the timestamp MUST NOT exceed it


@dataclass(frozen=True, slots=True)
class Cosignature:
    """One verified cosignature: witness name, key ID, POSIX time and Ed25519 signature."""

    name: str
    key_hash: int
    timestamp: int
    signature: bytes


def cosignature_message(checkpoint_text: str, timestamp: int) -> bytes:
    """Return the signed message ``cosignature/v1\\ntime <t>\\n<checkpoint text>``.

    Raises:
        NoteError: the text is not a checkpoint or the timestamp is outside 0..2^63-1.
    """
    parse_checkpoint(checkpoint_text)
    _check_timestamp(timestamp)
    return HEADER + f"time {timestamp}\n".encode() + checkpoint_text.encode("utf-8")


def _check_timestamp(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError("cosignature timestamp out of range", detail=str(timestamp))


class CosignatureVerifier(nk.VerifierBase):
    """A witness's cosignature/v1 verifier (signature type 0x04).

    Args:
        name: the witness key name.
        public: its 32-byte Ed25519 public key.

    Raises:
        NoteError: invalid name or key length.
    """

    ALG = nk.ALG_COSIGNATURE_V1
    __slots__ = ()

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Return whether ``sig`` = ``timestamp (8) || Ed25519 sig (64)`` cosigns ``msg``."""
        if len(sig) != 72:
            return False
        timestamp = int.from_bytes(sig[:8], "big")
        if timestamp > MAX_TIMESTAMP:
            return False
        signed = HEADER + f"time {timestamp}\n".encode() + msg
        try:
            verify_raw(self.public, signed, sig[8:])
        except VerificationError:
            return False
        return True


class CosignatureSigner(nk.SignerBase):
    """A witness's cosignature/v1 signer (signature type 0x04).

    Args:
        name: the witness key name.
        key: its Ed25519 signing key.

    Raises:
        NoteError: invalid name.
    """

    ALG = nk.ALG_COSIGNATURE_V1
    __slots__ = ()

    def verifier(self) -> CosignatureVerifier:
        """Return the matching verifier."""
        return CosignatureVerifier(self.name, self._key.public)

    def sign_message(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of an already formatted message."""
        return self._key.sign_raw(message)


def generate_cosignature_key(name: str, seed: bytes | None = None) -> tuple[str, str]:
    """Return a new (signer key, verifier key) pair of type 0x04 for witness ``name``.

    Raises:
        NoteError: invalid name or seed length.
    """
    key = nk.new_signing_key(name, seed)
    skey = nk.format_skey(name, nk.ALG_COSIGNATURE_V1, key)
    return skey, cosignature_verifier_key(name, key.public)


def cosignature_verifier_key(name: str, public: bytes) -> str:
    """Return the type-0x04 verifier key string for an Ed25519 public key.

    Raises:
        NoteError: invalid name or key length.
    """
    return CosignatureVerifier(name, public).key_string()


def cosign(checkpoint_text: str, signer: CosignatureSigner, timestamp: int) -> str:
    """Cosign a checkpoint; return the signature line to append to its note.

    Args:
        checkpoint_text: the checkpoint note text (without signature lines).
        signer: the witness key.
        timestamp: POSIX seconds of the statement (the caller's clock, not ours).

    Returns:
        ``"— <name> base64(key ID || u64 timestamp || signature)\\n"``.

    Raises:
        NoteError: the text is not a checkpoint or the timestamp is out of range.
    """
    sig = signer.sign_message(cosignature_message(checkpoint_text, timestamp))
    payload = signer.key_hash.to_bytes(4, "big") + timestamp.to_bytes(8, "big") + sig
    return f"{SIG_PREFIX}{signer.name} {nk.b64encode(payload)}\n"


def verify_cosignatures(
    note: bytes,
    witnesses: Sequence[CosignatureVerifier],
    quorum: int,
    *,
    not_after: int | None = None,
    not_before: int | None = None,
) -> list[Cosignature]:
    """Verify that at least ``quorum`` distinct witnesses cosigned the checkpoint ``note``.

    Steps (docs/PROTOCOL.md, "Cosignatures"): 1 the policy is satisfiable, 2 the note
    opens with the witnesses as the known keys (any bad signature from a witness is an
    error, other lines are ignored), 3 the text is a checkpoint, 4 no timestamp after
    ``not_after``, 5 at least ``quorum`` distinct witnesses verified. This does not check
    the log's own signature: use :func:`protocol.checkpoint.open_checkpoint` for that.

    Args:
        note: the signed checkpoint bytes with cosignature lines.
        witnesses: the trusted witness keys (the same key twice counts once).
        quorum: how many distinct witnesses must have cosigned, 1..len(distinct witnesses).
        not_after: if given, the latest acceptable timestamp (the caller's now plus skew).
        not_before: if given, the earliest acceptable timestamp: a party that receives a
            line fresh from its witness (the relay, W6) passes its now minus skew; an
            auditor reading old checkpoints passes nothing.

    Returns:
        One :class:`Cosignature` per witness that cosigned, in note order.

    Raises:
        NoteError: unsatisfiable quorum, malformed note or checkpoint, a forged or replayed
            cosignature from a witness key, a timestamp in the future, or too few
            cosignatures.
    """
    # 1. Fail closed on a policy that is empty or can never be met.
    distinct = len(verifier_table(witnesses))
    # The v1 message does not commit to the name, so one key listed under two names
    # would let one cosignature, relabelled, count twice (tlog-cosignature "Format").
    if len({w.public for w in witnesses}) != distinct:
        raise NoteError("one witness key is listed under two names")
    if isinstance(quorum, bool) or not 1 <= quorum <= distinct:
        raise NoteError("invalid cosignature quorum", detail=f"{quorum} of {distinct}")
    # 2. Verify every witness line; the log's and unknown lines are ignored.
    opened = open_signatures(note, witnesses)
    # 3. Witnesses sign checkpoints only.
    parse_checkpoint(opened.text)
    found = []
    for sig in opened.verified:
        timestamp = int.from_bytes(sig.raw[:8], "big")
        # 4. A statement dated in the future is refused (tlog-cosignature allows it), and,
        # when asked, one dated too long ago (the timestamp says when it cosigned).
        if not_after is not None and timestamp > not_after:
            raise NoteError("cosignature timestamp is in the future", detail=sig.name)
        if not_before is not None and timestamp < not_before:
            raise NoteError("cosignature timestamp is too old", detail=f"{sig.name} {timestamp}")
        found.append(Cosignature(sig.name, sig.key_hash, timestamp, sig.raw[8:]))
    # 5. Quorum of distinct witnesses (open_signatures keeps one entry per key).
    if len(found) < quorum:
        raise NoteError("too few witness cosignatures", detail=f"{len(found)} of {quorum}")
    return found
