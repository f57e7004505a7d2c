"""A raw HTTP/1.1 client for the hostile-input suite: it sends exactly the bytes given.

Client libraries refuse or normalise what this suite must send (duplicate
Content-Length, non-ASCII header bytes, a request line cut in half); every exchange is
bounded by a client timeout, so a server that hangs fails the test instead of stalling it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import msgspec
from multidict import CIMultiDict

from schemas.errors import HTTP_STATUS, ErrorBody, ErrorCode

#: seconds any one exchange may take before the suite calls it a hang
CLIENT_TIMEOUT = 10.0


def request_bytes(
    method: str,
    target: str,
    headers: Mapping[str, str] | list[tuple[str, str]] = (),  # type: ignore[assignment]
    body: bytes = b"",
    *,
    host: str = "127.0.0.1",
    content_length: bool = True,
) -> bytes:
    """One HTTP/1.1 request, exactly as given (``Connection: close`` unless set)."""
    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    names = {k.lower() for k, _ in items}
    if "host" not in names:
        items.insert(0, ("Host", host))
    if "connection" not in names:
        items.append(("Connection", "close"))
    if content_length and body and "content-length" not in names:
        items.append(("Content-Length", str(len(body))))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items)
    return head.encode("utf-8") + b"\r\n" + body


@dataclass
class RawAnswer:
    """One answer read off a raw socket (status 0: closed without an answer)."""

    status: int
    headers: CIMultiDict[str]
    body: bytes


async def exchange(
    url: str, data: bytes, *, within: float = CLIENT_TIMEOUT, head: bool = False
) -> RawAnswer:
    """Send ``data`` on a fresh connection and read one answer.

    Raises:
        TimeoutError: no complete answer (or close) within ``within`` seconds: a hang.
    """
    parts = urlsplit(url)
    async with asyncio.timeout(within):
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            try:
                writer.write(data)
                await writer.drain()
            except ConnectionError:
                pass  # the server may refuse and close before reading everything
            return await read_answer(reader, head=head)
        finally:
            writer.close()


async def read_answer(reader: asyncio.StreamReader, *, head: bool = False) -> RawAnswer:
    """Parse one HTTP/1.1 answer (Content-Length, chunked or until close)."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return RawAnswer(0, CIMultiDict(), b"")
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.add(name.strip(), value.strip())
    if head or status in (101, 204, 304):
        return RawAnswer(status, headers, b"")
    try:
        if "Content-Length" in headers:
            body = await reader.readexactly(int(headers["Content-Length"]))
        elif headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = await _chunked(reader)
        else:
            body = await reader.read()
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise AssertionError(f"answer {status} cut short") from exc
    return RawAnswer(status, headers, body)


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    out = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return out
        out += await reader.readexactly(size)
        await reader.readexactly(2)


_ERROR = msgspec.json.Decoder(ErrorBody)
#: a WebSocket handshake (RFC 6455 §4.1), for routes that upgrade
WS_UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


def assert_sound(answer: RawAnswer, what: str, *, head: bool = False) -> ErrorBody | None:
    """No 5xx (bar 503 ``unavailable`` with Retry-After), every error in the one shape.

    Returns:
        The error body of a 4xx answer (None for a success or a HEAD answer).
    """
    assert answer.status != 0, f"{what}: connection closed without an answer"
    if answer.status >= 500:
        assert answer.status == 503, f"{what}: {answer.status} {answer.body[:300]!r}"
        assert "Retry-After" in answer.headers, f"{what}: 503 without Retry-After"
    if answer.status < 400 or head:
        return None
    try:
        error = _ERROR.decode(answer.body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise AssertionError(
            f"{what}: {answer.status} not in the error shape: {answer.body[:300]!r}"
        ) from exc
    assert HTTP_STATUS[error.code] == answer.status, f"{what}: {error.code} on {answer.status}"
    assert error.message, what
    if error.code is ErrorCode.UNAVAILABLE:
        assert "Retry-After" in answer.headers, f"{what}: unavailable without Retry-After"
    rid = answer.headers.get("X-Request-Id")
    assert rid is None or rid == error.request_id, what
    return error


def exchange_blocking(url: str, data: bytes, *, within: float = CLIENT_TIMEOUT) -> RawAnswer:
    """:func:`exchange` for synchronous callers (hypothesis runs in a worker thread).

    The request must carry ``Connection: close``: the answer is read until the close.

    Raises:
        TimeoutError: no answer within ``within`` seconds (a hang).
    """
    parts = urlsplit(url)
    chunks = []
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=within) as s:
        s.sendall(data)
        while chunk := s.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head:
        return RawAnswer(0, CIMultiDict(), b"")
    lines = head.decode("latin-1").split("\r\n")
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.add(name.strip(), value.strip())
    return RawAnswer(int(lines[0].split(" ", 2)[1]), headers, body)
