"""Every write endpoint opens the same way (issue 12, "Thin relay handlers").

relay/http/_write.py: writable first (a halted relay refuses before it reads or checks
anything), then the body, then its type, then RFC 9421 (H1–H9) unless the body's own
signatures are the authorization (POST /v1/directory). The routes are taken from the
real application — every POST and PUT, path parameters filled with well-formed values —
so a new write endpoint that skips the opening fails here. Besides JSON writes there are
the blob chunk (``application/octet-stream``, PROTOCOL.md §15.4) and the blob commit,
whose body is optional (nothing, or a JSON ``BlobCommit``): a body of another type is
refused there too before anything is authenticated; and the blob discard, which takes
no body at all: any body there is refused as such (``malformed``), before it too.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import msgspec
import pytest

from protocol.httpsig import sign_request
from relay.app import create_app
from schemas.errors import ErrorBody, ErrorCode
from tests.support.relay import Answer, RunningRelay, running_relay

#: the write whose body authorizes itself; every other write is a member's signed write
UNSIGNED = {"/v1/directory"}
#: what a path parameter is filled with: well formed, naming nothing that exists
PARAMS = {"blob_id": "0" * 32, "n": "0"}
OCTETS = "application/octet-stream"
#: the body each write takes (its type, and an empty value of it)
BODIES = {
    "/v1/blobs/{blob_id}/chunks/{n}": (OCTETS, b"\x00" * 16),
    "/v1/blobs/{blob_id}/commit": ("application/json", b""),
    "/v1/blobs/{blob_id}/discard": (None, b""),
}
JSON = ("application/json", b"{}")


def _writes(relay: RunningRelay) -> list[tuple[str, str]]:
    app = create_app(relay.state)
    found = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.method in ("POST", "PUT", "PATCH", "DELETE") and r.resource is not None
    }
    assert found, "no write route found"
    return sorted(found)


def _url(relay: RunningRelay, template: str) -> str:
    return relay.url + re.sub(r"\{(\w+)\}", lambda m: PARAMS[m.group(1)], template)


def _code(answer: Answer) -> ErrorCode:
    return msgspec.json.decode(answer.body, type=ErrorBody).code


async def _send(
    relay: RunningRelay,
    method: str,
    template: str,
    body: bytes,
    content_type: str | None,
    signer: str | None = None,
) -> Answer:
    url = _url(relay, template)
    headers = {} if content_type is None else {"Content-Type": content_type}
    if signer is not None:
        key = relay.net.members[signer].transport
        headers.update(
            sign_request(
                method,
                url,
                headers,
                body,
                key=key,
                keyid=key.fingerprint,
                now=int(time.time()),
                nonce=os.urandom(16).hex(),
            )
        )
    async with relay.session.request(method, url, data=body, headers=headers) as resp:
        return Answer(resp.status, dict(resp.headers), await resp.read())


@pytest.mark.asyncio
async def test_the_write_routes_are_found(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        writes = set(_writes(relay))
        assert {("POST", "/v1/envelopes"), ("POST", "/v1/acks")} <= writes
        assert {("PUT", "/v1/blobs/{blob_id}/chunks/{n}"), ("POST", "/v1/blobs")} <= writes
        for _, template in writes:
            assert "{" not in _url(relay, template)  # every parameter has a value


@pytest.mark.asyncio
async def test_a_halted_relay_refuses_every_write_before_anything_else(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        relay.state.audit.halted = "test: the stored log was rewritten"
        for method, path in _writes(relay):
            # Unsigned and of the wrong type: only the halt may answer.
            answer = await _send(relay, method, path, b"not json", "text/plain")
            assert (answer.status, _code(answer)) == (503, ErrorCode.UNAVAILABLE), path


@pytest.mark.asyncio
async def test_every_write_checks_its_body_before_it_authenticates(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        for method, path in _writes(relay):
            answer = await _send(relay, method, path, b"{}", "text/plain")
            if BODIES.get(path, JSON)[0] is None:  # a bodiless write: any body is refused
                expected = (400, ErrorCode.MALFORMED)
            else:
                expected = (415, ErrorCode.UNSUPPORTED_MEDIA_TYPE)
            assert (answer.status, _code(answer)) == expected, path


@pytest.mark.asyncio
async def test_every_member_write_authenticates_before_its_handler(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        for method, path in _writes(relay):
            content_type, body = BODIES.get(path, JSON)
            unsigned = await _send(relay, method, path, body, content_type)
            if path in UNSIGNED:
                assert _code(unsigned) is not ErrorCode.UNAUTHENTICATED, path
                continue
            assert (unsigned.status, _code(unsigned)) == (401, ErrorCode.UNAUTHENTICATED), path
            # Signed by a member, the same body reaches the handler: a JSON write's own
            # decoder refuses the empty object; a blob write finds no such blob.
            signed = await _send(relay, method, path, body, content_type, signer="FR")
            if path in BODIES:
                assert (signed.status, _code(signed)) == (404, ErrorCode.NOT_FOUND), path
            else:
                assert signed.status == 400, (path, signed.body)
