"""Attachment benchmark: our streaming format against raw secretstream, and end to end.

Run: python bench/bench_attach.py [--mib N] [--e2e-mib M]   (defaults 256 and 128)

1. **Format** (``protocol.attachment``), file to file with the output fsynced, against
   the raw libsodium calls it consists of, measured in the same run on the same file:
   - encrypt: ours = read 64 KiB chunks, ``secretstream push``, write, SHA-256 of the
     plaintext and of the ciphertext, fsync; raw = the same loop without the hashes;
   - decrypt: ours = read each chunk at its offset, ``pull``, tag and length checks,
     write, both SHA-256, fsync; raw = read, ``pull``, write, fsync.
   The ratio is ours / raw throughput (1.0: no overhead). The two SHA-256 are required by
   the format (§15.1 item 5), so the ratio also shows what they cost.
2. **End to end** (when the relay and nodes start here): a real relay and two nodes on
   loopback, in this process: the file is streamed to FR's local API (encrypted into
   its data directory), sent, uploaded in 4 MiB chunks, accepted, downloaded by US,
   checked and kept, and the receipt comes back. Printed as MiB/s of plaintext.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec
import nacl.bindings as sodium

from protocol import attachment as fmt

ROUNDS = 3
MiB = 1 << 20
_PUSH = sodium.crypto_secretstream_xchacha20poly1305_push
_PULL = sodium.crypto_secretstream_xchacha20poly1305_pull
_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL


def _fsynced(path: Path, fill: Callable[[object], None]) -> None:
    with path.open("wb") as f:
        fill(f)
        f.flush()
        os.fsync(f.fileno())


def raw_encrypt(src: Path, dst: Path, key: bytes, hashed: bool = False) -> None:
    """read, push, write, fsync: the least an encryptor of this format must do
    (``hashed``: and the two SHA-256 the format requires)."""
    hp, hc = hashlib.sha256(), hashlib.sha256()
    size = src.stat().st_size
    state = sodium.crypto_secretstream_xchacha20poly1305_state()

    def fill(out: object) -> None:
        assert hasattr(out, "write")
        out.write(sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key))
        done = 0
        with src.open("rb") as f:
            while True:
                chunk = f.read(fmt.CHUNK)
                done += len(chunk)
                tag = _FINAL if done >= size else 0
                sealed = _PUSH(state, chunk, None, tag)
                if hashed:
                    hp.update(chunk)
                    hc.update(sealed)
                out.write(sealed)
                if tag:
                    return

    _fsynced(dst, fill)


def raw_decrypt(src: Path, dst: Path, key: bytes, hashed: bool = False) -> None:
    """read, pull, write, fsync (``hashed``: and both SHA-256)."""
    hp, hc = hashlib.sha256(), hashlib.sha256()
    state = sodium.crypto_secretstream_xchacha20poly1305_state()

    def fill(out: object) -> None:
        assert hasattr(out, "write")
        with src.open("rb") as f:
            sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, f.read(24), key)
            while block := f.read(fmt.CHUNK + fmt.ABYTES):
                plain = _PULL(state, block, None)[0]
                if hashed:
                    hc.update(block)
                    hp.update(plain)
                out.write(plain)

    _fsynced(dst, fill)


def ours_encrypt(src: Path, dst: Path, key: bytes) -> None:
    def fill(out: object) -> None:
        with src.open("rb") as f:
            fmt.encrypt(f, out, key)  # type: ignore[arg-type]

    _fsynced(dst, fill)


def ours_decrypt(src: Path, dst: Path, key: bytes) -> None:
    ct_len = src.stat().st_size

    def fill(out: object) -> None:
        with src.open("rb") as f:
            fmt.decrypt(f, out, key, ct_len=ct_len)  # type: ignore[arg-type]

    _fsynced(dst, fill)


def best(fns: list[Callable[[], None]]) -> list[float]:
    """The fastest of ``ROUNDS`` runs of each, alternating so noise hits all alike."""
    out = [math.inf] * len(fns)
    for _ in range(ROUNDS):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            out[i] = min(out[i], time.perf_counter() - t0)
    return out


def format_bench(tmp: Path, mib: int) -> None:
    plain = tmp / "plain.bin"
    with plain.open("wb") as f:
        block = os.urandom(MiB)
        for _ in range(mib):
            f.write(block)
    key = fmt.new_key()
    ct, back, ct_raw, back_raw = (tmp / n for n in ("ct", "back", "ct_raw", "back_raw"))
    enc = best(
        [
            lambda: ours_encrypt(plain, ct, key),
            lambda: raw_encrypt(plain, ct_raw, key),
            lambda: raw_encrypt(plain, ct_raw, key, hashed=True),
        ]
    )
    dec = best(
        [
            lambda: ours_decrypt(ct, back, key),
            lambda: raw_decrypt(ct_raw, back_raw, key),
            lambda: raw_decrypt(ct_raw, back_raw, key, hashed=True),
        ]
    )
    assert back.read_bytes() == plain.read_bytes() == back_raw.read_bytes()
    t0 = time.perf_counter()
    hashlib.sha256(plain.read_bytes()).digest()
    sha = mib / (time.perf_counter() - t0)
    print(f"format, {mib} MiB file to file (output fsynced), best of {ROUNDS}; SHA-256 here:")
    print(f"{sha:.0f} MiB/s. ratio = ours / raw; ratio+h = ours / (raw + the two SHA-256)")
    print(
        f"{'':10}{'ours MiB/s':>12}{'raw MiB/s':>12}{'raw+h MiB/s':>13}{'ratio':>8}{'ratio+h':>9}"
    )
    for name, (o, r, rh) in (("encrypt", enc), ("decrypt", dec)):
        print(f"{name:10}{mib / o:12.0f}{mib / r:12.0f}{mib / rh:13.0f}{r / o:8.2f}{rh / o:9.2f}")


async def e2e_bench(tmp: Path, mib: int) -> None:
    from node.events import ReceiptReceived
    from schemas._attachment import ATTACHMENTS
    from tests.integration._node_services import peers
    from tests.integration.test_node_api import request
    from tests.support.fake_relay import next_event
    from tests.support.network import make_network
    from tests.support.relay import running_relay

    src = tmp / "e2e.bin"
    with src.open("wb") as f:
        block = os.urandom(MiB)
        for i in range(mib):
            f.write(i.to_bytes(8, "big") + block[8:])
    net = make_network()
    net.declare(ATTACHMENTS)  # as `node init` writes it (PROTOCOL.md §10.10)
    async with running_relay(tmp / "relay", net) as relay, peers(tmp, net, relay) as p:
        fr = p["FR"]
        q = fr.node.events.queue()
        t0 = time.perf_counter()
        made = await fr.api.upload_attachment(
            src, name="e2e.bin", media_type="application/octet-stream"
        )
        t1 = time.perf_counter()
        await fr.api.send("US", msgspec.structs.replace(request(), attachments=(made,)))
        got = await next_event(q, ReceiptReceived)
        t2 = time.perf_counter()
    assert got.receipt.attachments == (made.ct_sha256,)
    kept = tmp / "US" / "attachments" / "in" / "FR" / f"{made.blob_id}.ct"
    assert hashlib.sha256(kept.read_bytes()).hexdigest() == made.ct_sha256
    print(f"end to end, {mib} MiB, relay + FR + US in this process on loopback:")
    print(f"  encrypt into FR's data dir via the local API: {mib / (t1 - t0):7.0f} MiB/s")
    print(f"  upload, accept, download, verify, receipt:    {mib / (t2 - t1):7.0f} MiB/s")
    print(f"  whole:                                        {mib / (t2 - t0):7.0f} MiB/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--e2e-mib", type=int, default=128)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-attach-") as d:
        format_bench(Path(d), args.mib)
    if args.e2e_mib:
        with tempfile.TemporaryDirectory(prefix="bench-attach-e2e-") as d:
            asyncio.run(e2e_bench(Path(d), args.e2e_mib))
    return 0


if __name__ == "__main__":
    sys.exit(main())
