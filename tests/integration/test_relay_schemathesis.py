"""schemathesis against the real relay's /v1/openapi.json, every request RFC 9421-signed.

Checks: no 5xx, and every response conforms to the document (status code listed, body
matches its schema, content type declared). Bounded: a few examples per operation.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.generation.case import Case
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from protocol.httpsig import sign_request
from protocol.keys import SigningKey
from tests.support.relay import envelope, running_relay

EXAMPLES = 15
# Conformance and "no 5xx" only. positive_data_acceptance does not apply: a schema-valid
# envelope is still refused (400/401) unless its signatures and digests verify, which a
# JSON Schema cannot express.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


class RelaySignature(requests.auth.AuthBase):
    """Sign the prepared request (exact body bytes) under the relay247 profile (§8.2)."""

    def __init__(self, key: SigningKey) -> None:
        self.key = key

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        raw = r.body
        body = raw.encode() if isinstance(raw, str) else raw if isinstance(raw, bytes) else b""
        if body and "Content-Type" not in r.headers:
            r.headers["Content-Type"] = "application/json"
        signed = sign_request(
            r.method or "GET",
            r.url or "",
            {k: str(v) for k, v in r.headers.items()},
            body,
            key=self.key,
            keyid=self.key.fingerprint,
            now=int(time.time()),
            nonce=os.urandom(16).hex(),
        )
        r.headers.update(signed)
        return r


def _operations(url: str) -> list[APIOperation[Any, Any, Any, Any]]:
    schema = schemathesis.openapi.from_url(url + "/v1/openapi.json")
    ops = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # every operation of the document must load
        ops.append(result.ok())
    # A WebSocket upgrade (101) is not something a request/response fuzzer can exercise.
    return [op for op in ops if op.path != "/v1/mailbox/ws"]


def _short_poll(case: Case[Any]) -> Case[Any]:
    # A long-poll legitimately holds the answer up to ``wait`` seconds; keep the run bounded.
    if isinstance(case.query, dict) and "wait" in case.query:
        case.query["wait"] = 0
    return case


def _fuzz_operation(
    op: APIOperation[Any, Any, Any, Any], url: str, session: requests.Session, statuses: set[int]
) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy().map(_short_poll))
    def run(case: Case[Any]) -> None:
        response = case.call_and_validate(base_url=url, session=session, checks=CHECKS)
        statuses.add(response.status_code)
        assert response.status_code < 500

    run()


def _fuzz(url: str, key: SigningKey) -> dict[str, set[int]]:
    seen: dict[str, set[int]] = {}
    with requests.Session() as session:
        session.auth = RelaySignature(key)
        for op in _operations(url):
            _fuzz_operation(
                op, url, session, seen.setdefault(f"{op.method.upper()} {op.path}", set())
            )
    return seen


async def test_openapi_conformance_with_signed_requests(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        # One real message so the mailbox answers with a non-empty page too.
        await relay.client("FR").submit(envelope(relay.net, "FR", "US"))
        # schemathesis drives requests synchronously; the relay needs this event loop.
        seen = await asyncio.to_thread(_fuzz, relay.url, relay.net.members["US"].transport)
    assert "POST /v1/envelopes" in seen
    assert "GET /v1/mailbox" in seen
    blob_ops = ["POST /v1/blobs", "PUT /v1/blobs/{blob_id}/chunks/{n}"]
    blob_ops += ["POST /v1/blobs/{blob_id}/commit", "GET /v1/blobs/{blob_id}/content"]
    blob_ops += ["POST /v1/blobs/{blob_id}/discard"]
    for blob_op in blob_ops:
        assert seen[blob_op], blob_op  # the attachment endpoints are in the document
    # The signature hook works: signed pulls are answered 200, not only rejected.
    assert 200 in seen["GET /v1/mailbox"]
    assert all(statuses for statuses in seen.values())
