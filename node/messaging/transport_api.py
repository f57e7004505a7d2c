"""The interface the node needs from a relay connection (STYLE.md rule 9).

:class:`client.RelayClient` satisfies it over real HTTP; the tests'
``tests/support/fake_relay.py`` satisfies it in memory (tests/integration/
test_client_contract.py runs one contract over both). The daemon depends only on
this Protocol and on a :data:`TransportFactory` that makes one per relay URL.

Every method raises only our errors: :class:`~protocol.errors.TransportError` when the
relay cannot be reached or answers nonsense, :class:`client.RelayRejectedError` (a
:class:`~protocol.errors.PeerError` with the relay's ``code``) when it refuses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol

from schemas.blobs import BlobStatus
from schemas.relay_api import AckResult, MailboxPage, SubmitResult


class Transport(Protocol):
    """One member's signed connection to one relay."""

    base_url: str

    async def submit(self, envelope: bytes) -> SubmitResult:
        """POST an envelope; answers once the relay has stored it durably."""
        ...

    async def mailbox(self, after: int = 0, limit: int = 100, wait: int = 0) -> MailboxPage:
        """Pull envelopes with relay seq > ``after``, long-polling ``wait`` seconds."""
        ...

    async def ack(self, signed_ack: bytes) -> AckResult:
        """Post a signed delivery ack; the envelope leaves the mailbox."""
        ...

    async def directory(self) -> bytes:
        """Fetch the signed directory bytes in force at the relay (unverified)."""
        ...

    def push(self, after: int = 0) -> AsyncIterator[MailboxPage]:
        """Yield mailbox pages pushed by the relay until the connection ends."""
        ...

    # Attachments' ciphertext (PROTOCOL.md §15.4).

    async def create_blob(
        self, blob_id: str, recipient: str, ct_len: int, ct_sha256: str | None
    ) -> BlobStatus:
        """Announce a blob for ``recipient`` (again: resume; the status lists what is
        missing); ``ct_sha256`` None: announced at the commit."""
        ...

    async def put_blob_chunk(self, blob_id: str, index: int, data: bytes) -> BlobStatus:
        """Upload chunk ``index`` (exactly its length; any order; idempotent)."""
        ...

    async def blob_status(self, blob_id: str) -> BlobStatus:
        """Where an upload stands (sender or recipient)."""
        ...

    async def commit_blob(self, blob_id: str, ct_sha256: str | None = None) -> BlobStatus:
        """Finish an upload: the relay checks the whole ciphertext's SHA-256 (``ct_sha256``:
        the hash, when the create did not announce it)."""
        ...

    async def discard_blob(self, blob_id: str) -> None:
        """Give up an upload not committed (its chunks and quota freed at once)."""
        ...

    def blob_content(
        self, blob_id: str, *, start: int = 0, end: int | None = None, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream ciphertext bytes ``[start, end)`` of a committed blob (recipient only);
        ``length``: the blob's length as the caller knows it (never a byte past it)."""
        ...


#: Makes the transport for a relay URL (the daemon calls it once per relay it uses).
TransportFactory = Callable[[str], Transport]
