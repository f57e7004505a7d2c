"""State shared by the inbox, the outbox and the daemon, and sealing to a peer."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from node.config import SyncSection
from node.events import EventHub
from node.keyfile import NodeKeys
from node.messaging.attachments import AttachmentFiles
from node.messaging.directory import DirectoryState
from node.storage import Direction, MessageRecord, NodeStore, Outgoing, Status
from protocol.directory import KeyLookup
from protocol.envelope import new_id, seal_envelope
from protocol.errors import DirectoryError
from schemas.blobs import BlobRef
from schemas.directory import KeyUse
from schemas.types import CoarseKind, Priority


@dataclass
class Shared:
    """Everything the node's workers share (one instance per :class:`node.daemon.Node`)."""

    member: str
    keys: NodeKeys
    store: NodeStore
    directory: DirectoryState
    hub: EventHub
    sync: SyncSection
    clock: Callable[[], datetime]
    outbox_wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: set (with ``outbox_wake``) by the inbox when a relay answers again after failing:
    #: the outbox then retries at once what it held back while no relay was reachable
    relay_back: asyncio.Event = field(default_factory=asyncio.Event)
    #: the attachment files under the data directory (None: this node carries none)
    files: AttachmentFiles | None = None

    def unix(self) -> float:
        """The injected clock as Unix seconds: the store's due and retry times use it."""
        return self.clock().timestamp()

    def lookup(self) -> KeyLookup:
        """The key look-ups of the directory held now.

        Raises:
            DirectoryError: no directory yet (the node has never reached a relay).
        """
        if self.directory.lookup is None:
            raise DirectoryError("no directory yet; cannot verify or seal")
        return self.directory.lookup

    def sealer(
        self,
        peer: str,
        body: bytes,
        *,
        case_id: str,
        kind: CoarseKind,
        priority: Priority,
        body_kind: str | None,
        in_reply_to: str | None,
        attachments: tuple[BlobRef, ...] = (),
    ) -> Callable[[int], Outgoing]:
        """Return a ``build(seq)`` that seals ``body`` to ``peer``'s current key.

        The peer's key is looked up now, so an unknown or keyless peer fails before the
        store is touched.

        Raises:
            VerificationError: ``peer`` is not in the directory or has no valid key.
            DirectoryError: no directory yet.
        """
        created = self.clock()
        fp, public = self.lookup().current_key(peer, KeyUse.ENCRYPTION, created)
        lifetime = timedelta(seconds=self.sync.envelope_lifetime)
        msg_id = new_id(os.urandom)

        def build(seq: int) -> Outgoing:
            sealed = seal_envelope(
                body,
                msg_id=msg_id,
                case_id=case_id,
                kind=kind,
                priority=priority,
                seq=seq,
                sender=self.member,
                signing_key=self.keys.signing,
                recipient=peer,
                recipient_key=public,
                recipient_key_fp=fp,
                created=created,
                lifetime=lifetime,
                attachments=attachments,
            )
            record = MessageRecord(
                direction=Direction.OUT,
                msg_id=msg_id,
                case_id=case_id,
                peer=peer,
                coarse_kind=kind.value,
                body_kind=body_kind,
                in_reply_to=in_reply_to,
                seq=seq,
                envelope=sealed.envelope,
                header=sealed.header_bytes,
                body=body,
                stored_at=created,
                status=Status.QUEUED,
            )
            return Outgoing(record, sealed.header.expires)

        return build
