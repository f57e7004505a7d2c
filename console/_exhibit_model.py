"""What a court exhibit shows, read from an evidence bundle alone (PROTOCOL.md §21).

The exhibit is a function of the bundle's bytes, the reader's language and the node's
zone, nothing else: ``relay247 audit verify-bundle`` renders it again from the bundle
embedded in the PDF and compares the pages. The bundle is verified here first against
the keys it names (B1–B5, internal consistency): a bundle that does not verify is never
rendered. Pinning the coordinators' and the log's keys is the verifier's step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import msgspec

from protocol._evidence_checks import MessageFacts
from protocol.codec import decode
from protocol.evidence import BundleReport, EmailFacts, EvidenceBundle, verify_bundle
from schemas.envelope import Envelope, EnvelopeHeader
from schemas.messages import BODY_DECODER, Body

#: Directories are checked against "now" only for an issue date in the future: any
#: instant after every directory will do, and a fixed one keeps the rendering a
#: function of the bundle alone.
_LATE: Final = datetime(9999, 1, 1, tzinfo=UTC)
_BUNDLE: Final = msgspec.json.Decoder(EvidenceBundle)
_ENVELOPE: Final = msgspec.json.Decoder(Envelope)
_HEADER: Final = msgspec.json.Decoder(EnvelopeHeader)


@dataclass(frozen=True)
class ExhibitMessage:
    """One verified message: the facts the verifier proved, its header and its body."""

    facts: MessageFacts
    header: EnvelopeHeader
    body: Body
    case_id: str


@dataclass(frozen=True)
class ExhibitCase:
    """Everything an exhibit page shows."""

    report: BundleReport
    messages: tuple[ExhibitMessage, ...]
    checkpoint: str
    log_key: str
    #: the latest instant the log recorded for the case: the document's date
    as_of: datetime
    #: the e-mails exchanged with members without a node (B7), as the report proves them
    emails: tuple[EmailFacts, ...] = ()


def read_case(bundle: bytes) -> ExhibitCase:
    """Verify ``bundle`` with the keys it names and collect what the exhibit shows.

    Raises:
        Relay247Error: the bundle does not verify (the error names the step).
    """
    report = verify_bundle(bundle, trust_root=None, now=_LATE)
    b = decode(_BUNDLE, bundle, "evidence bundle", limit=len(bundle), unique_keys=False)
    groups = [(b.case_id, b.messages)]
    if not isinstance(b.linked, msgspec.UnsetType):
        groups += [(c.case_id, c.messages) for c in b.linked]
    facts = [*report.messages, *(f for _, group in report.linked for f in group)]
    evidence = [(cid, m) for cid, group in groups for m in group]
    messages = tuple(
        ExhibitMessage(
            facts=f,
            header=_header(m.envelope),
            body=decode(BODY_DECODER, m.body, "body", limit=len(m.body)),
            case_id=cid,
        )
        for f, (cid, m) in zip(facts, evidence, strict=True)
    )
    instants = [f.accepted_at for f in facts] + [f.acked_at for f in facts if f.acked_at]
    instants += [r.received_at for f in facts for r in f.receipts]
    instants += [e.received_at for e in report.emails]  # a case may be all e-mail (§22)
    return ExhibitCase(
        report=report,
        messages=messages,
        checkpoint=b.checkpoint,
        log_key=b.log_key,
        as_of=max(instants).astimezone(UTC),
        emails=report.emails,
    )


def _header(envelope: bytes) -> EnvelopeHeader:
    # Verified by B5 already: decoded again here for the fields the pages show.
    env = decode(_ENVELOPE, envelope, "envelope", limit=len(envelope))
    return decode(_HEADER, env.header, "envelope header", limit=len(env.header))
