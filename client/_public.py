"""The relay's public endpoints, read (and the directory posted) without a signature.

Everything read here is untrusted: callers verify directories, notes, proofs and
entries before relying on them (PROTOCOL.md §3.3, §7.2). aiohttp exceptions never
escape: a network failure is :class:`TransportError` naming the URL, a refusal goes
through :func:`client._refusal.refusal`, every answer through :func:`read_body`.
"""

from __future__ import annotations

import io
from types import TracebackType
from typing import Final, Self, TypeVar

import aiohttp
import msgspec

from client._body import read_body
from client._pages import fetch_entries
from client._refusal import redirected, refusal
from protocol.codec import decode
from protocol.errors import PeerError, TransportError
from protocol.tiles import TILE_WIDTH, decode_entry_bundle, entries_path, tile_path
from schemas.audit_api import MAX_NOTE_CHARS, ConsistencyProof, EntriesPage, InclusionProof
from schemas.errors import ErrorCode
from schemas.relay_api import DirectoryResult, RelayInfo

T = TypeVar("T")

#: bytes: the auditor's answer limit; a full entry bundle of 256 x 64 KiB entries fits.
READ_LIMIT: Final = 32 << 20
_INLINE_BODY: Final = 1 << 20  # bytes: aiohttp's own threshold for a bytes body


class DroppedError(TransportError):
    """The connection closed under a request before any answer came (RFC 9112 §9.3.1.1):
    most often a kept-alive connection the relay, or a proxy, had already closed. A
    request whose meaning is idempotent may be sent again at once on a new connection."""


def _dropped(exc: BaseException) -> bool:
    # ClientConnectorError (a ClientOSError) is a connect that failed: nothing to retry now
    return isinstance(exc, aiohttp.ServerDisconnectedError) or (
        isinstance(exc, aiohttp.ClientOSError) and not isinstance(exc, aiohttp.ClientConnectorError)
    )


def client_session() -> aiohttp.ClientSession:
    """A session whose requests never follow a redirect, the WebSocket upgrade included.

    Every request of ``client/`` passes ``allow_redirects=False``, but ``ws_connect`` has
    no such argument and followed up to 10, taking a member's signed push request to
    the ``Location`` host. This session's trace refuses any redirect before it is
    followed. A caller that passes its own session should make it here.
    """
    trace = aiohttp.TraceConfig()

    async def refuse(
        _s: aiohttp.ClientSession, _c: object, params: aiohttp.TraceRequestRedirectParams
    ) -> None:
        resp = params.response
        location = resp.headers.get("Location", "")
        resp.close()
        raise redirected(resp.status, location, where=f"{params.method} {params.url}")

    trace.on_request_redirect.append(refuse)
    return aiohttp.ClientSession(trace_configs=[trace])


def plain_headers(body: bytes) -> dict[str, str]:
    """The headers of a request before any signature: the JSON type when there is a body."""
    return {"Content-Type": "application/json"} if body else {}


class PublicClient:
    """Unsigned requests to one relay: info, directory, and the audit log (§7.2, §8.1).

    Args:
        base_url: the relay's origin, e.g. ``https://relay.example.org``.
        session: an aiohttp session the caller owns; None: the client opens its own on
            first use and closes it in :meth:`close` (or at the end of ``async with``).
        timeout: seconds for one request, connection included.
        limit: the largest answer accepted, in bytes (see :func:`read_body`).
    """

    def __init__(
        self,
        base_url: str,
        session: aiohttp.ClientSession | None = None,
        *,
        timeout: float = 30.0,
        limit: int = READ_LIMIT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._owned = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.limit = limit

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if this client opened it (a caller's session stays open)."""
        if self._owned and self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The session requests go through (opened here, inside the running loop)."""
        if self._session is None:
            self._session = client_session()
        return self._session

    async def _send(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        headers: dict[str, str] | None = None,
        seconds: float | None = None,
    ) -> bytes:
        """One request; the whole answer body, or our error for any failure or refusal.

        ``headers``: the signed headers of a member's request (:class:`client.RelayClient`);
        None for an unsigned one.
        """
        url = self.base_url + path
        if headers is None:
            headers = plain_headers(body)
        timeout = aiohttp.ClientTimeout(total=seconds) if seconds else self._timeout
        # aiohttp writes a bytes body in one go and warns above 1 MiB; a file-like body
        # is streamed (an envelope may be up to the relay's http.max_body_bytes).
        data = io.BytesIO(body) if len(body) > _INLINE_BODY else (body or None)
        try:
            # Never followed: a redirect would take the request (and a member's signed
            # headers) to a host nobody pinned; a 3xx is refused below.
            async with self.session.request(
                method, url, data=data, headers=headers, timeout=timeout, allow_redirects=False
            ) as resp:
                raw = await read_body(resp, self.limit, what="relay answer")
                status = resp.status
                location = resp.headers.get("Location", "")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # The URL and the cause in the message: the CLI prints only the message, and
            # "relay unreachable" alone left the auditor to guess which address failed.
            reason = str(exc) or type(exc).__name__
            cls = DroppedError if _dropped(exc) else TransportError
            raise cls(
                f"{url}: relay unreachable ({reason})", detail=f"{type(exc).__name__}: {exc}"
            ) from None
        if 300 <= status < 400:
            raise redirected(status, location, where=f"{method} {url}")
        if status >= 400:
            raise refusal(status, raw, where=f"{method} {url}")
        return raw

    async def _call(
        self,
        method: str,
        path: str,
        answer: msgspec.json.Decoder[T],
        body: bytes = b"",
        *,
        headers: dict[str, str] | None = None,
        seconds: float | None = None,
    ) -> T:
        raw = await self._send(method, path, body, headers=headers, seconds=seconds)
        return decode(answer, raw, "relay answer", limit=self.limit)

    async def info(self) -> RelayInfo:
        """GET /v1/info: the relay's id, URL, log origin and keys (unverified)."""
        return await self._call("GET", "/v1/info", _INFO)

    async def health(self) -> None:
        """GET /healthz: returns once the relay's store answers and writes.

        Raises:
            RelayRejectedError: ``unavailable`` with the reason (storage fault, halted log).
            TransportError: no relay answers there.
        """
        await self._send("GET", "/healthz")

    async def directory(self) -> bytes:
        """GET /v1/directory: the signed directory bytes in force (verify before use)."""
        return await self._send("GET", "/v1/directory")

    async def publish_directory(self, signed: bytes) -> DirectoryResult:
        """POST /v1/directory: authorised by the coordinators' signatures (D1–D8), unsigned."""
        return await self._call("POST", "/v1/directory", _DIR, signed)

    async def checkpoint(self) -> bytes:
        """GET /v1/audit/checkpoint: the latest signed note with its cosignature lines.

        Raises:
            RelayRejectedError: ``not_found`` before the first checkpoint.
            PeerError: the note is larger than any checkpoint can be (``too_large``).
        """
        raw = await self._send("GET", "/v1/audit/checkpoint")
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
        answer = await self._call("GET", path, _CONSISTENCY)
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
        answer = await self._call("GET", path, _INCLUSION)
        if (answer.index, answer.size) != (index, size):
            raise PeerError(
                "inclusion proof for another leaf", detail=f"{answer.index}/{answer.size}"
            )
        return answer

    async def inclusion_by_hash(self, leaf_hash: bytes, size: int) -> InclusionProof:
        """GET /v1/audit/proof/inclusion by leaf hash (the relay finds the index)."""
        path = f"/v1/audit/proof/inclusion?leaf_hash={leaf_hash.hex()}&size={size}"
        return await self._call("GET", path, _INCLUSION)

    async def entries(self, start: int, end: int) -> list[bytes]:
        """GET /v1/audit/entries: the exact bytes of leaves ``[start, end)``, paged.

        A page over the answer limit (big directory entries) is asked for again in halves.

        Raises:
            PeerError: a page for another range, or the relay refused.
        """

        async def one(first: int, last: int) -> list[bytes]:
            path = f"/v1/audit/entries?start={first}&end={last}"
            page = await self._call("GET", path, _ENTRIES)
            if page.start != first or len(page.entries) != last - first:
                raise PeerError("entries page for another range", detail=f"{first}..{last}")
            return list(page.entries)

        return await fetch_entries(one, start, end)

    async def entry_bundle(self, tile: int, width: int = TILE_WIDTH) -> list[bytes]:
        """GET /v1/audit/tile/entries/<N>[.p/<W>]: exactly ``width`` entries."""
        raw = await self._send("GET", "/v1/audit/" + entries_path(tile, width))
        return decode_entry_bundle(raw, count=width)

    async def hash_tile(self, level: int, tile: int, width: int = TILE_WIDTH) -> list[bytes]:
        """GET /v1/audit/tile/<L>/<N>[.p/<W>]: exactly ``width`` 32-byte hashes."""
        raw = await self._send("GET", "/v1/audit/" + tile_path(level, tile, width))
        if len(raw) != 32 * width:
            raise PeerError("hash tile of the wrong length", detail=f"{len(raw)} bytes")
        return [raw[i : i + 32] for i in range(0, len(raw), 32)]


_INFO: Final = msgspec.json.Decoder(RelayInfo)
_DIR: Final = msgspec.json.Decoder(DirectoryResult)
_CONSISTENCY: Final = msgspec.json.Decoder(ConsistencyProof)
_INCLUSION: Final = msgspec.json.Decoder(InclusionProof)
_ENTRIES: Final = msgspec.json.Decoder(EntriesPage)
