"""POST /v1/envelopes verifies off the event loop and answers as it did on it (issue 16).

relay/http/_write.py ``checked_write``: the RFC 9421 signature (H1–H7) and the envelope
header (E1–E5) are verified together on a verifier thread, but the body is read only
once the request's signature verified, and a failure of E1–E5 is raised only after the
nonce (H8) and the rate limit (H9), so the public answers and their order are those
of the steps run one after another on the loop.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import msgspec
import pytest

from protocol.httpsig import sign_request
from relay.http._ratelimit import RateLimiter
from schemas.errors import ErrorBody, ErrorCode
from tests.support.relay import Answer, RunningRelay, envelope, post_signed, running_relay


def _code(answer: Answer) -> ErrorCode:
    return msgspec.json.decode(answer.body, type=ErrorBody).code


def _signed_headers(relay: RunningRelay, member: str, body: bytes) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    key = relay.net.members[member].transport
    headers |= sign_request(
        "POST",
        relay.url + "/v1/envelopes",
        headers,
        body,
        key=key,
        keyid=key.fingerprint,
        now=int(time.time()),
        nonce=os.urandom(16).hex(),
    )
    return headers


async def _post(relay: RunningRelay, body: bytes, headers: dict[str, str]) -> Answer:
    async with relay.session.post(relay.url + "/v1/envelopes", data=body, headers=headers) as r:
        return Answer(r.status, dict(r.headers), await r.read())


@pytest.mark.asyncio
async def test_an_envelope_is_verified_on_a_verifier_thread(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        answer = await post_signed(relay, "FR", "/v1/envelopes", envelope(relay.net, "FR", "US"))
        assert answer.status == 202, answer.body
        names = [t.name for t in threading.enumerate()]
        assert any(name.startswith("relay-verify") for name in names), names


@pytest.mark.asyncio
async def test_a_replayed_request_is_a_replay_whatever_its_body(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        body = b'{"not": "an envelope"}'
        headers = _signed_headers(relay, "FR", body)
        first = await _post(relay, body, headers)
        assert (first.status, _code(first)) == (400, ErrorCode.MALFORMED)
        # The same signed request again: H8 answers before the body's own check.
        again = await _post(relay, body, headers)
        assert (again.status, _code(again)) == (409, ErrorCode.REPLAY)


@pytest.mark.asyncio
async def test_a_rate_limited_member_is_told_so_before_its_body_is_judged(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        relay.state.limiter = RateLimiter(rate=0.001, burst=1)
        good = await post_signed(relay, "FR", "/v1/envelopes", envelope(relay.net, "FR", "US"))
        assert good.status == 202, good.body
        bad = await post_signed(relay, "FR", "/v1/envelopes", b"[]")
        assert (bad.status, _code(bad)) == (429, ErrorCode.RATE_LIMITED)
        assert "Retry-After" in bad.headers


@pytest.mark.asyncio
async def test_a_bad_request_signature_is_refused_before_the_body_is_read(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        body = envelope(relay.net, "FR", "US")
        headers = _signed_headers(relay, "FR", body)
        # The body changed after signing: the digest no longer matches (H7); the
        # envelope, valid in itself, is not looked at.
        other = envelope(relay.net, "FR", "US", seq=2)
        answer = await _post(relay, other, headers)
        assert (answer.status, _code(answer)) == (400, ErrorCode.DIGEST_MISMATCH)
        # Signed by another member's key under FR's keyid: one public answer, 401.
        forged = _signed_headers(relay, "US", body)
        forged["Signature-Input"] = forged["Signature-Input"].replace(
            relay.net.members["US"].transport.fingerprint,
            relay.net.members["FR"].transport.fingerprint,
        )
        answer = await _post(relay, body, forged)
        assert (answer.status, _code(answer)) == (401, ErrorCode.UNAUTHENTICATED)
