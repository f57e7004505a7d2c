"""Hostile bodies at every route that reads one, relay and node API alike.

Generic junk (empty, invalid UTF-8, deep nesting, huge numbers, wrong content types,
oversized) goes to every body-reading route of the coverage tables, signed by a real
member where the route needs it, so it reaches the decoder behind authentication.
Then valid signed objects that repeat a key, top-level and nested, also spelled with a
``\\u`` escape: a parser that keeps the first value and msgspec (the last) would read
different objects under one signature, so they must be refused (issue 11 §1).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from protocol import domains
from protocol.cosignature import CosignatureSigner, cosign
from protocol.email_record import email_submission
from protocol.errors import MalformedError
from protocol.keys import SigningKey
from schemas import node_api as api
from schemas.audit_api import CosignatureSubmission
from schemas.blobs import BlobCreate
from schemas.errors import ErrorBody, ErrorCode
from tests.integration._hostile_servers import (
    hostile_node,
    hostile_relay,
    node_routes,
    preservation_request,
    relay_routes,
)
from tests.support.hostile import (
    NODE_COVERAGE,
    RELAY_COVERAGE,
    Findings,
    concrete,
    coverage,
    sign,
)
from tests.support.hostile_bodies import (
    GENERIC_BODIES,
    JSON,
    ack_bytes,
    directory_bytes,
    envelope_with_header,
    nested_repeat,
    oversized,
    repeat_key,
)
from tests.support.raw_http import assert_sound, exchange, request_bytes
from tests.support.relay import envelope

RELAY_MAX_BODY = 2097152  # the config template's http.max_body_bytes
NODE_MAX_BODY = 1 << 20  # node.api.MAX_BODY


def _headers(
    url: str, key: SigningKey | None, path: str, body: bytes, ctype: str | None
) -> dict[str, str]:
    if key is None:
        return {"Content-Type": ctype} if ctype else {}
    try:
        return sign(url, key, "POST", path, body, ctype)
    except MalformedError:
        # The signer refuses a non-ASCII field: sign the JSON type, then send this one.
        return {**sign(url, key, "POST", path, body, JSON), "Content-Type": ctype or JSON}


def _post_routes(found: list[tuple[str, str]]) -> list[str]:
    return [p for m, p in found if m == "POST"]


async def test_relay_generic_bodies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = Findings()
    async with hostile_relay(tmp_path, monkeypatch) as relay:
        key = relay.running.net.members["US"].transport
        cases = [*GENERIC_BODIES, ("oversized", JSON, oversized(RELAY_MAX_BODY))]
        for path in _post_routes(relay_routes()):
            cov = coverage(RELAY_COVERAGE, "POST", path)
            assert cov.body, path
            target = concrete(path, cov)  # a route with parameters gets valid values
            for label, ctype, body in cases:
                with found.check(f"POST {path}: {label}"):
                    headers = _headers(relay.url, key if cov.signed else None, target, body, ctype)
                    answer = await exchange(relay.url, request_bytes("POST", target, headers, body))
                    error = assert_sound(answer, "")
                    assert error is not None, f"accepted: {answer.status}"
                    if label == "oversized":
                        assert error.code is ErrorCode.TOO_LARGE
                    assert error.code is not ErrorCode.UNAUTHENTICATED
        found.assert_none()


async def test_node_api_generic_bodies(tmp_path: Path) -> None:
    found = Findings()
    async with hostile_node(tmp_path) as node:
        cases = [*GENERIC_BODIES, ("oversized", JSON, oversized(NODE_MAX_BODY))]
        for route in _post_routes(node_routes()):
            cov = coverage(NODE_COVERAGE, "POST", route)
            assert cov.body, route
            path = concrete(route, cov, case_id=node.case_id)  # a case the node has
            for label, ctype, body in cases:
                if cov.body.startswith("none") and body in (b"", b"{}"):
                    continue  # a call that takes no body: nothing or {} is its request
                with found.check(f"POST {path}: {label}"):
                    headers = node.auth(**({"Content-Type": ctype} if ctype else {}))
                    answer = await exchange(node.url, request_bytes("POST", path, headers, body))
                    error = assert_sound(answer, "")
                    assert error is not None, f"accepted: {answer.status}"
                    # A file upload is streamed, not bounded by MAX_BODY: it is refused
                    # here for its type or its missing name instead.
                    if label == "oversized" and path != "/v1/attachments":
                        assert error.code is ErrorCode.TOO_LARGE
        found.assert_none()


def email_record_bytes(extra: bytes) -> bytes:
    """An e-mail record's exact bytes (§22.5) with ``extra`` before its closing brace."""
    at = datetime.now(UTC).isoformat().replace("+00:00", "Z").encode()
    return (
        b'{"v":1,"node":"FR","member":"MT","direction":"sent","case_id":"' + b"c" * 32
        + b'","sha256":"' + b"e" * 64 + b'","at":"' + at + b'"' + extra + b"}"
    )  # fmt: skip


def _refused(error: ErrorBody | None) -> None:
    # Step J1: a repeated key is refused before the object is trusted.
    assert error is not None, "accepted"
    assert error.code is ErrorCode.MALFORMED, error


async def test_relay_refuses_repeated_keys_in_signed_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = Findings()
    async with hostile_relay(tmp_path, monkeypatch) as relay:
        net = relay.running.net
        us = net.members["US"]
        cases: list[tuple[str, str, str | None, bytes]] = []
        cases += [
            (
                "envelope: sender twice",
                "/v1/envelopes",
                "FR",
                repeat_key(envelope(net, "FR", "US"), "sender", b'"DE"'),
            ),
            (
                "envelope: escaped sender",
                "/v1/envelopes",
                "FR",
                repeat_key(envelope(net, "FR", "US"), "sender", b'"DE"', escaped=True),
            ),
            (
                "header: recipient twice",
                "/v1/envelopes",
                "FR",
                envelope_with_header(net, b',"recipient":"US"'),
            ),
            (
                "header: escaped recipient",
                "/v1/envelopes",
                "FR",
                envelope_with_header(net, b',"r\\u0065cipient":"US"'),
            ),
        ]
        for label, inner, outer in (
            ("ack: msg_id twice inside", b',"sender":"FR"', None),
            ("ack: escaped key inside", b',"\\u0073ender":"FR"', None),
            ("ack: signer twice outside", b"", "signer"),
        ):
            msg_id, header = await relay.new_message()
            signed_ack = ack_bytes(
                us.signing, msg_id=msg_id, sender="FR", recipient="US", header=header, inner=inner
            )
            if outer:
                signed_ack = repeat_key(signed_ack, outer, b'"DE"')
            cases.append((label, "/v1/acks", "US", signed_ack))
        cases += [
            (
                "directory: network twice inside",
                "/v1/directory",
                None,
                directory_bytes(net, inner=b',"network":"test-net"'),
            ),
            (
                "directory: signatures twice outside",
                "/v1/directory",
                None,
                repeat_key(directory_bytes(net), "signatures", b"[]"),
            ),
        ]
        note = relay.checkpoint.note
        line = cosign(
            note[: note.index(b"\n\n") + 1].decode(),
            CosignatureSigner("FR", net.members["FR"].signing),
            int(time.time()),
        )
        cosig = msgspec.json.encode(
            CosignatureSubmission(checkpoint=note.decode(), cosignature=line)
        )
        cases.append(
            (
                "cosignature: checkpoint twice",
                "/v1/audit/cosignature",
                "FR",
                repeat_key(cosig, "checkpoint", b'"x"'),
            )
        )
        blob = msgspec.json.encode(
            BlobCreate(blob_id="a" * 32, recipient="US", ct_len=100, ct_sha256="ab" * 32)
        )
        ref = b'{"blob_id":"' + b"a" * 32 + b'","ct_sha256":"' + b"ab" * 32 + b'","ct_len":5'
        one = b',"attachments":[' + ref
        cases += [
            ("blob create: recipient twice", "/v1/blobs", "FR",
             repeat_key(blob, "recipient", b'"DE"')),
            ("blob create: escaped ct_len", "/v1/blobs", "FR",
             repeat_key(blob, "ct_len", b"1", escaped=True)),
            ("header: ct_len twice in an attachment", "/v1/envelopes", "FR",
             envelope_with_header(net, one + b',"ct_len":6}]')),
            ("header: attachments twice", "/v1/envelopes", "FR",
             envelope_with_header(net, one + b"}]" + one + b"}]")),
        ]  # fmt: skip
        fr = net.members["FR"].signing
        for label, inner, outer in (
            ("email record: member twice inside", b',"member":"DE"', None),
            ("email record: escaped key inside", b',"\\u006eode":"DE"', None),
            ("email record: sig twice outside", b"", "sig"),
        ):
            raw = email_record_bytes(inner)
            body = email_submission(raw, fr.sign(domains.EMAIL_RECORD, raw))
            if outer:
                body = repeat_key(body, outer, b'"' + b"A" * 86 + b'=="')
            cases.append((label, "/v1/email-records", "FR", body))
        for label, path, member, body in cases:
            with found.check(label):
                headers = (
                    sign(relay.url, net.members[member].transport, "POST", path, body)
                    if member
                    else {"Content-Type": JSON}
                )
                answer = await exchange(relay.url, request_bytes("POST", path, headers, body))
                _refused(assert_sound(answer, ""))
        found.assert_none()


async def test_node_api_refuses_repeated_keys(tmp_path: Path) -> None:
    found = Findings()
    async with hostile_node(tmp_path) as node:
        good = msgspec.json.encode(api.SendRequest(to="US", body=preservation_request("FR", "US")))
        inner = msgspec.json.encode(preservation_request("FR", "US"))
        cases = {
            "to twice": repeat_key(good, "to", b'"DE"'),
            "escaped to": repeat_key(good, "to", b'"DE"', escaped=True),
            "case_id twice in the body": b'{"to":"US","body":'
            + nested_repeat(inner, "case_id", b'"' + b"d" * 32 + b'"')
            + b"}",
        }
        for label, body in cases.items():
            with found.check(label):
                headers = node.auth(**{"Content-Type": JSON})
                raw = request_bytes("POST", "/v1/messages", headers, body)
                answer = await exchange(node.url, raw)
                _refused(assert_sound(answer, ""))
        found.assert_none()


async def test_relay_refuses_acks_outside_the_time_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A validly signed ack dated ahead beyond the skew is refused like any signed object."""
    found = Findings()
    async with hostile_relay(tmp_path, monkeypatch) as relay:
        net = relay.running.net
        for label, shift in (
            ("300 days ahead", timedelta(days=300)),
            ("1 hour ahead", timedelta(hours=1)),
        ):
            msg_id, header = await relay.new_message()
            body = ack_bytes(
                net.members["US"].signing,
                msg_id=msg_id,
                sender="FR",
                recipient="US",
                header=header,
                acked_at=datetime.now(UTC) + shift,
            )
            with found.check(label):
                headers = sign(relay.url, net.members["US"].transport, "POST", "/v1/acks", body)
                answer = await exchange(relay.url, request_bytes("POST", "/v1/acks", headers, body))
                error = assert_sound(answer, "")
                assert error is not None, f"accepted: {answer.body[:200]!r}"
                assert error.code is ErrorCode.CLOCK_SKEW, error  # step A4
        found.assert_none()
