"""Target ``notes``: signed notes (C2SP signed-note), checkpoints and cosignatures.

The verifiers are fixed keys (``_LOG``, ``_WITNESS``) so that seeds made with the matching
signers (``tests.fuzz.seeds``) get past the signature checks, and mutations reach the
checkpoint and cosignature parsers behind them.
"""

from __future__ import annotations

from protocol import checkpoint, cosignature, note
from protocol.errors import Relay247Error
from protocol.keys import SigningKey
from tests.fuzz._harness import Pick

ORIGIN = "fuzz.example/log"
LOG_KEY = SigningKey(bytes([1]) * 32)
WITNESS_KEY = SigningKey(bytes([2]) * 32)
_LOG = note.Verifier(ORIGIN, LOG_KEY.public)
_WITNESS = cosignature.CosignatureVerifier("fuzz.example/witness", WITNESS_KEY.public)


def one(data: bytes) -> None:
    pick = Pick(data)
    mode = pick.byte() % 4
    raw = pick.rest()
    try:
        if mode == 0:
            opened = note.open(raw, [_LOG, _WITNESS])
            assert opened.text.endswith("\n")
        elif mode == 1:
            cp, _ = checkpoint.open_checkpoint(raw, _LOG, ORIGIN)
            assert checkpoint.parse(checkpoint.encode(cp)) == cp
        elif mode == 2:
            cosignature.verify_cosignatures(raw, [_WITNESS], 1, not_after=2_000_000_000)
        else:
            cp = checkpoint.parse(raw.decode("utf-8", errors="replace"))
            assert checkpoint.parse(checkpoint.encode(cp)) == cp
    except Relay247Error:
        pass
