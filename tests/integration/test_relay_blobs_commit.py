"""The blob commit with a body, at a real relay (PROTOCOL.md §15.4 "Commit", U6).

A create may omit ``ct_sha256``; the commit then names it in a ``BlobCommit`` body.
Raw signed requests over loopback: repeated keys, unknown fields, every wrong spelling
of the hash, the wrong media type, an oversized or stalled body, a body other than the
one the signature's Content-Digest covers, another member's commit. Each is refused
with its stable code, changes nothing (no hash recorded, nothing committed), and the
right body still commits afterwards; nothing is logged as an error.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import msgspec
import pytest

from client import RelayRejectedError
from schemas.blobs import BLOB_CHUNK, BlobCommit
from schemas.errors import ErrorCode
from tests.integration._hostile_servers import Relay, hostile_relay
from tests.support.blobs import download
from tests.support.hostile import sign
from tests.support.hostile_bodies import repeat_key
from tests.support.raw_http import RawAnswer, assert_sound, exchange, request_bytes

JSON = "application/json"


async def _post(
    relay: Relay,
    target: str,
    body: bytes = b"",
    *,
    member: str = "FR",
    ctype: str | None = JSON,
    signed_body: bytes | None = None,
    extra: dict[str, str] | None = None,
) -> RawAnswer:
    """A POST signed by ``member`` (over ``signed_body`` if given, else ``body``)."""
    key = relay.running.net.members[member].transport
    headers = sign(relay.url, key, "POST", target, body if signed_body is None else signed_body)
    if ctype != JSON:
        headers.pop("Content-Type", None)
        if ctype is not None:
            headers["Content-Type"] = ctype
    headers.update(extra or {})
    return await exchange(relay.url, request_bytes("POST", target, headers, body))


def _code(answer: RawAnswer) -> tuple[int, ErrorCode]:
    error = assert_sound(answer, "")
    assert error is not None, answer
    return answer.status, error.code


async def _uploaded(relay: Relay, size: int) -> tuple[str, bytes, str]:
    """A blob created without its hash, every chunk uploaded, not committed."""
    fr = relay.running.client("FR")
    data = os.urandom(size)
    blob_id = os.urandom(16).hex()
    await fr.create_blob(blob_id, "US", size, None)
    for i in range(-(-size // BLOB_CHUNK)):
        await fr.put_blob_chunk(blob_id, i, data[i * BLOB_CHUNK : (i + 1) * BLOB_CHUNK])
    return blob_id, data, hashlib.sha256(data).hexdigest()


async def _unchanged(relay: Relay, blob_id: str) -> None:
    """Not committed, and still no hash recorded: a bare commit is malformed."""
    fr = relay.running.client("FR")
    assert not (await fr.blob_status(blob_id)).complete
    bare = await _post(relay, f"/v1/blobs/{blob_id}/commit", ctype=None)
    assert _code(bare) == (400, ErrorCode.MALFORMED)
    assert "must carry" in msgspec.json.decode(bare.body)["message"]


async def test_hostile_commit_bodies_change_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with hostile_relay(tmp_path, monkeypatch) as relay:
        blob_id, data, sha = await _uploaded(relay, BLOB_CHUNK + 33)
        target = f"/v1/blobs/{blob_id}/commit"
        right = msgspec.json.encode(BlobCommit(ct_sha256=sha))
        other = hashlib.sha256(data + b"!").hexdigest()
        malformed = {
            "hash twice, the right one last": repeat_key(right, "ct_sha256", f'"{other}"'.encode()),
            "hash twice, escaped": repeat_key(
                right, "ct_sha256", f'"{other}"'.encode(), escaped=True
            ),
            "unknown field": right[:-1] + b',"ct_len":1}',
            "upper case": msgspec.json.encode({"ct_sha256": sha.upper()}),
            "short": msgspec.json.encode({"ct_sha256": sha[:-1]}),
            "long": msgspec.json.encode({"ct_sha256": sha + "0"}),
            "not hex": msgspec.json.encode({"ct_sha256": "g" + sha[1:]}),
            "non-ASCII digits": msgspec.json.encode({"ct_sha256": "٣" + sha[1:]}),
            "full-width digits": msgspec.json.encode({"ct_sha256": "１" + sha[1:]}),
            "trailing newline": msgspec.json.encode({"ct_sha256": sha + "\n"}),
            "null hash": b'{"ct_sha256":null}',
            "empty hash": b'{"ct_sha256":""}',
            "no hash": b"{}",
            "null": b"null",
            "array": b"[]",
            "not JSON": b"ct_sha256=" + sha.encode(),
            "trailing garbage": right + b"x",
        }
        for label, body in malformed.items():
            answer = await _post(relay, target, body)
            assert _code(answer) == (400, ErrorCode.MALFORMED), label
        for ctype in ("text/plain", "application/x-www-form-urlencoded", None):
            answer = await _post(relay, target, right, ctype=ctype)
            assert _code(answer) == (415, ErrorCode.UNSUPPORTED_MEDIA_TYPE), ctype
        padded = right[:-1] + b" " * (4097 - len(right)) + b"}"
        assert _code(await _post(relay, target, padded)) == (413, ErrorCode.TOO_LARGE)
        # Declared over the limit: refused before a byte of it is read.
        head = request_bytes("POST", target, {"Content-Type": JSON, "Content-Length": "5000"})
        assert _code(await exchange(relay.url, head)) == (413, ErrorCode.TOO_LARGE)
        # The signature's Content-Digest covers other bytes (a hash not announced).
        forged = await _post(relay, target, right, signed_body=msgspec.json.encode(
            BlobCommit(ct_sha256=other)))  # fmt: skip
        assert _code(forged) == (400, ErrorCode.DIGEST_MISMATCH)
        # Nothing is parsed before the signature verified: unsigned junk is 401, not 400.
        for body in (right, b"null", b'{"ct_sha256":1,"ct_sha256":2}'):
            unsigned = await exchange(
                relay.url, request_bytes("POST", target, {"Content-Type": JSON}, body)
            )
            assert _code(unsigned) == (401, ErrorCode.UNAUTHENTICATED), body
        forged_junk = await _post(relay, target, b"null", signed_body=right)
        assert _code(forged_junk) == (400, ErrorCode.DIGEST_MISMATCH)
        # The recipient, a third member: not found, like a blob that does not exist.
        for member in ("US", "DE"):
            theirs = await _post(relay, target, right, member=member)
            assert _code(theirs) == (404, ErrorCode.NOT_FOUND), member
        await _unchanged(relay, blob_id)

        done = await _post(relay, target, right)
        assert done.status == 200, done.body
        assert msgspec.json.decode(done.body)["complete"] is True
        assert (await _post(relay, target, ctype=None)).status == 200  # again, bare
        again = await _post(relay, target, msgspec.json.encode(BlobCommit(ct_sha256=other)))
        assert _code(again) == (409, ErrorCode.CONFLICT)
        assert await download(relay.running.client("US"), blob_id) == data


async def test_create_refuses_an_empty_or_null_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Omitted is the only way to say "not yet": ``null`` and ``""`` are refused."""
    async with hostile_relay(tmp_path, monkeypatch) as relay:
        blob_id = os.urandom(16).hex()
        head = f'{{"blob_id":"{blob_id}","recipient":"US","ct_len":10'.encode()
        for tail in (b',"ct_sha256":null}', b',"ct_sha256":""}', b',"ct_sha256":"AB"}'):
            answer = await _post(relay, "/v1/blobs", head + tail)
            assert _code(answer) == (400, ErrorCode.MALFORMED), tail
        with pytest.raises(RelayRejectedError) as nothing:
            await relay.running.client("FR").blob_status(blob_id)
        assert nothing.value.code is ErrorCode.NOT_FOUND  # none of them created it
        created = await _post(relay, "/v1/blobs", head + b"}")
        assert created.status == 201, created.body


async def test_stalled_commit_body_is_cut_after_the_read_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with hostile_relay(tmp_path, monkeypatch, read_timeout="1.0") as relay:
        blob_id, _, sha = await _uploaded(relay, 100)
        target = f"/v1/blobs/{blob_id}/commit"
        body = msgspec.json.encode(BlobCommit(ct_sha256=sha))
        key = relay.running.net.members["FR"].transport
        raw = request_bytes("POST", target, sign(relay.url, key, "POST", target, body), body)
        # Headers and half the body, then silence: 400 after read_timeout (a hang
        # would raise TimeoutError here).
        answer = await exchange(relay.url, raw[: len(raw) - len(body) // 2], within=10.0)
        assert _code(answer) == (400, ErrorCode.MALFORMED)
        await _unchanged(relay, blob_id)
        assert (await relay.running.client("FR").commit_blob(blob_id, sha)).complete


async def test_a_chunked_commit_body_over_the_limit_is_refused_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body without Content-Length (chunked) is read only to the byte past 4096, then
    refused ``too_large``: the answer comes while the client still holds the body open
    (not once ``http.max_body_bytes`` arrived, nor at the read timeout, here longer
    than the exchange's hang guard). A chunked body within the limit commits."""
    async with hostile_relay(tmp_path, monkeypatch, read_timeout="60.0") as relay:
        blob_id, data, sha = await _uploaded(relay, 100)
        target = f"/v1/blobs/{blob_id}/commit"
        chunked = {"Content-Type": JSON, "Transfer-Encoding": "chunked"}
        head = request_bytes("POST", target, chunked, content_length=False)
        # 64 KiB in one chunk, and neither the rest nor the last chunk ever sent.
        endless = await exchange(relay.url, head + b"10000\r\n" + b"{" * 0x10000 + b"\r\n")
        assert _code(endless) == (413, ErrorCode.TOO_LARGE)
        await _unchanged(relay, blob_id)

        right = msgspec.json.encode(BlobCommit(ct_sha256=sha))
        key = relay.running.net.members["FR"].transport
        headers = {**sign(relay.url, key, "POST", target, right), **chunked}
        body = f"{len(right):x}\r\n".encode() + right + b"\r\n0\r\n\r\n"
        done = await exchange(
            relay.url, request_bytes("POST", target, headers, content_length=False) + body
        )
        assert done.status == 200, done.body
        assert await download(relay.running.client("US"), blob_id) == data
