"""The column sealer: node data at rest (PROTOCOL.md §18, issue 15 §1).

Every column of node.db that holds what came out of an envelope or goes into one is
written through a :class:`Sealer`: XChaCha20-Poly1305 (IETF AEAD, libsodium) under the
node's current *data key*, with the row's identity (table, key columns, column name) as
associated data, so a sealed value moved to another row or column does not open.

A sealed value is ``MAGIC || key_id (4 bytes, big-endian) || nonce (24) || ciphertext``.
The key id says which data key sealed it, so a rotation re-seals row by row in the
background while old and new keys both open (the keystore keeps every data key until no
row names it). A value that does not start with ``MAGIC`` is a clear value written before
the upgrade: it is read as it is, and the background pass seals it. Once a pass has
sealed every row (meta ``at_rest_sealed``) the sealer is :attr:`Sealer.strict` and a
clear value is refused: one planted by someone who can write node.db is not read. JSON, which every
clear value is, never starts with a NUL byte, so the two cannot be confused.

Search terms are not sealed but *keyed hashes* (BLAKE2b-256 keyed with the node's index
key, hex): equality still works, and a copy of node.db without the keystore cannot test
a guessed identifier against them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Final

from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError

from protocol.errors import StorageError

MAGIC: Final = b"\x00r247s1"
KEY_BYTES: Final = 32
_NONCE: Final = 24
_HEAD: Final = len(MAGIC) + 4
#: per kind of term, the separators after which a prefix is indexed too ("target@",
#: "10.1."), at most :data:`MAX_PREFIXES` of them (each is one more row to write)
TERM_SEPARATORS: Final = {"email": "@", "ip": ".:"}
MAX_PREFIXES: Final = 3


def is_sealed(value: bytes) -> bool:
    """True if ``value`` was written by a :class:`Sealer` (not a clear legacy value)."""
    return value[: len(MAGIC)] == MAGIC


def key_id_of(value: bytes) -> int | None:
    """The id of the data key that sealed ``value`` (None: a clear value)."""
    if not is_sealed(value) or len(value) < _HEAD:
        return None
    return int.from_bytes(value[len(MAGIC) : _HEAD], "big")


def row_ad(table: str, *parts: object) -> bytes:
    """The associated data naming one column of one row: ``table|part|part...``."""
    return "|".join((table, *(str(p) for p in parts))).encode()


class Sealer:
    """Seals and opens column values under the node's data keys (never logged).

    Args:
        keys: every data key the node holds, by key id (1, 2, ...).
        current: the key id new values are sealed under.
        index_key: the key of the search terms' keyed hashes.
    """

    def __init__(self, keys: Mapping[int, bytes], current: int, index_key: bytes) -> None:
        if current not in keys:
            raise ValueError("the current data key is not among the keys")
        if any(len(k) != KEY_BYTES for k in (*keys.values(), index_key)):
            raise ValueError("data keys are 32 bytes")
        self._keys = dict(keys)
        self._current = current
        self._index = index_key
        #: refuse clear values (set once a full pass sealed every row: §18.5); otherwise
        #: a clear value is read as it is, as written before the upgrade
        self.strict = False

    def __repr__(self) -> str:
        return f"Sealer(current={self._current}, keys={sorted(self._keys)})"

    @property
    def current(self) -> int:
        """The key id new values are sealed under."""
        return self._current

    @property
    def prefix(self) -> bytes:
        """The first bytes of every value sealed under the current key."""
        return MAGIC + self._current.to_bytes(4, "big")

    def use(self, key_id: int, key: bytes) -> None:
        """Add a data key (a rotation) and seal new values under it from now on.

        Safe while other threads seal and open: the key is in the table before it is
        made current, and :meth:`seal` reads the current id once."""
        if len(key) != KEY_BYTES or key_id <= 0:
            raise ValueError("a data key is 32 bytes with a positive id")
        self._keys[key_id] = key
        self._current = key_id

    def seal(self, plain: bytes, ad: bytes) -> bytes:
        """``plain`` sealed under the current key, bound to ``ad``."""
        current = self._current  # read once: a rotation may change it on another thread
        head = MAGIC + current.to_bytes(4, "big")
        nonce = os.urandom(_NONCE)
        box = crypto_aead_xchacha20poly1305_ietf_encrypt(
            plain, head + ad, nonce, self._keys[current]
        )
        return head + nonce + box

    def open(self, value: bytes, ad: bytes) -> bytes:
        """The plain bytes of a sealed value (a clear legacy value as it is, until
        :attr:`strict`).

        Raises:
            StorageError: an unknown key id, the value was altered or moved, or a clear
                value once :attr:`strict`.
        """
        key_id = key_id_of(value)
        if key_id is None:
            if self.strict:  # every row was sealed: a clear one was planted (§18.5)
                raise StorageError("a stored value is clear where only sealed values are kept")
            return value
        key = self._keys.get(key_id)
        if key is None:
            raise StorageError("a stored value is sealed under an unknown data key",
                               detail=f"key id {key_id}")  # fmt: skip
        head = value[:_HEAD]
        nonce = value[_HEAD : _HEAD + _NONCE]
        try:
            return crypto_aead_xchacha20poly1305_ietf_decrypt(
                value[_HEAD + _NONCE :], head + ad, nonce, key
            )
        except CryptoError:
            raise StorageError("a stored value does not open (altered or moved)") from None

    def reseal(self, value: bytes, ad: bytes) -> bytes:
        """``value`` sealed under the current key (unchanged if it already is)."""
        if value[:_HEAD] == self.prefix:
            return value
        return self.seal(self.open(value, ad), ad)

    def term(self, kind: str, term: str) -> str:
        """The keyed hash a search term is stored and looked up as (hex)."""
        data = f"{kind}\x00{term}".encode()
        return hashlib.blake2b(data, key=self._index, digest_size=32).hexdigest()

    def terms(self, kind: str, term: str) -> set[str]:
        """The keyed hashes of a term and of its prefixes ending at a separator."""
        seps = TERM_SEPARATORS.get(kind, "")
        ends = [i for i, ch in enumerate(term[:-1]) if i >= 1 and ch in seps]
        return {
            self.term(kind, term),
            *(self.term(kind, term[: i + 1]) for i in ends[:MAX_PREFIXES]),
        }


def open_optional(sealer: Sealer | None, value: bytes, ad: bytes) -> bytes:
    """Open ``value`` with ``sealer``; without one (a clear store), refuse a sealed value.

    Raises:
        StorageError: a sealed value and no sealer, or as :meth:`Sealer.open`.
    """
    if sealer is not None:
        return sealer.open(value, ad)
    if is_sealed(value):
        raise StorageError("a stored value is sealed, and this store has no data key")
    return value


def seal_optional(sealer: Sealer | None, value: bytes, ad: bytes) -> bytes:
    """``value`` sealed with ``sealer``, or as it is for a clear store (tests, benches)."""
    return value if sealer is None else sealer.seal(value, ad)
