"""Every write endpoint opens the same way (issue 12, "Thin relay handlers").

relay/http/_write.py: writable first (a halted relay refuses before it reads or checks
anything), then the body, then the content type, then RFC 9421 (H1–H9) unless the
body's own signatures are the authorization (POST /v1/directory). The routes are taken
from the real application, so a new POST endpoint that skips the opening fails here.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from relay.app import create_app
from schemas.errors import ErrorBody, ErrorCode
from tests.support.relay import Answer, RunningRelay, post_signed, running_relay

#: the write whose body authorizes itself; every other POST is a member's signed write
UNSIGNED = {"/v1/directory"}


def _post_routes(relay: RunningRelay) -> list[str]:
    app = create_app(relay.state)
    paths = {
        r.resource.canonical
        for r in app.router.routes()
        if r.method == "POST" and r.resource is not None
    }
    assert paths, "no POST route found"
    return sorted(paths)


def _code(answer: Answer) -> ErrorCode:
    return msgspec.json.decode(answer.body, type=ErrorBody).code


async def _post(relay: RunningRelay, path: str, body: bytes, content_type: str) -> Answer:
    headers = {"Content-Type": content_type}
    async with relay.session.post(relay.url + path, data=body, headers=headers) as resp:
        return Answer(resp.status, dict(resp.headers), await resp.read())


@pytest.mark.asyncio
async def test_a_halted_relay_refuses_every_write_before_anything_else(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        paths = _post_routes(relay)
        assert {"/v1/envelopes", "/v1/acks", "/v1/audit/cosignature"} <= set(paths)
        relay.state.audit.halted = "test: the stored log was rewritten"
        for path in paths:
            # Unsigned and of the wrong type: only the halt may answer.
            answer = await _post(relay, path, b"not json", "text/plain")
            assert (answer.status, _code(answer)) == (503, ErrorCode.UNAVAILABLE), path


@pytest.mark.asyncio
async def test_every_write_wants_json_before_it_authenticates(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        for path in _post_routes(relay):
            answer = await _post(relay, path, b"{}", "text/plain")
            assert (answer.status, _code(answer)) == (
                415,
                ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            ), path


@pytest.mark.asyncio
async def test_every_member_write_authenticates_before_its_handler(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        for path in _post_routes(relay):
            unsigned = await _post(relay, path, b"{}", "application/json")
            if path in UNSIGNED:
                assert _code(unsigned) is not ErrorCode.UNAUTHENTICATED, path
                continue
            assert (unsigned.status, _code(unsigned)) == (401, ErrorCode.UNAUTHENTICATED), path
            # Signed by a member, the same empty object reaches the handler's own decoder.
            signed = await post_signed(relay, "FR", path, b"{}")
            assert signed.status == 400, (path, signed.body)
