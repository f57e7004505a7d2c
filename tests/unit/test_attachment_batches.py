"""protocol.attachment in batches: the same refusals as a chunk-by-chunk reader (§15.1).

The decryptor reads, decrypts and hashes :data:`~protocol.attachment.BATCH_CHUNKS` chunks
at a time, the two SHA-256 in a worker thread (protocol/_attachment_hash.py). These
tests use attachments of several batches, so that every refusal can fall inside a
batch, on a batch boundary, or in a later batch, and compare each reason with
:func:`_one_by_one`, the reading of §15.1 one chunk at a time (what the decryptor did
before it read in batches).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import nacl.bindings as sodium
import nacl.exceptions
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import attachment as att
from protocol.attachment import ABYTES, BATCH_CHUNKS, CHUNK, AttachmentError
from schemas import Attachment

KEY = bytes(range(32))
STEP = CHUNK + ABYTES
_MSG = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL


def _one_by_one(ct: bytes, ct_len: int | None) -> str | None:
    """§15.1 read chunk by chunk: the refusal's reason, or None (accepted)."""
    if ct_len is not None and att.size_for(ct_len) is None:
        return "mismatch"
    if len(ct) < 24:
        return "truncated"
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, ct[:24], KEY)
    at = 24
    end = len(ct) if ct_len is None else min(len(ct), ct_len)
    while True:
        want = STEP if ct_len is None else min(STEP, ct_len - at)
        sealed = ct[at : min(at + want, end)]
        if not sealed or len(sealed) < ABYTES or (ct_len is not None and len(sealed) < want):
            return "truncated"
        try:
            plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(state, sealed, None)
        except nacl.exceptions.CryptoError:
            return "corrupt"
        if tag not in (_MSG, _FINAL):
            return "corrupt"
        if tag == _MSG and len(plain) != CHUNK:
            return "truncated"
        at += len(sealed)
        if tag == _FINAL:
            if ct_len is not None and at < ct_len:
                return "mismatch"
            return "extended" if len(ct) > at else None


def _stream(chunks: list[bytes], tags: list[int]) -> bytes:
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    out = [sodium.crypto_secretstream_xchacha20poly1305_init_push(state, KEY)]
    for chunk, tag in zip(chunks, tags, strict=True):
        out.append(sodium.crypto_secretstream_xchacha20poly1305_push(state, chunk, None, tag))
    return b"".join(out)


def _reason(ct: bytes, ct_len: int | None) -> str | None:
    try:
        att.decrypt(io.BytesIO(ct), io.BytesIO(), KEY, ct_len=ct_len)
    except AttachmentError as exc:
        return exc.reason
    return None


SIZES = [
    BATCH_CHUNKS * CHUNK - 1,
    BATCH_CHUNKS * CHUNK,
    BATCH_CHUNKS * CHUNK + 1,
    2 * BATCH_CHUNKS * CHUNK,
    2 * BATCH_CHUNKS * CHUNK + 7,
]


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_digests_and_pieces_over_batches(size: int) -> None:
    plain = os.urandom(size)
    out = io.BytesIO()
    digest = att.encrypt(io.BytesIO(plain), out, KEY)
    ct = out.getvalue()
    assert digest == att.Digest(
        size, hashlib.sha256(plain).hexdigest(), len(ct), hashlib.sha256(ct).hexdigest()
    )
    enc = att.Encryptor(KEY)  # pieces of every size give the same digests
    pieces = [enc.update(plain[i : i + 300_001]) for i in range(0, size, 300_001)]
    pieces.append(enc.finish())
    assert len(b"".join(pieces)) == len(ct)
    assert enc.digest is not None
    assert enc.digest.sha256 == digest.sha256
    for ct_len in (None, len(ct)):
        back = io.BytesIO()
        assert att.decrypt(io.BytesIO(ct), back, KEY, ct_len=ct_len) == digest
        assert back.getvalue() == plain


def test_large_batches_are_hashed_in_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above THREAD_FROM the hashes run in a worker thread; the digests are the same."""
    started: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> ThreadPoolExecutor:
        started.append(1)
        return ThreadPoolExecutor(*args, **kwargs)

    monkeypatch.setattr("protocol._attachment_hash.ThreadPoolExecutor", counted)
    plain = os.urandom(3 * BATCH_CHUNKS * CHUNK + 5)
    out = io.BytesIO()
    digest = att.encrypt(io.BytesIO(plain), out, KEY)
    assert started  # the encryption's hashes went to a thread
    started.clear()
    assert att.decrypt(io.BytesIO(out.getvalue()), io.BytesIO(), KEY) == digest
    assert started  # and the decryption's
    assert digest.sha256 == hashlib.sha256(plain).hexdigest()
    assert digest.ct_sha256 == hashlib.sha256(out.getvalue()).hexdigest()


def test_cut_at_every_chunk_boundary_over_batches() -> None:
    ct = _enc(2 * BATCH_CHUNKS * CHUNK + 7)
    for n in range(2 * BATCH_CHUNKS + 1):
        cut = ct[: 24 + n * STEP]
        for ct_len in (None, len(ct)):
            assert _reason(cut, ct_len) == "truncated" == _one_by_one(cut, ct_len)


@pytest.mark.parametrize("final_at", [0, 3, BATCH_CHUNKS - 1, BATCH_CHUNKS, BATCH_CHUNKS + 2])
def test_a_final_chunk_before_the_end(final_at: int) -> None:
    """TAG_FINAL early, more chunks after it, in its batch or the next: ``mismatch``
    against the stated length, ``extended`` without one."""
    n = 2 * BATCH_CHUNKS + 1
    tags = [_FINAL if i == final_at else _MSG for i in range(n - 1)] + [_FINAL]
    ct = _stream([bytes(CHUNK)] * (n - 1) + [b"end"], tags)
    assert _reason(ct, len(ct)) == "mismatch" == _one_by_one(ct, len(ct))
    assert _reason(ct, None) == "extended" == _one_by_one(ct, None)


@pytest.mark.parametrize("n", [6, BATCH_CHUNKS, BATCH_CHUNKS + 1, BATCH_CHUNKS + 6])
def test_a_short_last_chunk_without_the_final_tag(n: int) -> None:
    """A stream whose last chunk is short but not TAG_FINAL was cut: ``truncated``."""
    ct = _stream([bytes(CHUNK)] * (n - 1) + [b"short"], [_MSG] * n)
    for ct_len in (None, len(ct)):
        assert _reason(ct, ct_len) == "truncated" == _one_by_one(ct, ct_len)


def _enc(size: int) -> bytes:
    out = io.BytesIO()
    att.encrypt(io.BytesIO(bytes(size)), out, KEY)
    return out.getvalue()


_CT = _enc(2 * BATCH_CHUNKS * CHUNK + 40)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_property_same_reason_as_chunk_by_chunk(data: st.DataObject) -> None:
    """Any flipped bit, cut or appended bytes: the batched reader refuses with the same
    reason as the chunk-by-chunk reading, with and without the stated length."""
    ct = bytearray(_CT)
    change = data.draw(st.sampled_from(["flip", "cut", "append", "flip+cut"]))
    if "flip" in change:
        pos = data.draw(st.integers(0, len(ct) - 1))
        ct[pos] ^= 1 << data.draw(st.integers(0, 7))
    if "cut" in change:
        del ct[data.draw(st.integers(0, len(ct) - 1)) :]
    if change == "append":
        ct += data.draw(st.binary(min_size=1, max_size=2 * STEP))
    for ct_len in (None, len(_CT)):
        want = _one_by_one(bytes(ct), ct_len)
        assert want is not None
        assert _reason(bytes(ct), ct_len) == want


def _attachment(ct: bytes, digest: att.Digest, **change: object) -> Attachment:
    fields: dict[str, object] = {
        "blob_id": "0" * 32,
        "name": "x.bin",
        "media_type": "application/octet-stream",
        "size": digest.size,
        "sha256": digest.sha256,
        "ct_sha256": digest.ct_sha256,
        "ct_len": len(ct),
        "key": base64.b64encode(KEY).decode(),
    }
    fields.update(change)
    return Attachment(**fields)  # type: ignore[arg-type]


def test_verified_chunks_checks_the_plaintext_it_hands_out() -> None:
    """The plaintext handed out (the local API, the console, ``node attachment``) is
    checked against the body's ``size`` and ``sha256``; every chunk authenticates. The
    ciphertext's hash is not computed again (F2 checked it when it was kept): the file
    is the sender's whatever it is."""
    plain = os.urandom(2 * BATCH_CHUNKS * CHUNK + 9)
    out = io.BytesIO()
    digest = att.encrypt(io.BytesIO(plain), out, KEY)
    ct = out.getvalue()

    def served(a: Attachment, data: bytes = ct) -> bytes:
        return b"".join(att.verified_chunks(io.BytesIO(data), a))

    assert served(_attachment(ct, digest)) == plain
    assert served(_attachment(ct, digest, ct_sha256="0" * 64)) == plain
    for change in ({"sha256": "0" * 64}, {"size": digest.size - 1}):
        with pytest.raises(AttachmentError) as err:
            served(_attachment(ct, digest, **change))
        assert err.value.reason == "mismatch"
    bad = bytearray(ct)
    bad[24 + 20 * STEP + 5] ^= 1  # in the second batch
    with pytest.raises(AttachmentError) as err:
        served(_attachment(ct, digest), bytes(bad))
    assert err.value.reason == "corrupt"


@pytest.mark.parametrize(
    ("first", "last"),
    [(0, 0), (0, 1), (0, CHUNK), (1, CHUNK - 1), (CHUNK, 0), (CHUNK, CHUNK + 1), (5, 3 * CHUNK)],
)
def test_finish_with_the_last_piece_reads_chunk_by_chunk_with_pynacl(first: int, last: int) -> None:
    """finish(data) is update(data) then finish() in one output: PyNaCl's own pull reads
    every chunk, TAG_FINAL on the last only, and the digests cover both pieces."""
    plain = os.urandom(first + last)
    enc = att.Encryptor(KEY)
    ct = enc.update(plain[:first]) + enc.finish(plain[first:])
    assert enc.digest == att.Digest(
        len(plain), hashlib.sha256(plain).hexdigest(), len(ct), hashlib.sha256(ct).hexdigest()
    )
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, ct[:24], KEY)
    got, tags = [], []
    for at in range(24, len(ct), STEP):
        chunk, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(state, ct[at : at + STEP])
        got.append(chunk)
        tags.append(tag)
    assert b"".join(got) == plain
    assert tags == [_MSG] * (len(tags) - 1) + [_FINAL]
    assert len(tags) == max(1, -(-len(plain) // CHUNK))
