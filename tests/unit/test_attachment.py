"""protocol.attachment: the secretstream file format of PROTOCOL.md §15.1."""

from __future__ import annotations

import hashlib
import io
import os

import nacl.bindings as sodium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import attachment as att
from protocol.attachment import CHUNK, AttachmentError
from schemas.errors import ErrorCode

KEY = bytes(range(32))


def _enc(plain: bytes, key: bytes = KEY) -> tuple[bytes, att.Digest]:
    out = io.BytesIO()
    digest = att.encrypt(io.BytesIO(plain), out, key)
    return out.getvalue(), digest


def _dec(ct: bytes, key: bytes = KEY, ct_len: int | None = None) -> tuple[bytes, att.Digest]:
    out = io.BytesIO()
    digest = att.decrypt(io.BytesIO(ct), out, key, ct_len=ct_len)
    return out.getvalue(), digest


def _refused(ct: bytes, reason: str, key: bytes = KEY, ct_len: int | None = None) -> None:
    with pytest.raises(AttachmentError) as err:
        _dec(ct, key, ct_len)
    assert err.value.reason == reason
    mismatch = reason == "mismatch"
    assert err.value.code is (
        ErrorCode.CIPHERTEXT_MISMATCH if mismatch else ErrorCode.DECRYPT_FAILED
    )


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5])
def test_round_trip_and_digests(size: int) -> None:
    plain = os.urandom(size)
    ct, digest = _enc(plain)
    assert digest == att.Digest(
        size, hashlib.sha256(plain).hexdigest(), len(ct), hashlib.sha256(ct).hexdigest()
    )
    assert len(ct) == att.ct_len_for(size) == 24 + size + 17 * att.chunk_count(size)
    back, again = _dec(ct)
    assert back == plain
    assert again == digest
    assert _dec(ct, ct_len=len(ct)) == (plain, digest)
    assert att.size_for(len(ct)) == size


def test_layout_is_libsodium_secretstream() -> None:
    """Header, then one pushed message per 64 KiB chunk, TAG_FINAL only on the last."""
    plain = os.urandom(CHUNK + 10)
    ct, _ = _enc(plain)
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, ct[:24], KEY)
    first, tag1 = sodium.crypto_secretstream_xchacha20poly1305_pull(state, ct[24 : 24 + CHUNK + 17])
    last, tag2 = sodium.crypto_secretstream_xchacha20poly1305_pull(state, ct[24 + CHUNK + 17 :])
    assert (first + last, tag1, tag2) == (
        plain,
        sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
        sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL,
    )


def test_empty_file_is_one_empty_final_chunk() -> None:
    ct, digest = _enc(b"")
    assert len(ct) == 24 + 17
    assert digest.size == 0
    assert _dec(ct)[0] == b""


def test_fresh_header_each_time() -> None:
    assert _enc(b"same")[0][:24] != _enc(b"same")[0][:24]
    assert att.new_key() != att.new_key()
    assert len(att.new_key()) == 32


@pytest.mark.parametrize("cut", [0, 10, 24, 24 + 16, 24 + CHUNK + 17, 24 + CHUNK + 17 + 1])
def test_truncation_refused(cut: int) -> None:
    ct, _ = _enc(os.urandom(2 * CHUNK + 3))
    # Without the length a cut inside a chunk fails its authentication; with it, it is
    # known to be short before any decryption.
    inside = cut >= 24 and (cut - 24) % (CHUNK + 17) >= 17
    _refused(ct[:cut], "corrupt" if inside else "truncated")
    _refused(ct[:cut], "truncated", ct_len=len(ct))


def test_size_for_refuses_lengths_no_size_gives() -> None:
    assert [att.size_for(n) for n in (0, 40, 41, 42)] == [None, None, 0, 1]
    assert att.size_for(24 + CHUNK + 17) == CHUNK
    assert att.size_for(24 + CHUNK + 17 + 16) is None
    assert att.size_for(24 + CHUNK + 17 + 17) is None  # an empty chunk after a full one
    assert att.size_for(24 + CHUNK + 17 + 18) == CHUNK + 1
    _refused(b"", "mismatch", ct_len=24 + CHUNK + 17 + 17)


def test_final_chunk_before_stated_length_is_mismatch() -> None:
    ct, _ = _enc(os.urandom(CHUNK))
    _refused(ct + bytes(18), "mismatch", ct_len=att.ct_len_for(CHUNK + 1))
    _refused(ct, "mismatch", ct_len=att.ct_len_for(CHUNK + 1))


def test_truncation_at_every_chunk_boundary_is_truncated() -> None:
    ct, _ = _enc(os.urandom(3 * CHUNK))
    for n in range(3):
        _refused(ct[: 24 + n * (CHUNK + 17)], "truncated")


def test_truncated_final_of_exact_multiple() -> None:
    """3 full chunks: the last full chunk carries TAG_FINAL; dropping it leaves none."""
    ct, _ = _enc(os.urandom(3 * CHUNK))
    assert len(ct) == 24 + 3 * (CHUNK + 17)
    _refused(ct[: -(CHUNK + 17)], "truncated")


@pytest.mark.parametrize("extra", [b"\x00", os.urandom(17), os.urandom(CHUNK + 17)])
def test_extension_refused(extra: bytes) -> None:
    ct, _ = _enc(os.urandom(CHUNK + 1))
    _refused(ct + extra, "extended", ct_len=len(ct))
    # Without the length the extra bytes are read with the short final chunk.
    _refused(ct + extra, "corrupt")


def test_extension_after_a_full_final_chunk_refused_without_length() -> None:
    ct, _ = _enc(os.urandom(2 * CHUNK))
    _refused(ct + b"\x00", "extended")


def test_extension_by_a_valid_chunk_of_another_stream_refused() -> None:
    ct, _ = _enc(b"a" * 10)
    _refused(ct + ct[24:], "extended", ct_len=len(ct))


def test_reordered_chunks_refused() -> None:
    ct, _ = _enc(os.urandom(3 * CHUNK + 1))
    size = CHUNK + 17
    c0, c1 = ct[24 : 24 + size], ct[24 + size : 24 + 2 * size]
    _refused(ct[:24] + c1 + c0 + ct[24 + 2 * size :], "corrupt")


def test_dropped_middle_chunk_refused() -> None:
    ct, _ = _enc(os.urandom(3 * CHUNK + 1))
    size = CHUNK + 17
    _refused(ct[: 24 + size] + ct[24 + 2 * size :], "corrupt")


def test_wrong_key_refused() -> None:
    ct, _ = _enc(b"secret")
    _refused(ct, "corrupt", key=bytes(32))


def test_short_key_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        att.encrypt(io.BytesIO(b""), io.BytesIO(), b"short")
    _refused(_enc(b"x")[0], "corrupt", key=b"short")


def test_check_digest_names_mismatch() -> None:
    _, digest = _enc(b"hello")
    att.check_digest(digest, digest)
    for other in (
        att.Digest(digest.size, digest.sha256, digest.ct_len, "0" * 64),
        att.Digest(digest.size + 1, digest.sha256, digest.ct_len, digest.ct_sha256),
        att.Digest(digest.size, "0" * 64, digest.ct_len, digest.ct_sha256),
    ):
        with pytest.raises(AttachmentError) as err:
            att.check_digest(other, digest)
        assert (err.value.reason, err.value.code) == ("mismatch", ErrorCode.CIPHERTEXT_MISMATCH)


class _Trickle(io.RawIOBase):
    """A reader that returns at most 1000 bytes a call (a pipe, a socket)."""

    def __init__(self, data: bytes) -> None:
        self._src = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self._src.read(min(n, 1000) if n >= 0 else 1000)


def test_short_reads_give_the_same_ciphertext_layout() -> None:
    plain = os.urandom(2 * CHUNK + 7)
    out = io.BytesIO()
    att.encrypt(_Trickle(plain), out, KEY)  # type: ignore[arg-type]
    assert len(out.getvalue()) == att.ct_len_for(len(plain))
    back = io.BytesIO()
    att.decrypt(_Trickle(out.getvalue()), back, KEY)  # type: ignore[arg-type]
    assert back.getvalue() == plain


@settings(max_examples=40, deadline=None)
@given(size=st.integers(0, 3 * CHUNK + 40), seed=st.binary(min_size=1, max_size=8))
def test_property_round_trip(size: int, seed: bytes) -> None:
    plain = (hashlib.sha256(seed).digest() * (size // 32 + 1))[:size]
    ct, digest = _enc(plain)
    assert len(ct) == att.ct_len_for(size)
    assert _dec(ct) == (plain, digest)


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 2 * CHUNK + 40), data=st.data())
def test_property_any_flipped_bit_refused(size: int, data: st.DataObject) -> None:
    ct = bytearray(_enc(bytes(size))[0])
    pos = data.draw(st.integers(0, len(ct) - 1))
    ct[pos] ^= 1 << data.draw(st.integers(0, 7))
    for ct_len in (None, len(ct)):
        with pytest.raises(AttachmentError) as err:
            _dec(bytes(ct), ct_len=ct_len)
        assert err.value.reason == "corrupt"


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 2 * CHUNK + 40), data=st.data())
def test_property_any_cut_or_append_refused(size: int, data: st.DataObject) -> None:
    ct = _enc(bytes(size))[0]
    cut = data.draw(st.integers(0, len(ct) - 1))
    with pytest.raises(AttachmentError) as err:
        _dec(ct[:cut], ct_len=len(ct))
    assert err.value.reason == "truncated"
    tail = data.draw(st.binary(min_size=1, max_size=64))
    with pytest.raises(AttachmentError) as err:
        _dec(ct + tail, ct_len=len(ct))
    assert err.value.reason == "extended"


@settings(max_examples=30, deadline=None)
@given(size=st.integers(0, 3 * CHUNK + 40), cuts=st.lists(st.integers(1, 2 * CHUNK), max_size=6))
def test_property_encryptor_in_any_pieces_is_the_same_format(size: int, cuts: list[int]) -> None:
    plain = bytes(range(256)) * (size // 256 + 1)
    plain = plain[:size]
    enc = att.Encryptor(KEY)
    out, pos = [], 0
    for n in cuts:
        out.append(enc.update(plain[pos : pos + n]))
        pos += n
    out.append(enc.update(plain[pos:]))
    out.append(enc.finish())
    ct = b"".join(out)
    assert enc.digest is not None
    assert len(ct) == enc.digest.ct_len == att.ct_len_for(size)
    assert _dec(ct, ct_len=len(ct)) == (plain, enc.digest)
    with pytest.raises(ValueError, match="finished"):
        enc.update(b"x")
