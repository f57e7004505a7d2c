"""Evidence bundles: one case, verifiable offline by anyone (PROTOCOL.md §7.3, steps B1–B5).

A bundle is JSON holding, for each message of a case: the envelope as sent, its decrypted
inner plaintext split into its parts (the sender's inner signature, the exact inner
metadata and the body), the recipient's signed receipts, and the audit-log leaves that
record its acceptance and its delivery ack with their inclusion proofs; then one cosigned
checkpoint covering every leaf, the signed directory versions used and the coordinators'
trust root. :func:`verify_bundle` checks all of it without any private key and without
the relay, and returns a :class:`BundleReport` that says in plain words what is proven.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Final

import msgspec

from protocol import checkpoint as _checkpoint
from protocol._evidence_chain import verify_chain, verify_witnesses
from protocol._evidence_checks import MessageFacts, check_message
from protocol._evidence_email import (
    MAX_EMAILS,
    EmailEvidence,
    EmailFacts,
    EmailLeaf,
    check_emails,
    email_evidence,
)
from protocol._evidence_once import refuse_repeats
from protocol._evidence_removed import RemovedEvidence, RemovedFacts, check_all_removed
from protocol.codec import decode, encode
from protocol.cosignature import CosignatureVerifier
from protocol.directory import KeyLookup, TrustRoot
from protocol.errors import DirectoryError, MalformedError, NoteError
from protocol.note import Verifier
from protocol.tombstone import NO_CLOSURE
from schemas.directory import Coordinator
from schemas.envelope import Signature

__all__ = [
    "BundleReport",
    "EmailEvidence",
    "EmailFacts",
    "EmailLeaf",
    "EvidenceBundle",
    "LinkedCase",
    "LogLeaf",
    "MessageEvidence",
    "RemovedEvidence",
    "build_bundle",
    "bundle_trust_root",
    "email_evidence",
    "split_plaintext",
    "verify_bundle",
    "verify_chain",
]

MAX_BUNDLE_BYTES: Final = 256 * 1024 * 1024  # bytes: a case of a few hundred messages
MAX_LINKED_CASES: Final = 64  # linked cases in one bundle (PROTOCOL.md §17.6)
_Bytes = Annotated[bytes, msgspec.Meta(max_length=64 * 1024 * 1024)]
_INNER_HEAD: Final = 64 + 4  # inner signature, then the u32 length of the metadata


class LogLeaf(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One audit-log leaf: index, exact entry bytes and its inclusion proof."""

    index: Annotated[int, msgspec.Meta(ge=0)]
    entry: _Bytes
    proof: Annotated[tuple[bytes, ...], msgspec.Meta(max_length=64)]


class MessageEvidence(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Everything about one message (the plaintext is ``inner_sig || u32 || meta || body``)."""

    envelope: _Bytes
    inner_sig: Signature
    inner_meta: Annotated[bytes, msgspec.Meta(max_length=4096)]
    body: _Bytes
    directory_version: Annotated[int, msgspec.Meta(ge=1)]
    accepted: LogLeaf
    acked: LogLeaf | None = None
    receipts: tuple[_Bytes, ...] = ()


class LinkedCase(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A case linked to the bundle's case, with its messages (PROTOCOL.md §7.3, §17)."""

    case_id: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{32}\Z")]
    messages: Annotated[tuple[MessageEvidence, ...], msgspec.Meta(min_length=1)]


class BundleTrustRoot(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The coordinators' keys and threshold the directory chain starts from."""

    coordinators: tuple[Coordinator, ...]
    threshold: int


class EvidenceBundle(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A case's evidence bundle (``relay247-evidence``, version 1)."""

    format: Annotated[str, msgspec.Meta(pattern=r"^relay247-evidence\Z")] = "relay247-evidence"
    v: Annotated[int, msgspec.Meta(ge=1, le=1)] = 1
    case_id: str
    log_origin: str
    log_key: str
    checkpoint: str
    trust_root: BundleTrustRoot
    directories: Annotated[tuple[_Bytes, ...], msgspec.Meta(min_length=1)]
    #: empty only when every message's body was removed (then ``removed`` holds them)
    messages: tuple[MessageEvidence, ...]
    #: linked cases (``export-case --with-linked``); unset, the bundle is as before
    linked: Annotated[
        tuple[LinkedCase, ...], msgspec.Meta(min_length=1, max_length=MAX_LINKED_CASES)
    ] | (msgspec.UnsetType) = msgspec.UNSET
    #: the case's messages whose body was removed under retention (PROTOCOL.md §19.4)
    removed: tuple[RemovedEvidence, ...] | msgspec.UnsetType = msgspec.UNSET
    #: the case's e-mails with a member without a node, as logged (PROTOCOL.md §22.5 G4)
    emails: Annotated[
        tuple[EmailEvidence, ...], msgspec.Meta(min_length=1, max_length=MAX_EMAILS)
    ] | (msgspec.UnsetType) = msgspec.UNSET


_BUNDLE: Final = msgspec.json.Decoder(EvidenceBundle)


def _decode(data: bytes) -> EvidenceBundle:
    # J1 is skipped here only because B1 then requires the canonical encoding, which a
    # repeated key can never be; J1 would hold a second copy of up to 256 MiB as text.
    return decode(_BUNDLE, data, "evidence bundle", limit=MAX_BUNDLE_BYTES, unique_keys=False)


def split_plaintext(plaintext: bytes) -> tuple[bytes, bytes, bytes]:
    """Split a decrypted envelope plaintext into (inner signature, inner metadata, body).

    Raises:
        MalformedError: the plaintext is too short or its metadata length is out of range.
    """
    if len(plaintext) < _INNER_HEAD:
        raise MalformedError("plaintext too short")
    meta_len = int.from_bytes(plaintext[64:_INNER_HEAD], "big")
    if meta_len > 4096 or _INNER_HEAD + meta_len > len(plaintext):
        raise MalformedError("inner metadata length out of range")
    end = _INNER_HEAD + meta_len
    return plaintext[:64], plaintext[_INNER_HEAD:end], plaintext[end:]


def build_bundle(
    *,
    case_id: str,
    log_origin: str,
    log_key: str,
    checkpoint: bytes,
    trust_root: TrustRoot,
    directories: Sequence[bytes],
    messages: Sequence[MessageEvidence],
    linked: Sequence[LinkedCase] = (),
    removed: Sequence[RemovedEvidence] = (),
    emails: Sequence[EmailEvidence] = (),
) -> bytes:
    """Assemble an evidence bundle (the node's case export calls this).

    Args:
        case_id: the case the messages belong to.
        log_origin, log_key: the relay's log origin and signed-note verifier key.
        checkpoint: a cosigned checkpoint note whose size covers every leaf.
        trust_root: the coordinators' trust root the directory chain starts from.
        directories: the signed directory versions, oldest first, from the first one
            trusted under ``trust_root`` to the newest one used.
        messages: one :class:`MessageEvidence` per message.
        linked: the linked cases included (none: the field is left out).
        removed: the messages whose body was removed (none: left out).
        emails: the case's ``email_recorded`` leaves, in log order (none: left out).

    Returns:
        The bundle's JSON bytes. Nothing is verified here: run :func:`verify_bundle`.

    Raises:
        NoteError: the checkpoint is not UTF-8.
    """
    try:
        note = checkpoint.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("checkpoint note is not UTF-8") from None
    return encode(
        EvidenceBundle(
            case_id=case_id,
            log_origin=log_origin,
            log_key=log_key,
            checkpoint=note,
            trust_root=BundleTrustRoot(
                coordinators=trust_root.coordinators, threshold=trust_root.threshold
            ),
            directories=tuple(directories),
            messages=tuple(messages),
            linked=tuple(linked) if linked else msgspec.UNSET,
            removed=tuple(removed) if removed else msgspec.UNSET,
            emails=tuple(emails) if emails else msgspec.UNSET,
        )
    )


@dataclass(frozen=True)
class BundleReport:
    """What a verified bundle proves, in facts and in plain sentences."""

    case_id: str
    log_origin: str
    size: int
    root_hash: bytes
    witnesses: tuple[str, ...]
    directory_versions: tuple[int, ...]
    messages: tuple[MessageFacts, ...]
    warnings: tuple[str, ...] = field(default=())
    #: the linked cases' ids with their messages' facts (same checkpoint and directories)
    linked: tuple[tuple[str, tuple[MessageFacts, ...]], ...] = field(default=())
    #: both the trust root and the log key came from the verifier, not from the bundle
    pinned: bool = True
    #: the messages whose body the node removed, each with its verified tombstone
    removed: tuple[RemovedFacts, ...] = field(default=())
    #: the case's e-mail records (§22.5), each verified and in the checkpoint's tree
    emails: tuple[EmailFacts, ...] = field(default=())

    def lines(self) -> list[str]:
        """Return the report as plain-language sentences, one fact each."""
        total = len(self.messages) + len(self.removed)
        out = [f"Case {self.case_id}: {total} message(s)."]
        for m in self.messages:
            out.extend(m.sentences())
        for r in self.removed:
            out.extend(r.sentences())
        for case_id, facts in self.linked:
            out.append(f"Linked case {case_id}: {len(facts)} message(s).")
            for m in facts:
                out.extend(m.sentences())
        for e in self.emails:
            out.extend(e.sentences())
        out.append(
            f"Every log entry above is included in checkpoint {self.log_origin} "
            f"size {self.size} (root {self.root_hash.hex()}), signed by the log key and "
            f"cosigned by {', '.join(self.witnesses)}."
        )
        versions = ", ".join(str(v) for v in self.directory_versions)
        start = (
            "starting from the trust root pinned by the verifier."
            if self.pinned
            else "starting from the trust root named in the bundle itself."
        )
        out.append(
            f"Keys were checked against directory version(s) {versions}, each signed by "
            f"the coordinators trusted at the time, {start}"
        )
        out.extend(f"Warning: {w}" for w in self.warnings)
        if not self.pinned:
            out.append(
                "This proves internal consistency only: whoever made the bundle chose its "
                "keys. Pin the coordinators' trust.json and the log key to prove who signed."
            )
        return out


def bundle_trust_root(data: bytes) -> TrustRoot:
    """Return the trust root a bundle names (for a caller with nothing pinned).

    Raises:
        TooLargeError, MalformedError: not a bundle.
    """
    b = _decode(data)
    return TrustRoot(b.trust_root.coordinators, b.trust_root.threshold)


def verify_bundle(
    data: bytes,
    *,
    trust_root: TrustRoot | None,
    now: datetime,
    log_key: str | None = None,
    witnesses: Sequence[CosignatureVerifier] | None = None,
    quorum: int = 1,
) -> BundleReport:
    """Verify an evidence bundle offline (steps B1–B5).

    Args:
        data: the bundle bytes.
        trust_root: the coordinators' keys and threshold the verifier trusts; ``None``
            takes the bundle's own and reports ``pinned=False`` (internal consistency).
        now: the verifier's clock (directories issued in the future are refused).
        log_key: the log's verifier key, pinned; ``None`` takes the bundle's and warns.
        witnesses: trusted witness keys; ``None`` uses every member's signing key from the
            newest directory in the bundle (a member's witness key is its signing key).
        quorum: distinct witnesses that must have cosigned the checkpoint.

    Returns:
        The report of what is proven.

    Raises:
        TooLargeError, MalformedError: B1 not a bundle, or not canonically encoded.
        DirectoryError: B2 another trust root, or the directory chain does not verify.
        NoteError: B3 another log key, checkpoint signature or origin; B4 quorum.
        VerificationError, ProofError, MalformedError: B5 a message, receipt, ack or log
            leaf does not verify; the message names the message and the part.
    """
    warnings: list[str] = []
    # B1: size limit, strict shape, and the one canonical encoding: every byte of the
    # bundle is then either checked below or signed, so no change goes unnoticed.
    b = _decode(data)
    if encode(b) != data:
        raise MalformedError("evidence bundle is not in its canonical encoding")
    # B2: the directory chain, each version signed by the coordinators trusted before it.
    named = TrustRoot(b.trust_root.coordinators, b.trust_root.threshold)
    pinned = trust_root is not None and log_key is not None
    if trust_root is None:
        warnings.append("the trust root was taken from the bundle, not pinned by the verifier")
        trust_root = named
    elif named != trust_root:
        raise DirectoryError("the bundle's trust root is not the one the verifier pinned")
    chain = verify_chain(b.directories, trust_root, now)
    # B3: the checkpoint, signed by the log key, for the bundle's log.
    if log_key is None:
        warnings.append("the log key was taken from the bundle, not pinned by the verifier")
        log_key = b.log_key
    elif log_key != b.log_key:
        raise NoteError("the bundle names another log key than the one pinned")
    note = b.checkpoint.encode("utf-8")
    cp, _ = _checkpoint.open_checkpoint(note, Verifier.from_key(log_key), b.log_origin)
    # B4: the witnesses' cosignatures, so the log could not show this tree to one party only.
    names = verify_witnesses(note, witnesses, quorum, chain[-1])
    # B5: every message against the directory version it names, its leaves against cp.
    by_version = {d.version: KeyLookup(d.directory) for d in chain}
    # Linked cases (§17) are checked the same way, numbered on from the case's messages.
    linked = () if isinstance(b.linked, msgspec.UnsetType) else b.linked
    ids = [b.case_id, *(c.case_id for c in linked)]
    if len(set(ids)) != len(ids):
        raise MalformedError("evidence bundle: a case appears twice")
    groups: list[tuple[MessageFacts, ...]] = []
    n = 0
    for case_id, messages in [(b.case_id, b.messages), *((c.case_id, c.messages) for c in linked)]:
        facts = []
        for m in messages:
            n += 1
            keys = by_version.get(m.directory_version)
            if keys is None:
                raise DirectoryError(
                    f"message {n}: directory version {m.directory_version} is not in the bundle"
                )
            facts.append(check_message(n, m, keys, cp, case_id))
        groups.append(tuple(facts))
    # B6: messages whose body was removed, each with its tombstone (PROTOCOL.md §19.4).
    gone = () if isinstance(b.removed, msgspec.UnsetType) else b.removed
    dated = [(d.directory.issued_at, by_version[d.version]) for d in chain]
    kept = {f.msg_id for f in groups[0]}
    removed = check_all_removed(
        gone, n, by_version=by_version, dated=dated, cp=cp, case_id=b.case_id, kept=kept
    )
    n += len(removed)
    # B6 (TB5): a tombstone from before closures were signed verifies, but says so.
    warnings.extend(
        f"message {r.number}: {NO_CLOSURE} (tombstone of {r.removed_at.date().isoformat()})"
        for r in removed
        if r.closed_at is None
    )
    # B7: the case's e-mail records (PROTOCOL.md §22.5 G4), numbered apart from messages.
    sent = () if isinstance(b.emails, msgspec.UnsetType) else b.emails
    emails = check_emails(sent, 1, by_version=by_version, cp=cp, case_id=b.case_id)
    if n == 0 and not emails:
        raise MalformedError("evidence bundle holds no message")
    # B8: each message and each log leaf once in the whole bundle.
    refuse_repeats([f for g in groups for f in g], removed, emails)
    return BundleReport(
        case_id=b.case_id,
        log_origin=cp.origin,
        size=cp.size,
        root_hash=cp.root_hash,
        witnesses=names,
        directory_versions=tuple(d.version for d in chain),
        messages=groups[0],
        linked=tuple(zip(ids[1:], groups[1:], strict=True)),
        warnings=tuple(warnings),
        pinned=pinned,
        removed=tuple(removed),
        emails=tuple(emails),
    )
