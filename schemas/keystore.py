"""At-rest keystore file: Argon2id-derived key + XSalsa20-Poly1305 secretbox (§9)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from schemas.types import Version


class LockedKeystore(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The file on disk. Only ``ciphertext`` is secret; the rest are KDF parameters."""

    v: Version = 1
    kdf: Annotated[str, msgspec.Meta(pattern=r"^argon2id13\Z")] = "argon2id13"
    opslimit: Annotated[int, msgspec.Meta(ge=1, le=16)]
    memlimit: Annotated[int, msgspec.Meta(ge=8192, le=1 << 30)]
    salt: Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
    nonce: Annotated[bytes, msgspec.Meta(min_length=24, max_length=24)]
    ciphertext: Annotated[bytes, msgspec.Meta(min_length=16, max_length=1 << 20)]


class SecretKeys(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The decrypted contents: named 32-byte secrets (never logged, never on the wire)."""

    v: Version = 1
    owner: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    keys: dict[Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_.-]{1,64}\Z")], bytes]
