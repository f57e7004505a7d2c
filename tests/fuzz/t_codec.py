"""Target ``codec``: envelopes (outer, header, inner meta), every body kind and every other
wire object, each through :mod:`protocol.codec`.

Selector 0 opens a whole envelope addressed to US (E1-E13, then the body's E13-E14 checks)
with the deterministic test network's keys, so seeds sealed by ``tests.fuzz.seeds`` reach
the decryption and the body; the other selectors decode one wire type and, for a body,
run its semantic and member-binding checks.
"""

from __future__ import annotations

from typing import Any

from protocol.body import decode_opened, member_binding_errors
from protocol.codec import decode_as
from protocol.envelope import open_envelope
from protocol.errors import Relay247Error
from schemas import audit_api, blobs, directory, envelope, node_api, node_api_links, relay_api
from schemas.audit import AuditEntry
from schemas.errors import ErrorBody
from schemas.messages import Body, semantic_errors
from tests.fuzz._harness import Pick
from tests.support.network import T0, make_network

KINDS: tuple[Any, ...] = (
    Body,
    envelope.Envelope,
    envelope.EnvelopeHeader,
    envelope.InnerMeta,
    envelope.SignedReceipt,
    envelope.DeliveryReceipt,
    envelope.SignedAck,
    envelope.DeliveryAck,
    directory.SignedDirectory,
    directory.Directory,
    directory.TrustRootFile,
    AuditEntry,
    ErrorBody,
    blobs.BlobCreate,
    blobs.BlobStatus,
    relay_api.SubmitResult,
    relay_api.MailboxPage,
    relay_api.AckResult,
    relay_api.DirectoryResult,
    relay_api.RelayInfo,
    relay_api.MembersStatus,
    audit_api.InclusionProof,
    audit_api.ConsistencyProof,
    audit_api.EntriesPage,
    audit_api.CosignatureSubmission,
    audit_api.CosignatureResult,
    node_api.NodeStatus,
    node_api.CaseDetail,
    node_api.Inbox,
    node_api_links.LinkRequest,
)

_NET = make_network()
_LOOKUP = _NET.lookup()
_US = _NET.members["US"]


def _envelope(raw: bytes) -> None:
    opened = open_envelope(
        raw,
        _LOOKUP,
        me="US",
        my_keys={_US.encryption.fingerprint: _US.encryption},
        now=T0,
    )
    decode_opened(opened)


def one(data: bytes) -> None:
    pick = Pick(data)
    which = pick.byte() % (len(KINDS) + 1)
    raw = pick.rest()
    try:
        if which == len(KINDS):
            _envelope(raw)
            return
        value = decode_as(KINDS[which], raw, "fuzz", limit=1 << 20)
        if KINDS[which] is Body:
            semantic_errors(value)
            member_binding_errors(value, sender="FR", recipient="US")
    except Relay247Error:
        pass
