"""Keystore encryption at rest."""

from __future__ import annotations

import msgspec
import pytest

from protocol.errors import MalformedError, VerificationError
from protocol.keystore import lock, unlock
from schemas.keystore import LockedKeystore, SecretKeys

SECRETS = SecretKeys(owner="FR", keys={"signing": b"\x01" * 32, "encryption": b"\x02" * 32})
FAST = {"opslimit": 1, "memlimit": 8192}


def _locked() -> bytes:
    return lock(SECRETS, b"correct horse", salt=b"s" * 16, nonce=b"n" * 24, **FAST)


def test_round_trip() -> None:
    assert unlock(_locked(), b"correct horse") == SECRETS


def test_secret_not_in_file() -> None:
    assert b"\x01" * 32 not in _locked()


def test_wrong_passphrase() -> None:
    with pytest.raises(VerificationError, match="wrong passphrase"):
        unlock(_locked(), b"wrong")


def test_altered_ciphertext() -> None:
    ks = msgspec.json.decode(_locked(), type=LockedKeystore)
    ct = bytearray(ks.ciphertext)
    ct[0] ^= 1
    with pytest.raises(VerificationError):
        unlock(
            msgspec.json.encode(msgspec.structs.replace(ks, ciphertext=bytes(ct))), b"correct horse"
        )


@pytest.mark.parametrize("data", [b"", b"garbage", b'{"v":1}'])
def test_corrupted_file(data: bytes) -> None:
    with pytest.raises(MalformedError):
        unlock(data, b"x")


def test_kdf_limits_bounded() -> None:
    """A tampered file cannot make us allocate unbounded memory."""
    ks = msgspec.json.decode(_locked(), type=LockedKeystore)
    huge = msgspec.json.encode(msgspec.structs.replace(ks, memlimit=1 << 40))
    with pytest.raises(MalformedError):
        unlock(huge, b"correct horse")


def test_empty_passphrase_refused() -> None:
    with pytest.raises(VerificationError):
        lock(SECRETS, b"", salt=b"s" * 16, nonce=b"n" * 24, **FAST)
