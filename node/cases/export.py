"""Export one case as an evidence bundle (PROTOCOL.md §7.3, verified by steps B1–B5).

For each business message of the case: the envelope as stored, its inner plaintext
(inner signature, inner metadata, body), the recipient's signed receipts, the log leaves
of its acceptance and delivery ack with inclusion proofs against one cosigned
checkpoint; then the directory versions the node accepted and the pinned trust root.

The inner plaintext of a received message is decrypted again with this node's key. For
a sent message it is rebuilt: the inner metadata is a function of the signed header and
the body, and Ed25519 signatures are deterministic, so signing it again with the same
key gives the exact bytes that were sealed (the verifier checks them like any other).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol, TypeVar

import msgspec

from node.cases.export_emails import case_email_evidence, has_emails
from node.cases.export_leaves import EntrySource, Leaves, locate
from node.cases.hold import tombstone_of
from node.cases.store import CaseStore
from node.keyfile import NodeKeys
from node.storage import Direction, MessageRecord, NodeStore, Status, is_email
from node.witness import LogIdentity
from protocol import domains
from protocol.checkpoint import open_checkpoint
from protocol.codec import decode, encode
from protocol.directory import KeyLookup, TrustRoot, VerifiedDirectory, verify_directory
from protocol.errors import MalformedError, PeerError, Relay247Error, StorageError, TransportError
from protocol.evidence import (
    MAX_LINKED_CASES,
    LinkedCase,
    LogLeaf,
    MessageEvidence,
    RemovedEvidence,
    build_bundle,
    split_plaintext,
)
from protocol.note import Verifier
from schemas.audit_api import InclusionProof
from schemas.envelope import Envelope, EnvelopeHeader, InnerMeta
from schemas.errors import ErrorCode
from schemas.tombstone import StrippedEnvelope

_ENVELOPE: Final = msgspec.json.Decoder(Envelope)
_HEADER: Final = msgspec.json.Decoder(EnvelopeHeader)
_STRIPPED: Final = msgspec.json.Decoder(StrippedEnvelope)
_RECEIPT = "receipt"
T = TypeVar("T")


class ExportSource(EntrySource, Protocol):
    """The relay reads an export needs (``client.RelayClient`` has them)."""

    async def checkpoint(self) -> bytes:
        """The latest checkpoint note."""
        ...

    async def inclusion_proof(self, index: int, size: int) -> InclusionProof:
        """An inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
        ...


async def export_case(
    case_id: str,
    *,
    store: NodeStore,
    cases: CaseStore,
    keys: NodeKeys,
    source: ExportSource,
    log: LogIdentity,
    trust_root: TrustRoot,
    now: datetime,
    require_cosigner: str | None = None,
    linked: Sequence[str] = (),
) -> bytes | None:
    """Build the evidence bundle of one case.

    Args:
        case_id: the case.
        store, cases: the node store and the derived tables.
        keys: this node's keys (to open what it received, re-sign what it sent).
        source: the relay holding the log.
        log: the log's pinned identity.
        trust_root: the coordinators' trust root the node pins.
        now: the clock (directory validity).
        require_cosigner: a witness name whose cosignature the checkpoint must carry
            (this node's own), else ``unavailable`` with detail :data:`NOT_COSIGNED`.
        linked: linked cases to include, each with its messages (PROTOCOL.md §17.5),
            under the same checkpoint and directory chain.

    Returns:
        The bundle bytes, or None when the case has no message this node stored.

    Raises:
        TransportError: ``unavailable`` when the latest checkpoint does not yet cover a
            message of the case (retry a few seconds later), or the relay is down.
        NoteError: the relay's checkpoint does not verify with the pinned log key.
        PeerError: the relay refused a read.
        StorageError: a stored envelope or directory cannot be read back.
    """
    if len(linked) > MAX_LINKED_CASES:
        raise PeerError(
            f"{len(linked)} linked cases: at most {MAX_LINKED_CASES} fit in one bundle;"
            " export them separately",
            code=ErrorCode.TOO_LARGE,
        )
    cases_in: list[tuple[str, list[MessageRecord], list[MessageRecord]]] = []
    for cid in (case_id, *linked):
        records = await store.messages(case_id=cid, limit=100_000)
        if not records:
            if cid == case_id:
                return None
            continue  # a linked case this node has no message of: nothing to prove
        business = [r for r in records if r.coarse_kind != _RECEIPT and _was_logged(r)]
        if not business and not (cid == case_id and await has_emails(store, cid)):
            raise TransportError(
                f"no message of case {cid} is in the log yet", code=ErrorCode.UNAVAILABLE
            )
        cases_in.append((cid, records, business))
    note = await _latest_checkpoint(source)
    cp, _ = open_checkpoint(note, Verifier.from_key(log.key), log.origin)
    if require_cosigner is not None and f"\u2014 {require_cosigner} ".encode() not in note:
        raise TransportError(
            "the latest checkpoint is not cosigned by this node yet; retry",
            detail=NOT_COSIGNED,
            code=ErrorCode.UNAVAILABLE,
        )
    every = [r for _, _, business in cases_in for r in business]
    leaves = await locate(source, cases, every, cp.size)
    late = [r.msg_id for r in every if r.msg_id not in leaves.accepted]
    if late:
        raise TransportError(
            "the latest checkpoint does not cover every message of the case yet; retry",
            detail=", ".join(late),
            code=ErrorCode.UNAVAILABLE,
        )
    chain = await _directories(cases, trust_root, now)
    evidence: list[tuple[str, list[MessageEvidence]]] = []
    removed: list[RemovedEvidence] = []
    for cid, records, business in cases_in:
        context = _Context(records, store, keys, source, leaves, cp.size, chain)
        kept = []
        for r in business:
            # A body removed under retention (PROTOCOL.md §19.4): its tombstone instead.
            tombstone = (
                None
                if r.body is not None
                else await tombstone_of(cases, r.direction.value, r.msg_id)
            )
            if tombstone is None:
                kept.append(await _message(r, context))
            elif cid == case_id:  # a linked case's removed messages are left out
                removed.append(await _removed(r, tombstone, context))
        if kept or cid == case_id:
            evidence.append((cid, kept))
    emails = await case_email_evidence(store, source, chain, case_id, cp.size)  # §22.5 G4
    return build_bundle(
        case_id=case_id,
        log_origin=log.origin,
        log_key=log.key,
        checkpoint=note,
        trust_root=trust_root,
        directories=[raw for raw, _ in chain],
        messages=evidence[0][1],
        linked=[LinkedCase(case_id=cid, messages=tuple(m)) for cid, m in evidence[1:]],
        removed=removed,
        emails=emails,
    )


NOT_COSIGNED = "checkpoint not cosigned by this node"


async def _latest_checkpoint(source: ExportSource) -> bytes:
    """The relay's latest checkpoint note.

    Raises:
        TransportError: ``unavailable`` before the relay signed its first checkpoint (its
            ``not_found``, §8.6: no checkpoint covers the case yet, retry, not "no case").
    """
    try:
        return await source.checkpoint()
    except PeerError as exc:
        if exc.code is not ErrorCode.NOT_FOUND:
            raise
        raise TransportError(
            "the relay has signed no checkpoint yet, so none covers the case; retry",
            detail=exc.message,
            code=ErrorCode.UNAVAILABLE,
        ) from None


def _was_logged(r: MessageRecord) -> bool:
    if is_email(r):  # by e-mail (§22): no envelope; its record is logged apart (G4)
        return False
    if r.direction is Direction.IN:
        return r.status is Status.ACCEPTED
    return r.leaf_index is not None


async def _directories(
    cases: CaseStore, root: TrustRoot, now: datetime
) -> list[tuple[bytes, VerifiedDirectory]]:
    # The same chain the verifier walks (B2): each version under the one before it.
    chain: list[tuple[bytes, VerifiedDirectory]] = []
    for _, raw in await cases.directories():
        current = chain[-1][1] if chain else None
        trusted = TrustRoot.of(current.directory) if current else root
        try:
            chain.append((raw, verify_directory(raw, trusted, current=current, now=now)))
        except Relay247Error as exc:
            raise StorageError("a stored directory does not verify", detail=exc.message) from None
    if not chain:
        raise StorageError("no directory stored; the node never reached a relay")
    return chain


def _version_for(header: EnvelopeHeader, chain: list[tuple[bytes, VerifiedDirectory]]) -> int:
    # The newest version that still lists the sender's key (a rotation may drop it later).
    for _, d in reversed(chain):
        try:
            KeyLookup(d.directory).signer_key(header.sender, header.sender_key)
        except Relay247Error:
            continue
        return d.version
    return chain[-1][1].version


@dataclass(frozen=True)
class _Context:
    records: list[MessageRecord]
    store: NodeStore
    keys: NodeKeys
    source: ExportSource
    leaves: Leaves
    size: int
    chain: list[tuple[bytes, VerifiedDirectory]]


async def _message(r: MessageRecord, c: _Context) -> MessageEvidence:
    header = _read(_HEADER, r.header, "stored header")
    inner_sig, inner_meta, body = _plaintext(r, header, c.keys)

    async def leaf(index: int) -> LogLeaf:
        (entry,) = await c.source.entries(index, index + 1)
        proof = await c.source.inclusion_proof(index, c.size)
        return LogLeaf(index=index, entry=entry, proof=proof.proof)

    acked = c.leaves.acked.get(r.msg_id)
    return MessageEvidence(
        envelope=r.envelope,
        inner_sig=inner_sig,
        inner_meta=inner_meta,
        body=body,
        directory_version=_version_for(header, c.chain),
        accepted=await leaf(c.leaves.accepted[r.msg_id]),
        acked=None if acked is None else await leaf(acked),
        receipts=await _receipts(r, c.records, c.store),
    )


async def _removed(r: MessageRecord, tombstone: bytes, c: _Context) -> RemovedEvidence:
    header = _read(_HEADER, r.header, "stored header")
    kept = _read(_STRIPPED, r.envelope, "stored envelope")
    acked = c.leaves.acked.get(r.msg_id)

    async def leaf(index: int) -> Any:
        (entry,) = await c.source.entries(index, index + 1)
        proof = await c.source.inclusion_proof(index, c.size)
        return LogLeaf(index=index, entry=entry, proof=proof.proof)

    return RemovedEvidence(
        header=kept.header,
        sig=kept.sig,
        tombstone=tombstone,
        directory_version=_version_for(header, c.chain),
        accepted=await leaf(c.leaves.accepted[r.msg_id]),
        acked=None if acked is None else await leaf(acked),
        receipts=await _receipts(r, c.records, c.store),
    )


def _plaintext(
    r: MessageRecord, header: EnvelopeHeader, keys: NodeKeys
) -> tuple[bytes, bytes, bytes]:
    if r.direction is Direction.IN:
        env = _read(_ENVELOPE, r.envelope, "stored envelope")
        key = keys.decryption_keys.get(header.recipient_key)
        if key is None:
            raise StorageError("the key this message was sealed to is no longer held")
        try:
            return split_plaintext(key.unseal(env.ciphertext))
        except Relay247Error as exc:
            raise StorageError("a stored envelope no longer opens", detail=exc.message) from None
    if r.body is None or header.sender_key != keys.signing.fingerprint:
        raise StorageError("a sent message cannot be rebuilt with the current signing key")
    meta = encode(
        InnerMeta(
            msg_id=header.msg_id,
            sender=header.sender,
            sender_key=header.sender_key,
            recipient=header.recipient,
            recipient_key=header.recipient_key,
            created=header.created,
            case_id=header.case_id,
            body_sha256=_sha256(r.body),
            body_len=len(r.body),
        )
    )
    return keys.signing.sign(domains.ENVELOPE_INNER, meta), meta, r.body


async def _receipts(
    r: MessageRecord, records: list[MessageRecord], store: NodeStore
) -> tuple[bytes, ...]:
    if r.direction is Direction.OUT:
        kept = await store.receipt(r.msg_id)
        return () if kept is None else (kept.signed,)
    # What this node signed for a received message went out as the body of a receipt.
    return tuple(
        x.body
        for x in records
        if x.direction is Direction.OUT
        and x.coarse_kind == _RECEIPT
        and x.in_reply_to == r.msg_id
        and x.body is not None
    )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(decoder: msgspec.json.Decoder[T], raw: bytes, what: str) -> T:
    try:
        return decode(decoder, raw, what, limit=4 << 20)
    except MalformedError as exc:
        raise StorageError(f"{what} is corrupted", detail=exc.message) from None
