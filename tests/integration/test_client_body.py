"""client.read_body over a real socket: answers of several MiB, slow, chunked or not, and
peers that lie about the length, close early or send too much.

The well-behaved answers come from a real aiohttp server on 127.0.0.1; the ill-behaved
ones from a raw asyncio server that writes the HTTP bytes itself (aiohttp's server will
not send a false Content-Length). Each client of relay247 that used to read once
(``content.read(n)`` returns whatever is buffered) is run against the slow server too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from client import PublicClient, RelayClient, read_body
from node.api.client import NodeApiClient
from protocol.errors import PeerError, TooLargeError, TransportError
from protocol.keys import SigningKey
from protocol.tiles import encode_entry_bundle
from schemas.errors import ErrorCode
from tests.support.network import make_network
from tests.support.relay import envelope, fetch, grow, running_relay
from tests.support.web_app import serving

MIB = 1 << 20
BODY = hashlib.shake_256(b"several MiB").digest(5 * MIB + 12_345)  # not a multiple of a chunk
STEP = 4096  # bytes per write: the answer arrives in ~1,300 pieces


async def _stream(request: web.Request, data: bytes, *, chunked: bool) -> web.StreamResponse:
    resp = web.StreamResponse()
    if chunked:
        resp.enable_chunked_encoding()
    else:
        resp.content_length = len(data)
    await resp.prepare(request)
    for i in range(0, len(data), STEP):
        await resp.write(data[i : i + STEP])
        if i % (64 * STEP) == 0:
            await asyncio.sleep(0.005)  # let the client drain: the body arrives in pieces
    await resp.write_eof()
    return resp


@asynccontextmanager
async def serve(
    routes: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]],
) -> AsyncIterator[str]:
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    async with serving(app) as url:
        yield url


@asynccontextmanager
async def raw_server(answer: bytes, *, then_close: bool = True) -> AsyncIterator[str]:
    """Answer every request with ``answer`` verbatim, then close (or hold) the socket."""
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        # The client hangs up early on purpose in some tests: that ends the writing.
        with contextlib.suppress(ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            for i in range(0, len(answer), 65536):
                writer.write(answer[i : i + 65536])
                await writer.drain()
        if then_close:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for w in held:
            w.close()
        server.close()
        await server.wait_closed()


async def get(url: str, limit: int, seconds: float = 10.0) -> bytes:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, timeout=aiohttp.ClientTimeout(total=seconds)) as resp,
    ):
        return await read_body(resp, limit)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_several_mib_streamed_slowly_are_read_whole(chunked: bool) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await _stream(request, BODY, chunked=chunked)

    async with serve({"/big": handler}) as url:
        assert await get(url + "/big", 8 * MIB) == BODY
        # Exactly at the limit is accepted; one byte under it is refused.
        assert await get(url + "/big", len(BODY)) == BODY
        with pytest.raises(TooLargeError) as err:
            await get(url + "/big", len(BODY) - 1)
    assert err.value.code is ErrorCode.TOO_LARGE
    assert err.value.message == f"answer larger than {len(BODY) - 1} bytes"


async def test_empty_answer_is_empty() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=204)

    async with serve({"/none": handler}) as url:
        assert await get(url + "/none", 10) == b""


async def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (64 * MIB)
    async with raw_server(head + b"x" * 1000, then_close=False) as url:
        with pytest.raises(TooLargeError) as err:
            await get(url, 1 * MIB)
    assert "Content-Length 67108864" in err.value.detail


async def test_chunked_answer_over_the_limit_is_refused_and_memory_stays_bounded() -> None:
    chunk = b"%x\r\n%s\r\n" % (MIB, b"y" * MIB)
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    async with raw_server(head + chunk * 6 + b"0\r\n\r\n") as url:
        with pytest.raises(TooLargeError) as err:
            await get(url, 2 * MIB)
    assert isinstance(err.value, PeerError)  # the peer sent bad data


async def test_content_length_longer_than_the_body_is_cut_short() -> None:
    # The peer declares 3 MiB, sends 1 MiB and closes: a lying Content-Length.
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (3 * MIB)
    async with raw_server(head + b"z" * MIB) as url:
        with pytest.raises(TransportError) as err:
            await get(url, 8 * MIB)
    assert err.value.message.startswith("answer cut short: the connection closed after ")
    assert err.value.message.endswith(f" of {3 * MIB}")


async def test_content_length_longer_than_the_body_on_a_held_connection_times_out() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"
    async with raw_server(head + b"z" * 100, then_close=False) as url:
        with pytest.raises(TransportError) as err:
            await get(url, MIB, seconds=2.0)
    assert err.value.message == "answer not received in time (100 bytes read)"


async def test_chunked_answer_without_its_last_chunk_is_cut_short() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    async with raw_server(head + b"%x\r\n%s\r\n" % (MIB, b"w" * MIB)) as url:
        with pytest.raises(TransportError) as err:
            await get(url, 8 * MIB)
    assert err.value.message.startswith("answer cut short: the connection closed after ")


async def test_close_in_the_middle_of_a_chunk_is_cut_short() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    async with raw_server(head + b"%x\r\n%s" % (2 * MIB, b"w" * 1000)) as url:
        with pytest.raises(TransportError, match="cut short"):
            await get(url, 8 * MIB)


async def test_answer_until_close_without_length_is_read_whole() -> None:
    # HTTP/1.0 style: no Content-Length, no chunking, the body ends at the close.
    body = os.urandom(3 * MIB)
    async with raw_server(b"HTTP/1.0 200 OK\r\n\r\n" + body) as url:
        assert await get(url, 8 * MIB) == body


# -- the clients that used to read once -------------------------------------------------


async def test_audit_client_reads_a_multi_mib_bundle_that_arrives_slowly() -> None:
    # 256 entries of ~20 KiB: a 5 MiB bundle (today's relay entries are ~1 KiB; the
    # format allows 64 KiB each). The old single read returned the first piece only
    # and the decoder said "truncated entry bundle".
    entries = [hashlib.shake_256(b"%d" % i).digest(20_000) for i in range(256)]
    bundle = encode_entry_bundle(entries)

    async def handler(request: web.Request) -> web.StreamResponse:
        return await _stream(request, bundle, chunked=True)

    async with (
        serve({"/v1/audit/tile/entries/000": handler}) as url,
        aiohttp.ClientSession() as session,
    ):
        assert await PublicClient(url, session).entry_bundle(0) == entries


async def test_node_api_client_reads_a_multi_mib_export_that_arrives_slowly(
    tmp_path: Path,
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await _stream(request, BODY, chunked=False)

    async with (
        serve({"/v1/cases/{case}/export": handler}) as url,
        aiohttp.ClientSession() as session,
    ):
        got = await NodeApiClient(url, "token", session).export_case("c" * 32)
    assert got == BODY


async def test_relay_client_refuses_an_oversized_relay_answer() -> None:
    from client import RelayClient

    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (65 * MIB)
    async with raw_server(head, then_close=False) as url, aiohttp.ClientSession() as session:
        with pytest.raises(TooLargeError, match="relay answer larger than"):
            await RelayClient(url, SigningKey.generate(), session).info()


# -- pages of log entries: bounded by count on the relay, by bytes on the client ---------


async def test_entries_pages_over_the_answer_limit_are_fetched_in_halves(tmp_path: Path) -> None:
    # Real relay, real log; the clients' limit is lowered to what a page of a few
    # thousand small entries weighs, standing in for pages of multi-MiB directory
    # entries (a page is up to 1000 entries of up to 9 MiB each).
    async with running_relay(tmp_path / "relay", make_network(("FR", "US"))) as r:
        await grow(r, 2_500)
        size = await r.state.store.tree_size()
        expected = await PublicClient(r.url, r.session).entries(0, size)
        page = await fetch(r, "/v1/audit/entries?start=1&end=1001")
        directory = await fetch(r, "/v1/audit/entries?start=0&end=1")  # the largest entry
        limit = max(len(page.body) // 3, len(directory.body))
        assert await PublicClient(r.url, r.session, limit=limit).entries(0, size) == expected
        fr = RelayClient(r.url, r.net.members["FR"].transport, r.session, limit=limit)
        assert await fr.entries(0, size) == expected
        # One entry over the limit cannot be split: the error says so.
        with pytest.raises(TooLargeError, match="relay answer larger than 100 bytes"):
            await PublicClient(r.url, r.session, limit=100).entries(0, 2)


# -- mailbox pages of large envelopes ---------------------------------------------------


async def test_a_mailbox_of_large_envelopes_is_delivered_by_pull_and_by_push(
    tmp_path: Path,
) -> None:
    # 28 envelopes of ~1.95 MB (the relay's default largest body is 2 MiB): a default
    # page of 100 would be ~73 MiB of JSON, over any client's limit, and a pushed page
    # over the WebSocket's message limit. Pages are bounded in bytes too.
    async with running_relay(tmp_path / "relay", make_network(("FR", "US"))) as r:
        body = hashlib.shake_256(b"large").digest(1_450_000)
        sent = []
        for seq in range(1, 29):
            env = envelope(r.net, "FR", "US", body=body, seq=seq)
            assert len(env) > 1_900_000
            sent.append((await r.client("FR").submit(env)).msg_id)
        pulled: list[str] = []
        after = 0
        while len(pulled) < len(sent):
            page = await r.client("US").mailbox(after=after)
            assert page.messages, "an empty page before the end of the mailbox"
            pulled.extend(m.msg_id for m in page.messages)
            after = page.next
        assert pulled == sent
        pushed: list[str] = []
        async for page in r.client("US").push():
            pushed.extend(m.msg_id for m in page.messages)
            if len(pushed) == len(sent):
                break
        assert pushed == sent
