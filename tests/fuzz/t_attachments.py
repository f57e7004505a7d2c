"""Target ``attachments``: the secretstream chunk framing of an attachment's ciphertext
(decryption with and without the stated length), the ciphertext-length arithmetic, and
the relay's upload chunk spans.

Seeds are real ciphertexts under :data:`KEY` (``tests.fuzz.seeds``), so mutations reach
every framing check: truncation, extension, a bad tag, a stated length no size gives.
"""

from __future__ import annotations

import io

from protocol.attachment import decrypt, size_for
from protocol.errors import Relay247Error
from schemas._attachment import ct_len_for
from schemas.blobs import chunk_count, chunk_span
from tests.fuzz._harness import Pick

KEY = bytes(range(100, 132))


def _lengths(n: int) -> None:
    size = size_for(n)
    if size is not None:
        assert ct_len_for(size) == n, n
    count = chunk_count(n, 4096)
    first, last = chunk_span(0, n, 4096), chunk_span(count - 1, n, 4096)
    assert (first[0] == 0 and last[1] == max(n, 0)) or n == 0


def one(data: bytes) -> None:
    pick = Pick(data)
    mode = pick.byte()
    raw = pick.rest()
    stated: int | None = None
    if mode % 4 == 1:
        stated = len(raw)
    elif mode % 4 == 2:
        stated = max(0, len(raw) + (mode >> 2) - 32)
    _lengths(len(raw) + mode)
    try:
        out = io.BytesIO()
        digest = decrypt(io.BytesIO(raw), out, KEY, ct_len=stated)
        assert digest.ct_len == len(raw)
        assert digest.size == len(out.getvalue())
    except Relay247Error:
        pass
