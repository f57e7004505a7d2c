"""The Ed25519 checks of an e-mail record and of an ack run off the event loop (§22.5, §6).

As for an envelope (tests/integration/test_relay_verify_thread.py), the request's RFC
9421 signature and the body's own signature (G3 for an e-mail record, A1–A4 for an ack)
are verified together on a verifier thread, and the body's failure is answered only
after the nonce (H8): the public answers are those of the steps run in order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from protocol.codec import decode
from protocol.email_record import email_submission, sign_email_record
from relay.http import _email_records, _envelopes
from schemas.envelope import Envelope
from schemas.errors import ErrorBody, ErrorCode
from tests.integration.test_relay_email_records import bridged, record
from tests.support.hostile_bodies import ack_bytes
from tests.support.relay import envelope, post_signed, running_relay

pytestmark = pytest.mark.usefixtures("relay_backend")


def _spy(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[str]:
    """Record the thread that runs ``module.name`` (the relay's own reference to it)."""
    threads: list[str] = []
    real: Callable[..., Any] = getattr(module, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return threads


async def test_an_email_record_is_verified_on_a_verifier_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = _spy(monkeypatch, _email_records, "verify_email_record")
    net = bridged()
    async with running_relay(tmp_path, net) as relay:
        raw, sig = sign_email_record(record(), net.members["FR"].signing)
        answer = await post_signed(relay, "FR", "/v1/email-records", email_submission(raw, sig))
        assert answer.status == 200, answer.body
        # a record signed by another key: refused as before, from the verifier thread too
        _, bad = sign_email_record(record(), net.members["US"].signing)
        answer = await post_signed(relay, "FR", "/v1/email-records", email_submission(raw, bad))
        code = msgspec.json.decode(answer.body, type=ErrorBody).code
        assert (answer.status, code) == (401, ErrorCode.UNAUTHENTICATED)
    assert len(threads) == 2
    assert all(t.startswith("relay-verify") for t in threads), threads


async def test_an_ack_is_verified_on_a_verifier_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = _spy(monkeypatch, _envelopes, "verify_ack")
    async with running_relay(tmp_path) as relay:
        body = envelope(relay.net, "FR", "US")
        assert (await post_signed(relay, "FR", "/v1/envelopes", body)).status == 202
        env = decode(msgspec.json.Decoder(Envelope), body, "envelope", limit=1 << 20)
        header = msgspec.json.decode(env.header)
        ack = ack_bytes(
            relay.net.members["US"].signing,
            msg_id=header["msg_id"],
            sender="FR",
            recipient="US",
            header=env.header,
        )
        answer = await post_signed(relay, "US", "/v1/acks", ack)
        assert answer.status == 200, answer.body
    assert threads, "verify_ack was not called"
    assert all(t.startswith("relay-verify") for t in threads), threads


async def test_every_signed_write_checks_its_request_signature_on_a_verifier_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``signed_write`` (a cosignature, a blob's announcement): H1–H7 off the loop too;
    the body's own check, on the loop, answers as before."""
    from relay.http import _auth

    threads = _spy(monkeypatch, _auth, "_verify")
    async with running_relay(tmp_path) as relay:
        for path in ("/v1/audit/cosignature", "/v1/blobs"):
            answer = await post_signed(relay, "FR", path, b"{}")
            code = msgspec.json.decode(answer.body, type=ErrorBody).code
            assert (answer.status, code) == (400, ErrorCode.MALFORMED), answer.body
    assert len(threads) == 2
    assert all(t.startswith("relay-verify") for t in threads), threads
