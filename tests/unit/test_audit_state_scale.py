"""The auditor's log state grows with the e-mail records logged (PROTOCOL.md §7.3, L6):
a large honest log never makes its own state unreadable, a state in the first form (one
40-byte string per item) still loads, and a corrupted one is refused."""

from __future__ import annotations

import hashlib

import msgspec
import pytest

from protocol.audit_log import LogState, LogVerifier, dump_state, load_state
from protocol.errors import StorageError

SIZE = 1 << 18  # one frontier hash
RECORDS = 200_000  # more than the ~165,000 a fixed 18 MiB cap allowed


def _items(n: int, salt: bytes) -> tuple[bytes, ...]:
    return tuple(hashlib.sha256(salt + i.to_bytes(4, "big")).digest() + i.to_bytes(8, "big")
                 for i in range(n))  # fmt: skip


def _state(n: int = RECORDS) -> LogState:
    return LogState(SIZE, (b"\x01" * 32,), None, None, _items(n, b"r"), _items(n, b"e"))


def test_a_large_state_loads() -> None:
    state = _state()
    data = dump_state(state)
    assert len(data) < RECORDS * 2 * 54 + 1000  # packed: 2 x 40 bytes, base64, per record
    loaded = load_state(data)
    assert loaded == state
    v = LogVerifier(loaded, None)
    assert v.current_state() == state


def test_a_large_state_of_the_first_form_loads() -> None:
    state = _state()
    first = msgspec.json.encode(
        {"v": 1, "size": SIZE, "hashes": state.hashes, "records": state.records,
         "emails": state.emails}
    )  # fmt: skip
    assert len(first) > 18 << 20  # refused before, as "auditor state is corrupted"
    assert load_state(first) == state


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"packed_records": b"x" * 41}, "e-mail record digest"),
        ({"records": [b"x" * 39]}, "e-mail record digest"),
        ({"size": 1, "hashes": [b"\x01" * 32], "packed_emails": b"x" * 80}, "more e-mail"),
        ({"directory": b"x" * (18 << 20)}, "too large"),
    ],
)
def test_a_corrupted_state_is_refused(change: dict[str, object], detail: str) -> None:
    base = msgspec.json.decode(dump_state(_state(3)))
    base.update(change)
    with pytest.raises(StorageError, match="auditor state is corrupted") as exc:
        LogVerifier(load_state(msgspec.json.encode(base)), None)
    assert detail in (exc.value.detail or "")
