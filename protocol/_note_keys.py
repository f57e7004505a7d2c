"""Key names, key IDs and key strings shared by signed notes and cosignatures.

The key string layouts are the ones golang.org/x/mod/sumdb/note writes (and that
transparency-dev/formats uses for cosignature/v1 keys):

- verifier key: ``<name>+<key ID as 8 lowercase hex digits>+base64(type || public key)``
- signer key: ``PRIVATE+KEY+<name>+<key ID hex8>+base64(type || 32-byte Ed25519 seed)``

The key ID is ``SHA-256(name || 0x0A || type || public key)[:4]`` read as a big-endian
uint32 (C2SP signed-note, "Signatures"). We are stricter than Go in two places, on purpose:
the hex must be lowercase and the base64 must be canonical (padded, zero trailing bits), so
every key has exactly one accepted spelling.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import unicodedata
from typing import ClassVar, Final, Self

from protocol.errors import NoteError
from protocol.keys import SigningKey

ALG_ED25519: Final = 0x01  # signed-note "Signature types": plain Ed25519 note signature
ALG_COSIGNATURE_V1: Final = 0x04  # tlog-cosignature: timestamped Ed25519 witness cosignature

_HEX8: Final = re.compile(r"[0-9a-f]{8}")
# Go's unicode.IsSpace (the White_Space property); united below with Python's isspace().
_GO_SPACES: Final = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
)


def valid_name(name: str) -> bool:
    """Return whether ``name`` is a legal key name (signed-note "Format").

    Key names MUST be non-empty and MUST NOT contain Unicode spaces or ``+``; control
    characters can never appear in a note either, so they are refused here too.
    """
    if not name:
        return False
    for ch in name:
        if ch == "+" or ch in _GO_SPACES or ch.isspace() or ord(ch) < 0x20:
            return False
        if unicodedata.category(ch) in ("Zs", "Zl", "Zp", "Cs"):
            return False
    return True


def b64encode(data: bytes) -> str:
    """Standard padded base64 (RFC 4648 §4), the only base64 of the C2SP formats."""
    return base64.b64encode(data).decode("ascii")


def b64decode_strict(text: str) -> bytes | None:
    """Decode canonical standard base64, or return ``None``.

    Canonical means: only the RFC 4648 §4 alphabet, correct padding, and the text is
    exactly what re-encoding produces (this refuses non-zero trailing bits, which would
    otherwise give one value several spellings).
    """
    if not text.isascii():
        return None
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if b64encode(data) != text:
        return None
    return data


def key_id(name: str, alg: int, public: bytes) -> int:
    """Return ``SHA-256(name || 0x0A || alg || public)[:4]`` as a big-endian uint32."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public).digest()
    return int.from_bytes(digest[:4], "big")


def format_vkey(name: str, alg: int, public: bytes) -> str:
    """Return the verifier key string ``<name>+<hex8>+base64(alg || public)``."""
    return f"{name}+{key_id(name, alg, public):08x}+{b64encode(bytes([alg]) + public)}"


def new_signing_key(name: str, seed: bytes | None) -> SigningKey:
    """The Ed25519 key of a new (signer, verifier) pair for ``name``, from ``seed`` if given.

    Raises:
        NoteError: invalid name or seed length.
    """
    if not valid_name(name):
        raise NoteError("invalid key name", detail=repr(name))
    if seed is not None and len(seed) != 32:
        raise NoteError("Ed25519 seed must be 32 bytes", detail=str(len(seed)))
    return SigningKey.generate() if seed is None else SigningKey(seed)


def format_skey(name: str, alg: int, key: SigningKey) -> str:
    """Return the signer key string ``PRIVATE+KEY+<name>+<hex8>+base64(alg || seed)``."""
    ident = key_id(name, alg, key.public)
    return f"PRIVATE+KEY+{name}+{ident:08x}+{b64encode(bytes([alg]) + key.seed)}"


def _split_key(name: str, hex8: str, key64: str, what: str, alg: int) -> tuple[int, bytes]:
    """Check the common tail of both key strings; return (key ID, key material)."""
    if not valid_name(name):
        raise NoteError(f"malformed {what} key", detail="invalid key name")
    if not _HEX8.fullmatch(hex8):
        raise NoteError(f"malformed {what} key", detail="key ID is not 8 lowercase hex digits")
    raw = b64decode_strict(key64)
    if raw is None or not raw:
        raise NoteError(f"malformed {what} key", detail="key is not canonical base64")
    if raw[0] != alg:
        raise NoteError(
            f"unsupported {what} key type",
            detail=f"type byte 0x{raw[0]:02x}, expected 0x{alg:02x}",
        )
    if len(raw) != 33:
        raise NoteError(f"malformed {what} key", detail=f"{len(raw) - 1} key bytes, expected 32")
    return int(hex8, 16), raw[1:]


def parse_vkey(vkey: str, alg: int) -> tuple[str, bytes]:
    """Parse a verifier key string of type ``alg``; return (name, 32-byte public key).

    Raises:
        NoteError: malformed string, wrong type byte, wrong length or key ID mismatch.
    """
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise NoteError("malformed verifier key", detail="expected <name>+<hex8>+<base64>")
    name, hex8, key64 = parts
    ident, public = _split_key(name, hex8, key64, "verifier", alg)
    if ident != key_id(name, alg, public):
        raise NoteError("verifier key ID does not match its key", detail=f"{name}+{hex8}")
    return name, public


def parse_skey(skey: str, alg: int) -> tuple[str, SigningKey]:
    """Parse a signer key string of type ``alg``; return (name, signing key).

    Error details never include the key string: it is secret.

    Raises:
        NoteError: malformed string, wrong type byte, wrong length or key ID mismatch.
    """
    parts = skey.split("+", 4)
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise NoteError("malformed signer key", detail="expected PRIVATE+KEY+<name>+<hex8>+<b64>")
    name, hex8, key64 = parts[2], parts[3], parts[4]
    ident, seed = _split_key(name, hex8, key64, "signer", alg)
    key = SigningKey(seed)
    if ident != key_id(name, alg, key.public):
        raise NoteError("signer key ID does not match its key", detail=f"name {name}")
    return name, key


class VerifierBase:
    """Name, public key and key ID of an Ed25519 note key of signature type ``ALG``.

    Subclasses set ``ALG`` and define ``verify``; the key-string handling is shared.

    Raises:
        NoteError: invalid name or key length.
    """

    ALG: ClassVar[int]
    __slots__ = ("key_hash", "name", "public")

    def __init__(self, name: str, public: bytes) -> None:
        if not valid_name(name):
            raise NoteError("invalid key name", detail=repr(name))
        if len(public) != 32:
            raise NoteError("Ed25519 public key must be 32 bytes", detail=str(len(public)))
        self.name = name
        self.public = bytes(public)
        self.key_hash = key_id(name, self.ALG, self.public)

    @classmethod
    def from_key(cls, vkey: str) -> Self:
        """Parse a verifier key ``<name>+<hex8>+base64(ALG || public key)``.

        Raises:
            NoteError: malformed string, another type byte, wrong key length, or a key ID
                that does not match the name and key.
        """
        name, public = parse_vkey(vkey, cls.ALG)
        return cls(name, public)

    def key_string(self) -> str:
        """Return the verifier key string of this key."""
        return format_vkey(self.name, self.ALG, self.public)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key_string()!r})"


class SignerBase:
    """Name, Ed25519 key and key ID of a note signer of signature type ``ALG``.

    Raises:
        NoteError: invalid name.
    """

    ALG: ClassVar[int]
    __slots__ = ("_key", "key_hash", "name")

    def __init__(self, name: str, key: SigningKey) -> None:
        if not valid_name(name):
            raise NoteError("invalid key name", detail=repr(name))
        self.name = name
        self._key = key
        self.key_hash = key_id(name, self.ALG, key.public)

    @classmethod
    def from_key(cls, skey: str) -> Self:
        """Parse ``PRIVATE+KEY+<name>+<hex8>+base64(ALG || 32-byte seed)`` (secret).

        Raises:
            NoteError: malformed string, another type byte, wrong seed length, or a key
                ID that does not match the name and derived public key.
        """
        name, key = parse_skey(skey, cls.ALG)
        return cls(name, key)

    @property
    def public(self) -> bytes:
        """The 32-byte Ed25519 public key."""
        return self._key.public

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, key_hash={self.key_hash:08x})"
