"""An attachment as the sealed body names it (PROTOCOL.md §15.2).

The relay carries only the ciphertext (a blob, PROTOCOL.md §15.4); everything needed to
find, check and decrypt it travels here, inside the signed and encrypted body.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from schemas.blobs import MAX_ATTACHMENTS
from schemas.types import Id128, Sha256Hex

#: The directory capability of a member whose node reads a body's ``attachments``
#: (PROTOCOL.md §3.1, §10.10): a body with attachments goes only to such a member.
ATTACHMENTS: Final = "attachments"

#: Plaintext bytes per secretstream message, and the per-message and header overheads
#: of ``crypto_secretstream_xchacha20poly1305`` (PROTOCOL.md §15.1).
CHUNK: Final = 65_536
HEADER_BYTES: Final = 24
ABYTES: Final = 17
#: The largest plaintext accepted, in bytes (PROTOCOL.md §13): 64 GiB.
MAX_ATTACHMENT_SIZE: Final = 1 << 36

#: A file name as the sender's officer gave it: 1-255 characters, no path separator, no
#: control character (C0, DEL, C1), not "." or ".." (further checked by S14).
FileName = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=255,
        pattern=r"^[^/\\\x00-\x1f\x7f-\x9f]+\Z",
        description="file name without any directory part",
    ),
]

#: Why S14 (PROTOCOL.md §15.2) refuses a file name the schema alone would take.
BAD_FILE_NAME: Final = "file name must not be '.', '..' or start or end with a space"


def file_name_refused(name: str) -> bool:
    """True for a name S14 refuses: "." or "..", or one that starts or ends with white
    space (what ``str.strip`` removes: a space, U+00A0, U+2028, ...).

    The one test of the rule: the semantic check of a body, ``POST /v1/attachments``
    (before a byte is read) and ``node send --attach`` (before anything is uploaded).
    """
    return name in {".", ".."} or name != name.strip()


#: RFC 6838 §4.2 type "/" subtype (restricted-name), without parameters.
MediaType = Annotated[
    str,
    msgspec.Meta(
        max_length=255,
        pattern=(
            r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+\-]{0,126}"
            r"/[A-Za-z0-9][A-Za-z0-9!#$&^_.+\-]{0,126}\Z"
        ),
        description="media type (RFC 6838), without parameters",
        examples=["application/pdf", "image/png", "text/csv"],
    ),
]

#: A 32-byte key in standard base64 with padding (44 characters).
FileKey = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=\Z",
        description="the file's 32-byte secretstream key, standard base64",
    ),
]


def chunk_count(size: int) -> int:
    """Return the number of secretstream messages for ``size`` plaintext bytes (>= 1)."""
    if size < 0:
        raise ValueError("size is negative")
    return max(1, -(-size // CHUNK))


def ct_len_for(size: int) -> int:
    """Return the ciphertext length of a ``size``-byte plaintext: 24 + size + 17 * chunks."""
    return HEADER_BYTES + size + ABYTES * chunk_count(size)


class Attachment(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One encrypted file: where it is (``blob_id``), what it is, and how to open it."""

    blob_id: Id128
    name: FileName
    media_type: MediaType
    size: Annotated[int, msgspec.Meta(ge=0, le=MAX_ATTACHMENT_SIZE)]
    sha256: Sha256Hex
    ct_sha256: Sha256Hex
    ct_len: Annotated[int, msgspec.Meta(ge=41)]
    key: FileKey


#: The optional ``attachments`` field of the common head: 1 to 16 files, as many as a
#: header may name (``schemas.blobs.MAX_ATTACHMENTS``).
Attachments = Annotated[
    tuple[Attachment, ...], msgspec.Meta(min_length=1, max_length=MAX_ATTACHMENTS)
]
