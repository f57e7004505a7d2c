"""Every rejection path of the relay over real sockets: status, error shape, stable code.

Each test also checks that the relay keeps serving afterwards (a fresh valid envelope
still gets 202) and that nothing was answered 500 ``internal`` (PROTOCOL.md §8).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from multidict import CIMultiDictProxy

import tests.support.relay as relay_support
from protocol.directory import sign_directory
from protocol.httpsig import sign_request
from protocol.keys import EncryptionKey, SigningKey
from protocol.receipt import make_ack
from relay.config import CONFIG_TEMPLATE
from schemas.directory import KeyUse
from schemas.envelope import Envelope, EnvelopeHeader
from tests.support.forge import forge
from tests.support.network import Network, seed
from tests.support.relay import RunningRelay, envelope, running_relay

# Every test runs on SQLite and on PostgreSQL (tests/integration/conftest.py).
pytestmark = pytest.mark.usefixtures("relay_backend")

JSON = "application/json"
Answer = tuple[int, dict[str, Any], CIMultiDictProxy[str]]


@asynccontextmanager
async def relay_with(
    tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    publish: bool = True,
    **settings: str,
) -> AsyncIterator[RunningRelay]:
    """A running relay whose config template has ``key = value`` lines replaced.

    ``config_extra`` cannot redefine keys of the template's existing tables (TOML forbids
    a second [http] table), so the template itself is patched for this test only.
    """
    template = CONFIG_TEMPLATE
    for key, value in settings.items():
        old = next(line for line in template.splitlines() if line.startswith(f"{key} = "))
        template = template.replace(old, f"{key} = {value}")
    monkeypatch.setattr(relay_support, "CONFIG_TEMPLATE", template)
    async with running_relay(tmp, publish=publish) as relay:
        yield relay
        await assert_still_serving(relay)


async def assert_still_serving(relay: RunningRelay) -> None:
    """A valid envelope still gets 202, and no request so far was answered 500."""
    status, body, _ = await send(relay, "POST", "/v1/envelopes", envelope(relay.net, "DE", "FR"))
    assert status == 202, body
    async with relay.session.get(relay.url + "/metrics") as r:
        text = await r.text()
    assert "relay247_rejected_total{code=" in text  # the rejection above was counted
    assert 'code="internal"' not in text


def signed_headers(
    relay: RunningRelay,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    member: str = "DE",
    key: SigningKey | None = None,
    keyid: str | None = None,
    content_type: str | None = JSON,
    now: int | None = None,
    signed: bool = True,
    signed_body: bytes | None = None,
) -> dict[str, str]:
    """Headers for one request signed under the relay247 profile (or altered as asked)."""
    hdrs: dict[str, str] = {"Content-Type": content_type} if body and content_type else {}
    if signed:
        key = key or relay.net.members[member].transport
        hdrs.update(
            sign_request(
                method,
                relay.url + path,
                hdrs,
                body if signed_body is None else signed_body,
                key=key,
                keyid=keyid or key.fingerprint,
                now=int(time.time()) if now is None else now,
                nonce=os.urandom(16).hex(),
            )
        )
    return hdrs


async def send_raw(
    relay: RunningRelay, method: str, path: str, body: bytes, headers: dict[str, str]
) -> Answer:
    """Send exactly these headers and body; parse a JSON answer if there is one."""
    async with relay.session.request(
        method, relay.url + path, data=body or None, headers=headers
    ) as r:
        raw = await r.read()
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError:
            parsed = {"raw": raw.decode(errors="replace")}
        return r.status, parsed, r.headers


async def send(relay: RunningRelay, method: str, path: str, body: bytes = b"", **kw: Any) -> Answer:
    """Sign (see :func:`signed_headers`) and send one request."""
    return await send_raw(
        relay, method, path, body, signed_headers(relay, method, path, body, **kw)
    )


def assert_error(answer: Answer, status: int, code: str) -> dict[str, Any]:
    """The one error shape: exactly {code, message, request_id}, with the given code."""
    got_status, body, headers = answer
    assert (got_status, body.get("code")) == (status, code), body
    assert set(body) == {"code", "message", "request_id"}
    assert isinstance(body["message"], str)
    assert body["message"]
    assert body["request_id"] == headers["X-Request-Id"]
    return body


async def submit(relay: RunningRelay, data: bytes, member: str = "FR", **kw: Any) -> Answer:
    return await send(relay, "POST", "/v1/envelopes", data, member=member, **kw)


def with_keys(net: Network, member: str, use: KeyUse, revoked_at: datetime) -> None:
    """Next directory version: ``member``'s key of ``use`` is revoked at ``revoked_at``."""
    keys = net.members[member].member().keys
    net.overrides[member] = {
        "keys": tuple(
            msgspec.structs.replace(k, revoked_at=revoked_at) if k.use is use else k for k in keys
        )
    }
    net.version += 1


def _ack_for(net: Network, data: bytes, signer: str = "US") -> bytes:
    env = msgspec.json.decode(data, type=Envelope)
    header = msgspec.json.decode(env.header, type=EnvelopeHeader)
    return make_ack(
        header, env.header, signing_key=net.members[signer].signing, acked_at=datetime.now(UTC)
    )


# --- input shape ----------------------------------------------------------------------


async def test_malformed_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch) as relay:
        assert_error(await submit(relay, b'{"sender": '), 400, "malformed")


async def test_unknown_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch) as relay:
        data = envelope(relay.net)
        extra = data[:-1] + b',"surprise":1}'
        assert_error(await submit(relay, extra), 400, "malformed")


async def test_oversized_body(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch, max_body_bytes="4096") as relay:
        assert_error(await submit(relay, b"x" * 4097), 413, "too_large")


async def test_wrong_content_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch) as relay:
        answer = await submit(relay, envelope(relay.net), content_type="text/plain")
        assert_error(answer, 415, "unsupported_media_type")


# --- request authentication (RFC 9421 profile) ----------------------------------------


async def test_unsigned_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch) as relay:
        data = envelope(relay.net)
        answer = await submit(relay, data, signed=False)
        assert_error(answer, 401, "unauthenticated")


async def test_bad_signature_and_unknown_key_look_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stranger = SigningKey(seed("stranger/transport"))
    async with relay_with(tmp_path, monkeypatch) as relay:
        fr = relay.net.members["FR"].transport
        # A known keyid with a signature by another key, and a keyid nobody enrolled.
        bad = assert_error(
            await submit(relay, envelope(relay.net), key=stranger, keyid=fr.fingerprint),
            401,
            "unauthenticated",
        )
        unknown = assert_error(
            await submit(relay, envelope(relay.net), key=stranger), 401, "unauthenticated"
        )
        assert bad["message"] == unknown["message"]


async def test_digest_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch) as relay:
        data = envelope(relay.net)
        # Same length and still signed for ``data``: only the Content-Digest check can notice.
        answer = await submit(relay, data[:-1] + b" ", signed_body=data)
        assert_error(answer, 400, "digest_mismatch")


async def test_expired_signature(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch) as relay:
        answer = await submit(relay, envelope(relay.net), now=int(time.time()) - 600)
        assert_error(answer, 400, "expired")


async def test_signature_from_the_future(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch) as relay:
        answer = await submit(relay, envelope(relay.net), now=int(time.time()) + 600)
        assert_error(answer, 400, "clock_skew")


async def test_replayed_nonce(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch) as relay:
        headers = signed_headers(relay, "GET", "/v1/mailbox", member="US")
        assert (await send_raw(relay, "GET", "/v1/mailbox", b"", headers))[0] == 200
        assert_error(await send_raw(relay, "GET", "/v1/mailbox", b"", headers), 409, "replay")


async def test_rate_limited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch, rate_per_node="0.01", rate_burst="2") as relay:
        for _ in range(2):
            assert (await send(relay, "GET", "/v1/mailbox", member="FR"))[0] == 200
        answer = await send(relay, "GET", "/v1/mailbox", member="FR")
        assert_error(answer, 429, "rate_limited")
        assert int(answer[2]["Retry-After"]) >= 1


async def test_no_directory_yet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch, publish=False) as relay:
        assert_error(await submit(relay, envelope(relay.net)), 503, "unavailable")
        assert_error(await send(relay, "GET", "/v1/directory", signed=False), 404, "not_found")
        await relay.client("FR").publish_directory(relay.net.signed())


# --- envelope checks (E1-E8) and storage rules ------------------------------------------


async def test_tampered_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch) as relay:
        env = msgspec.json.decode(envelope(relay.net), type=Envelope)
        header = env.header.replace(b'"urgent"', b'"routine"')
        assert header != env.header
        tampered = msgspec.json.encode(msgspec.structs.replace(env, header=header))
        assert_error(await submit(relay, tampered), 401, "unauthenticated")


async def test_expired_envelope(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch) as relay:
        old = envelope(relay.net, created=datetime.now(UTC) - timedelta(hours=2))
        assert_error(await submit(relay, old), 400, "expired")


async def test_envelope_from_another_member(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with relay_with(tmp_path, monkeypatch) as relay:
        from_fr = envelope(relay.net, "FR", "US")
        assert_error(await submit(relay, from_fr, member="DE"), 401, "unauthenticated")


async def test_unknown_recipient(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch) as relay:
        fr = relay.net.members["FR"]
        data = forge(
            b"{}",
            sender="FR",
            signing_key=fr.signing,
            recipient="XX",
            recipient_enc=EncryptionKey(seed("XX/encryption")),
            created=datetime.now(UTC),
        )
        assert_error(await submit(relay, data), 422, "unknown_recipient")


async def test_revoked_transport_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch) as relay:
        data = envelope(relay.net)
        with_keys(relay.net, "FR", KeyUse.TRANSPORT, datetime.now(UTC) - timedelta(minutes=1))
        await relay.client("US").publish_directory(relay.net.signed())
        # A revoked transport key resolves to nothing: the unknown-key answer.
        assert_error(await submit(relay, data), 401, "unauthenticated")


async def test_revoked_signing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch) as relay:
        # Created before the revocation: still refused, the key must be valid now too.
        data = envelope(relay.net, created=datetime.now(UTC) - timedelta(minutes=5))
        with_keys(relay.net, "FR", KeyUse.SIGNING, datetime.now(UTC) - timedelta(minutes=1))
        await relay.client("US").publish_directory(relay.net.signed())
        assert_error(await submit(relay, data), 403, "key_revoked")


async def test_conflicting_resubmission(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch) as relay:
        msg_id = os.urandom(16).hex()
        assert (await submit(relay, envelope(relay.net, msg_id=msg_id)))[0] == 202
        other = envelope(relay.net, msg_id=msg_id, body=b'{"kind":"other"}')
        assert_error(await submit(relay, other), 409, "conflict")


async def test_mailbox_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch, mailbox_quota="1") as relay:
        assert (await submit(relay, envelope(relay.net, "FR", "US")))[0] == 202
        answer = await submit(relay, envelope(relay.net, "FR", "US"))
        assert_error(answer, 429, "mailbox_full")


async def test_ack_of_unknown_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch) as relay:
        never_sent = _ack_for(relay.net, envelope(relay.net, "FR", "US"))
        answer = await send(relay, "POST", "/v1/acks", never_sent, member="US")
        assert_error(answer, 404, "not_found")


async def test_ack_sent_by_another_member(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch) as relay:
        data = envelope(relay.net, "FR", "US")
        assert (await submit(relay, data))[0] == 202
        answer = await send(relay, "POST", "/v1/acks", _ack_for(relay.net, data), member="DE")
        assert_error(answer, 401, "unauthenticated")


# --- directory publication --------------------------------------------------------------


async def test_directory_rollback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch) as relay:
        v1 = relay.net.signed()
        relay.net.version = 2
        await relay.client("FR").publish_directory(relay.net.signed())
        answer = await send(relay, "POST", "/v1/directory", v1, signed=False)
        assert_error(answer, 409, "directory_rollback")


async def test_directory_below_threshold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch) as relay:
        relay.net.version = 2
        one = sign_directory(relay.net.directory(), relay.net.coordinators[:1])
        answer = await send(relay, "POST", "/v1/directory", one, signed=False)
        assert_error(answer, 400, "insufficient_signatures")


# --- routing and query parameters -------------------------------------------------------


async def test_unknown_route(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch) as relay:
        assert_error(await send(relay, "GET", "/v1/nothing-here"), 404, "not_found")


async def test_wrong_method(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with relay_with(tmp_path, monkeypatch) as relay:
        assert_error(await send(relay, "DELETE", "/v1/envelopes"), 405, "method_not_allowed")


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "after=-1", "wait=abc", "wait=999"])
async def test_bad_query_parameter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    async with relay_with(tmp_path, monkeypatch) as relay:
        answer = await send(relay, "GET", f"/v1/mailbox?{query}", member="US")
        assert_error(answer, 400, "malformed")


async def test_sender_share_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One member filling its share of a mailbox is refused alone, with Retry-After."""
    async with relay_with(
        tmp_path, monkeypatch, max_body_bytes="16384", sender_quota_bytes="16384"
    ) as relay:
        big = b'{"kind":"follow_up","pad":"' + b"x" * 7000 + b'"}'
        first = envelope(relay.net, "FR", "US", body=big)
        assert 8192 < len(first) <= 16384
        assert (await submit(relay, first))[0] == 202
        answer = await submit(relay, envelope(relay.net, "FR", "US", body=big))
        assert_error(answer, 429, "mailbox_full")
        assert int(answer[2]["Retry-After"]) >= 1
        other = envelope(relay.net, "DE", "US", body=big)
        assert (await submit(relay, other, member="DE"))[0] == 202
