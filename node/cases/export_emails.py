"""The e-mails of a case in its evidence bundle (PROTOCOL.md §22.5 G4, checked by B7).

Each e-mail sent to or taken from a member without a node has its signed record in the
relay's log at the leaf index the node kept with it (``email_log``); the bundle carries
that leaf's exact entry and its inclusion proof, with the directory version under which
the record verifies (the one that lists the member's e-mail entry and the node's key),
and the body the node sent or took with it (B7d; left out once retention removed it).
"""

from __future__ import annotations

from typing import Protocol

from node.storage import Direction, NodeStore
from protocol.directory import VerifiedDirectory
from protocol.errors import TransportError
from protocol.evidence import EmailEvidence, EmailLeaf, email_evidence
from schemas.audit_api import InclusionProof
from schemas.errors import ErrorCode

#: the states of an e-mail that was exchanged (sent to or taken from the member)
_EXCHANGED = frozenset({"pending", "logged"})


class _Source(Protocol):
    async def entries(self, start: int, end: int) -> list[bytes]: ...

    async def inclusion_proof(self, index: int, size: int) -> InclusionProof: ...


async def has_emails(store: NodeStore, case_id: str) -> bool:
    """True when the case exchanged an e-mail (its bundle then has something to prove)."""
    return any(e.state in _EXCHANGED for e in await store.case_emails(case_id))


async def case_email_evidence(
    store: NodeStore,
    source: _Source,
    chain: list[tuple[bytes, VerifiedDirectory]],
    case_id: str,
    size: int,
) -> list[EmailEvidence]:
    """The case's logged e-mail records under a checkpoint of ``size`` leaves, in log order.

    Raises:
        TransportError: ``unavailable``: an e-mail's record is not logged yet, or not under
            this checkpoint (retry a few seconds later); or the relay is down.
        PeerError: the relay refused a read.
        VerificationError: the relay's leaf is not that record, or verifies under no
            directory of the chain.
    """
    out: list[EmailEvidence] = []
    for e in await store.case_emails(case_id):
        if e.state not in _EXCHANGED:
            continue  # queued, or given up (never sent, or its record never logged)
        if e.leaf_index is None or e.leaf_index >= size or e.record is None or e.sig is None:
            raise TransportError(
                "an e-mail of the case is not in the log yet; retry",
                detail=e.msg_id,
                code=ErrorCode.UNAVAILABLE,
            )
        (entry,) = await source.entries(e.leaf_index, e.leaf_index + 1)
        proof = await source.inclusion_proof(e.leaf_index, size)
        leaf = EmailLeaf(index=e.leaf_index, entry=entry, proof=tuple(proof.proof))
        way = Direction.OUT if e.direction == "sent" else Direction.IN
        message = await store.message(e.msg_id, way)
        body = None if message is None else message.body  # None: removed (retention)
        # the newest directory version that verifies it, as for a message
        out.append(email_evidence(leaf, [d for _, d in chain], body))
    return sorted(out, key=lambda x: x.recorded.index)
