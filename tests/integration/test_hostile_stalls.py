"""Stalled connections at every route of the relay and of the node API.

A client that sends nothing, half a request line, half its headers or half its body,
or that goes idle after an answer, must not hold a connection (and its file
descriptor) for good: the server answers or closes within a bound. A client that hangs
up mid-body is its own doing: it must not be logged as an internal error (a traceback
per hang-up, and an alert on internal errors a peer could trigger at will).

Every phase is bounded by serving/guard.py (issue 11 §2, "Stalled connections"); the
tests lower the bounds (the relay's [http] settings, the node API's ConnectionLimits)
to a few seconds. All stalls of a test run concurrently, so a test takes about one
bound, not one per case.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import node.api.handlers as node_api
from schemas.errors import ErrorCode
from serving import ConnectionLimits
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
from tests.support.hostile_requests import WS_CASES
from tests.support.raw_http import WS_UPGRADE, RawAnswer, assert_sound, read_answer, request_bytes

#: the relay's http.read_timeout and the node API's body timeout in these tests (seconds)
BODY_TIMEOUT = 1.0
#: the longest a stalled connection may stay open in any phase (seconds); generous so
#: that a loaded CI machine does not make it flaky
STALL_BOUND = 15.0
#: header_timeout and keepalive_timeout of the relay and the node API in these tests
#: (seconds; the defaults are 10 and 15)
HEADER_TIMEOUT = 2.0
_BODY = b'{"v":1,"padding":"' + b"a" * 64 + b'"}'


async def _stall(url: str, data: bytes, within: float) -> tuple[float | None, bytes]:
    """Send ``data``, then wait for the server to close: (seconds taken or None, bytes)."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    started = time.monotonic()
    got = b""
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(within):
            while chunk := await reader.read(65536):
                got += chunk
        return time.monotonic() - started, got
    except TimeoutError:
        return None, got
    except ConnectionError:
        return time.monotonic() - started, got
    finally:
        writer.close()


async def _hang_up(url: str, data: bytes) -> None:
    """Send ``data`` (half a body) and close the connection."""
    parts = urlsplit(url)
    _, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(data)
    await writer.drain()
    await asyncio.sleep(0.1)  # let the server start reading the body first
    writer.close()


def _head(method: str, target: str, auth: str) -> bytes:
    return f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}".encode()


def _header_stalls(targets: list[tuple[str, str]], auth: str) -> dict[str, bytes]:
    stalls = {"nothing sent": b""}
    for method, target in targets:
        line = f"{method} {target} HTTP/1.1".encode()
        stalls[f"half request line: {method} {target}"] = line[: len(line) // 2]
        stalls[f"half headers: {method} {target}"] = _head(method, target, auth) + b"X-Half: 1"
        # A complete request on a keep-alive connection, then silence.
        stalls[f"idle after an answer: {method} {target}"] = _head(method, target, auth) + b"\r\n"
        # A body announced to a route that reads none, then never sent.
        stalls[f"unread half body: {method} {target}"] = (
            _head(method, target, auth) + b"Content-Length: 100\r\n\r\n{"
        )
    return stalls


def _half_body(path: str, auth: str) -> bytes:
    # A file upload (§8.6) takes octets and names the file in its query.
    upload = path == "/v1/attachments"
    target = path + "?name=a.txt&media_type=text/plain" if upload else path
    kind = b"application/octet-stream" if upload else b"application/json"
    return (
        _head("POST", target, auth)
        + b"Content-Type: "
        + kind
        + b"\r\n"
        + f"Content-Length: {len(_BODY)}\r\n\r\n".encode()
        + _BODY[: len(_BODY) // 2]
    )


async def _closed_within(url: str, stalls: dict[str, bytes], bound: float) -> Findings:
    found = Findings()
    results = await asyncio.gather(*(_stall(url, data, bound) for data in stalls.values()))
    for label, (took, _) in zip(stalls, results, strict=True):
        with found.check(label):
            assert took is not None, f"still open after {bound} s"
    return found


async def _half_bodies(url: str, paths: list[str], auth: str) -> Findings:
    """Half a body to every path: a 400 ``malformed`` answer within the body timeout."""
    found = Findings()
    bound = BODY_TIMEOUT + 5.0  # the answer comes after the timeout, not at once
    reader_results = await asyncio.gather(
        *(_answer_to(url, _half_body(p, auth), bound) for p in paths)
    )
    for path, answer in zip(paths, reader_results, strict=True):
        with found.check(f"half body: POST {path}"):
            assert answer is not None, f"no answer within {bound} s"
            error = assert_sound(answer, "")
            assert error is not None
            assert error.code is ErrorCode.MALFORMED, error
    await asyncio.gather(*(_hang_up(url, _half_body(p, auth)) for p in paths))
    return found


async def _answer_to(url: str, data: bytes, within: float) -> RawAnswer | None:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(within):
            return await read_answer(reader)
    except TimeoutError:
        return None
    finally:
        writer.close()


def _relay_targets(relay: Relay) -> list[tuple[str, str]]:
    return [(m, concrete(p, coverage(RELAY_COVERAGE, m, p))) for m, p in relay_routes()]


def _node_targets(node: NodeApi) -> list[tuple[str, str]]:
    return [
        (m, concrete(p, coverage(NODE_COVERAGE, m, p), case_id=node.case_id))
        for m, p in node_routes()
    ]


async def test_relay_half_bodies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with hostile_relay(tmp_path, monkeypatch, read_timeout=str(BODY_TIMEOUT)) as relay:
        paths = [concrete(p, coverage(RELAY_COVERAGE, m, p)) for m, p in relay_routes()]
        paths = [p for p, (m, _) in zip(paths, relay_routes(), strict=True) if m == "POST"]
        (await _half_bodies(relay.url, paths, "")).assert_none()
        # Leaving the context checks that the hang-ups logged no error.


async def test_node_api_half_bodies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node_api, "BODY_TIMEOUT", BODY_TIMEOUT)
    async with hostile_node(tmp_path) as node:
        paths = [
            concrete(p, coverage(NODE_COVERAGE, m, p), case_id=node.case_id)
            for m, p in node_routes()
            if m == "POST"
        ]
        auth = f"Authorization: Bearer {node.token}\r\n"
        (await _half_bodies(node.url, paths, auth)).assert_none()


async def test_relay_closes_stalled_connections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with hostile_relay(
        tmp_path,
        monkeypatch,
        read_timeout=str(BODY_TIMEOUT),
        header_timeout=str(HEADER_TIMEOUT),
        keepalive_timeout=str(HEADER_TIMEOUT),
    ) as relay:
        stalls = _header_stalls(_relay_targets(relay), "")
        (await _closed_within(relay.url, stalls, STALL_BOUND)).assert_none()


async def test_node_api_closes_stalled_connections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(node_api, "BODY_TIMEOUT", BODY_TIMEOUT)
    limits = ConnectionLimits(header_timeout=HEADER_TIMEOUT, keepalive_timeout=HEADER_TIMEOUT)
    async with hostile_node(tmp_path, limits) as node:
        auth = f"Authorization: Bearer {node.token}\r\n"
        stalls = _header_stalls(_node_targets(node), auth)
        (await _closed_within(node.url, stalls, STALL_BOUND)).assert_none()


async def test_relay_push_socket_hostile_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Junk frames, or silence, on an open mailbox WebSocket: closed within a few
    heartbeats (the heartbeat bounds a silent client), nothing logged as an error."""
    heartbeat = 1.0
    async with hostile_relay(tmp_path, monkeypatch, ws_heartbeat=str(heartbeat)) as relay:
        key = relay.running.net.members["DE"].transport
        target = "/v1/mailbox/ws?after=0"

        async def attack(data: bytes) -> float | None:
            upgrade = request_bytes(
                "GET", target, {**sign(relay.url, key, "GET", target), **WS_UPGRADE}
            )
            took, got = await _stall(relay.url, upgrade + data, 5 * heartbeat)
            assert got.startswith(b"HTTP/1.1 101"), got[:100]
            return took

        found = Findings()
        results = await asyncio.gather(*(attack(d) for d in WS_CASES.values()))
        for name, took in zip(WS_CASES, results, strict=True):
            with found.check(name):
                assert took is not None, f"still open after {5 * heartbeat} s"
        found.assert_none()
