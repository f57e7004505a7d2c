"""Hostile input at the blob endpoints of a real relay (PROTOCOL.md §15.4, issue 14 §1).

Raw signed requests over loopback: non-ASCII and non-canonical digits in ``{n}`` and in
``Range``, lists of ranges, a Content-Digest of other bytes, an oversized or stalled
chunk, the wrong media type, no signature; quotas and the largest blob; every refusal
in the one error shape with its stable code, and nothing logged as an error.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import msgspec
import pytest

from protocol.errors import TransportError
from protocol.receipt import make_ack
from schemas.audit import AuditEntry, EnvelopeAccepted
from schemas.blobs import BLOB_CHUNK, BlobCreate
from schemas.envelope import Envelope, EnvelopeHeader
from schemas.errors import ErrorBody, ErrorCode
from tests.integration._hostile_servers import Relay, hostile_relay
from tests.support.blobs import download, upload
from tests.support.hostile import NON_ASCII_DIGITS, ODD_INTEGERS, sign, watch_logs
from tests.support.raw_http import RawAnswer, assert_sound, exchange, request_bytes
from tests.support.relay import RunningRelay, envelope, running_relay

OCTETS = "application/octet-stream"


async def _send(
    relay: Relay,
    method: str,
    target: str,
    body: bytes = b"",
    *,
    member: str = "FR",
    ctype: str | None = OCTETS,
    extra: dict[str, str] | None = None,
    signed_body: bytes | None = None,
) -> RawAnswer:
    """A request signed by ``member`` (over ``signed_body`` if given, else ``body``)."""
    key = relay.running.net.members[member].transport
    headers = sign(
        relay.url, key, method, target, body if signed_body is None else signed_body, ctype
    )
    headers.update(extra or {})
    return await exchange(relay.url, request_bytes(method, target, headers, body))


def _code(answer: RawAnswer) -> tuple[int, ErrorCode]:
    error = assert_sound(answer, "")
    assert error is not None, answer
    return answer.status, error.code


async def _new_blob(relay: Relay, size: int = BLOB_CHUNK + 10) -> tuple[str, bytes]:
    data = os.urandom(size)
    blob_id = os.urandom(16).hex()
    await relay.running.client("FR").create_blob(
        blob_id, "US", size, hashlib.sha256(data).hexdigest()
    )
    return blob_id, data


async def test_chunk_index_digest_size_type_and_signature(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with hostile_relay(tmp_path, monkeypatch) as relay:
        blob_id, data = await _new_blob(relay)
        last = data[BLOB_CHUNK:]
        for n in (*NON_ASCII_DIGITS, *ODD_INTEGERS[:12]):
            target = f"/v1/blobs/{blob_id}/chunks/{quote(n, safe='')}"
            answer = await _send(relay, "PUT", target, last)
            assert _code(answer) in {(400, ErrorCode.MALFORMED), (404, ErrorCode.NOT_FOUND)}, n
        target = f"/v1/blobs/{blob_id}/chunks/1"
        # The signature covers a Content-Digest of other bytes: refused, nothing stored.
        forged = await _send(relay, "PUT", target, last, signed_body=last[:-1] + b"!")
        assert _code(forged) == (400, ErrorCode.DIGEST_MISMATCH)
        unsigned = await exchange(
            relay.url, request_bytes("PUT", target, {"Content-Type": OCTETS}, last)
        )
        assert _code(unsigned) == (401, ErrorCode.UNAUTHENTICATED)
        as_json = await _send(relay, "PUT", target, last, ctype="application/json")
        assert _code(as_json) == (415, ErrorCode.UNSUPPORTED_MEDIA_TYPE)
        # Declared over one chunk: refused before a byte of it is read.
        head = request_bytes(
            "PUT", target, {"Content-Type": OCTETS, "Content-Length": str(BLOB_CHUNK + 1)}
        )
        big = await exchange(relay.url, head.replace(b"\r\n\r\n", b"\r\n\r\n", 1))
        assert _code(big) == (413, ErrorCode.TOO_LARGE)
        for bad in ("A" * 32, "a" * 31, "a" * 32 + "%0A", quote("٣" * 32)):
            answer = await _send(relay, "GET", f"/v1/blobs/{bad}", ctype=None)
            assert _code(answer) == (400, ErrorCode.MALFORMED), bad
        status = await relay.running.client("FR").blob_status(blob_id)
        assert status.missing == (0, 1)  # nothing of the refused requests was stored


async def test_ranges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with hostile_relay(tmp_path, monkeypatch) as relay:
        data = os.urandom(1000)
        ref = await upload(relay.running.client("FR"), "US", data)
        target = f"/v1/blobs/{ref.blob_id}/content"

        async def get(rng: str | None, member: str = "US") -> RawAnswer:
            extra = {} if rng is None else {"Range": rng}
            return await _send(relay, "GET", target, member=member, ctype=None, extra=extra)

        whole = await get(None)
        assert (whole.status, whole.body, whole.headers["Accept-Ranges"]) == (200, data, "bytes")
        for rng, part, content_range in [
            ("bytes=0-9", data[:10], "bytes 0-9/1000"),
            ("bytes=990-", data[990:], "bytes 990-999/1000"),
            ("bytes=-5", data[-5:], "bytes 995-999/1000"),
            ("bytes=-5000", data, "bytes 0-999/1000"),
            ("bytes=500-99999", data[500:], "bytes 500-999/1000"),
            ("BYTES=1-1", data[1:2], "bytes 1-1/1000"),
        ]:
            answer = await get(rng)
            assert (answer.status, answer.body) == (206, part), rng
            assert answer.headers["Content-Range"] == content_range
        for rng in ("bytes=1000-", "bytes=5000-6000", "bytes=-0"):
            answer = await get(rng)
            assert _code(answer) == (416, ErrorCode.RANGE_NOT_SATISFIABLE), rng
            assert answer.headers["Content-Range"] == "bytes */1000"
        for rng in (
            "bytes=٣-5", "bytes=１-2", "bytes=1-²", "bytes=0-1,5-6", "bytes=5-1", "items=0-1",
            "bytes= 1-2", "bytes=01-2", "bytes=+1-2", "bytes=-", "bytes=", "bytes", "0-1",
            "bytes=1e3-", "bytes=1-2\t3", "bytes=" + "9" * 40 + "-",
        ):  # fmt: skip
            assert _code(await get(rng)) == (400, ErrorCode.MALFORMED), rng
        twice = await exchange(
            relay.url,
            request_bytes(
                "GET",
                target,
                [*sign(relay.url, relay.running.net.members["US"].transport, "GET", target).items(),
                 ("Range", "bytes=0-1"), ("Range", "bytes=2-3")],
            ),
        )  # fmt: skip
        assert _code(twice) == (400, ErrorCode.MALFORMED)
        # The sender, a third member: not found, like a blob that does not exist.
        assert _code(await get(None, "FR")) == (404, ErrorCode.NOT_FOUND)
        assert _code(await get("bytes=0-1", "DE")) == (404, ErrorCode.NOT_FOUND)
        head = await exchange(
            relay.url,
            request_bytes(
                "HEAD",
                target,
                sign(relay.url, relay.running.net.members["US"].transport, "HEAD", target),
            ),
            head=True,
        )
        assert head.status == 405


async def test_stalled_chunk_is_cut_after_the_read_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with hostile_relay(tmp_path, monkeypatch, read_timeout="1.0") as relay:
        blob_id, data = await _new_blob(relay)
        target = f"/v1/blobs/{blob_id}/chunks/0"
        headers = sign(relay.url, relay.running.net.members["FR"].transport, "PUT", target,
                       data[:BLOB_CHUNK], OCTETS)  # fmt: skip
        raw = request_bytes("PUT", target, headers, data[:BLOB_CHUNK])
        started = asyncio.get_running_loop().time()
        # Headers and a tenth of the body, then silence: 400 after about read_timeout.
        answer = await exchange(relay.url, raw[: len(raw) - BLOB_CHUNK * 9 // 10], within=10.0)
        assert _code(answer) == (400, ErrorCode.MALFORMED)
        assert asyncio.get_running_loop().time() - started < 8.0
        assert (await relay.running.client("FR").blob_status(blob_id)).missing == (0, 1)


async def test_quotas_size_and_the_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = {
        "max_blob_bytes": "8000",
        "max_bytes_per_sender": "10000",
        "max_bytes_per_recipient": "15000",
    }
    async with hostile_relay(tmp_path, monkeypatch, **settings) as relay:
        fr, de = relay.running.client("FR"), relay.running.client("DE")

        async def create(member: str, size: int) -> RawAnswer:
            body = msgspec.json.encode(
                BlobCreate(blob_id=os.urandom(16).hex(), recipient="US", ct_len=size,
                           ct_sha256="ab" * 32)
            )  # fmt: skip
            return await _send(
                relay, "POST", "/v1/blobs", body, member=member, ctype="application/json"
            )

        assert _code(await create("FR", 8001)) == (413, ErrorCode.TOO_LARGE)
        first = await create("FR", 8000)
        assert first.status == 201, first.body
        over = await create("FR", 2001)  # the sender's 10000 bytes
        assert _code(over) == (429, ErrorCode.QUOTA_EXCEEDED)
        assert int(over.headers["Retry-After"]) > 0
        carried = os.urandom(7000)
        ref = await upload(de, "US", carried)  # the recipient's 15000 bytes
        assert _code(await create("DE", 1000)) == (429, ErrorCode.QUOTA_EXCEEDED)
        error = msgspec.json.decode(over.body, type=ErrorBody)
        assert "quota" in error.message

        # The sweep: the unbound blob goes after blob_ttl, the bound one with its envelope.
        msg = envelope(relay.running.net, "DE", "US", attachments=(ref,))
        await de.submit(msg)
        store = relay.running.state.store
        later = relay.running.state.clock() + timedelta(days=2)
        assert await store.sweep_blobs(later, timedelta(days=1)) == 1  # FR's, never sent
        assert await download(relay.running.client("US"), ref.blob_id) == carried
        await store.expire(later)  # the envelope expired undelivered
        assert await store.sweep_blobs(later, timedelta(days=1)) == 1
        missing = await _send(relay, "GET", f"/v1/blobs/{ref.blob_id}", member="US", ctype=None)
        assert _code(missing) == (404, ErrorCode.NOT_FOUND)
        assert (await create("FR", 8000)).status == 201  # the quotas are free again
        assert (await fr.info()).relay_id


async def test_client_hanging_up_mid_download_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with hostile_relay(tmp_path, monkeypatch) as relay:
        ref = await upload(relay.running.client("FR"), "US", os.urandom(3 * BLOB_CHUNK))
        target = f"/v1/blobs/{ref.blob_id}/content"
        key = relay.running.net.members["US"].transport
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", int(relay.url.rsplit(":", 1)[1])
        )
        writer.write(request_bytes("GET", target, sign(relay.url, key, "GET", target)))
        await writer.drain()
        assert (await reader.readexactly(12)) == b"HTTP/1.1 200"
        writer.transport.abort()  # gone after the first bytes of 12 MiB
        await asyncio.sleep(0.3)
        # Leaving the context checks the relay still serves and logged no error.


async def test_a_missing_chunk_file_cuts_the_download_short(tmp_path: Path) -> None:
    """A blob file cut short or gone (an SQLite backup restored without them): the
    answer stops short of its Content-Length, the client says so, the relay serves on."""
    with watch_logs() as logs:
        async with running_relay(tmp_path) as relay:
            ref = await upload(relay.client("FR"), "US", os.urandom(BLOB_CHUNK + 5))
            os.truncate(tmp_path / "blobs" / ref.blob_id, BLOB_CHUNK)  # the last 5 bytes gone
            with pytest.raises(TransportError, match=r"cut short|failed after"):
                await download(relay.client("US"), ref.blob_id)
            assert await download(relay.client("US"), ref.blob_id, 0, 10)  # chunk 0 is there
    assert [p for p in logs.problems() if "blob read failed" not in p] == []
    assert any("blob read failed" in p for p in logs.problems())


async def test_refused_accept_binds_nothing_accepted_one_is_logged_and_purged_after_ack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The blob checks and the binding live in the accept transaction: an envelope
    refused for another reason (a full mailbox) leaves its blob free; the accepted one
    puts the ciphertext hash in its log leaf, and the ack takes the blob away."""
    async with hostile_relay(tmp_path, monkeypatch, mailbox_quota="1") as relay:
        running, store = relay.running, relay.running.state.store
        data = os.urandom(5000)
        ref = await upload(running.client("FR"), "US", data)
        msg = envelope(running.net, attachments=(ref,))
        full = await _send(relay, "POST", "/v1/envelopes", msg, ctype="application/json")
        assert _code(full) == (429, ErrorCode.MAILBOX_FULL)  # hostile_relay's message waits
        row = await store.get_blob(ref.blob_id)
        assert row is not None
        assert row.bound is None

        us = running.client("US")
        page = await us.mailbox()
        await us.ack(_ack_of(running, page.messages[0].envelope))
        accepted = await running.client("FR").submit(msg)
        row = await store.get_blob(ref.blob_id)
        assert row is not None
        assert row.bound == ("FR", accepted.msg_id)
        (entry,) = await store.leaf_entries(accepted.leaf_index, accepted.leaf_index + 1)
        leaf = msgspec.json.decode(entry, type=AuditEntry)
        assert isinstance(leaf, EnvelopeAccepted)
        header = msgspec.json.decode(leaf.header, type=EnvelopeHeader)
        assert header.attachments == (ref,)  # the log commits to the ciphertext hash
        assert ref.ct_sha256 == hashlib.sha256(data).hexdigest()

        assert await download(us, ref.blob_id) == data
        now = running.state.clock()
        assert await store.sweep_blobs(now, timedelta(days=1)) == 0  # still waiting
        await us.ack(_ack_of(running, msg))
        assert await store.sweep_blobs(now, timedelta(days=1)) == 1
        assert await store.get_blob(ref.blob_id) is None
        assert not list((tmp_path / "blobs").iterdir())  # the file went too


def _ack_of(running: RunningRelay, data: bytes) -> bytes:
    raw = msgspec.json.decode(data, type=Envelope).header
    header = msgspec.json.decode(raw, type=EnvelopeHeader)
    us = running.net.members[header.recipient].signing
    return make_ack(header, raw, signing_key=us, acked_at=datetime.now(UTC))
