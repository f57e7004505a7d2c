"""An HTTP client for a relay's public audit endpoints (PROTOCOL.md §7.2).

Everything fetched here is untrusted: callers verify notes, proofs and entries. aiohttp
exceptions never escape: network failures become :class:`TransportError`, error answers
become :class:`PeerError` with the relay's status in ``detail``.
"""

from __future__ import annotations

import os
import time
from typing import Final, TypeVar

import aiohttp
import msgspec

from client import fetch_entries, read_body
from protocol.codec import decode, encode
from protocol.errors import PeerError, TransportError
from protocol.httpsig import sign_request
from protocol.keys import SigningKey
from protocol.tiles import TILE_WIDTH, decode_entry_bundle, entries_path, tile_path
from schemas.audit_api import (
    MAX_NOTE_CHARS,
    ConsistencyProof,
    CosignatureResult,
    CosignatureSubmission,
    EntriesPage,
    InclusionProof,
)
from schemas.errors import ErrorBody, ErrorCode
from schemas.relay_api import RelayInfo

T = TypeVar("T")
_MAX_ANSWER: Final = 32 << 20  # bytes: a full entry bundle of 256 x 64 KiB entries fits
_CONSISTENCY: Final = msgspec.json.Decoder(ConsistencyProof)
_INCLUSION: Final = msgspec.json.Decoder(InclusionProof)
_RESULT: Final = msgspec.json.Decoder(CosignatureResult)
_ENTRIES: Final = msgspec.json.Decoder(EntriesPage)
_INFO: Final = msgspec.json.Decoder(RelayInfo)
_ERROR: Final = msgspec.json.Decoder(ErrorBody)


def _rejection(status: int, path: str, raw: bytes) -> PeerError | TransportError:
    try:
        body = _ERROR.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        if status >= 500:
            return TransportError(f"relay answered HTTP {status}", detail=path)
        return PeerError(f"relay refused {path} (HTTP {status})")
    return PeerError(body.message, detail=f"HTTP {status} {path}", code=body.code)


class AuditClient:
    """Read a relay's audit log over HTTP.

    Args:
        base_url: the relay's origin, e.g. ``https://relay.example.org``.
        session: an aiohttp session the caller owns.
        timeout: seconds per request.
    """

    def __init__(
        self, base_url: str, session: aiohttp.ClientSession, *, timeout: float = 30.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def _get(self, path: str) -> bytes:
        return await self._request("GET", path, b"", {})

    async def _request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
        try:
            async with self._session.request(
                method,
                self.base_url + path,
                data=body or None,
                headers=headers,
                timeout=self._timeout,
            ) as resp:
                raw = await read_body(resp, _MAX_ANSWER, what="relay answer")
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # The URL and the cause in the message: the CLI prints only the message, and
            # "relay unreachable" alone left the auditor to guess which address failed.
            reason = str(exc) or type(exc).__name__
            raise TransportError(
                f"{self.base_url}{path}: relay unreachable ({reason})",
                detail=f"{type(exc).__name__}: {exc}",
            ) from None
        if status >= 400:
            raise _rejection(status, path, raw)
        return raw

    async def _json(self, path: str, decoder: msgspec.json.Decoder[T]) -> T:
        return decode(decoder, await self._get(path), "relay answer", limit=_MAX_ANSWER)

    async def info(self) -> RelayInfo:
        """GET /v1/info."""
        return await self._json("/v1/info", _INFO)

    async def checkpoint(self) -> bytes:
        """GET /v1/audit/checkpoint: the latest signed note with its cosignatures."""
        raw = await self._get("/v1/audit/checkpoint")
        if len(raw) > MAX_NOTE_CHARS * 4:
            raise PeerError("checkpoint note too large", code=ErrorCode.TOO_LARGE)
        return raw

    async def consistency(self, old: int, new: int) -> list[bytes]:
        """GET /v1/audit/proof/consistency (an empty proof for equal sizes)."""
        if old == new:
            return []
        answer = await self._json(f"/v1/audit/proof/consistency?old={old}&new={new}", _CONSISTENCY)
        if (answer.old, answer.new) != (old, new):
            raise PeerError(
                "consistency proof for other sizes", detail=f"{answer.old}..{answer.new}"
            )
        return list(answer.proof)

    async def inclusion(self, index: int, size: int) -> InclusionProof:
        """GET /v1/audit/proof/inclusion by index."""
        answer = await self._json(
            f"/v1/audit/proof/inclusion?index={index}&size={size}", _INCLUSION
        )
        if (answer.index, answer.size) != (index, size):
            raise PeerError(
                "inclusion proof for another leaf", detail=f"{answer.index}/{answer.size}"
            )
        return answer

    async def inclusion_by_hash(self, leaf_hash: bytes, size: int) -> InclusionProof:
        """GET /v1/audit/proof/inclusion by leaf hash (the relay finds the index)."""
        path = f"/v1/audit/proof/inclusion?leaf_hash={leaf_hash.hex()}&size={size}"
        return await self._json(path, _INCLUSION)

    async def entries(self, start: int, end: int) -> list[bytes]:
        """GET /v1/audit/entries: leaves ``[start, end)``, in pages of at most 1000.

        A page over the answer limit (big directory entries) is asked for again in halves.
        """

        async def one(first: int, last: int) -> list[bytes]:
            page = await self._json(f"/v1/audit/entries?start={first}&end={last}", _ENTRIES)
            if page.start != first or len(page.entries) != last - first:
                raise PeerError("entries page for another range", detail=f"{first}..{last}")
            return list(page.entries)

        return await fetch_entries(one, start, end)

    async def entry_bundle(self, tile: int, width: int = TILE_WIDTH) -> list[bytes]:
        """GET /v1/audit/tile/entries/<N>[.p/<W>]: exactly ``width`` entries."""
        raw = await self._get("/v1/audit/" + entries_path(tile, width))
        return decode_entry_bundle(raw, count=width)

    async def hash_tile(self, level: int, tile: int, width: int = TILE_WIDTH) -> list[bytes]:
        """GET /v1/audit/tile/<L>/<N>[.p/<W>]: exactly ``width`` 32-byte hashes."""
        raw = await self._get("/v1/audit/" + tile_path(level, tile, width))
        if len(raw) != 32 * width:
            raise PeerError("hash tile of the wrong length", detail=f"{len(raw)} bytes")
        return [raw[i : i + 32] for i in range(0, len(raw), 32)]

    async def submit_cosignature(
        self, checkpoint: bytes, line: str, *, transport_key: SigningKey
    ) -> CosignatureResult:
        """POST /v1/audit/cosignature, signed (RFC 9421) by the member's transport key."""
        body = encode(
            CosignatureSubmission(checkpoint=checkpoint.decode("utf-8"), cosignature=line)
        )
        path = "/v1/audit/cosignature"
        headers = {"Content-Type": "application/json"}
        headers.update(
            sign_request(
                "POST",
                self.base_url + path,
                headers,
                body,
                key=transport_key,
                keyid=transport_key.fingerprint,
                now=int(time.time()),
                nonce=os.urandom(16).hex(),
            )
        )
        raw = await self._request("POST", path, body, headers)
        return decode(_RESULT, raw, "relay answer", limit=_MAX_ANSWER)
