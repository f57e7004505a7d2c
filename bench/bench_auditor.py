"""Auditor benchmark: verifying a 1,000,000-entry log, as ratios measured in the same run.

Run: python bench/bench_auditor.py [--entries 1000000]   (about 2-4 minutes on 2 cores)

Entries are realistic: a ``directory_published`` entry, then alternating
``envelope_accepted`` (a real signed header, ~700 bytes) and ``delivery_acked`` entries
from four members. One signed header and one signed ack per member are reused to keep the
build fast, but every entry has its own ``received_at`` (so its own bytes and leaf) and
:class:`protocol.audit_log.LogVerifier` verifies every signature of every entry.

Reported, each chunk of 10,000 entries timed in turn so that machine noise hits all parts:

1. Merkle recomputation (leaf hash + compact-range append, what ``LogVerifier.feed``
   does first) over plain SHA-256 of the same entry bytes. Target: <= 2x.
2. Signature verification per entry (decode + key look-up + Ed25519 verify, i.e. full
   ``feed`` minus the Merkle part) over one raw PyNaCl Ed25519 verify. Target: close to 1.
3. The auditor's peak memory (ru_maxrss of a child process that verifies the whole log,
   entries streamed in chunks as the tool downloads tiles) at 100k and at 1M entries.
   Target: flat.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec
from nacl.signing import VerifyKey

from protocol import domains
from protocol.audit_log import LogState, LogVerifier
from protocol.codec import encode
from protocol.envelope import seal_envelope
from protocol.merkle import CompactRange
from protocol.receipt import make_ack
from schemas.audit import DeliveryAcked, DirectoryPublished, EnvelopeAccepted
from schemas.envelope import SignedAck
from schemas.types import CoarseKind, Priority
from tests.support.network import T0, make_network

MEMBERS = ("FR", "DE", "US", "IT")
CHUNK = 10_000
MERKLE_TARGET = 2.0


def _templates() -> tuple[bytes, list[tuple[bytes, bytes, bytes, bytes, bytes]]]:
    """The directory entry and, per member, (header, header sig, ack, ack sig, public)."""
    net = make_network(MEMBERS)
    out = []
    for i, frm in enumerate(MEMBERS):
        to = MEMBERS[(i + 1) % len(MEMBERS)]
        r = net.members[to]
        sealed = seal_envelope(
            b'{"kind":"follow_up"}' + b" " * 1500,
            msg_id=f"{i:032x}",
            case_id="c" * 32,
            kind=CoarseKind.REQUEST,
            priority=Priority.URGENT,
            seq=1,
            sender=frm,
            signing_key=net.members[frm].signing,
            recipient=to,
            recipient_key=r.encryption.public,
            recipient_key_fp=r.encryption.fingerprint,
            created=T0,
            lifetime=timedelta(days=7),
        )
        sig = base64.b64decode(json.loads(sealed.envelope)["sig"])
        ack = msgspec.json.decode(
            make_ack(sealed.header, sealed.header_bytes, signing_key=r.signing, acked_at=T0),
            type=SignedAck,
        )
        out.append((sealed.header_bytes, sig, ack.ack, ack.sig, net.members[frm].signing.public))
    first = encode(DirectoryPublished(received_at=T0, version=1, signed_directory=net.signed()))
    return first, out


def entries(n: int) -> Iterator[list[bytes]]:
    """Yield the log's entries in chunks of CHUNK (the first holds the directory)."""
    first, tpl = _templates()
    chunk = [first]
    for i in range(1, n):
        at = T0 + timedelta(microseconds=i)
        header, sig, ack, ack_sig, _ = tpl[(i // 2) % len(tpl)]
        if i % 2:
            chunk.append(encode(EnvelopeAccepted(received_at=at, header=header, sig=sig)))
        else:
            chunk.append(encode(DeliveryAcked(received_at=at, ack=ack, sig=ack_sig)))
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _sha(chunk: list[bytes]) -> float:
    t = time.perf_counter()
    sha = hashlib.sha256
    for e in chunk:
        sha(e).digest()
    return time.perf_counter() - t


def _merkle(chunk: list[bytes], frontier: list[bytes], size: int) -> float:
    # Exactly LogVerifier.feed's step L1 (the compact range, inlined).
    sha = hashlib.sha256
    t = time.perf_counter()
    for e in chunk:
        h = sha(b"\x00" + e).digest()
        i = size
        while i & 1:
            h = sha(b"\x01" + frontier.pop() + h).digest()
            i >>= 1
        frontier.append(h)
        size += 1
    return time.perf_counter() - t


def _raw_verify(samples: int, key: VerifyKey, msg: bytes, sig: bytes) -> float:
    t = time.perf_counter()
    for _ in range(samples):
        key.verify(msg, sig)
    return time.perf_counter() - t


def child(n: int) -> None:
    """Verify n entries; print timings and peak memory as JSON."""
    net = make_network(MEMBERS)
    verifier = LogVerifier(LogState(0, ()), net.root())
    frontier: list[bytes] = []
    sha = merkle = full = raw = 0.0
    anomalies = raws = 0
    _, tpl = _templates()
    header, sig, _, _, public = tpl[0]
    key, msg = VerifyKey(public), domains.ENVELOPE_HEADER + header
    for chunk in entries(n):
        sha += _sha(chunk)
        merkle += _merkle(chunk, frontier, verifier.size)
        t = time.perf_counter()
        anomalies += len(verifier.feed(chunk))
        full += time.perf_counter() - t
        # Interleaved, so that load on the machine hits both sides of the ratio alike.
        raw += _raw_verify(len(chunk) // 10, key, msg, sig)
        raws += len(chunk) // 10
    assert verifier.root() == CompactRange.from_hashes(n, frontier).root()
    raw /= raws
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = {
        "n": n,
        "sha": sha,
        "merkle": merkle,
        "full": full,
        "raw_verify": raw,
        "signatures": verifier.signatures,
        "anomalies": anomalies,
        "peak_kib": peak_kib,
    }
    print(json.dumps(report))


def _run_child(n: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(n)], check=True, capture_output=True, text=True
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return
    small = _run_child(args.entries // 10)
    big = _run_child(args.entries)
    n = big["n"]
    merkle_ratio = big["merkle"] / big["sha"]
    sig_per_entry = (big["full"] - big["merkle"]) / big["signatures"]
    print(
        f"entries: {n:,}; signatures verified: {int(big['signatures']):,};"
        f" anomalies: {int(big['anomalies'])}"
    )
    print(f"plain SHA-256 of the entries      {big['sha']:8.2f} s  ({n / big['sha']:,.0f}/s)")
    print(f"Merkle recomputation (L1)         {big['merkle']:8.2f} s")
    verdict = "ok" if merkle_ratio <= MERKLE_TARGET else "OVER"
    print(
        f"  ratio to SHA-256                {merkle_ratio:8.2f} x   (target <= "
        f"{MERKLE_TARGET}: {verdict})"
    )
    print(f"full verification (L1-L5)         {big['full']:8.2f} s  ({n / big['full']:,.0f}/s)")
    print(f"  ratio to SHA-256                {big['full'] / big['sha']:8.2f} x")
    print(f"signature check per entry         {sig_per_entry * 1e6:8.1f} us")
    print(f"raw Ed25519 verify (PyNaCl)       {big['raw_verify'] * 1e6:8.1f} us")
    print(f"  ratio                           {sig_per_entry / big['raw_verify']:8.2f} x")
    growth = big["peak_kib"] / small["peak_kib"]
    print(f"peak memory at {int(small['n']):>9,} entries  {small['peak_kib'] / 1024:8.1f} MiB")
    print(
        f"peak memory at {n:>9,} entries  {big['peak_kib'] / 1024:8.1f} MiB"
        f"  ({growth:.2f}x for 10x the entries; flat is 1.0)"
    )


if __name__ == "__main__":
    main()
