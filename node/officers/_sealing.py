"""Officers' TOTP secrets and oral emergency records sealed at rest (PROTOCOL.md §18.2).

The officers room imports nothing of the node, so the node store's sealer arrives as a
:class:`ColumnSealer` (``node.storage.Sealer`` is one). A secret is sealed with the row's
identity ``officers|<login>|totp_secret`` as associated data, the same name the node
store's re-seal pass gives it, so the pass seals the secrets of accounts made before
§18 and re-seals them after a data key rotation.
"""

from __future__ import annotations

from typing import Protocol

from protocol.errors import StorageError


class ColumnSealer(Protocol):
    """Seals and opens one column value bound to its row (``node.storage.Sealer``)."""

    def seal(self, plain: bytes, ad: bytes) -> bytes:
        """``plain`` sealed under the current data key, bound to ``ad``."""
        ...

    def open(self, value: bytes, ad: bytes) -> bytes:
        """The plain bytes (a clear legacy value as it is)."""
        ...


def _ad(login: str) -> bytes:
    return f"officers|{login}|totp_secret".encode()


def seal_secret(sealer: ColumnSealer | None, login: str, secret: str) -> str | bytes:
    """The TOTP secret as stored: sealed bytes, or clear text without a sealer (tests)."""
    return secret if sealer is None else sealer.seal(secret.encode(), _ad(login))


def open_secret(sealer: ColumnSealer | None, login: str, stored: str | bytes) -> str:
    """The TOTP secret of a stored value (clear text from before §18 as it is).

    Raises:
        StorageError: a sealed secret and no sealer, or it does not open.
    """
    if isinstance(stored, str):
        # clear text from before §18: as it is, unless every row is sealed (§18.5)
        return stored if sealer is None else sealer.open(stored.encode(), _ad(login)).decode()
    if sealer is None:
        raise StorageError("an officer's TOTP secret is sealed, and there is no data key")
    return sealer.open(bytes(stored), _ad(login)).decode()


def seal_text(sealer: ColumnSealer | None, text: str, ad: bytes) -> str | bytes:
    """A text column as stored: sealed bytes bound to ``ad``, or clear without a sealer."""
    return text if sealer is None else sealer.seal(text.encode(), ad)


def open_text(sealer: ColumnSealer | None, stored: object, ad: bytes) -> str:
    """The text of a column stored by :func:`seal_text` (clear text from before §18 as
    it is, unless the sealer refuses clear values: §18.5).

    Raises:
        StorageError: a sealed value and no sealer, or it does not open.
    """
    if isinstance(stored, str):
        return stored if sealer is None else sealer.open(stored.encode(), ad).decode()
    if not isinstance(stored, bytes):
        raise StorageError("a stored text column holds neither text nor bytes")
    if sealer is None:
        raise StorageError("a stored value is sealed, and this store has no data key")
    return sealer.open(stored, ad).decode()


def oral_ad(record_id: str, column: str) -> bytes:
    """The associated data of an oral emergency record's sealed column."""
    return f"emergency_oral_records|{record_id}|{column}".encode()


#: the officers' columns sealed at rest beside the TOTP secret (their personal data)
OFFICER_COLUMNS = ("display_name", "email", "phone")


def _officer_ad(login: str, column: str) -> bytes:
    return f"officers|{login}|{column}".encode()


def seal_officer(
    sealer: ColumnSealer | None, login: str, values: tuple[str | None, ...]
) -> tuple[str | bytes | None, ...]:
    """``display_name, email, phone`` as stored (NULL stays NULL)."""
    return tuple(
        None if v is None else seal_text(sealer, v, _officer_ad(login, c))
        for c, v in zip(OFFICER_COLUMNS, values, strict=True)
    )


def open_officer(sealer: ColumnSealer | None, row: tuple[object, ...]) -> tuple[object, ...]:
    """An officers row (``id, login, display_name, email, phone, ...``) with the sealed
    columns opened."""
    login = str(row[1])
    opened = (
        None if v is None else open_text(sealer, v, _officer_ad(login, c))
        for c, v in zip(OFFICER_COLUMNS, row[2:5], strict=True)
    )
    return (*row[:2], *opened, *row[5:])
