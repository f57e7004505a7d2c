"""What the retention classes share (PROTOCOL.md §19): closure's states, who removes, and
the attachments' files a body names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from node.officers import LogSigner
from node.storage import Sealer
from protocol.codec import decode
from protocol.errors import MalformedError
from protocol.keys import SigningKey
from schemas.messages import BODY_DECODER

#: A case in one of these states closed at its last activity (§19.1) ...
TERMINAL: Final = ("rejected", "refused", "impossible", "withdrawn", "closed")
#: ... and in one of these at its ``preserved until`` date.
HOLDING: Final = ("preserved", "extension_requested")


@dataclass(frozen=True)
class Remover:
    """Who removes, under which policy, and where the attachments' files are."""

    member: str
    signing: SigningKey
    signer: LogSigner
    policy_days: int
    data_dir: Path
    #: the node's data keys (PROTOCOL.md §18): bodies and headers are opened with it, and
    #: the retained copy of the case is sealed under its own row's name
    sealer: Sealer | None = None


def body_files(data_dir: Path, direction: str, peer: str, body: bytes) -> list[Path]:
    """The attachments' files a stored body names, as node/messaging/attachments.py
    names them, that exist."""
    try:
        decoded = decode(BODY_DECODER, body, "stored body", limit=len(body), unique_keys=False)
    except MalformedError:
        return []  # not a business body this node can read: it names no file
    named = getattr(decoded, "attachments", msgspec.UNSET)
    if isinstance(named, msgspec.UnsetType):
        return []
    root = data_dir / "attachments"
    out = []
    for a in named:
        if direction == "out":
            out += [root / "out" / f"{a.blob_id}{ext}" for ext in (".ct", ".json", ".to")]
        else:
            out.append(root / "in" / peer / f"{a.blob_id}.ct")
    return [p for p in out if p.exists()]
