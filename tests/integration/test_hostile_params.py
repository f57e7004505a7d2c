"""Hostile integers and path segments at every route of the relay and of the node API.

Data-driven (tests/support/hostile.py): the routes come from the real applications,
and each must have a coverage entry. Every integer query parameter meets non-ASCII
digits, signs, whitespace and huge values; every path segment meets non-ASCII digits.
Signed relay routes get a valid RFC 9421 signature from a real member over the hostile
target, so the values reach the code behind authentication. Each answer is bounded by a
client timeout; none may be a 5xx or leave the one error shape; the server serves a
normal request afterwards and logs no error (issue 11, "Done when").
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from _pytest.mark import ParameterSet

from schemas.errors import ErrorBody, ErrorCode
from tests.integration._hostile_servers import (
    hostile_node,
    hostile_relay,
    node_routes,
    relay_routes,
)
from tests.support.hostile import (
    NODE_COVERAGE,
    RELAY_COVERAGE,
    Coverage,
    Findings,
    all_paths,
    concrete,
    coverage,
    hostile_paths,
    hostile_queries,
)
from tests.support.raw_http import (
    WS_UPGRADE,
    assert_sound,
    exchange,
    request_bytes,
)

RELAY = relay_routes()
NODE = node_routes()
# Labels of hostile_queries() that need only a sound answer: a parameter the route does
# not know is ignored. Every other label, a repeated integer too, is refused as malformed.
_SOUND_ONLY = ("unknown=", "long value")


def _grouped(found: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, ...]]:
    """(method, path) of each coverage entry -> the methods served (GET brings HEAD)."""
    out: dict[tuple[str, str], tuple[str, ...]] = {}
    for method, path in found:
        key = ("GET" if method == "HEAD" else method, path)
        out[key] = (*out.get(key, ()), method)
    return out


def _cases(
    found: list[tuple[str, str]],
    table: dict[tuple[str, str], Coverage],
    *,
    ints: bool = False,
) -> list[ParameterSet]:
    # One test (one server) per route; its HEAD twin runs in the same test.
    return [
        pytest.param(methods, path, id=f"{'+'.join(methods)} {path}")
        for (method, path), methods in _grouped(found).items()
        # A route without an entry still gets a test (which fails, naming it).
        if not ints or table.get((method, path), Coverage(ints=("?",))).ints
    ]


def test_every_route_has_hostile_coverage() -> None:
    """A route added to either application without an entry here fails (both ways)."""
    for found, table in ((RELAY, RELAY_COVERAGE), (NODE, NODE_COVERAGE)):
        served = {("GET" if m == "HEAD" else m, p) for m, p in found}
        assert served == set(table), served ^ set(table)


def _check_int(label: str, status: int, code: ErrorCode | None, head: bool) -> None:
    if label.startswith(_SOUND_ONLY):
        return
    assert status == 400, f"answered {status}, not refused"
    assert head or code is ErrorCode.MALFORMED, code


_NOT_THE_ROUTE = (ErrorCode.NOT_FOUND, ErrorCode.MALFORMED, ErrorCode.METHOD_NOT_ALLOWED)


def _check_path(status: int, error: ErrorBody | None) -> None:
    # Never read as the valid path: a hostile segment is not found or malformed.
    assert status in (400, 404, 405), f"answered {status}"
    assert error is None or error.code in _NOT_THE_ROUTE, error


@pytest.mark.parametrize(("methods", "path"), _cases(RELAY, RELAY_COVERAGE, ints=True))
async def test_relay_refuses_hostile_integers(
    methods: tuple[str, ...], path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cov = coverage(RELAY_COVERAGE, methods[0], path)
    found = Findings()
    async with hostile_relay(tmp_path, monkeypatch) as relay:
        for (label, query), method in itertools.product(hostile_queries(cov), methods):
            head = method == "HEAD"
            target = concrete(path, cov) + query
            headers = relay.signed(method, target) if cov.signed else {}
            if cov.ws:
                headers.update(WS_UPGRADE)
            with found.check(f"{method} {target} ({label})"):
                raw = request_bytes(method, target, headers)
                answer = await exchange(relay.url, raw, head=head)
                error = assert_sound(answer, "", head=head)
                # The signature verified: the hostile value reached the code behind it.
                assert error is None or error.code is not ErrorCode.UNAUTHENTICATED
                _check_int(label, answer.status, error.code if error else None, head)
        found.assert_none()


@pytest.mark.parametrize(("methods", "path"), _cases(NODE, NODE_COVERAGE, ints=True))
async def test_node_api_refuses_hostile_integers(
    methods: tuple[str, ...], path: str, tmp_path: Path
) -> None:
    cov = coverage(NODE_COVERAGE, methods[0], path)
    found = Findings()
    async with hostile_node(tmp_path) as node:
        for (label, query), method in itertools.product(hostile_queries(cov), methods):
            head = method == "HEAD"
            target = concrete(path, cov, case_id=node.case_id) + query
            with found.check(f"{method} {target} ({label})"):
                raw = request_bytes(method, target, node.auth())
                answer = await exchange(node.url, raw, head=head)
                error = assert_sound(answer, "", head=head)
                _check_int(label, answer.status, error.code if error else None, head)
        found.assert_none()


@pytest.mark.parametrize(("methods", "path"), _cases(RELAY, RELAY_COVERAGE))
async def test_relay_hostile_path_segments(
    methods: tuple[str, ...], path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cov = coverage(RELAY_COVERAGE, methods[0], path)
    found = Findings()
    async with hostile_relay(tmp_path, monkeypatch) as relay:
        bad = [h for valid in all_paths(path, cov) for h in hostile_paths(valid)]
        for target, method in itertools.product(bad, methods):
            head = method == "HEAD"
            body = b"{}" if method == "POST" else b""
            headers = relay.signed(method, target, body) if cov.signed else {}
            if body and not cov.signed:
                headers["Content-Type"] = "application/json"
            with found.check(f"{method} {target}"):
                raw = request_bytes(method, target, headers, body)
                answer = await exchange(relay.url, raw, head=head)
                _check_path(answer.status, assert_sound(answer, "", head=head))
        found.assert_none()


@pytest.mark.parametrize(("methods", "path"), _cases(NODE, NODE_COVERAGE))
async def test_node_api_hostile_path_segments(
    methods: tuple[str, ...], path: str, tmp_path: Path
) -> None:
    cov = coverage(NODE_COVERAGE, methods[0], path)
    found = Findings()
    async with hostile_node(tmp_path) as node:
        valid = concrete(path, cov, case_id=node.case_id)
        for target, method in itertools.product(hostile_paths(valid), methods):
            head = method == "HEAD"
            body = b"{}" if method == "POST" else b""
            headers = node.auth(**({"Content-Type": "application/json"} if body else {}))
            with found.check(f"{method} {target}"):
                raw = request_bytes(method, target, headers, body)
                answer = await exchange(node.url, raw, head=head)
                _check_path(answer.status, assert_sound(answer, "", head=head))
        found.assert_none()
