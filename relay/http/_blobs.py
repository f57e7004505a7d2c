"""The blob endpoints: attachments' ciphertext, chunked and resumable (PROTOCOL.md §15.4).

Every request is RFC 9421-signed and authenticated like any other (H1–H9,
:func:`relay.http._auth.authenticate`); a chunk's body is read within one chunk's size
and ``blobs.chunk_timeout`` before its signature (which covers its Content-Digest) is
checked. Only a blob's owner uploads, commits and discards it, only its recipient
downloads it; anyone else gets ``not_found``, exactly as for an id that does not exist
(steps U1–U7).
Downloads stream from storage a piece at a time, whatever the blob's size.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Final

import msgspec
import structlog
from aiohttp import web

from protocol.codec import decode
from protocol.decimal import parse_decimal
from protocol.errors import (
    MalformedError,
    PeerError,
    Relay247Error,
    StorageError,
    TooLargeError,
    TransportError,
    VerificationError,
)
from relay._state import RelayState, ensure_writable
from relay.config import blob_limits
from relay.http._auth import authenticate, check_before_body
from relay.http._middleware import REQUEST_ID, STATE
from relay.http._ranges import parse_range
from relay.http._write import JSON, SignedWrite, json_response, signed_write
from relay.storage import StoredBlob, commit_hash
from schemas.blobs import (
    BLOB_CHUNK,
    BlobCommit,
    BlobCreate,
    BlobStatus,
    chunk_count,
    chunk_span,
)
from schemas.errors import ErrorCode
from serving.bodies import PEER_BODY_ERRORS

log = structlog.get_logger("relay247.relay")
OCTETS: Final = "application/octet-stream"
_CREATE: Final = msgspec.json.Decoder(BlobCreate)
_COMMIT: Final = msgspec.json.Decoder(BlobCommit)
#: bytes a create's body may have (§13)
CREATE_LIMIT: Final = 4096
#: bytes a commit's body may have (one hash in JSON, with room to spare; §13)
COMMIT_LIMIT: Final = 4096
_BLOB_ID: Final = re.compile(r"[0-9a-f]{32}")  # fullmatch: "$" also matches before "\n"


def _blob_id(request: web.Request) -> str:
    raw = request.match_info["blob_id"]
    if not _BLOB_ID.fullmatch(raw):
        raise MalformedError("blob id must be 32 lowercase hex digits", detail=raw[:40])
    return raw


def _not_found(blob_id: str, member: str) -> PeerError:
    # The same answer for a missing blob and another member's: no existence oracle.
    return PeerError(
        "no such blob", detail=f"blob={blob_id} member={member}", code=ErrorCode.NOT_FOUND
    )


async def _find(state: RelayState, blob_id: str, member: str, *roles: str) -> StoredBlob:
    """U2: the blob, if ``member`` holds one of ``roles`` (``owner``, ``recipient``) in it."""
    row = await state.store.get_blob(blob_id)
    if row is None or member not in [getattr(row, role) for role in roles]:
        raise _not_found(blob_id, member)
    return row


async def _status(state: RelayState, row: StoredBlob) -> BlobStatus:
    missing: tuple[int, ...] = ()
    if not row.committed:
        present = await state.store.blob_chunks(row.blob_id)
        missing = tuple(i for i in range(chunk_count(row.ct_len)) if i not in present)
    return BlobStatus(
        blob_id=row.blob_id,
        ct_len=row.ct_len,
        chunk_size=BLOB_CHUNK,
        missing=missing,
        complete=row.committed,
    )


@signed_write
async def create(_request: web.Request, write: SignedWrite) -> web.Response:
    """POST /v1/blobs: announce a blob (201), or find the same one again to resume (200)."""
    state, member = write.state, write.member
    asked = decode(_CREATE, write.body, "blob", limit=CREATE_LIMIT)
    if asked.recipient == member:
        raise MalformedError("a blob's recipient must be another member")
    try:
        write.lookup.member(asked.recipient)
    except VerificationError:
        raise PeerError(
            "recipient is not in the directory", code=ErrorCode.UNKNOWN_RECIPIENT
        ) from None
    limit = state.config.blobs.max_blob_bytes
    if asked.ct_len > limit:
        raise TooLargeError(f"blob larger than {limit} bytes")
    # Omitted: announced at the commit (or a later create); stored as "" until then.
    sha = "" if isinstance(asked.ct_sha256, msgspec.UnsetType) else asked.ct_sha256
    blob = StoredBlob(asked.blob_id, member, asked.recipient, asked.ct_len, sha, state.clock())
    stored, created = await state.store.create_blob(blob, blob_limits(state.config))
    if not stored.same_upload(blob):
        # Ids are 128 random bits: only a member that saw this one (its recipient, in a
        # header) can collide with it, and it knows the blob exists.
        raise PeerError("this blob id is taken", code=ErrorCode.CONFLICT)
    if created:
        log.info("blob created", blob_id=blob.blob_id, owner=member, ct_len=blob.ct_len)
    return json_response(await _status(state, stored), status=201 if created else 200)


def _join_and_hash(pieces: list[bytes]) -> tuple[bytes, bytes]:
    body = b"".join(pieces)  # one copy
    return body, hashlib.sha256(body).digest()


async def _read_chunk(request: web.Request, state: RelayState) -> tuple[bytes, bytes]:
    """The body, at most one chunk, and its SHA-256 (slow-loris bounds:
    ``http.read_timeout`` without a byte, ``blobs.chunk_timeout`` for the whole chunk).

    The copy and the hash of 4 MiB run in a worker thread (SHA-256 releases the GIL), so
    that the event loop goes on reading the other chunks meanwhile.
    """
    if request.content_length is not None and request.content_length > BLOB_CHUNK:
        raise TooLargeError(f"chunk larger than {BLOB_CHUNK} bytes")
    await check_before_body(request, state)  # only a member makes the relay hold a chunk
    idle = state.config.http.read_timeout
    pieces: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(state.config.blobs.chunk_timeout):
            while True:
                async with asyncio.timeout(idle):
                    piece = await request.content.readany()
                if not piece:
                    break
                size += len(piece)
                if size > BLOB_CHUNK:
                    raise TooLargeError(f"chunk larger than {BLOB_CHUNK} bytes")
                pieces.append(piece)
    except TimeoutError:
        raise TransportError("chunk not received in time", code=ErrorCode.MALFORMED) from None
    except PEER_BODY_ERRORS:  # hung up, or a body badly framed
        raise TransportError(
            "connection closed before the chunk arrived", code=ErrorCode.MALFORMED
        ) from None
    return await asyncio.to_thread(_join_and_hash, pieces)


async def put_chunk(request: web.Request) -> web.Response:
    """PUT /v1/blobs/{blob_id}/chunks/{n}: one chunk, exactly its length (U1–U5)."""
    state = request.app[STATE]
    ensure_writable(state)
    body, sha256 = await _read_chunk(request, state)
    if request.content_type != OCTETS:
        raise Relay247Error(
            "content type must be application/octet-stream", code=ErrorCode.UNSUPPORTED_MEDIA_TYPE
        )
    member = authenticate(request, body, body_sha256=sha256)  # U1: H1–H9, Content-Digest too
    blob_id = _blob_id(request)
    index = parse_decimal(request.match_info["n"], name="chunk index", high=2**53)
    row = await _find(state, blob_id, member, "owner")
    if row.committed:
        raise PeerError("blob already committed", code=ErrorCode.CONFLICT)
    if index >= chunk_count(row.ct_len):
        raise PeerError("no such chunk", detail=f"{blob_id}/{index}", code=ErrorCode.NOT_FOUND)
    start, end = chunk_span(index, row.ct_len)
    if len(body) != end - start:
        error = TooLargeError if len(body) > end - start else MalformedError
        raise error(f"chunk {index} must be exactly {end - start} bytes", detail=f"{len(body)}")
    await state.store.put_blob_chunk(blob_id, index, body)
    return json_response(await _status(state, row))


async def status(request: web.Request) -> web.Response:
    """GET /v1/blobs/{blob_id}: the upload's state (owner or recipient)."""
    state = request.app[STATE]
    member = authenticate(request, b"")
    row = await _find(state, _blob_id(request), member, "owner", "recipient")
    return json_response(await _status(state, row))


async def _read_small(request: web.Request, state: RelayState) -> bytes:
    """A commit's or a discard's body, at most :data:`COMMIT_LIMIT` bytes (read, not parsed).

    Read :data:`COMMIT_LIMIT` + 1 bytes at most, whatever the framing: a body declared
    over the limit is refused before a byte of it is read, a chunked one as soon as the
    byte past the limit arrives; the whole within ``http.read_timeout`` (slow loris).
    """
    too_large = TooLargeError(f"commit body larger than {COMMIT_LIMIT} bytes")
    if request.content_length is not None and request.content_length > COMMIT_LIMIT:
        raise too_large
    pieces: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(state.config.http.read_timeout):
            while piece := await request.content.read(COMMIT_LIMIT + 1 - size):
                size += len(piece)
                if size > COMMIT_LIMIT:
                    raise too_large
                pieces.append(piece)
    except TimeoutError:
        raise TransportError(
            "request body not received in time", code=ErrorCode.MALFORMED
        ) from None
    except PEER_BODY_ERRORS:  # hung up, or a body badly framed
        raise TransportError(
            "connection closed before the request body arrived", code=ErrorCode.MALFORMED
        ) from None
    return b"".join(pieces)


async def commit(request: web.Request) -> web.Response:
    """POST /v1/blobs/{blob_id}/commit: the steps of PROTOCOL.md §15.4 "Commit".

    1. U6: the body (empty, or a :class:`BlobCommit` naming the hash the create did not)
       is read within its bounds, the request authenticated (a body's Content-Digest by
       H7), only then the body decoded; the id, and the caller owns the blob.
    2. The stored and the given hash differ: conflict; neither is there: malformed.
    3. Every chunk present, else blob_incomplete (nothing recorded).
    4. The store records a hash given here, then hashes the chunks: committed, or the
       blob discarded (blob_mismatch).
    5. Already committed: the same answer (another hash was a conflict in step 2).
    """
    state = request.app[STATE]
    ensure_writable(state)
    body = await _read_small(request, state)
    if body and request.content_type != JSON:
        raise Relay247Error(
            "content type must be application/json", code=ErrorCode.UNSUPPORTED_MEDIA_TYPE
        )
    member = authenticate(request, body)
    blob_id = _blob_id(request)
    given = decode(_COMMIT, body, "blob commit", limit=COMMIT_LIMIT).ct_sha256 if body else ""
    row = await _find(state, blob_id, member, "owner")
    commit_hash(row, given)  # conflict or malformed: before the chunks are looked at
    now = await _status(state, row)
    if now.missing:
        shown = ", ".join(map(str, now.missing[:8])) + (", ..." if len(now.missing) > 8 else "")
        raise PeerError(
            f"{len(now.missing)} chunks missing: {shown}", code=ErrorCode.BLOB_INCOMPLETE
        )
    if not await state.store.commit_blob(blob_id, given):
        log.info("blob discarded", blob_id=blob_id, owner=member)
        raise PeerError(
            "ciphertext does not match ct_sha256: the upload was discarded",
            code=ErrorCode.BLOB_MISMATCH,
        )
    log.info("blob committed", blob_id=blob_id, owner=member, ct_len=row.ct_len)
    return json_response(await _status(state, await _find(state, blob_id, member, "owner")))


async def discard(request: web.Request) -> web.Response:
    """POST /v1/blobs/{blob_id}/discard: the steps of PROTOCOL.md §15.4 "Discard" (U7).

    The body is read within the commit's bounds and refused if there is one, then the
    request authenticated; the store deletes the caller's blob unless it is committed,
    its chunks and files with it, so its ``ct_len`` no longer counts in the quotas.
    """
    state = request.app[STATE]
    ensure_writable(state)
    if await _read_small(request, state):  # a bodiless write: nothing to read past this
        raise MalformedError("a discard takes no body")
    member = authenticate(request, b"")
    blob_id = _blob_id(request)
    await state.store.discard_blob(blob_id, member)
    log.info("blob discarded by owner", blob_id=blob_id, owner=member)
    return web.Response(status=204)


async def content(request: web.Request) -> web.StreamResponse:
    """GET /v1/blobs/{blob_id}/content: the ciphertext, streamed, one RFC 9110 range."""
    state = request.app[STATE]
    member = authenticate(request, b"")
    row = await _find(state, _blob_id(request), member, "recipient")
    if not row.committed:
        raise PeerError("blob is not committed yet", code=ErrorCode.BLOB_INCOMPLETE)
    asked = parse_range(request.headers.getall("Range", []), row.ct_len)
    start, end = asked or (0, row.ct_len)
    response = web.StreamResponse(status=200 if asked is None else 206)
    response.headers.update(
        {
            "Content-Type": OCTETS,
            "Content-Length": str(end - start),
            "Accept-Ranges": "bytes",
            "X-Request-Id": request[REQUEST_ID],
        }
    )
    if asked is not None:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{row.ct_len}"
    await response.prepare(request)
    # Past this point an error can only cut the answer short (its length is declared,
    # so the client sees it); it is not answered in the JSON shape.
    try:
        async for piece in state.store.read_blob(row.blob_id, start, end):
            await response.write(piece)
    except ConnectionResetError:
        return response  # the client hung up: its doing, not an error of ours
    except StorageError as exc:
        log.error("blob read failed", blob_id=row.blob_id, detail=exc.detail or exc.message)
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


def add_blob_routes(app: web.Application) -> None:
    """Register the blob endpoints on ``app``."""
    app.router.add_post("/v1/blobs", create)
    app.router.add_put("/v1/blobs/{blob_id}/chunks/{n}", put_chunk)
    app.router.add_get("/v1/blobs/{blob_id}", status)
    app.router.add_post("/v1/blobs/{blob_id}/commit", commit)
    app.router.add_post("/v1/blobs/{blob_id}/discard", discard)
    # No HEAD: it would read the whole blob from storage to send nothing.
    app.router.add_get("/v1/blobs/{blob_id}/content", content, allow_head=False)
