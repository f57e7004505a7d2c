"""Request bodies are taken as sent: a content coding is refused 415 (serving/bodies.py).

aiohttp decoded ``Content-Encoding: gzip`` and ``deflate`` bodies before any check of
ours, and a body that failed to decode reached the handler as ``RequestPayloadError``: a
500 with a traceback on every write route of the relay and of the node's local API (an
outside probe: ``\\x1f\\x8bgarbage`` as gzip). Now every route of both refuses any coding
but ``identity`` with ``415 unsupported_media_type`` and ``Accept-Encoding: identity``,
signed or not, before its body is read; the servers never decompress. The console has
the same rule with its own error page (tests/integration/test_console_limits.py).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import msgspec
import pytest

from schemas.errors import ErrorBody, ErrorCode
from serving.bodies import coding_refused
from tests.integration._hostile_servers import (
    coverage_routes,
    hostile_node,
    hostile_relay,
    node_routes,
    relay_routes,
)
from tests.support.hostile import NODE_COVERAGE, RELAY_COVERAGE, Findings, concrete
from tests.support.raw_http import RawAnswer, exchange, request_bytes

JSON = "application/json"
BODY = b'{"v":1}'
CODINGS = [
    ("gzip", b"\x1f\x8bgarbage"),  # fails to decode: was a 500
    ("deflate", b"xx"),
    ("gzip", gzip.compress(BODY)),  # decodes fine: still not taken
    ("zstd", b"xx"),
    ("br", b"xx"),
    ("identity, gzip", b"xx"),
    ("GZIP", b"xx"),
]


def _refused(answer: RawAnswer) -> None:
    assert answer.status == 415, answer.body[:200]
    assert msgspec.json.decode(answer.body, type=ErrorBody).code is ErrorCode.UNSUPPORTED_MEDIA_TYPE
    assert answer.headers["Accept-Encoding"] == "identity"


def _writes(found: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(m, p) for m, p in found if m in ("POST", "PUT")]


async def test_relay_refuses_every_content_coding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = Findings()
    async with hostile_relay(tmp_path, monkeypatch) as relay:
        for method, path, cov in coverage_routes(_writes(relay_routes()), RELAY_COVERAGE):
            target = concrete(path, cov)
            for coding, body in CODINGS:
                with found.check(f"{method} {path}: {coding}"):
                    # Signed over the bytes as sent: the coding alone is refused.
                    headers = relay.signed(method, target, body, JSON) if cov.signed else {}
                    headers = {**headers, "Content-Type": JSON, "Content-Encoding": coding}
                    _refused(
                        await exchange(relay.url, request_bytes(method, target, headers, body))
                    )
        found.assert_none()


async def test_node_api_refuses_every_content_coding(tmp_path: Path) -> None:
    found = Findings()
    async with hostile_node(tmp_path) as node:
        for method, route, cov in coverage_routes(_writes(node_routes()), NODE_COVERAGE):
            path = concrete(route, cov, case_id=node.case_id)
            for coding, body in CODINGS:
                with found.check(f"{method} {path}: {coding}"):
                    headers = node.auth(**{"Content-Type": JSON, "Content-Encoding": coding})
                    _refused(await exchange(node.url, request_bytes(method, path, headers, body)))
        found.assert_none()


async def test_identity_is_taken_as_no_coding(tmp_path: Path) -> None:
    async with hostile_node(tmp_path) as node:
        for coding in ("identity", "Identity", "identity, identity"):
            headers = node.auth(**{"Content-Encoding": coding})
            answer = await exchange(node.url, request_bytes("GET", "/v1/status", headers))
            assert answer.status == 200, (coding, answer.body[:200])


@pytest.mark.parametrize(
    ("fields", "refused"),
    [
        ([], False),
        (["identity"], False),
        (["IDENTITY", " identity "], False),
        ([""], False),
        (["gzip"], True),
        (["identity", "gzip"], True),
        (["identity,x-gzip"], True),
        (["aes128gcm"], True),
    ],
)
def test_which_codings_are_refused(fields: list[str], refused: bool) -> None:
    from aiohttp.test_utils import make_mocked_request
    from multidict import CIMultiDict

    headers = CIMultiDict(("Content-Encoding", f) for f in fields)
    request = make_mocked_request("POST", "/", headers=headers)
    assert (coding_refused(request) is not None) is refused
