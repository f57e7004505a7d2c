"""Attachments beside an evidence bundle: each ciphertext against the logged hash (§7.3).

``export-case --with-attachments`` writes each attachment's ciphertext as
``<blob_id>.ct`` in a directory beside the bundle. The bundle's messages (those of its
linked cases included) carry their
envelopes, whose headers (the exact bytes in the relay's accept leaf, B5(c)) name every
attachment's ``ct_sha256`` and ``ct_len`` (§15.3). Run after :func:`protocol.evidence.
verify_bundle` accepted the bundle, :func:`check_attachments` hashes each file there and
refuses one that is missing, of another length, or another hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from protocol.codec import decode
from protocol.envelope import header_bytes_of
from protocol.errors import VerificationError
from protocol.evidence import MAX_BUNDLE_BYTES, EvidenceBundle
from schemas.envelope import EnvelopeHeader
from schemas.errors import ErrorCode

_BUNDLE: Final = msgspec.json.Decoder(EvidenceBundle)
_HEADER: Final = msgspec.json.Decoder(EnvelopeHeader)


@dataclass(frozen=True)
class AttachmentCheck:
    """One attachment named by a message of the bundle, and what was found for it."""

    msg_id: str
    blob_id: str
    ct_len: int
    ct_sha256: str
    #: "verified" (the file matches the logged hash) or "absent" (no directory given)
    outcome: str


def _sha256(path: Path) -> tuple[int, str]:
    h, n = hashlib.sha256(), 0
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            n += len(block)
    return n, h.hexdigest()


def check_attachments(bundle: bytes, directory: Path | None) -> list[AttachmentCheck]:
    """Check every attachment of a verified bundle against the files in ``directory``.

    Args:
        bundle: the bundle's bytes, already accepted by ``verify_bundle``.
        directory: the ``<blob_id>.ct`` files; None: report each as absent.

    Raises:
        VerificationError: a file is missing, or its length or SHA-256 differs from the
            header's (``ciphertext_mismatch``).
    """
    parsed = decode(_BUNDLE, bundle, "bundle", limit=MAX_BUNDLE_BYTES, unique_keys=False)
    out: list[AttachmentCheck] = []
    linked = () if isinstance(parsed.linked, msgspec.UnsetType) else parsed.linked
    # the linked cases' messages too (``--with-linked``, §17.6): their files are evidence
    for m in (*parsed.messages, *(m for case in linked for m in case.messages)):
        raw = header_bytes_of(m.envelope, max_bytes=len(m.envelope))
        header = decode(_HEADER, raw, "header", limit=len(raw))
        for ref in header.attachments or ():
            outcome = "absent"
            if directory is not None:
                path = directory / f"{ref.blob_id}.ct"
                if not path.is_file():
                    raise VerificationError(
                        f"attachment {ref.blob_id} of message {header.msg_id}: no {path.name}",
                        code=ErrorCode.CIPHERTEXT_MISMATCH,
                    )
                if _sha256(path) != (ref.ct_len, ref.ct_sha256):
                    raise VerificationError(
                        f"attachment {ref.blob_id} of message {header.msg_id}: the file's "
                        "SHA-256 differs from the hash the log committed to",
                        code=ErrorCode.CIPHERTEXT_MISMATCH,
                    )
                outcome = "verified"
            out.append(
                AttachmentCheck(header.msg_id, ref.blob_id, ref.ct_len, ref.ct_sha256, outcome)
            )
    return out
