"""The node's signed HTTP client for one relay (RFC 9421 profile, PROTOCOL.md §8).

aiohttp exceptions never escape: network failures become :class:`TransportError`,
relay rejections become :class:`RelayRejectedError` carrying the relay's error code.
"""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import TypeVar

import aiohttp
import msgspec

from client import fetch_entries, read_body
from node._wallclock import system_clock
from protocol.codec import decode, encode
from protocol.errors import MalformedError, PeerError, Relay247Error, TransportError
from protocol.httpsig import sign_request
from protocol.keys import SigningKey
from schemas.audit_api import (
    MAX_NOTE_CHARS,
    ConsistencyProof,
    CosignatureResult,
    CosignatureSubmission,
    EntriesPage,
    InclusionProof,
)
from schemas.errors import ErrorBody, ErrorCode
from schemas.relay_api import AckResult, DirectoryResult, MailboxPage, RelayInfo, SubmitResult

T = TypeVar("T")
_ERROR = msgspec.json.Decoder(ErrorBody)
_MAX_ANSWER = 64 << 20  # bytes: a mailbox page (bounded by the relay, PROTOCOL.md §8.1)
_INLINE_BODY = 1 << 20  # bytes: aiohttp's own threshold for a bytes body (TOO_LARGE_BYTES_BODY)


class RelayRejectedError(PeerError):
    """The relay answered with an error body; ``code`` is the relay's code."""

    def __init__(self, status: int, body: ErrorBody) -> None:
        super().__init__(
            body.message, detail=f"HTTP {status}, request {body.request_id}", code=body.code
        )
        self.status = status
        self.request_id = body.request_id


class RelayClient:
    """Signed requests from one member to one relay.

    Args:
        base_url: the relay's public origin, e.g. ``http://127.0.0.1:8247``.
        transport_key: the member's Ed25519 transport key (its fingerprint is the keyid).
        session: an aiohttp session the caller owns.
        timeout: seconds for one request, connection included.
        clock: the wall clock for the request signature's ``created`` (the node's one
            clock; the relay checks it against its own within a skew window).
    """

    def __init__(
        self,
        base_url: str,
        transport_key: SigningKey,
        session: aiohttp.ClientSession,
        *,
        timeout: float = 10.0,
        clock: Callable[[], datetime] = system_clock,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = transport_key
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock

    def _headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json"} if body else {}
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

    async def _call(
        self,
        method: str,
        path: str,
        body: bytes,
        answer: msgspec.json.Decoder[T],
        *,
        signed: bool = True,
        seconds: float | None = None,
    ) -> T:
        raw = await self._raw(method, path, body, signed=signed, seconds=seconds)
        return decode(answer, raw, "relay answer", limit=_MAX_ANSWER)

    async def _raw(
        self, method: str, path: str, body: bytes, *, signed: bool, seconds: float | None
    ) -> bytes:
        headers = (
            self._headers(method, path, body)
            if signed
            else ({"Content-Type": "application/json"} if body else {})
        )
        t = aiohttp.ClientTimeout(total=seconds) if seconds else self._timeout
        # aiohttp writes a bytes body in one go and warns above 1 MiB; a file-like body
        # is streamed (an envelope may be up to the relay's http.max_body_bytes).
        data = io.BytesIO(body) if len(body) > _INLINE_BODY else (body or None)
        try:
            async with self._session.request(
                method, self.base_url + path, data=data, headers=headers, timeout=t
            ) as resp:
                raw = await read_body(resp, _MAX_ANSWER, what="relay answer")
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransportError(
                "relay unreachable", detail=f"{type(exc).__name__}: {exc}"
            ) from None
        if status >= 400:
            raise _rejection(status, raw)
        return raw

    async def submit(self, envelope: bytes) -> SubmitResult:
        """POST /v1/envelopes."""
        return await self._call("POST", "/v1/envelopes", envelope, _SUBMIT)

    async def mailbox(self, after: int = 0, limit: int = 100, wait: int = 0) -> MailboxPage:
        """GET /v1/mailbox (long-poll when ``wait`` > 0)."""
        path = f"/v1/mailbox?after={after}&limit={limit}&wait={wait}"
        return await self._call("GET", path, b"", _PAGE, seconds=wait + 10.0)

    async def ack(self, signed_ack: bytes) -> AckResult:
        """POST /v1/acks."""
        return await self._call("POST", "/v1/acks", signed_ack, _ACK)

    async def directory(self) -> bytes:
        """GET /v1/directory: the signed directory bytes (verify them before use)."""
        return await self._raw("GET", "/v1/directory", b"", signed=False, seconds=None)

    async def publish_directory(self, signed: bytes) -> DirectoryResult:
        """POST /v1/directory."""
        return await self._call("POST", "/v1/directory", signed, _DIR, signed=False)

    async def info(self) -> RelayInfo:
        """GET /v1/info."""
        return await self._call("GET", "/v1/info", b"", _INFO, signed=False)

    # -- audit log (PROTOCOL.md §7.2): unsigned reads, one signed POST ----------------
    # Everything read here is untrusted: the witness duty and the case export verify
    # notes, proofs and entries before relying on them.

    async def checkpoint(self) -> bytes:
        """GET /v1/audit/checkpoint: the latest signed note with its cosignature lines.

        Raises:
            RelayRejectedError: ``not_found`` before the first checkpoint.
            PeerError: the note is larger than any checkpoint can be (``too_large``).
        """
        raw = await self._raw("GET", "/v1/audit/checkpoint", b"", signed=False, seconds=None)
        if len(raw) > MAX_NOTE_CHARS * 4:  # 4 bytes per character at most in UTF-8
            raise PeerError("checkpoint note too large", code=ErrorCode.TOO_LARGE)
        return raw

    async def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """GET /v1/audit/proof/consistency from size ``old`` to ``new`` (empty if equal).

        Raises:
            PeerError: a proof for other sizes than asked, or the relay refused.
        """
        if old == new:
            return []
        path = f"/v1/audit/proof/consistency?old={old}&new={new}"
        answer = await self._call("GET", path, b"", _CONSISTENCY, signed=False)
        if (answer.old, answer.new) != (old, new):
            raise PeerError(
                "consistency proof for other sizes", detail=f"{answer.old}..{answer.new}"
            )
        return list(answer.proof)

    async def inclusion_proof(self, index: int, size: int) -> InclusionProof:
        """GET /v1/audit/proof/inclusion of leaf ``index`` in the tree of ``size`` leaves.

        Raises:
            PeerError: a proof for another leaf or size, or the relay refused.
        """
        path = f"/v1/audit/proof/inclusion?index={index}&size={size}"
        answer = await self._call("GET", path, b"", _INCLUSION, signed=False)
        if (answer.index, answer.size) != (index, size):
            raise PeerError(
                "inclusion proof for another leaf", detail=f"{answer.index}/{answer.size}"
            )
        return answer

    async def entries(self, start: int, end: int) -> list[bytes]:
        """GET /v1/audit/entries: the exact bytes of leaves ``[start, end)``, paged.

        A page over the answer limit (big directory entries) is asked for again in halves.

        Raises:
            PeerError: a page for another range, or the relay refused.
        """

        async def one(first: int, last: int) -> list[bytes]:
            path = f"/v1/audit/entries?start={first}&end={last}"
            page = await self._call("GET", path, b"", _ENTRIES, signed=False)
            if page.start != first or len(page.entries) != last - first:
                raise PeerError("entries page for another range", detail=f"{first}..{last}")
            return list(page.entries)

        return await fetch_entries(one, start, end)

    async def submit_cosignature(self, checkpoint: bytes, line: str) -> CosignatureResult:
        """POST /v1/audit/cosignature (signed): this member's witness line for ``checkpoint``.

        Raises:
            RelayRejectedError: ``invalid_note`` when the relay refuses the line (W3–W6).
            MalformedError: the checkpoint is not UTF-8.
        """
        try:
            text = checkpoint.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedError("checkpoint note is not UTF-8") from None
        body = encode(CosignatureSubmission(checkpoint=text, cosignature=line))
        return await self._call("POST", "/v1/audit/cosignature", body, _COSIGNED)

    async def push(self, after: int = 0) -> AsyncIterator[MailboxPage]:
        """Yield mailbox pages pushed over ``/v1/mailbox/ws`` until the relay closes.

        Raises:
            TransportError: the connection failed or dropped.
            RelayRejectedError: the upgrade was refused.
        """
        path = f"/v1/mailbox/ws?after={after}"
        headers = self._headers("GET", path, b"")
        try:
            async with self._session.ws_connect(
                self.base_url + path,
                headers=headers,
                heartbeat=30.0,
                # A pushed page is as large as a pulled one (aiohttp's default is 4 MiB).
                max_msg_size=_MAX_ANSWER,
                timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
            ) as ws:
                async for msg in ws:
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        yield decode(_PAGE, msg.data.encode(), "mailbox page", limit=_MAX_ANSWER)
                    elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                        break
        except aiohttp.WSServerHandshakeError as exc:
            raise TransportError(
                "relay refused the WebSocket", detail=f"HTTP {exc.status}"
            ) from None
        except (aiohttp.ClientError, TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            raise TransportError("relay connection lost", detail=type(exc).__name__) from None


def _rejection(status: int, raw: bytes) -> Relay247Error:
    try:
        return RelayRejectedError(status, _ERROR.decode(raw))
    except (msgspec.DecodeError, msgspec.ValidationError):
        code = ErrorCode.UNAVAILABLE if status >= 500 else ErrorCode.MALFORMED
        return TransportError(f"relay answered HTTP {status} without an error body", code=code)


_SUBMIT = msgspec.json.Decoder(SubmitResult)
_PAGE = msgspec.json.Decoder(MailboxPage)
_ACK = msgspec.json.Decoder(AckResult)
_DIR = msgspec.json.Decoder(DirectoryResult)
_INFO = msgspec.json.Decoder(RelayInfo)
_CONSISTENCY = msgspec.json.Decoder(ConsistencyProof)
_INCLUSION = msgspec.json.Decoder(InclusionProof)
_ENTRIES = msgspec.json.Decoder(EntriesPage)
_COSIGNED = msgspec.json.Decoder(CosignatureResult)
