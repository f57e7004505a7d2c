"""A member's signed requests to one relay (RFC 9421 profile, PROTOCOL.md §8.2, §8.4).

Built on :class:`client.PublicClient`: a member also reads the public endpoints (the
node's witness duty and case export read the audit log through this client).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Final, TypeVar

import aiohttp
import msgspec

from client._blob_read import DOWNLOAD_PACE, BlobReader, Pace, answer_span
from client._body import read_body
from client._public import DroppedError, PublicClient, plain_headers
from client._refusal import redirected, refusal
from protocol.codec import decode, encode
from protocol.email_record import email_submission
from protocol.errors import MalformedError, TransportError
from protocol.httpsig import sign_request
from protocol.keys import SigningKey
from schemas.audit_api import CosignatureResult, CosignatureSubmission
from schemas.blobs import BlobCommit, BlobCreate, BlobStatus
from schemas.relay_api import (
    PUSH_PAGE,
    AckResult,
    EmailRecordResult,
    MailboxPage,
    MembersStatus,
    SubmitResult,
)

#: bytes: a mailbox page (bounded by the relay, PROTOCOL.md §8.1), pulled or pushed.
MEMBER_LIMIT: Final = 64 << 20
#: a blob chunk's media type (PROTOCOL.md §15.4)
OCTETS: Final = "application/octet-stream"
#: seconds at least for one chunk upload, and between two reads of a download
CHUNK_SECONDS: Final = 120.0
#: a blob download's read buffer: at 64 KiB the receiving loop ran once per 64 KiB and
#: paused the socket as often (bench/bench_attach_relay.py)
STREAM_PIECE: Final = 1 << 20


T = TypeVar("T")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RelayClient(PublicClient):
    """Signed requests from one member to one relay, plus every public read.

    Args:
        base_url: the relay's public origin, e.g. ``http://127.0.0.1:8247``.
        transport_key: the member's Ed25519 transport key (its fingerprint is the keyid).
        session: an aiohttp session the caller owns (None: see :class:`PublicClient`).
        timeout: seconds for one request, connection included.
        clock: the wall clock for the signature's ``created`` (the node passes its one
            clock; the relay checks it against its own within a skew window, H5).
        limit: the largest answer accepted, in bytes.
        pace: the least throughput of a blob download (client/_blob_read.py).
    """

    def __init__(
        self,
        base_url: str,
        transport_key: SigningKey,
        session: aiohttp.ClientSession | None = None,
        *,
        timeout: float = 10.0,
        clock: Callable[[], datetime] = _utc_now,
        limit: int = MEMBER_LIMIT,
        pace: Pace = DOWNLOAD_PACE,
    ) -> None:
        super().__init__(base_url, session, timeout=timeout, limit=limit)
        self._key = transport_key
        self._clock = clock
        self._pace = pace

    def _signed(
        self, method: str, path: str, body: bytes, content_type: str | None = None
    ) -> dict[str, str]:
        """Headers signed over method, target URI and, with a body, its digest (§8.4).

        ``content_type``: the body's type when it is not JSON (a blob chunk's
        ``application/octet-stream``); signed like any other (``content-type``).
        """
        headers = plain_headers(body)
        if body and content_type is not None:
            headers["Content-Type"] = content_type
        headers.update(
            sign_request(
                method,
                self.base_url + path,
                headers,
                body,
                key=self._key,
                keyid=self._key.fingerprint,
                now=int(self._clock().timestamp()),
                nonce=os.urandom(16).hex(),
            )
        )
        return headers

    async def _post_again_if_dropped(
        self, path: str, answer: msgspec.json.Decoder[T], body: bytes
    ) -> T:
        """POST a request whose meaning is idempotent (§8.1: the same envelope, ack, record
        or cosignature again is answered ``duplicate`` or unchanged), sent once more at
        once, newly signed (a nonce is used once, §8.4), when the connection closed under
        it before any answer (RFC 9112 §9.3.1.1): most often a kept-alive connection the
        relay or a proxy had closed, which cost a whole retry round before (README, "Fault
        suite"). A second drop is the caller's :class:`TransportError`."""
        try:
            return await self._call(
                "POST", path, answer, body, headers=self._signed("POST", path, body)
            )
        except DroppedError:
            return await self._call(
                "POST", path, answer, body, headers=self._signed("POST", path, body)
            )

    async def submit(self, envelope: bytes) -> SubmitResult:
        """POST /v1/envelopes: answered once the relay stored it durably (§8.1 Submit)."""
        return await self._post_again_if_dropped("/v1/envelopes", _SUBMIT, envelope)

    async def mailbox(self, after: int = 0, limit: int = 100, wait: int = 0) -> MailboxPage:
        """GET /v1/mailbox: envelopes with seq > ``after``, long-polling ``wait`` seconds."""
        path = f"/v1/mailbox?after={after}&limit={limit}&wait={wait}"
        headers = self._signed("GET", path, b"")
        page = await self._call("GET", path, _PAGE, headers=headers, seconds=wait + 10.0)
        return _bounded(page, limit)

    async def ack(self, signed_ack: bytes) -> AckResult:
        """POST /v1/acks: the envelope leaves the mailbox (§8.1 Ack)."""
        return await self._post_again_if_dropped("/v1/acks", _ACK, signed_ack)

    async def submit_email_record(self, record: bytes, sig: bytes) -> EmailRecordResult:
        """POST /v1/email-records: log a signed e-mail record (PROTOCOL.md §22.5 G2).

        Args:
            record: the exact record bytes ``R`` from
                :func:`protocol.email_record.sign_email_record`.
            sig: the node's signature over them.

        Returns:
            The record's leaf; ``duplicate`` when the relay had already logged these bytes
            from this node (a retry is safe).

        Raises:
            RelayRejectedError: the relay refused it (``unauthenticated``, ``key_revoked``,
                ``unknown_recipient``, ``clock_skew``, ``expired``, ``malformed``,
                ``too_large``; ``not_found`` from a relay older than the endpoint).
        """
        body = email_submission(record, sig)
        return await self._post_again_if_dropped("/v1/email-records", _EMAIL, body)

    async def members_status(self) -> MembersStatus:
        """GET /v1/members/status: the members' activity (served to members only)."""
        path = "/v1/members/status"
        headers = self._signed("GET", path, b"")
        return await self._call("GET", path, _STATUS, headers=headers)

    async def submit_cosignature(self, checkpoint: bytes, line: str) -> CosignatureResult:
        """POST /v1/audit/cosignature: this member's witness line for ``checkpoint``.

        Raises:
            RelayRejectedError: ``invalid_note`` when the relay refuses the line (W3–W6).
            MalformedError: the checkpoint is not UTF-8.
        """
        try:
            text = checkpoint.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedError("checkpoint note is not UTF-8") from None
        body = encode(CosignatureSubmission(checkpoint=text, cosignature=line))
        return await self._post_again_if_dropped("/v1/audit/cosignature", _COSIGNED, body)

    # --- blobs: attachments' ciphertext (PROTOCOL.md §15.4) ------------------------------

    async def create_blob(
        self, blob_id: str, recipient: str, ct_len: int, ct_sha256: str | None
    ) -> BlobStatus:
        """POST /v1/blobs: announce a blob for ``recipient``; again to resume an upload.

        ``ct_sha256`` None: the hash is announced at the commit (an owner uploading while
        it still encrypts, §15.4 "Create").
        """
        asked = BlobCreate(blob_id=blob_id, recipient=recipient, ct_len=ct_len)
        if ct_sha256 is not None:
            asked = msgspec.structs.replace(asked, ct_sha256=ct_sha256)
        body = encode(asked)
        path = "/v1/blobs"
        headers = self._signed("POST", path, body)
        return await self._call("POST", path, _BLOB, body, headers=headers)

    async def put_blob_chunk(self, blob_id: str, index: int, data: bytes) -> BlobStatus:
        """PUT /v1/blobs/{id}/chunks/{n}: one chunk, its Content-Digest signed (RFC 9530)."""
        path = f"/v1/blobs/{blob_id}/chunks/{index}"
        # The Content-Digest of 4 MiB is hashed in a worker thread (SHA-256 releases the
        # GIL): the event loop goes on sending the other chunks in flight meanwhile.
        headers = await asyncio.to_thread(self._signed, "PUT", path, data, OCTETS)
        # A 4 MiB chunk on a slow link takes longer than one JSON request.
        seconds = max(self._timeout.total or 0.0, CHUNK_SECONDS)
        return await self._call("PUT", path, _BLOB, data, headers=headers, seconds=seconds)

    async def blob_status(self, blob_id: str) -> BlobStatus:
        """GET /v1/blobs/{id}: the chunks still missing (sender or recipient)."""
        path = f"/v1/blobs/{blob_id}"
        return await self._call("GET", path, _BLOB, headers=self._signed("GET", path, b""))

    async def commit_blob(self, blob_id: str, ct_sha256: str | None = None) -> BlobStatus:
        """POST /v1/blobs/{id}/commit: the relay checks the whole ciphertext's SHA-256.

        ``ct_sha256``: the hash, if the create did not announce it (sent as a
        ``BlobCommit`` body); None: no body.

        Raises:
            RelayRejectedError: ``blob_incomplete`` (chunks missing), ``blob_mismatch``
                (the hash differs: the relay discarded the upload), ``conflict`` (a hash
                other than the one announced), ``malformed`` (no hash announced at all).
        """
        path = f"/v1/blobs/{blob_id}/commit"
        if ct_sha256 is None:
            headers = self._signed("POST", path, b"")
            return await self._call("POST", path, _BLOB, headers=headers)
        body = encode(BlobCommit(ct_sha256=ct_sha256))
        headers = self._signed("POST", path, body)
        return await self._call("POST", path, _BLOB, body, headers=headers)

    async def discard_blob(self, blob_id: str) -> None:
        """POST /v1/blobs/{id}/discard: give up an upload not committed (its chunks and
        its quota freed at once, §15.4 "Discard").

        Raises:
            RelayRejectedError: ``conflict`` (committed: it goes with its envelope or its
                TTL), ``not_found`` (no such blob of the caller's).
        """
        path = f"/v1/blobs/{blob_id}/discard"
        await self._send("POST", path, b"", headers=self._signed("POST", path, b""))

    async def blob_content(
        self, blob_id: str, *, start: int = 0, end: int | None = None, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """GET /v1/blobs/{id}/content: stream ciphertext bytes ``[start, end)`` (recipient).

        ``end`` is exclusive, None for the blob's end; a part is asked for with an RFC
        9110 ``Range``. ``length``: the blob's length, if the caller knows it (the body's
        ``ct_len``): the answer's ``Content-Range`` total and ``Content-Length`` must
        agree with it. Pieces are yielded as they arrive, never the whole blob at once,
        and never a byte past the part the answer holds; an answer slower than the
        client's ``pace`` is ended (client/_blob_read.py). The caller still checks the
        hash: the relay is not trusted with the bytes.

        Raises:
            ValueError: ``start`` < 0 or ``end`` <= ``start``.
            RelayRejectedError: ``not_found`` (not the recipient, or no such blob),
                ``blob_incomplete``, ``range_not_satisfiable``.
            TransportError: the connection failed, or the answer was cut short, is
                longer than its part, is not the part asked for or came too slowly.
        """
        if start < 0 or (end is not None and end <= start):
            raise ValueError(f"bad byte range [{start}, {end})")
        path = f"/v1/blobs/{blob_id}/content"
        url = self.base_url + path
        headers = self._signed("GET", path, b"")
        ranged = start > 0 or end is not None
        if ranged:
            headers["Range"] = f"bytes={start}-" + ("" if end is None else str(end - 1))
        wait = self._timeout.total or CHUNK_SECONDS
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=wait, sock_read=wait)
        reader: BlobReader | None = None
        try:
            async with self.session.get(
                url,
                headers=headers,
                timeout=timeout,
                read_bufsize=STREAM_PIECE,
                allow_redirects=False,  # as PublicClient._send: a 3xx is not followed
            ) as resp:
                if 300 <= resp.status < 400:
                    location = resp.headers.get("Location", "")
                    raise redirected(resp.status, location, where=f"GET {url}")
                if resp.status >= 400:
                    raw = await read_body(resp, self.limit, what="relay answer")
                    raise refusal(resp.status, raw, where=f"GET {url}")
                span = answer_span(
                    resp.status,
                    resp.headers.get("Content-Range"),
                    resp.content_length,
                    start=start,
                    end=end,
                    length=length,
                )
                reader = BlobReader(span, self._pace)
                # Each piece as the socket gave it (up to 256 KiB): iter_chunked joined
                # them into MiB pieces, a copy the caller, cutting its own, made again.
                async for piece in reader.pieces(resp.content):
                    yield piece
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            got = 0 if reader is None else reader.got
            raise TransportError(
                f"{url}: blob download failed after {got} bytes",
                detail=f"{type(exc).__name__}: {exc}",
            ) from None

    async def push(self, after: int = 0) -> AsyncIterator[MailboxPage]:
        """Yield mailbox pages pushed over ``/v1/mailbox/ws`` until the relay closes.

        Raises:
            TransportError: the connection failed, dropped, or the upgrade was refused;
                the relay sent an error or a binary frame (its pages are text, §8.1).
            MalformedError: a frame is not a page, or holds more than 500 envelopes.
        """
        path = f"/v1/mailbox/ws?after={after}"
        headers = self._signed("GET", path, b"")
        try:
            async with self.session.ws_connect(
                self.base_url + path,
                headers=headers,
                heartbeat=30.0,
                # A pushed page is as large as a pulled one (aiohttp's default is 4 MiB).
                max_msg_size=self.limit,
                timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
            ) as ws:
                async for msg in ws:
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        page = decode(_PAGE, msg.data.encode(), "mailbox page", limit=self.limit)
                        yield _bounded(page, PUSH_PAGE)
                    elif msg.type is aiohttp.WSMsgType.CLOSED:
                        break
                    else:  # an error (an oversize frame...) or a binary frame: not a page
                        raise TransportError(
                            "relay's push connection failed", detail=_ws_fault(msg)
                        )
        except aiohttp.WSServerHandshakeError as exc:
            raise TransportError(
                "relay refused the WebSocket", detail=f"HTTP {exc.status}"
            ) from None
        except (aiohttp.ClientError, TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            raise TransportError("relay connection lost", detail=type(exc).__name__) from None


_SUBMIT: Final = msgspec.json.Decoder(SubmitResult)
_PAGE: Final = msgspec.json.Decoder(MailboxPage)
_ACK: Final = msgspec.json.Decoder(AckResult)
_EMAIL: Final = msgspec.json.Decoder(EmailRecordResult)
_STATUS: Final = msgspec.json.Decoder(MembersStatus)
_COSIGNED: Final = msgspec.json.Decoder(CosignatureResult)
_BLOB: Final = msgspec.json.Decoder(BlobStatus)


def _ws_fault(msg: aiohttp.WSMessage) -> str:
    """What a WebSocket message that is not a page was, for the log."""
    if msg.type is aiohttp.WSMsgType.ERROR:
        return f"error: {type(msg.data).__name__}: {msg.data}"
    size = len(msg.data) if isinstance(msg.data, bytes | str) else 0
    return f"{msg.type.name.lower()} frame of {size} bytes"


def _bounded(page: MailboxPage, limit: int) -> MailboxPage:
    """``page`` if it holds at most ``limit`` envelopes (§8.1 "Mailbox").

    Raises:
        MalformedError: a longer page (a relay fault: its envelopes are not looked at).
    """
    if len(page.messages) > limit:
        raise MalformedError(
            "relay sent a mailbox page longer than asked",
            detail=f"{len(page.messages)} envelopes, limit {limit}",
        )
    return page
