"""Envelope benchmark: seal + open of a 2 KiB request against the raw PyNaCl calls inside.

Run: python bench/bench_protocol.py   (about 10-20 s, well under 60 s)

Target (DESIGN.md §6): seal + open at >= 80 % of the throughput of the raw operations
it consists of, measured in the same run on the same inputs' sizes:
- seal = 2 Ed25519 signs (inner metadata, header) + 1 crypto_box_seal + 2 SHA-256
  (body, ciphertext);
- open = 2 Ed25519 verifies (header, inner metadata) + 1 crypto_box_seal_open +
  2 SHA-256 (ciphertext at E8, body at E12).
Everything else (JSON encode/decode and validation, directory look-ups, checks) is the
overhead the ratio measures. The body is the example preservation request of
``schemas.examples`` (about 2.7 KB of JSON).
"""

from __future__ import annotations

import hashlib
import math
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec
import nacl.public
import nacl.signing

from protocol import domains
from protocol.envelope import open_envelope, seal_envelope
from schemas.envelope import Envelope
from schemas.examples import CASE_ID, REQUEST_MSG_ID, example
from schemas.types import CoarseKind, Priority
from tests.support.network import T0, make_network

TARGET = 0.8
ROUNDS = 25
LOOPS = 200


def best_pair(ours: Callable[[], object], raw: Callable[[], object]) -> tuple[float, float]:
    """Seconds per call of each: the fastest of ``ROUNDS`` batches (noise only adds).

    The two run in alternating batches so that a noisy neighbour slows both alike.
    """
    best = [math.inf, math.inf]
    for _ in range(ROUNDS):
        for i, fn in enumerate((ours, raw)):
            t0 = time.perf_counter()
            for _ in range(LOOPS):
                fn()
            best[i] = min(best[i], (time.perf_counter() - t0) / LOOPS)
    return best[0], best[1]


def main() -> int:
    """Measure, print the table, and return 0 if the target ratio is met."""
    net = make_network(("FR", "DE"))
    fr, de = net.members["FR"], net.members["DE"]
    keys = net.lookup()
    my_keys = {de.encryption.fingerprint: de.encryption}
    body = msgspec.json.encode(example("preservation_request"))

    def seal() -> bytes:
        return seal_envelope(
            body, msg_id=REQUEST_MSG_ID, case_id=CASE_ID, kind=CoarseKind.REQUEST,
            priority=Priority.URGENT, seq=1, sender="FR", signing_key=fr.signing,
            recipient="DE", recipient_key=de.encryption.public,
            recipient_key_fp=de.encryption.fingerprint, created=T0,
            lifetime=timedelta(days=1),
        ).envelope  # fmt: skip

    envelope = seal()

    def open_() -> bytes:
        return open_envelope(envelope, keys, me="DE", my_keys=my_keys, now=T0).body

    assert open_() == body
    # Same-sized inputs for the raw calls, taken from a real envelope.
    env = msgspec.json.decode(envelope, type=Envelope)
    plaintext = de.encryption.unseal(env.ciphertext)
    meta_len = int.from_bytes(plaintext[64:68], "big")
    inner_msg = domains.ENVELOPE_INNER + plaintext[68 : 68 + meta_len]
    header_msg = domains.ENVELOPE_HEADER + env.header
    sk = nacl.signing.SigningKey(fr.signing.seed)
    vk = sk.verify_key
    box = nacl.public.SealedBox(nacl.public.PublicKey(de.encryption.public))
    unbox = nacl.public.SealedBox(nacl.public.PrivateKey(de.encryption.secret))
    inner_sig, header_sig = sk.sign(inner_msg).signature, sk.sign(header_msg).signature
    sha = hashlib.sha256

    def raw_seal() -> None:
        sha(body).hexdigest()
        sk.sign(inner_msg)
        ct = box.encrypt(plaintext)
        sha(ct).hexdigest()
        sk.sign(header_msg)

    def raw_open() -> None:
        vk.verify(header_msg, header_sig)
        sha(env.ciphertext).hexdigest()
        unbox.decrypt(env.ciphertext)
        vk.verify(inner_msg, inner_sig)
        sha(body).hexdigest()

    rows = []
    for name, ours, raw in (("seal", seal, raw_seal), ("open", open_, raw_open)):
        rows.append((name, *best_pair(ours, raw)))
    total_ours = sum(r[1] for r in rows)
    total_raw = sum(r[2] for r in rows)
    rows.append(("seal+open", total_ours, total_raw))
    print(f"body {len(body)} B, envelope {len(envelope)} B, best of {ROUNDS} x {LOOPS}")
    print(f"{'operation':<10} {'relay247 ops/s':>15} {'raw PyNaCl ops/s':>17} {'ratio':>6}")
    for name, ours_s, raw_s in rows:
        print(f"{name:<10} {1 / ours_s:>15,.0f} {1 / raw_s:>17,.0f} {raw_s / ours_s:>6.2f}")
    ratio = total_raw / total_ours
    verdict = "meets" if ratio >= TARGET else "BELOW"
    print(f"seal+open ratio {ratio:.2f} {verdict} the target {TARGET}")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
