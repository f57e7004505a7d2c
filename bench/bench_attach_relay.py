"""Attachment blobs through a real relay: throughput against an fsynced write, peak RSS.

Issue 14 §1 "Benchmark". Everything is measured in this run on this machine, on the
file system of the relay's data directory. First row (``--rows node``): the nodes'
attachment path end to end, against raw secretstream plus an fsynced write of the same
bytes (issue 14's measure; see bench/_attach_node.py). Second row (``--rows relay``):
the relay alone, moving ready ciphertext:

(a) ``write``: the same bytes written to a file in 4 MiB writes and fsynced (best of
    three), the floor any durable store of them pays;
(b) ``upload``: ``create``, every chunk ``PUT`` (``--concurrency`` at a time, RFC 9421
    signed with Content-Digest) and ``commit`` (the relay hashes the stored blob) through
    a ``relay247 relay serve`` process on loopback; reported as bytes/s and as a ratio to
    (a) (target >= 0.5);
(c) ``download``: the recipient streams the whole blob (and hashes it, as a node does);
    bytes/s and ratio to (a); twice: right after the upload (its chunks were written
    with O_DIRECT, so not in the page cache) and again;
(d) the relay process's peak RSS (VmHWM) before and after moving the blob: it must not
    grow with the blob (limit 256 MiB for 2 GiB).

Beside each leg's wall time: the CPU seconds per GiB that the relay process
(``/proc/PID/stat``) and this client process spent on it, which depend much less than
wall time on what else the machine runs; and the load average at the end.

The blob's bytes are made chunk by chunk from one random 4 MiB block (each chunk stamped
with its index), so the client never holds the blob either. Usage:
``python -m bench.bench_attach_relay [--size MiB] [--concurrency N] [--postgres]
[--rows both|node|relay] [--rounds N]``
(``--postgres``: chunk rows in PostgreSQL at ``RELAY247_TEST_PG``, a fresh schema dropped
after the run; the baseline file is still written to the local disk).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp

from bench._attach_node import Clock as _Clock
from bench._attach_node import Leg as _Leg
from bench._attach_node import node_path, print_node
from bench._common import peak_rss_mib, start_server
from client import RelayClient
from schemas.blobs import BLOB_CHUNK, BlobRef, chunk_count
from tests.support.network import make_network
from tests.support.pg import drop_schema
from tests.support.relay import Backend, envelope, free_port, write_relay_dir

RSS_LIMIT_MIB = 256
TARGET_RATIO = 0.5
#: the first download reads what O_DIRECT wrote from the disk, the second the page cache
DOWNLOADS = ("download (hashed, cold)", "download (hashed, again)")


def _chunks(base: bytes, size: int) -> Iterator[bytes]:
    """The blob's chunks, in order: ``base`` stamped with the chunk index, cut to ``size``."""
    rest = memoryview(base)[8:]
    for i in range(chunk_count(size)):
        length = min(BLOB_CHUNK, size - i * BLOB_CHUNK)
        stamp = i.to_bytes(8, "big")
        yield b"".join((stamp, rest[: length - 8])) if length > 8 else stamp[:length]


def _sha(base: bytes, size: int) -> str:
    sha = hashlib.sha256()
    for chunk in _chunks(base, size):
        sha.update(chunk)
    return sha.hexdigest()


def _fsynced_write(path: Path, base: bytes, size: int) -> float:
    """Seconds to write the blob's bytes to ``path`` and fsync it."""
    start = time.perf_counter()
    with open(path, "wb", buffering=0) as f:
        for chunk in _chunks(base, size):
            f.write(chunk)
        os.fsync(f.fileno())
    took = time.perf_counter() - start
    path.unlink()
    return took


async def _move(
    url: str, size: int, base: bytes, concurrency: int, relay_pid: int
) -> tuple[_Leg, _Leg, _Leg]:
    """Upload then download one blob twice; time for each (downloads hashed and checked).

    The first download follows the upload at once: its chunks were written with O_DIRECT,
    so the relay reads them from the disk; the second finds them in the page cache.
    """
    net = make_network(("FR", "US"))
    sha = _sha(base, size)
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        fr = RelayClient(url, net.members["FR"].transport, session, timeout=120.0)
        us = RelayClient(url, net.members["US"].transport, session, timeout=120.0)
        await fr.publish_directory(net.signed())
        blob_id = os.urandom(16).hex()
        work = iter(enumerate(_chunks(base, size)))

        async def uploader() -> None:
            for index, chunk in work:
                await fr.put_blob_chunk(blob_id, index, chunk)

        clock = _Clock(relay_pid)
        await fr.create_blob(blob_id, "US", size, sha)
        await asyncio.gather(*(uploader() for _ in range(concurrency)))
        committing = time.perf_counter()
        status = await fr.commit_blob(blob_id)
        upload = clock.stop()
        print(f"  (of which the commit: {time.perf_counter() - committing:.2f} s)")
        assert status.complete
        ref = BlobRef(blob_id=blob_id, ct_sha256=sha, ct_len=size)
        await fr.submit(envelope(net, attachments=(ref,)))

        downloads = []
        for _ in range(2):
            clock = _Clock(relay_pid)
            got = hashlib.sha256()
            total = 0
            async for piece in us.blob_content(blob_id):
                got.update(piece)
                total += len(piece)
            downloads.append(clock.stop())
            assert (total, got.hexdigest()) == (size, sha), "download differs"
    return upload, downloads[0], downloads[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="blob size, MiB (default 256)")
    parser.add_argument("--concurrency", type=int, default=4, help="chunk uploads at a time")
    parser.add_argument("--dir", type=Path, default=None, help="data directory's parent")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL backend")
    parser.add_argument(
        "--rows", choices=("both", "node", "relay"), default="both", help="which rows to run"
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs of each limit (best kept)")
    args = parser.parse_args()
    size = args.size << 20
    base = os.urandom(BLOB_CHUNK)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-attach-") as tmp:
        root = Path(tmp)
        # The best of three: the floor least disturbed by the machine's other work, so
        # the ratios below are conservative.
        write = min(_fsynced_write(root / "baseline.bin", base, size) for _ in range(args.rounds))
        port = free_port()
        backend = Backend("postgres" if args.postgres else "sqlite", root)
        net = make_network(("FR", "US"))
        config = write_relay_dir(root / "relay", net, port, backend=backend)
        config.write_text(config.read_text().replace('level = "info"', 'level = "warning"'))
        url = f"http://127.0.0.1:{port}"
        proc = start_server(
            ["-m", "cli", "relay", "serve", "--config", str(config)], url, what="relay", tries=400
        )
        try:
            before = peak_rss_mib(proc.pid)
            node = None
            if args.rows in ("both", "node"):
                node = asyncio.run(
                    node_path(url, net, root / "node", size, base, proc.pid, args.rounds)
                )
            legs = None
            if args.rows in ("both", "relay"):
                legs = asyncio.run(_move(url, size, base, args.concurrency, proc.pid))
            after = peak_rss_mib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            for schema in backend.schemas:
                asyncio.run(drop_schema(schema))
    mib = size / (1 << 20)
    chunks = chunk_count(size)
    print(
        f"blob {mib:.0f} MiB on {backend.name}, {chunks} chunks of 4 MiB,"
        f" {args.concurrency} uploads at a time"
    )
    if node is not None:
        print_node(node, size, TARGET_RATIO)
    print("relay only: ready ciphertext, against an fsynced write of it")
    print(f"fsynced file write     {mib / write:8.1f} MiB/s  ({write:.2f} s)")
    rows = () if legs is None else zip(("upload (create..commit)", *DOWNLOADS), legs, strict=True)
    for name, leg in rows:
        ratio = write / leg.wall
        verdict = "ok" if ratio >= TARGET_RATIO else "BELOW TARGET"
        print(
            f"{name:25s}{mib / leg.wall:8.1f} MiB/s  ({leg.wall:.2f} s)  ratio {ratio:.2f}"
            f"  [{verdict}]  CPU s/GiB: relay {leg.relay_cpu * 1024 / mib:.2f},"
            f" client {leg.client_cpu * 1024 / mib:.2f}"
        )
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    verdict = "ok" if after < RSS_LIMIT_MIB else "OVER LIMIT"
    print(f"relay peak RSS         {before:.0f} MiB at start, {after:.0f} MiB after  [{verdict}]")


if __name__ == "__main__":
    main()
