"""Requests aiohttp refuses before our handlers get the one JSON error shape (issue 11, §1).

Raw sockets against a real relay and a real node API on loopback: an oversized request
line or header field, too many header fields, a method that is not a token, non-HTTP
bytes and a bad version line are each answered ``400`` with ``application/json``
``{code, message, request_id}``, not aiohttp's ``text/plain``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.integration._node_services import peers
from tests.support.network import make_network
from tests.support.relay import running_relay

BAD_REQUESTS = {
    "long_request_line": b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "long_header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n",
    "too_many_headers": b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    + b"".join(b"X-H%d: 1\r\n" % i for i in range(500))
    + b"\r\n",
    "bad_method": b"G(T /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "tls_hello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64 + b"\r\n\r\n",
    "bad_version": b"GET /healthz HTTP/9\r\nHost: x\r\n\r\n",
    "bad_header_name": b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n",
}


async def _exchange(url: str, data: bytes) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(10):
            raw = await reader.read()  # the server closes after an error answer
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def _check(answer: tuple[int, dict[str, str], bytes], name: str) -> None:
    status, headers, body = answer
    assert status == 400, (name, status, body[:200])
    assert headers["content-type"].startswith("application/json"), (name, headers)
    parsed = json.loads(body)
    assert set(parsed) == {"code", "message", "request_id"}, (name, parsed)
    assert parsed["code"] == "malformed", (name, parsed)
    assert headers["x-request-id"] == parsed["request_id"]


@pytest.mark.parametrize("name", sorted(BAD_REQUESTS))
async def test_relay_answers_parser_errors_in_json(tmp_path: Path, name: str) -> None:
    async with running_relay(tmp_path, publish=False) as relay:
        _check(await _exchange(relay.url, BAD_REQUESTS[name]), name)
        async with relay.session.get(relay.url + "/healthz") as resp:
            assert resp.status == 200  # still serving


async def test_node_api_answers_parser_errors_in_json(tmp_path: Path) -> None:
    net = make_network()
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, members=("FR",)) as p,
    ):
        base = p["FR"].api.base_url
        for name, data in sorted(BAD_REQUESTS.items()):
            _check(await _exchange(base, data), name)
        assert (await p["FR"].api.status()).member == "FR"  # still serving
