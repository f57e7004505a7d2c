"""Odd and oversized request lines and headers at every route of the relay and node API.

Each case of tests/support/hostile_requests.py spoils one thing in a request that the
route would otherwise serve (signed by a real member at the relay, with the bearer token
at the node API), and is sent over a raw socket to every route. No answer may be a 5xx
or leave the one JSON error shape, none may hang (client timeout), the server answers a
normal request afterwards, and nothing is logged at error level.

Most cases are refused by aiohttp's HTTP parser before our middleware runs, in plain
text, and aiohttp logs each at error level: those are issue 11 §1 ("Errors raised by
aiohttp before our handlers"), fixed on branch h11-a-input.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from schemas.errors import ErrorCode
from tests.integration._hostile_servers import (
    NodeApi,
    Relay,
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
    coverage,
    sign,
)
from tests.support.hostile_requests import HEADER_CASES, SIGNATURE_CASES, Valid
from tests.support.raw_http import WS_UPGRADE, assert_sound, exchange, request_bytes

FIXED_ON_A = pytest.mark.xfail(strict=True, reason="issue 11 §1: fixed on branch h11-a-input")
#: cases that reach our middleware today; every other case is refused by aiohttp's parser
HANDLED_TODAY = frozenset(
    {
        "gzip, chunked",
        "non-ASCII header value",
        "invalid UTF-8 in a header",
        "hostile X-Request-Id",
        "HTTP/2.0 in the request line",
        "no version",
        "absolute-form target",
    }
)
PRE_HANDLER = frozenset(HEADER_CASES) - HANDLED_TODAY


def test_case_groups_are_known() -> None:
    """A case renamed or removed in hostile_requests.py must be re-sorted here."""
    assert set(HEADER_CASES) >= HANDLED_TODAY


def _relay_requests(relay: Relay) -> Iterable[tuple[str, Valid]]:
    key = relay.running.net.members["US"].transport
    for method, path in relay_routes():
        cov = coverage(RELAY_COVERAGE, method, path)
        target = concrete(path, cov) + ("?after=0" if cov.ws else "")
        body = b"{}" if method == "POST" else b""
        headers = sign(relay.url, key, method, target, body) if cov.signed else {}
        if body and not cov.signed:
            headers["Content-Type"] = "application/json"
        if cov.ws:
            headers.update(WS_UPGRADE)
        yield method, Valid(method, target, tuple(headers.items()), body)


def _node_requests(node: NodeApi) -> Iterable[tuple[str, Valid]]:
    for method, path in node_routes():
        cov = coverage(NODE_COVERAGE, method, path)
        target = concrete(path, cov, case_id=node.case_id)
        body = b"{}" if method == "POST" else b""
        headers = node.auth(**({"Content-Type": "application/json"} if body else {}))
        yield method, Valid(method, target, tuple(headers.items()), body)


async def _attack(url: str, requests: list[tuple[str, Valid]], cases: Iterable[str]) -> Findings:
    found = Findings()
    for name in sorted(cases):
        for method, valid in requests:
            with found.check(f"{name}: {method} {valid.target}"):
                head = method == "HEAD"
                answer = await exchange(url, HEADER_CASES[name](valid), head=head)
                assert_sound(answer, "", head=head)
    return found


async def test_relay_odd_headers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with hostile_relay(tmp_path, monkeypatch) as relay:
        found = await _attack(relay.url, list(_relay_requests(relay)), HANDLED_TODAY)
        found.assert_none()


@FIXED_ON_A
async def test_relay_odd_headers_refused_before_our_handlers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with hostile_relay(tmp_path, monkeypatch) as relay:
        found = await _attack(relay.url, list(_relay_requests(relay)), PRE_HANDLER)
        found.assert_none()


async def test_node_api_odd_headers(tmp_path: Path) -> None:
    async with hostile_node(tmp_path) as node:
        found = await _attack(node.url, list(_node_requests(node)), HANDLED_TODAY)
        found.assert_none()


@FIXED_ON_A
async def test_node_api_odd_headers_refused_before_our_handlers(tmp_path: Path) -> None:
    async with hostile_node(tmp_path) as node:
        found = await _attack(node.url, list(_node_requests(node)), PRE_HANDLER)
        found.assert_none()


async def test_relay_hostile_signature_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spoiled RFC 9421 fields of a real member's signature, at every signed route."""
    found = Findings()
    async with hostile_relay(tmp_path, monkeypatch) as relay:
        key = relay.running.net.members["US"].transport
        for method, path in relay_routes():
            cov = coverage(RELAY_COVERAGE, method, path)
            if not cov.signed:
                continue
            target = concrete(path, cov) + ("?after=0" if cov.ws else "")
            body = b"{}" if method == "POST" else b""
            for name, spoil in SIGNATURE_CASES.items():
                if name.startswith("Content-Digest") and not body:
                    continue  # §8.2: covered only with a body; uncovered fields are not read
                headers = spoil(sign(relay.url, key, method, target, body))
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
