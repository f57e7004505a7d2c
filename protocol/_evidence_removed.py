"""Step B6 of evidence-bundle verification: a message whose body the node removed under
its retention policy (PROTOCOL.md §19.4). The header, its log leaves and the receipts
are checked as in B5; the body is replaced by the node's signed tombstone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import msgspec

from protocol._evidence_checks import (
    ReceiptFact,
    _check_ack,
    _part,
    _sha,
    check_accepted,
    receipt_facts,
)
from protocol.audit_log import verify_header_signature
from protocol.checkpoint import Checkpoint
from protocol.directory import KeyLookup
from protocol.errors import DirectoryError, VerificationError
from protocol.tombstone import NO_CLOSURE, verify_tombstone
from schemas.envelope import HeaderBytes, Signature
from schemas.tombstone import Tombstone


class _Leaf(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    index: Annotated[int, msgspec.Meta(ge=0)]
    entry: Annotated[bytes, msgspec.Meta(max_length=64 * 1024 * 1024)]
    proof: Annotated[tuple[bytes, ...], msgspec.Meta(max_length=64)]


class RemovedEvidence(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A message whose body was removed: its signed header, the tombstone, the proofs."""

    header: HeaderBytes
    sig: Signature
    tombstone: Annotated[bytes, msgspec.Meta(max_length=8192)]
    directory_version: Annotated[int, msgspec.Meta(ge=1)]
    accepted: _Leaf
    acked: _Leaf | None = None
    receipts: tuple[Annotated[bytes, msgspec.Meta(max_length=8192)], ...] = ()


@dataclass(frozen=True)
class RemovedFacts:
    """What a verified removed message proves."""

    number: int
    msg_id: str
    sender: str
    recipient: str
    created: datetime
    body_sha256: str
    accepted_index: int
    accepted_at: datetime
    acked_at: datetime | None
    receipts: tuple[ReceiptFact, ...]
    removed_at: datetime
    policy: str
    policy_days: int
    remover: str
    #: the case's closure the tombstone signs, or None (an old tombstone without one:
    #: its removal period was not checked, TB5; the report says so, NO_CLOSURE)
    closed_at: datetime | None = None

    def sentences(self) -> list[str]:
        """Plain-language statements of what is proven (and that the body is gone)."""
        out = [
            f"Message {self.number} ({self.msg_id}): {self.sender} sent {self.recipient} a "
            f"message created {self.created.isoformat()}, header signed by {self.sender}'s key.",
            f"  Body removed on {self.removed_at.date().isoformat()} under policy "
            f"{self.policy} ({self.policy_days} days after closure); "
            + (
                f"the case closed on {self.closed_at.date().isoformat()} (period checked)"
                if self.closed_at is not None
                else NO_CLOSURE
            )
            + f"; {self.remover} signed "
            f"the tombstone; the removed body had SHA-256 {self.body_sha256}.",
            f"  The relay logged its acceptance at {self.accepted_at.isoformat()} as log "
            f"entry {self.accepted_index}.",
        ]
        if self.acked_at is not None:
            out.append(f"  {self.recipient} acknowledged delivery at {self.acked_at.isoformat()}.")
        out.extend(
            f"  {r.signer} signed a delivery receipt: {r.status} at {r.received_at.isoformat()}."
            for r in self.receipts
        )
        return out


def in_force(dated: Sequence[tuple[datetime, KeyLookup]], at: datetime) -> KeyLookup:
    """The directory version in force at ``at``: of ``dated`` (``issued_at``, keys) in
    chain order, the last one issued at or before ``at``.

    Raises:
        VerificationError: every version was issued after ``at``.
    """
    found = [keys for issued, keys in dated if issued <= at]
    if not found:
        raise VerificationError("no directory version of the bundle was in force at removal")
    return found[-1]


def _tombstone(raw: bytes, dated: Sequence[tuple[datetime, KeyLookup]]) -> Tombstone:
    # TB1-TB5 under some version of the chain (newest first: nothing is read unverified),
    # then again under the version in force at the removal the verified tombstone names.
    last: VerificationError | None = None
    for _, keys in reversed(dated):
        try:
            t = verify_tombstone(raw, keys)
        except VerificationError as exc:
            last = exc
            continue
        return verify_tombstone(raw, in_force(dated, t.removed_at))
    raise last or VerificationError("the bundle holds no directory")


def check_removed(
    n: int,
    m: RemovedEvidence,
    keys: KeyLookup,
    cp: Checkpoint,
    case_id: str,
    *,
    dated: Sequence[tuple[datetime, KeyLookup]],
) -> RemovedFacts:
    """Verify one removed message (B6a–B6e); errors name message ``n`` and the part.

    ``keys`` is the directory version the message names; ``dated`` the bundle's versions
    with their ``issued_at``, in chain order (the tombstone is signed later than the
    message, perhaps by a newer key: it verifies under the version in force at its
    ``removed_at``).
    """
    # B6a: the header signature, as logged (E3-E5).
    with _part(n, "header"):
        header = verify_header_signature(m.header, m.sig, keys)
        if header.case_id != case_id:
            raise VerificationError("message belongs to another case")
    # B6b: the tombstone (TB1–TB5), bound to this header.
    with _part(n, "tombstone"):
        t = _tombstone(m.tombstone, dated)
        bound = (t.msg_id, t.case_id, t.header_sha256, t.ct_sha256)
        if bound != (header.msg_id, case_id, _sha(m.header), header.ct_sha256):
            raise VerificationError("tombstone is for another message")
        if t.node not in (header.sender, header.recipient):
            raise VerificationError("tombstone signed by a member not party to the message")
    # B6c: the acceptance leaf holds these exact header bytes and signature, logged while
    # the sender's key was valid (as B5c).
    with _part(n, "acceptance log entry"):
        accepted = check_accepted(
            m.accepted,  # type: ignore[arg-type]  # same shape as LogLeaf
            cp,
            keys,
            header,
            header_bytes=m.header,
            sig=m.sig,
        )
        if t.removed_at < accepted.received_at:
            raise VerificationError("tombstone dated before the message was accepted")
    # B6d: receipts for this header, and for the body the tombstone names.
    receipts = receipt_facts(
        n, m.receipts, keys, header, header_bytes=m.header, body_sha256=t.body_sha256
    )
    # B6e: the ack leaf, as B5e.
    acked_at = None
    if m.acked is not None:
        with _part(n, "delivery-ack log entry"):
            ack = _check_ack(m.acked, cp, keys, header, m.header)  # type: ignore[arg-type]
            if m.acked.index <= m.accepted.index:
                raise VerificationError("ack logged before the acceptance")
            acked_at = ack.acked_at
    return RemovedFacts(
        number=n,
        msg_id=header.msg_id,
        sender=header.sender,
        recipient=header.recipient,
        created=header.created,
        body_sha256=t.body_sha256,
        accepted_index=m.accepted.index,
        accepted_at=accepted.received_at,
        acked_at=acked_at,
        receipts=tuple(receipts),
        removed_at=t.removed_at,
        policy=t.policy,
        policy_days=t.policy_days,
        remover=t.node,
        closed_at=None if isinstance(t.closed_at, msgspec.UnsetType) else t.closed_at,
    )


def check_all_removed(
    gone: Sequence[RemovedEvidence],
    n: int,
    *,
    by_version: Mapping[int, KeyLookup],
    dated: Sequence[tuple[datetime, KeyLookup]],
    cp: Checkpoint,
    case_id: str,
    kept: set[str],
) -> list[RemovedFacts]:
    """B6 over a bundle's ``removed``, numbered on after message ``n``; ``kept``: the
    message ids of the case's ``messages``.

    Raises:
        DirectoryError: a directory version not in the bundle.
        VerificationError: B6a-B6f (named by message number).
    """
    seen = set(kept)
    out = []
    for r in gone:
        n += 1
        keys = by_version.get(r.directory_version)
        if keys is None:
            raise DirectoryError(f"message {n}: directory version is not in the bundle")
        facts = check_removed(n, r, keys, cp, case_id, dated=dated)
        # B6f: a message is listed once, with its body or removed.
        if facts.msg_id in seen:
            raise VerificationError(f"message {n}: listed twice in the bundle")
        seen.add(facts.msg_id)
        out.append(facts)
    return out
