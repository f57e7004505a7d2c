"""A hostile relay's audit endpoints on a free loopback port, for the auditor's tests.

It has its own log key and one witness, so its checkpoints verify (V1, V2) whatever
size and root they claim; what it serves as entry bundles is the test's choice, and it
counts the bundles asked for. Any path can be made to answer a redirect instead.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.typedefs import Handler

from audit.verify import Policy, read_witnesses
from protocol import checkpoint as cp
from protocol.codec import encode
from protocol.cosignature import CosignatureSigner, cosign, cosignature_verifier_key
from protocol.keys import SigningKey
from protocol.note import Signer, verifier_key
from protocol.tiles import encode_entry_bundle, parse_entries_path
from schemas.audit import RelayEvent, RelayEventKind
from tests.support.web_app import serving

ORIGIN = "hostile.example/log"
_LOG = SigningKey(b"\x01" * 32)
_WITNESS = SigningKey(b"\x02" * 32)
#: an entry that verifies on its own (a relay_event carries no signature)
GOOD_ENTRY = encode(
    RelayEvent(
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
        relay_id="hostile",
        event=RelayEventKind.STARTED,
        software="x",
    )
)


@dataclass
class HostileLog:
    """What the server claims and serves; change the fields between runs."""

    size: int = 1 << 40
    root: bytes = b"\x09" * 32
    #: the entries of tile N, ``width`` of them
    tile: Callable[[int, int], list[bytes]] = lambda n, width: [b"junk"] * width
    #: path -> the URL it redirects to (302)
    redirects: dict[str, str] = field(default_factory=dict)
    bundles: int = 0  # entry bundles served
    #: entry bundles asked for past this many are refused (404): a test of a bound fails
    #: instead of running on when the bound is gone
    refuse_after: int = 50
    url: str = ""

    def policy(self) -> Policy:
        key = cosignature_verifier_key("W", _WITNESS.public)
        return Policy(verifier_key(ORIGIN, _LOG.public), read_witnesses(key), 1)

    def log_key(self) -> str:
        return verifier_key(ORIGIN, _LOG.public)

    def witness_line(self) -> str:
        return cosignature_verifier_key("W", _WITNESS.public)

    def note(self) -> bytes:
        point = cp.Checkpoint(ORIGIN, self.size, self.root)
        signed = cp.sign_checkpoint(point, Signer(ORIGIN, _LOG))
        line = cosign(cp.encode(point), CosignatureSigner("W", _WITNESS), int(time.time()) - 5)
        return signed + line.encode()


@asynccontextmanager
async def hostile_log(log: HostileLog | None = None) -> AsyncIterator[HostileLog]:
    """Serve ``log`` (a fresh one by default) on 127.0.0.1; ``log.url`` is its origin."""
    log = log or HostileLog()

    @web.middleware
    async def redirect(request: web.Request, handler: Handler) -> web.StreamResponse:
        target = log.redirects.get(request.path)
        if target is not None:
            raise web.HTTPFound(target)
        response: web.StreamResponse = await handler(request)
        return response

    async def checkpoint(_: web.Request) -> web.Response:
        return web.Response(body=log.note())

    async def consistency(request: web.Request) -> web.Response:
        old, new = int(request.query["old"]), int(request.query["new"])
        return web.json_response({"old": old, "new": new, "proof": []})

    async def entries(request: web.Request) -> web.Response:
        n, width = parse_entries_path("tile/entries/" + request.match_info["rest"])
        log.bundles += 1
        if log.bundles > log.refuse_after:
            raise web.HTTPNotFound()
        return web.Response(body=encode_entry_bundle(log.tile(n, width)))

    app = web.Application(middlewares=[redirect])
    app.router.add_get("/v1/audit/checkpoint", checkpoint)
    app.router.add_get("/v1/audit/proof/consistency", consistency)
    app.router.add_get("/v1/audit/tile/entries/{rest:.*}", entries)
    async with serving(app) as url:
        log.url = url
        yield log
