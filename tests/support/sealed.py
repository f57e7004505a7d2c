"""An attachment encrypted in memory: its ciphertext and the ``Attachment`` that names it."""

from __future__ import annotations

import base64
import io

from protocol import attachment as fmt
from schemas import Attachment

KEY = bytes(range(32))


def sealed(
    plain: bytes, *, blob_id: str = "ab" * 16, key: bytes = KEY, name: str = "f.bin"
) -> tuple[bytes, Attachment]:
    """``plain`` encrypted with ``key``: the ciphertext and its attachment record."""
    out = io.BytesIO()
    d = fmt.encrypt(io.BytesIO(plain), out, key)
    a = Attachment(
        blob_id=blob_id, name=name, media_type="application/octet-stream", size=d.size,
        sha256=d.sha256, ct_sha256=d.ct_sha256, ct_len=d.ct_len,
        key=base64.b64encode(key).decode(),
    )  # fmt: skip
    return out.getvalue(), a
