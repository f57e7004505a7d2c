"""An unauthenticated POST /v1/directory costs at most two signature checks per trusted
coordinator (D4), however many signatures it lists.

Anyone may post a directory: its coordinator signatures are the authorisation. D4 used to
verify every listed signature that named a trusted coordinator until one verified, so 32
bad signatures naming one coordinator over a 1.5 MB directory cost the relay's event loop
~150 ms of CPU per request (measured on loopback; ~19 ms with one signature): a handful of
outsider requests a second stalled every member.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import protocol.directory
import protocol.keys
from protocol.codec import encode
from schemas.directory import DirectorySignature, SignedDirectory
from schemas.errors import ErrorCode
from tests.support.raw_http import assert_sound, exchange, request_bytes
from tests.support.relay import running_relay


async def test_repeated_bad_signatures_are_checked_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_relay(tmp_path) as relay:
        checks: list[str] = []
        real = protocol.keys.verify

        def counting(public: bytes, domain: bytes, data: bytes, sig: bytes) -> None:
            checks.append(public.hex())
            real(public, domain, data, sig)

        monkeypatch.setattr(protocol.directory, "verify", counting)
        coordinators = relay.net.coordinators
        sigs = tuple(
            DirectorySignature(keyid=coordinators[i % 2].fingerprint, sig=os.urandom(64))
            for i in range(32)
        )
        body = encode(SignedDirectory(directory=b"x" * 200_000, signatures=sigs))
        raw = request_bytes("POST", "/v1/directory", {"Content-Type": "application/json"}, body)
        answer = await exchange(relay.url, raw)
        error = assert_sound(answer, "bad signatures")
        assert error is not None
        assert error.code is ErrorCode.INSUFFICIENT_SIGNATURES
        assert len(checks) == 4, len(checks)  # two per coordinator named, not 32
