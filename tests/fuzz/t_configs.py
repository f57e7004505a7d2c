"""Target ``configs``: the relay's and the node's TOML files and the key files.

The TOML is written to a file in a private temporary directory and read by the real
``load_config`` (every cross-field check included). Key files go through
``protocol.keystore.unlock`` and the node's and relay's ``load_keys``. Argon2id's cost is
the file's to choose within the schema's bounds (up to 16 passes over 1 GiB, by design:
the file is the operator's); to keep each input fast, a file asking more than
:data:`CHEAP_OPS` passes or :data:`CHEAP_MEM` bytes is only decoded, not derived.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from node import config as node_config
from node import keyfile as node_keyfile
from protocol.codec import decode_as
from protocol.errors import Relay247Error
from protocol.keystore import unlock
from relay import config as relay_config
from relay import keyfile as relay_keyfile
from schemas.keystore import LockedKeystore
from tests.fuzz._harness import Pick

PASSPHRASE = b"fuzz passphrase"
CHEAP_OPS = 2
CHEAP_MEM = 1 << 20

_TMP = tempfile.TemporaryDirectory(prefix="relay247-fuzz-configs-")  # removed at exit
_DIR = Path(_TMP.name)


def _write(name: str, data: bytes) -> Path:
    path = _DIR / name
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def _keystore(raw: bytes, mode: int) -> None:
    locked = decode_as(LockedKeystore, raw, "keystore", limit=2 << 20)
    if locked.opslimit > CHEAP_OPS or locked.memlimit > CHEAP_MEM:
        return
    if mode == 2:
        unlock(raw, PASSPHRASE)
    elif mode == 3:
        node_keyfile.load_keys(_write("node.keys", raw), PASSPHRASE, owner="FR")
    else:
        relay_keyfile.load_keys(_write("relay.keys", raw), PASSPHRASE)


def one(data: bytes) -> None:
    pick = Pick(data)
    mode = pick.byte() % 5
    raw = pick.rest()
    try:
        if mode == 0:
            relay_config.load_config(_write("relay.toml", raw))
        elif mode == 1:
            node_config.load_config(_write("node.toml", raw))
        else:
            _keystore(raw, mode)
    except Relay247Error:
        pass
