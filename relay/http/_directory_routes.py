"""The directory endpoints: GET and POST /v1/directory (PROTOCOL.md §5, §8.1)."""

from __future__ import annotations

import structlog
from aiohttp import web

from protocol.codec import encode
from protocol.directory import TrustRoot, verify_directory
from protocol.errors import PeerError, Relay247Error
from relay._directory import refresh_directory
from relay._state import RelayState
from relay.http._middleware import STATE
from relay.http._write import JSON, Write, json_response, unsigned_write
from relay.storage import DIRECTORY_LEAF, directory_stamp, meta_int
from schemas.audit import DirectoryPublished
from schemas.errors import ErrorCode
from schemas.relay_api import DirectoryResult

log = structlog.get_logger("relay247.relay")


async def get_directory(request: web.Request) -> web.Response:
    """GET /v1/directory: the signed directory in force, exact bytes."""
    state = request.app[STATE]
    if state.directory is None:
        raise Relay247Error("no directory has been published yet", code=ErrorCode.NOT_FOUND)
    return web.Response(body=state.directory.signed_bytes, content_type=JSON)


@unsigned_write
async def post_directory(_request: web.Request, write: Write) -> web.Response:
    """POST /v1/directory: publish a new version; k-of-n signatures are the authorization."""
    state, body = write.state, write.body
    # Another instance may have published a newer version a moment ago.
    await refresh_directory(state)
    now = state.clock()
    root = TrustRoot.of(state.directory.directory) if state.directory else state.trust_root
    verified = verify_directory(body, root, current=state.directory, now=now)
    if state.directory is not None and verified.version == state.directory.version:
        return json_response(
            DirectoryResult(version=verified.version, leaf_index=await _directory_leaf(state))
        )
    entry = encode(
        DirectoryPublished(received_at=now, version=verified.version, signed_directory=body)
    )
    # One compare-and-set in storage: of two publications racing (here or through another
    # instance) the older can never be stored, or put in force, after the newer.
    index = await state.store.publish_directory(verified.version, body, entry)
    if index is None:
        await refresh_directory(state)
        current = state.directory.version if state.directory else None
        if current == verified.version:  # the same version, published concurrently
            return json_response(
                DirectoryResult(version=verified.version, leaf_index=await _directory_leaf(state))
            )
        raise PeerError(
            "a newer directory version was published meanwhile",
            detail=f"version {verified.version}, stored {current}",
            code=ErrorCode.DIRECTORY_ROLLBACK,
        )
    if state.directory is None or verified.version > state.directory.version:
        state.set_directory(verified)
        state.directory_stamp = directory_stamp(verified.version, body)
    log.info("directory published", version=verified.version, leaf_index=index)
    return json_response(DirectoryResult(version=verified.version, leaf_index=index))


async def _directory_leaf(state: RelayState) -> int:
    return meta_int(await state.store.get_meta(DIRECTORY_LEAF), "directory leaf")
