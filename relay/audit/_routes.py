"""The audit endpoints under /v1/audit/ (PROTOCOL.md §7.2).

Reads are public and unsigned: checkpoint, proofs, entry ranges and C2SP tlog-tiles.
Each proof costs O(log n) primary-key reads (the store keeps every perfect subtree);
tiles and entry pages are bounded ranges. Only ``POST /v1/audit/cosignature`` is
signed (RFC 9421): a member, acting as a witness, hands back its cosignature.
"""

from __future__ import annotations

import re

import msgspec
from aiohttp import web

from protocol._note_open import SIG_PREFIX
from protocol.checkpoint import open_checkpoint
from protocol.codec import decode
from protocol.cosignature import CosignatureVerifier, verify_cosignatures
from protocol.decimal import parse_decimal
from protocol.directory import key_valid_at
from protocol.errors import MalformedError, NoteError, PeerError
from protocol.tiles import (
    TILE_WIDTH,
    encode_entry_bundle,
    parse_entries_path,
    parse_tile_path,
)
from relay._state import RelayState
from relay.audit._checkpointer import refresh
from relay.http._middleware import STATE
from relay.http._write import SignedWrite, json_response, signed_write
from schemas.audit_api import (
    MAX_ENTRIES_PAGE,
    ConsistencyProof,
    CosignatureResult,
    CosignatureSubmission,
    EntriesPage,
    InclusionProof,
)
from schemas.directory import KeyUse
from schemas.errors import ErrorCode

IMMUTABLE = "public, max-age=31536000, immutable"
_HEX_HASH = re.compile(r"[0-9a-f]{64}")
_SUBMISSION = msgspec.json.Decoder(CosignatureSubmission)


def add_audit_routes(app: web.Application) -> None:
    """Register the /v1/audit/ endpoints on ``app``."""
    app.router.add_get("/v1/audit/checkpoint", checkpoint)
    app.router.add_get("/v1/audit/proof/inclusion", inclusion)
    app.router.add_get("/v1/audit/proof/consistency", consistency)
    app.router.add_get("/v1/audit/entries", entries)
    app.router.add_get("/v1/audit/tile/{tail:.+}", tile)
    app.router.add_post("/v1/audit/cosignature", cosignature)


def _not_found(message: str, detail: str = "") -> PeerError:
    return PeerError(message, detail=detail, code=ErrorCode.NOT_FOUND)


def _query(request: web.Request, *allowed: str) -> dict[str, str]:
    """The query as a dict; unknown or repeated parameters are malformed, not ignored."""
    keys = [key for key, _ in request.query.items()]
    for key in keys:
        if key not in allowed:
            raise MalformedError(f"unknown query parameter {key[:32]!r}")
    if len(set(keys)) != len(keys):
        raise MalformedError("repeated query parameter")
    return dict(request.query)


def _int(query: dict[str, str], name: str, lowest: int) -> int:
    raw = query.get(name)
    if raw is None:
        raise MalformedError(f"query parameter {name} is required")
    return parse_decimal(raw, name=f"query parameter {name}", low=lowest)


async def _within_tree(state: RelayState, size: int) -> None:
    tree = await state.store.tree_size()
    if size > tree:
        raise _not_found("tree size beyond the log", detail=f"{size} > {tree}")


async def checkpoint(request: web.Request) -> web.Response:
    """GET /v1/audit/checkpoint: the latest signed checkpoint with its cosignatures.

    Several instances (PostgreSQL) serve the newest checkpoint stored, read now: one
    that served only what its last background tick adopted could answer an older one
    than another instance already served, and a witness takes a smaller size after a
    larger one for a rollback (C3; found by the fault suite, issue 17). Without the
    database it answers 503 rather than a checkpoint that may be stale.
    """
    state = request.app[STATE]
    audit = state.audit
    if state.config.storage.backend == "postgres" and audit.halted is None:
        async with audit.moving:
            await refresh(state)
    latest = audit.latest
    if latest is None:
        raise _not_found("no checkpoint has been signed yet")
    # The note ends with the log's line; cosignature lines follow in arrival order.
    body = latest.note + b"".join(audit.cosignatures.values())
    return web.Response(
        body=body, content_type="text/plain", charset="utf-8", headers={"Cache-Control": "no-cache"}
    )


async def inclusion(request: web.Request) -> web.Response:
    """GET /v1/audit/proof/inclusion?index=I&size=N (or leaf_hash=HEX&size=N)."""
    state = request.app[STATE]
    query = _query(request, "index", "leaf_hash", "size")
    size = _int(query, "size", 1)
    if ("index" in query) == ("leaf_hash" in query):
        raise MalformedError("give exactly one of index and leaf_hash")
    index = _int(query, "index", 0) if "index" in query else None
    if "leaf_hash" in query and not _HEX_HASH.fullmatch(query["leaf_hash"]):
        raise MalformedError("leaf_hash must be 64 lowercase hex digits")
    await _within_tree(state, size)
    if index is None:
        leaf = bytes.fromhex(query["leaf_hash"])
        index = await state.store.find_leaf(leaf)
        if index is None or index >= size:
            raise _not_found("no leaf with that hash in the tree of that size")
    elif index >= size:
        raise _not_found("no leaf with that index in the tree of that size")
    else:
        leaf = (await state.store.level_hashes(0, index, index + 1))[0]
    proof = await state.store.inclusion_proof(index, size)
    return json_response(
        InclusionProof(index=index, size=size, leaf_hash=leaf.hex(), proof=tuple(proof))
    )


async def consistency(request: web.Request) -> web.Response:
    """GET /v1/audit/proof/consistency?old=M&new=N."""
    state = request.app[STATE]
    query = _query(request, "old", "new")
    old, new = _int(query, "old", 1), _int(query, "new", 1)
    if old > new:
        raise MalformedError("old must not exceed new")
    await _within_tree(state, new)
    proof = await state.store.consistency_proof(old, new)
    return json_response(ConsistencyProof(old=old, new=new, proof=tuple(proof)))


async def entries(request: web.Request) -> web.Response:
    """GET /v1/audit/entries?start=S&end=E: at most 1000 exact entries."""
    state = request.app[STATE]
    query = _query(request, "start", "end")
    start, end = _int(query, "start", 0), _int(query, "end", 1)
    if not start < end <= start + MAX_ENTRIES_PAGE:
        raise MalformedError(f"need start < end <= start + {MAX_ENTRIES_PAGE}")
    await _within_tree(state, end)
    page = await state.store.leaf_entries(start, end)
    return json_response(EntriesPage(start=start, entries=tuple(page)))


async def tile(request: web.Request) -> web.Response:
    """GET /v1/audit/tile/<L>/<N>[.p/<W>] and /v1/audit/tile/entries/<N>[.p/<W>].

    Only what the latest signed checkpoint covers is served, so every tile an auditor
    fetches can be checked against a signed root.
    """
    state = request.app[STATE]
    path = "tile/" + request.match_info["tail"]
    latest = state.audit.latest
    covered = latest.size if latest is not None else 0
    if path.startswith("tile/entries/"):
        index, width = parse_entries_path(path)
        start = index * TILE_WIDTH
        if start + width > covered:
            raise _not_found("tile beyond the latest checkpoint", detail=path)
        try:
            body = encode_entry_bundle(await state.store.leaf_entries(start, start + width))
        except MalformedError:
            # tlog-tiles caps entries at 65535 bytes; such an entry is served by /entries.
            raise _not_found("an entry of this bundle is too long for tlog-tiles") from None
    else:
        level, index, width = parse_tile_path(path)
        start = index * TILE_WIDTH
        # Tile level L holds the tree's hashes at level 8L.
        if start + width > covered >> (8 * level):
            raise _not_found("tile beyond the latest checkpoint", detail=path)
        body = b"".join(await state.store.level_hashes(8 * level, start, start + width))
    cache = IMMUTABLE if width == TILE_WIDTH else "no-cache"
    return web.Response(
        body=body, content_type="application/octet-stream", headers={"Cache-Control": cache}
    )


@signed_write
async def cosignature(_request: web.Request, write: SignedWrite) -> web.Response:
    """POST /v1/audit/cosignature: verify and store a member's cosignature (W1–W7).

    A halted relay stores nothing, cosignatures included (:func:`signed_write`).
    """
    # W1. The request is signed by a member's transport key (H1–H9): signed_write.
    state, body, member = write.state, write.body, write.member
    now = state.clock()
    # W2. The body decodes strictly.
    sub = decode(_SUBMISSION, body, "cosignature submission", limit=64 << 10)
    # W3. The checkpoint carries this log's signature and origin...
    cp, opened = open_checkpoint(
        sub.checkpoint.encode(), state.keys.log_signer.verifier(), state.log_origin
    )
    # W4. ...and is one the relay stored when it signed it.
    stored = await state.store.checkpoint(cp.size)
    if stored is None or stored.root != cp.root_hash:
        raise NoteError("not a checkpoint this log signed", detail=f"size {cp.size}")
    # W5. Exactly one signature line, under the authenticated member's name.
    line = sub.cosignature
    if not line.startswith(SIG_PREFIX) or line.find("\n") != len(line) - 1:
        raise NoteError("cosignature must be exactly one signature line")
    if line[len(SIG_PREFIX) :].partition(" ")[0] != member:
        raise NoteError("cosignature is not from the authenticated member", detail=member)
    # W6. It verifies as cosignature/v1 under the member's signing keys valid now, dated
    # within the clock skew of now either way (a witness cosigns just before it posts).
    keys = [
        CosignatureVerifier(member, k.public)
        for k in write.lookup.member(member).keys
        if k.use is KeyUse.SIGNING and key_valid_at(k, now)
    ]
    if not keys:
        raise NoteError("member has no valid witness key", detail=member)
    skew = int(state.config.limits.max_clock_skew)
    raw = line.encode()
    verify_cosignatures(
        opened.text.encode() + b"\n" + raw,
        keys,
        1,
        not_after=int(now.timestamp()) + skew,
        not_before=int(now.timestamp()) - skew,
    )
    # W7. Durable, then published; a witness's first line for a checkpoint is kept.
    await state.store.add_cosignature(cp.size, member, raw)
    state.activity.cosign(member, now)
    latest = state.audit.latest
    if latest is not None and latest.size == cp.size:
        state.audit.cosignatures.setdefault(member, raw)
    count = len(await state.store.cosignatures(cp.size))
    return json_response(CosignatureResult(size=cp.size, witnesses=count))
