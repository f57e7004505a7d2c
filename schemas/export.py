"""JSON Schema (draft 2020-12) export of every wire object, for docs/schemas/.

Other implementations validate against these files, so the output is deterministic:
keys sorted, two-space indent, UTF-8, one trailing newline. A test regenerates them in
memory and compares byte for byte with the committed copies.
"""

from __future__ import annotations

import json
from typing import Any, Final

import msgspec

from schemas import _stats as stats
from schemas import (
    audit,
    audit_api,
    blobs,
    directory,
    email_record,
    envelope,
    keystore,
    node_api,
    relay_api,
    tombstone,
)
from schemas.errors import ErrorBody
from schemas.messages import Body

JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

#: file name -> (title, type). Add a wire object by adding a row; keep names stable,
#: other teams link to them.
EXPORTS: Final[tuple[tuple[str, str, Any], ...]] = (
    ("body.schema.json", "Body: every encrypted message body, tagged by 'kind'", Body),
    ("error.schema.json", "ErrorBody: the one JSON error shape", ErrorBody),
    ("envelope.schema.json", "Envelope", envelope.Envelope),
    ("envelope-header.schema.json", "EnvelopeHeader", envelope.EnvelopeHeader),
    ("inner-meta.schema.json", "InnerMeta", envelope.InnerMeta),
    ("delivery-receipt.schema.json", "DeliveryReceipt", envelope.DeliveryReceipt),
    ("signed-receipt.schema.json", "SignedReceipt", envelope.SignedReceipt),
    ("delivery-ack.schema.json", "DeliveryAck", envelope.DeliveryAck),
    ("signed-ack.schema.json", "SignedAck", envelope.SignedAck),
    ("directory.schema.json", "Directory", directory.Directory),
    ("signed-directory.schema.json", "SignedDirectory", directory.SignedDirectory),
    ("audit-entry.schema.json", "AuditEntry: one leaf of the audit log", audit.AuditEntry),
    ("trust-root.schema.json", "TrustRootFile: the pinned coordinators", directory.TrustRootFile),
    ("member.schema.json", "Member: a node's member file", directory.Member),
    ("keystore.schema.json", "LockedKeystore: keys at rest", keystore.LockedKeystore),
    ("relay-submit-result.schema.json", "SubmitResult", relay_api.SubmitResult),
    ("relay-mailbox-page.schema.json", "MailboxPage", relay_api.MailboxPage),
    ("relay-blob-create.schema.json", "BlobCreate", blobs.BlobCreate),
    ("relay-blob-commit.schema.json", "BlobCommit", blobs.BlobCommit),
    ("relay-blob-status.schema.json", "BlobStatus", blobs.BlobStatus),
    ("relay-ack-result.schema.json", "AckResult", relay_api.AckResult),
    ("email-record.schema.json", "EmailRecord: a bridged e-mail (§22.5)", email_record.EmailRecord),
    ("signed-email-record.schema.json", "SignedEmailRecord", email_record.SignedEmailRecord),
    ("relay-email-record-result.schema.json", "EmailRecordResult", relay_api.EmailRecordResult),
    ("relay-directory-result.schema.json", "DirectoryResult", relay_api.DirectoryResult),
    ("relay-info.schema.json", "RelayInfo", relay_api.RelayInfo),
    ("relay-members-status.schema.json", "MembersStatus", relay_api.MembersStatus),
    ("audit-inclusion-proof.schema.json", "InclusionProof", audit_api.InclusionProof),
    ("audit-consistency-proof.schema.json", "ConsistencyProof", audit_api.ConsistencyProof),
    ("audit-entries-page.schema.json", "EntriesPage", audit_api.EntriesPage),
    ("audit-cosignature.schema.json", "CosignatureSubmission", audit_api.CosignatureSubmission),
    ("audit-cosignature-result.schema.json", "CosignatureResult", audit_api.CosignatureResult),
    ("node-status.schema.json", "NodeStatus", node_api.NodeStatus),
    ("node-send-request.schema.json", "SendRequest", node_api.SendRequest),
    ("node-send-result.schema.json", "SendResult", node_api.SendResult),
    ("node-case-list.schema.json", "CaseList", node_api.CaseList),
    ("node-case-detail.schema.json", "CaseDetail", node_api.CaseDetail),
    ("node-inbox.schema.json", "Inbox", node_api.Inbox),
    (
        "statistics.schema.json",
        "Statistics: one member's figures (PROTOCOL.md §20)",
        stats.Statistics,
    ),
    ("node-stats-reports.schema.json", "ReceivedReports", stats.ReceivedReports),
    ("network-statistics.schema.json", "NetworkStatistics", stats.NetworkStatistics),
    ("tombstone.schema.json", "Tombstone: a body removed under retention", tombstone.Tombstone),
    ("signed-tombstone.schema.json", "SignedTombstone", tombstone.SignedTombstone),
    (
        "case-tombstone.schema.json",
        "CaseTombstone: a case removed whole under retention (PROTOCOL.md §19.6)",
        tombstone.CaseTombstone,
    ),
    ("signed-case-tombstone.schema.json", "SignedCaseTombstone", tombstone.SignedCaseTombstone),
)


def _ecma_patterns(node: Any) -> Any:
    # Our patterns end in \Z: Python's $ also matches before a final newline, so "FR" plus
    # a newline passed ^[A-Z]{2}$. JSON Schema regexes are ECMA-262, where $ (without the
    # m flag) is already the end of input and \Z does not exist.
    if isinstance(node, dict):
        return {
            k: v.replace("\\Z", "$") if k == "pattern" and isinstance(v, str) else _ecma_patterns(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_ecma_patterns(v) for v in node]
    return node


def _render(title: str, tp: Any) -> bytes:
    schema: dict[str, Any] = _ecma_patterns(msgspec.json.schema(tp))
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema.setdefault("title", title)
    text = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def export_all() -> dict[str, bytes]:
    """Render the JSON Schema of every row of ``EXPORTS``.

    Returns:
        File name -> pretty JSON bytes, in table order. Each file is self-contained
        (its sub-schemas under ``$defs``). Same msgspec version, same bytes.
    """
    return {name: _render(title, tp) for name, title, tp in EXPORTS}
