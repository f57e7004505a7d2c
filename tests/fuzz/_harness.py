"""What every fuzz target shares: the registry and the one rule (project errors only)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
FINDINGS = HERE / "findings"

#: target name -> module under tests.fuzz; each module has ``one(data: bytes) -> None``
TARGETS: dict[str, str] = {
    "sfv": "tests.fuzz.t_sfv",
    "notes": "tests.fuzz.t_notes",
    "codec": "tests.fuzz.t_codec",
    "paths": "tests.fuzz.t_paths",
    "configs": "tests.fuzz.t_configs",
    "node_api": "tests.fuzz.t_node_api",
    "attachments": "tests.fuzz.t_attachments",
}


@dataclass(frozen=True)
class Target:
    name: str
    one: Callable[[bytes], None]


def load(name: str) -> Target:
    """Import target ``name`` and return its entry (KeyError for an unknown name)."""
    module = importlib.import_module(TARGETS[name])
    one: Callable[[bytes], None] = module.one
    return Target(name, one)


def seeds(name: str) -> list[tuple[str, bytes]]:
    """The committed seed corpus of ``name`` (file name, bytes), sorted by name."""
    folder = CORPUS / name
    if not folder.is_dir():
        return []
    return [(p.name, p.read_bytes()) for p in sorted(folder.iterdir()) if p.is_file()]


class Pick:
    """Split one fuzz input into a selector byte and the rest (a deterministic reader)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        b = self.data[self.pos]
        self.pos += 1
        return b

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out

    def text(self) -> str:
        """The rest as text the way an HTTP server hands a header to us (Latin-1)."""
        return self.rest().decode("latin-1")
