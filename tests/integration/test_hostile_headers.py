"""Odd and oversized request lines and headers at every route of the relay and node API.

Each case of tests/support/hostile_requests.py spoils one thing in a request that the
route would otherwise serve (signed by a real member at the relay, with the bearer token
at the node API), and is sent over a raw socket to every route. No answer may be a 5xx
or leave the one JSON error shape, none may hang (client timeout), the server answers a
normal request afterwards, and nothing is logged at error level.

Most cases are refused by aiohttp's HTTP parser before our middleware runs; those
answers too must be in the one error shape, with a code (issue 11 §1, "Errors raised by
aiohttp before our handlers": serving/errors.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from schemas.errors import ErrorCode
from tests.integration._hostile_servers import (
    NodeApi,
    Relay,
    coverage_routes,
    hostile_node,
    hostile_relay,
    node_routes,
    relay_routes,
)
from tests.support.hostile import (
    NODE_COVERAGE,
    RELAY_COVERAGE,
    Findings,
    concrete,
)
from tests.support.hostile_requests import HEADER_CASES, SIGNATURE_CASES, Valid
from tests.support.raw_http import WS_UPGRADE, assert_sound, exchange, request_bytes


def _relay_requests(relay: Relay) -> Iterable[tuple[str, Valid]]:
    for method, path, cov in coverage_routes(relay_routes(), RELAY_COVERAGE):
        target = concrete(path, cov) + ("?after=0" if cov.ws else "")
        body = b"{}" if method == "POST" else b""
        headers = relay.signed(method, target, body) if cov.signed else {}
        if body and not cov.signed:
            headers["Content-Type"] = "application/json"
        if cov.ws:
            headers.update(WS_UPGRADE)
        yield method, Valid(method, target, tuple(headers.items()), body)


def _node_requests(node: NodeApi) -> Iterable[tuple[str, Valid]]:
    for method, path, cov in coverage_routes(node_routes(), NODE_COVERAGE):
        target = concrete(path, cov, case_id=node.case_id)
        body = b"{}" if method == "POST" else b""
        headers = node.auth(**({"Content-Type": "application/json"} if body else {}))
        yield method, Valid(method, target, tuple(headers.items()), body)


async def _attack(url: str, requests: list[tuple[str, Valid]]) -> Findings:
    found = Findings()
    for name in sorted(HEADER_CASES):
        for method, valid in requests:
            with found.check(f"{name}: {method} {valid.target}"):
                head = method == "HEAD"
                answer = await exchange(url, HEADER_CASES[name](valid), head=head)
                assert_sound(answer, "", head=head)
    return found


async def test_relay_odd_headers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with hostile_relay(tmp_path, monkeypatch) as relay:
        (await _attack(relay.url, list(_relay_requests(relay)))).assert_none()


async def test_node_api_odd_headers(tmp_path: Path) -> None:
    async with hostile_node(tmp_path) as node:
        (await _attack(node.url, list(_node_requests(node)))).assert_none()


async def test_relay_hostile_signature_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spoiled RFC 9421 fields of a real member's signature, at every signed route."""
    found = Findings()
    async with hostile_relay(tmp_path, monkeypatch) as relay:
        for method, path, cov in coverage_routes(relay_routes(), RELAY_COVERAGE):
            if not cov.signed:
                continue
            target = concrete(path, cov) + ("?after=0" if cov.ws else "")
            body = b"{}" if method == "POST" else b""
            for name, spoil in SIGNATURE_CASES.items():
                if name.startswith("Content-Digest") and not body:
                    continue  # §8.2: covered only with a body; uncovered fields are not read
                headers = spoil(relay.signed(method, target, body))
                items = list(headers.items()) if isinstance(headers, dict) else headers
                if cov.ws:
                    items += list(WS_UPGRADE.items())
                with found.check(f"{name}: {method} {target}"):
                    raw = request_bytes(method, target, items, body)
                    answer = await exchange(relay.url, raw, head=method == "HEAD")
                    error = assert_sound(answer, "", head=method == "HEAD")
                    assert answer.status >= 400, f"accepted: {answer.status}"
                    assert error is None or error.code is not ErrorCode.INTERNAL
        found.assert_none()
