"""A member's signed requests to one relay (RFC 9421 profile, PROTOCOL.md §8.2, §8.4).

Built on :class:`client.PublicClient`: a member also reads the public endpoints (the
node's witness duty and case export read the audit log through this client).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Final

import aiohttp
import msgspec

from client._public import PublicClient, plain_headers
from protocol.codec import decode, encode
from protocol.errors import MalformedError, TransportError
from protocol.httpsig import sign_request
from protocol.keys import SigningKey
from schemas.audit_api import CosignatureResult, CosignatureSubmission
from schemas.relay_api import AckResult, MailboxPage, MembersStatus, SubmitResult

#: bytes: a mailbox page (bounded by the relay, PROTOCOL.md §8.1), pulled or pushed.
MEMBER_LIMIT: Final = 64 << 20


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
    ) -> None:
        super().__init__(base_url, session, timeout=timeout, limit=limit)
        self._key = transport_key
        self._clock = clock

    def _signed(self, method: str, path: str, body: bytes) -> dict[str, str]:
        """Headers signed over method, target URI and, with a body, its digest (§8.4)."""
        headers = plain_headers(body)
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

    async def submit(self, envelope: bytes) -> SubmitResult:
        """POST /v1/envelopes: answered once the relay stored it durably (§8.1 Submit)."""
        path = "/v1/envelopes"
        headers = self._signed("POST", path, envelope)
        return await self._call("POST", path, _SUBMIT, envelope, headers=headers)

    async def mailbox(self, after: int = 0, limit: int = 100, wait: int = 0) -> MailboxPage:
        """GET /v1/mailbox: envelopes with seq > ``after``, long-polling ``wait`` seconds."""
        path = f"/v1/mailbox?after={after}&limit={limit}&wait={wait}"
        headers = self._signed("GET", path, b"")
        return await self._call("GET", path, _PAGE, headers=headers, seconds=wait + 10.0)

    async def ack(self, signed_ack: bytes) -> AckResult:
        """POST /v1/acks: the envelope leaves the mailbox (§8.1 Ack)."""
        path = "/v1/acks"
        headers = self._signed("POST", path, signed_ack)
        return await self._call("POST", path, _ACK, signed_ack, headers=headers)

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
        path = "/v1/audit/cosignature"
        headers = self._signed("POST", path, body)
        return await self._call("POST", path, _COSIGNED, body, headers=headers)

    async def push(self, after: int = 0) -> AsyncIterator[MailboxPage]:
        """Yield mailbox pages pushed over ``/v1/mailbox/ws`` until the relay closes.

        Raises:
            TransportError: the connection failed, dropped, or the upgrade was refused.
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
                        yield decode(_PAGE, msg.data.encode(), "mailbox page", limit=self.limit)
                    elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                        break
        except aiohttp.WSServerHandshakeError as exc:
            raise TransportError(
                "relay refused the WebSocket", detail=f"HTTP {exc.status}"
            ) from None
        except (aiohttp.ClientError, TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            raise TransportError("relay connection lost", detail=type(exc).__name__) from None


_SUBMIT: Final = msgspec.json.Decoder(SubmitResult)
_PAGE: Final = msgspec.json.Decoder(MailboxPage)
_ACK: Final = msgspec.json.Decoder(AckResult)
_STATUS: Final = msgspec.json.Decoder(MembersStatus)
_COSIGNED: Final = msgspec.json.Decoder(CosignatureResult)
