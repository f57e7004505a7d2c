"""Step B7 of evidence-bundle verification: the e-mail records of a case (PROTOCOL.md
§22.5 G4). A node that exchanged e-mail with a member without a node (§22) puts each
``email_recorded`` leaf of the case in the bundle with its inclusion proof; the record
inside is checked as the relay and the auditor check it (G3, L6), for this case. An
item may carry the body the node sent or took with the e-mail (B7d): the node's statement
of what the e-mail said, bound to the record's case and members but not proven by the
log (the e-mail is encrypted; only its hash is logged).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Final

import msgspec

from protocol.body import member_binding_errors
from protocol.checkpoint import Checkpoint
from protocol.codec import decode
from protocol.directory import KeyLookup, VerifiedDirectory
from protocol.email_record import verify_email_record
from protocol.errors import DirectoryError, MalformedError, PeerError, VerificationError
from protocol.merkle import leaf_hash, verify_inclusion
from schemas.audit import AUDIT_DECODER, EmailRecorded
from schemas.messages import BODY_DECODER, Body, kind_of

#: e-mail records in one bundle: a case's e-mails, with room for a long exchange
MAX_EMAILS: Final = 4096
_MAX_ENTRY: Final = 4096  # bytes: an email_recorded entry is ~600
#: bytes of one e-mail's body in a bundle (B7d): M6's bound on a returned body
MAX_EMAIL_BODY: Final = 1 << 20


class EmailLeaf(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One ``email_recorded`` leaf: index, exact entry bytes and its inclusion proof."""

    index: Annotated[int, msgspec.Meta(ge=0)]
    entry: Annotated[bytes, msgspec.Meta(max_length=_MAX_ENTRY)]
    proof: Annotated[tuple[bytes, ...], msgspec.Meta(max_length=64)]


class EmailEvidence(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """An e-mail of the case as the log holds it: the leaf, and the directory version in
    force when the relay logged it (the one that gives the member its e-mail entry)."""

    directory_version: Annotated[int, msgspec.Meta(ge=1)]
    recorded: EmailLeaf
    #: the body the node sent or took with the e-mail, exact JSON bytes (B7d); unset when
    #: retention removed it, so a bundle without bodies has the same bytes as before
    body: Annotated[bytes, msgspec.Meta(max_length=MAX_EMAIL_BODY)] | msgspec.UnsetType = (
        msgspec.UNSET
    )


@dataclass(frozen=True)
class EmailFacts:
    """What one verified e-mail record proves."""

    number: int
    node: str
    member: str
    direction: str
    sha256: str
    at: datetime
    index: int
    received_at: datetime
    #: the body the node states it sent or took (B7d), None when the bundle has none
    body: Body | None = None
    #: the number of an earlier e-mail of the bundle with the same node, direction and
    #: hash (a record signed again, §22.5), or None
    same_as: int | None = None

    @property
    def sender(self) -> str:
        """Who wrote the e-mail: the node for a sent one, else the member."""
        return self.node if self.direction == "sent" else self.member

    @property
    def recipient(self) -> str:
        """Who the e-mail went to."""
        return self.member if self.direction == "sent" else self.node

    def sentences(self) -> list[str]:
        """Plain-language statements of what is proven (and what is not)."""
        what = (
            f"{self.node} sent an e-mail to {self.member}"
            if self.direction == "sent"
            else f"{self.node} accepted an e-mail from {self.member}"
        )
        out = [
            f"E-mail {self.number}: {what} at {self.at.isoformat()}; the e-mail's SHA-256 "
            f"is {self.sha256}, as stated and signed by {self.node}'s key.",
            f"  The relay logged the record at {self.received_at.isoformat()} as log "
            f"entry {self.index}. The e-mail itself is not in the bundle: anyone holding "
            "it can compare its hash.",
        ]
        if self.body is not None:
            out.append(
                f"  {self.node} states that it carried a {kind_of(self.body)} of this case;"
                " the log does not prove the content (the e-mail is encrypted)."
            )
        if self.same_as is not None:
            out.append(
                f"  E-mail {self.number} records the same e-mail as e-mail {self.same_as} "
                f"(signed again by {self.node}: one e-mail, not two)."
            )
        return out


def email_evidence(
    leaf: EmailLeaf, directories: Sequence[VerifiedDirectory], body: bytes | None = None
) -> EmailEvidence:
    """The bundle item for one ``email_recorded`` leaf, for a node's case export (G4).

    Names the newest of ``directories`` (the bundle's chain, oldest first) under which
    the record verifies (G3a–G3d), as the export picks a message's version: the one the
    relay used, unless a later one also gives the member its e-mail entry. ``body``:
    the exact body bytes the node sent or took with it (B7d), None: left out.

    Raises:
        TooLargeError, MalformedError: the entry is not an ``email_recorded`` leaf.
        VerificationError: the record verifies under none of them.
    """
    entry = decode(AUDIT_DECODER, leaf.entry, "log entry", limit=_MAX_ENTRY)
    if not isinstance(entry, EmailRecorded):
        raise VerificationError("log entry is not an e-mail record")
    failure: PeerError = VerificationError("no directory", detail="the chain is empty")
    for d in reversed(directories):
        try:
            verify_email_record(entry.record, entry.sig, KeyLookup(d.directory))
        except PeerError as exc:
            failure = exc
            continue
        kept = msgspec.UNSET if body is None else body
        return EmailEvidence(directory_version=d.version, recorded=leaf, body=kept)
    raise failure


def check_emails(
    emails: Sequence[EmailEvidence],
    first: int,
    *,
    by_version: Mapping[int, KeyLookup],
    cp: Checkpoint,
    case_id: str,
) -> list[EmailFacts]:
    """B7: each record's leaf is in the checkpoint's tree, is an ``email_recorded`` entry,
    its record verifies (G3 offline: the node's key valid at ``at``, the member reached
    by e-mail) under the directory version it names, and it is a record of this case;
    the leaves are in log order and hold no record twice (the relay logs one once).

    Args:
        emails: the bundle's ``emails``, in log order.
        first: the number of the first one (they are numbered from 1, apart from messages).
        by_version: the verified directories of the bundle by version.
        cp: the verified checkpoint.
        case_id: the bundle's case.

    Raises:
        DirectoryError: a version not in the bundle.
        VerificationError, ProofError, MalformedError, TooLargeError: the record, its
            leaf or its proof; the message names the e-mail ("e-mail N").
    """
    facts: list[EmailFacts] = []
    last = -1
    records: dict[bytes, int] = {}  # SHA-256 of a record: its leaf index
    mails: dict[tuple[str, str, str], int] = {}  # node, direction, hash: the e-mail's number
    for n, e in enumerate(emails, start=first):
        keys = by_version.get(e.directory_version)
        if keys is None:
            raise DirectoryError(
                f"e-mail {n}: directory version {e.directory_version} is not in the bundle"
            )
        index = e.recorded.index
        if index == last:
            raise MalformedError(f"e-mail {n}: log entry {index} appears twice")
        if index < last:
            raise MalformedError(
                f"e-mail {n}: log entry {index} is out of log order (after entry {last})"
            )
        last = index
        try:
            fact = _check(n, e, keys, cp, case_id, records=records)
        except PeerError as exc:
            raise type(exc)(
                f"e-mail {n}: {exc.message}", detail=exc.detail, code=exc.code
            ) from None
        same = mails.setdefault((fact.node, fact.direction, fact.sha256), n)
        facts.append(fact if same == n else dataclasses.replace(fact, same_as=same))
    return facts


def _check(
    n: int,
    e: EmailEvidence,
    keys: KeyLookup,
    cp: Checkpoint,
    case_id: str,
    *,
    records: dict[bytes, int],
) -> EmailFacts:
    # n: the e-mail's number, for the facts (the caller names it in errors); records:
    # the records of the e-mails before it, by SHA-256, with their leaf index.
    leaf = e.recorded
    # B7a: the exact entry at its index in the checkpoint's tree (RFC 9162 §2.1.3.2).
    verify_inclusion(leaf_hash(leaf.entry), leaf.index, cp.size, list(leaf.proof), cp.root_hash)
    entry = decode(AUDIT_DECODER, leaf.entry, "log entry", limit=_MAX_ENTRY)
    if not isinstance(entry, EmailRecorded):
        raise VerificationError("log entry is not an e-mail record")
    # B7b: the node's signature and the member's e-mail entry, in that directory.
    record = verify_email_record(entry.record, entry.sig, keys, logged_at=entry.received_at)
    # B7c: a record of this case.
    if record.case_id != case_id:
        raise VerificationError("e-mail record is for another case", detail=record.case_id)
    # B7d: the body the node states it carried, when the bundle has it.
    sent = record.direction == "sent"
    sender, recipient = (record.node, record.member) if sent else (record.member, record.node)
    body = None if isinstance(e.body, msgspec.UnsetType) else _body(e.body, case_id, sender,
                                                                     recipient)  # fmt: skip
    # B7e: logged once (the relay's idempotency, §22.5 G3): a second leaf of one record is
    # a log that broke its promise, as the auditor's L6 says.
    earlier = records.setdefault(hashlib.sha256(entry.record).digest(), leaf.index)
    if earlier != leaf.index:
        raise VerificationError(
            "the same record is logged twice", detail=f"entries {earlier} and {leaf.index}"
        )
    return EmailFacts(
        number=n,
        node=record.node,
        member=record.member,
        direction=record.direction,
        sha256=record.sha256,
        at=record.at,
        index=leaf.index,
        received_at=entry.received_at,
        body=body,
    )


def _body(data: bytes, case_id: str, sender: str, recipient: str) -> Body:
    """B7d: the stated body decodes strictly (E13's decoding), is of the record's case and
    names its members where it names any (E14's bindings, ``sender`` to ``recipient``)."""
    body = decode(BODY_DECODER, data, "e-mail body", limit=MAX_EMAIL_BODY)
    if body.case_id != case_id:
        raise VerificationError("e-mail body is for another case", detail=body.case_id)
    problems = member_binding_errors(body, sender=sender, recipient=recipient)
    if problems:
        raise VerificationError("e-mail body names other members", detail=problems[0][0])
    return body
