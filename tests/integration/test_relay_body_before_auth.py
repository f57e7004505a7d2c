"""Large bodies are held only for those who may send them (PROTOCOL.md §8.2, "Bodies").

An outside probe held 4 MiB of relay memory per connection without a key: 100 stalled,
unsigned chunk uploads (4 MiB − 1 byte each) grew the relay by 400 MiB, because a body
was read before its request's signature was checked. Now a large body still on its way
is read only once the headers' signature verified (H1–H6; the signature covers
``Content-Digest``), and the unsigned write whose body is its own authorization (a
directory publication) reads only a few such bodies at once.

Each test sets ``http.read_timeout`` to 1 s: the old code answered these stalls with 400
``malformed`` once it ran out; now the refusal comes first and says why.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
import pytest

from relay.http._auth import EARLY_CHECK_ABOVE, UNSIGNED_READS
from schemas.blobs import BlobCreate
from schemas.errors import ErrorBody, ErrorCode
from tests.integration._hostile_servers import Relay, hostile_relay
from tests.support.hostile import sign
from tests.support.network import member_keys
from tests.support.raw_http import RawAnswer, exchange, read_answer, request_bytes

CHUNK = 4 << 20
JSON = "application/json"
OCTETS = "application/octet-stream"


def _code(answer: RawAnswer) -> tuple[int, ErrorCode]:
    return answer.status, msgspec.json.decode(answer.body, type=ErrorBody).code


async def _blob(relay: Relay, size: int) -> str:
    blob_id = os.urandom(16).hex()
    await relay.running.client("FR").create_blob(blob_id, "US", size, None)
    return blob_id


def _stalled(target: str, headers: dict[str, str], declared: int, sent: int) -> bytes:
    """Headers declaring ``declared`` bytes of body, then only ``sent`` of them."""
    head = request_bytes("PUT" if "/chunks/" in target else "POST", target, headers)
    return head.replace(b"\r\n\r\n", f"\r\nContent-Length: {declared}\r\n\r\n".encode(), 1) + (
        b"x" * sent
    )


@pytest.mark.parametrize("signer", [None, "XX"], ids=["unsigned", "key-not-in-directory"])
async def test_a_chunk_nobody_may_send_is_refused_before_its_body(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signer: str | None
) -> None:
    async with hostile_relay(tmp_path, monkeypatch, read_timeout="1.0") as relay:
        blob_id = await _blob(relay, CHUNK)
        target = f"/v1/blobs/{blob_id}/chunks/0"
        headers = {"Content-Type": OCTETS}
        if signer is not None:
            stranger = member_keys(signer).transport
            headers = sign(relay.url, stranger, "PUT", target, os.urandom(CHUNK), OCTETS)
        raw = _stalled(target, headers, CHUNK, 1024)
        assert _code(await exchange(relay.url, raw)) == (401, ErrorCode.UNAUTHENTICATED)
        assert (await relay.running.client("FR").blob_status(blob_id)).missing == (0,)


async def test_a_members_chunk_sent_slowly_is_read_and_checked_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The early check does not replace H7: a body that does not match the signed
    Content-Digest is still refused, and a matching one sent in pieces is stored."""
    async with hostile_relay(tmp_path, monkeypatch, read_timeout="5.0") as relay:
        blob_id = await _blob(relay, CHUNK)
        target = f"/v1/blobs/{blob_id}/chunks/0"
        key = relay.running.net.members["FR"].transport
        data = os.urandom(CHUNK)
        for body, expected in ((bytes(CHUNK), 400), (data, 200)):
            headers = sign(relay.url, key, "PUT", target, data, OCTETS)
            head = request_bytes("PUT", target, headers, data)[: -len(data)]
            answer = await _in_pieces(relay.url, head, body)
            assert answer.status == expected, answer.body
            if expected == 400:
                assert _code(answer) == (400, ErrorCode.DIGEST_MISMATCH)
        assert (await relay.running.client("FR").blob_status(blob_id)).missing == ()
        sha = hashlib.sha256(data).hexdigest()
        assert (await relay.running.client("FR").commit_blob(blob_id, sha)).complete


async def _in_pieces(url: str, head: bytes, body: bytes) -> RawAnswer:
    """The headers, then the body in four pieces with pauses between them."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(head)
        await writer.drain()
        step = len(body) // 4
        for i in range(4):
            await asyncio.sleep(0.05)
            writer.write(body[i * step : (i + 1) * step])
            await writer.drain()
        async with asyncio.timeout(30):
            return await read_answer(reader)
    finally:
        writer.close()


async def test_an_unsigned_large_envelope_post_is_refused_before_its_body(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with hostile_relay(tmp_path, monkeypatch, read_timeout="1.0") as relay:
        raw = _stalled("/v1/envelopes", {"Content-Type": JSON}, 1 << 20, 1024)
        assert _code(await exchange(relay.url, raw)) == (401, ErrorCode.UNAUTHENTICATED)
        # A small one is read first, as before (what it can hold is bounded by its size).
        small = _stalled("/v1/envelopes", {"Content-Type": JSON}, EARLY_CHECK_ABOVE, 1024)
        assert _code(await exchange(relay.url, small)) == (400, ErrorCode.MALFORMED)


async def test_unsigned_directory_bodies_are_read_a_few_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory publication is authorized by its own signatures, so its body must be
    read first: only UNSIGNED_READS large ones at once, the next answered 503 with
    Retry-After; once they end (here: cut at the read timeout), one is read again."""
    async with hostile_relay(tmp_path, monkeypatch, read_timeout="3.0") as relay:
        raw = _stalled("/v1/directory", {"Content-Type": JSON}, 1 << 20, 1024)
        parts = urlsplit(relay.url)
        held = []
        for _ in range(UNSIGNED_READS):
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            writer.write(raw)
            await writer.drain()
            held.append((reader, writer))
        try:
            await _until_busy(relay, raw)
            for reader, _ in held:  # each is cut at the read timeout, as before
                async with asyncio.timeout(30):
                    assert _code(await read_answer(reader)) == (400, ErrorCode.MALFORMED)
        finally:
            for _, writer in held:
                writer.close()
        body = msgspec.json.encode(BlobCreate(blob_id="0" * 32, recipient="US", ct_len=1))
        wrong = request_bytes("POST", "/v1/directory", {"Content-Type": JSON}, body)
        assert (await exchange(relay.url, wrong)).status == 400  # read, then refused


async def _until_busy(relay: Relay, raw: bytes) -> None:
    """Once the held bodies are being read (their headers may take a moment to reach
    their handlers), the next large unsigned body is refused 503 with Retry-After."""
    for _ in range(400):
        if relay.running.state.unsigned_reads == UNSIGNED_READS:
            break
        await asyncio.sleep(0.005)
    assert relay.running.state.unsigned_reads == UNSIGNED_READS
    answer = await exchange(relay.url, raw)
    assert _code(answer) == (503, ErrorCode.UNAVAILABLE)
    assert answer.headers["Retry-After"] == "5"
