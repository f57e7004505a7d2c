"""``POST /v1/email-records``: log a node's record of one bridged e-mail (PROTOCOL.md §22.5).

A member without a node is reached by OpenPGP e-mail; the node that sent the e-mail (or
accepted the reply) posts a signed record of it (G2), and the relay logs it as an
``email_recorded`` leaf (G3), idempotently per (node, SHA-256 of the record's bytes).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import structlog
from aiohttp import web

from protocol.codec import encode
from protocol.directory import KeyLookup
from protocol.email_record import read_submission, verify_email_record
from protocol.errors import VerificationError
from relay._state import RelayState
from relay.http._write import CheckedWrite, checked_write, json_response
from schemas.audit import EmailRecorded
from schemas.email_record import EmailRecord, SignedEmailRecord
from schemas.relay_api import EmailRecordResult

log = structlog.get_logger("relay247.relay")


_Checked = tuple[datetime, SignedEmailRecord, EmailRecord]


def _verify(body: bytes, state: RelayState, lookup: KeyLookup) -> _Checked:
    # G3a-G3e, on a verifier thread with the request's own signature (checked_write):
    # the record's Ed25519 check stays off the event loop, as an envelope's does.
    now = state.clock()
    signed = read_submission(body)
    parsed = verify_email_record(signed.record, signed.sig, lookup, now=now, window=state.window)
    return now, signed, parsed


@checked_write(_verify)
async def record(_request: web.Request, write: CheckedWrite[_Checked]) -> web.Response:
    """G3: the HTTP signer is the record's node; the record verifies against the current
    directory (node's signing key valid at ``at``, ``member`` reached by e-mail, ``at``
    within the window of an ack); then one leaf, or the original one for a repeat.

    G3a-G3e ran on a verifier thread with the request's signature (``checked_write``).
    """
    state, member = write.state, write.member
    now, signed, parsed = write.checked
    if parsed.node != member:
        # Records are public once logged: another member's record, posted again by
        # anyone else, is refused, as is a record naming a node its signer is not.
        raise VerificationError(
            "e-mail record's node is not the authenticated member",
            detail=f"{member} != {parsed.node}",
        )
    entry = encode(EmailRecorded(received_at=now, record=signed.record, sig=signed.sig))
    digest = hashlib.sha256(signed.record).digest()
    stored = await state.store.record_email(member, digest, entry, now)
    if stored.duplicate:
        state.metrics.duplicates.inc()
    else:
        state.metrics.email_records.inc()
        state.metrics.log_size.set(stored.leaf_index + 1)
    log.info(
        "email recorded",
        node=member,
        member=parsed.member,
        direction=parsed.direction,
        leaf_index=stored.leaf_index,
        duplicate=stored.duplicate,
    )
    return json_response(
        EmailRecordResult(
            leaf_index=stored.leaf_index, received_at=stored.received_at, duplicate=stored.duplicate
        )
    )
