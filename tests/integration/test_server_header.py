"""The relay and the local API name themselves ``Server: relay247`` (serving/bodies.py),
not aiohttp's ``Python/3.x aiohttp/3.y`` (what a scanner matches against advisories), on
answers, refusals and errors alike. The console does the same (console/_security.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration._hostile_servers import hostile_node, hostile_relay
from tests.support.raw_http import exchange, request_bytes


async def test_the_relay_names_no_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with hostile_relay(tmp_path, monkeypatch) as relay:
        for method, path in (("GET", "/healthz"), ("GET", "/nope"), ("POST", "/v1/acks")):
            answer = await exchange(relay.url, request_bytes(method, path))
            assert answer.headers.getall("Server") == ["relay247"], (path, answer.status)


async def test_the_local_api_names_no_versions(tmp_path: Path) -> None:
    async with hostile_node(tmp_path) as node:
        for headers in (node.auth(), {}):  # answered, and refused 401
            answer = await exchange(node.url, request_bytes("GET", "/v1/status", headers))
            assert answer.headers.getall("Server") == ["relay247"], answer.status
