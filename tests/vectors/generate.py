"""Deterministic generator of relay247's own test vectors (STYLE.md rule 10).

Run ``python -m tests.vectors.generate`` from the repository root to rewrite the
committed files; ``tests/unit/test_vectors.py`` checks they are reproduced byte for
byte and that every case gives its expected outcome. Fixed seeds, fixed times and fixed
sealed-box ephemeral keys make every byte reproducible (Ed25519 is deterministic,
RFC 8032 §5.1.6).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.network import Network, make_network
from tests.vectors._common import Json
from tests.vectors._email_cases import email_vectors
from tests.vectors._envelope_cases import envelope_vectors
from tests.vectors._tombstone_cases import tombstone_vectors
from tests.vectors._trust_cases import directory_vectors, receipt_vectors

HERE = Path(__file__).resolve().parent


def _bridged() -> Network:
    """The test network with MT, a member reached by e-mail (PROTOCOL.md §22)."""
    net = make_network(("FR", "US", "DE", "MT"))
    net.bridge("MT")
    return net


def dump(content: Json) -> bytes:
    """Pretty JSON, sorted keys, ASCII only, one trailing newline."""
    return (json.dumps(content, indent=2, sort_keys=True) + "\n").encode()


def generate() -> dict[str, bytes]:
    """Return every vector file by name (relative to ``tests/vectors/``).

    Returns:
        File name -> exact file bytes.
    """
    return {
        "envelopes.json": dump(envelope_vectors(make_network())),
        "directories.json": dump(directory_vectors(make_network())),
        "receipts.json": dump(receipt_vectors(make_network())),
        "tombstones.json": dump(tombstone_vectors(make_network())),
        "email_records.json": dump(email_vectors(_bridged())),
    }


def main() -> None:
    """Write the vector files next to this module."""
    for name, data in generate().items():
        (HERE / name).write_bytes(data)
        print(f"wrote tests/vectors/{name} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
