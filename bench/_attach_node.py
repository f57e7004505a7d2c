"""The node's attachment path end to end, against its limit measured in the same run.

Issue 14 "Benchmark": attachment throughput, upload and download, as a ratio to raw
secretstream encryption (decryption) plus an fsynced file write of the same bytes.
Used by ``bench/bench_attach_relay.py`` (its first row); the relay process is that
script's ``relay247 relay serve`` on loopback.

- **limit, up**: read the plaintext, ``secretstream push`` each 64 KiB chunk, write the
  ciphertext, fsync (``bench_attach.raw_encrypt``: no hash, nothing else);
- **upload**: what the sending node does (``node/messaging``) when it knows the recipient
  and the size (``POST /v1/attachments?to=`` with a declared length):
  ``AttachmentFiles.prepare`` with the early upload encrypts the plaintext into its data
  directory (both SHA-256, fsync, rename) while it announces the blob without its hash,
  puts each 4 MiB chunk as the encryption completes it (RFC 9421-signed, Content-Digest,
  ``IN_FLIGHT`` at a time) and commits it with the hash (node/messaging/_early.py); then
  ``attachments.upload``, as at send time, finds the blob committed (one request; with a
  relay that still wants the hash at the create, the early upload is abandoned and this
  step uploads the whole blob, as before: its time in the steps shows which it was);
- **limit, down**: read the ciphertext, ``pull`` each chunk, write the plaintext, fsync
  (``bench_attach.raw_decrypt``);
- **download**: what the receiving node does at receipt, before it signs the receipt:
  ``AttachmentFiles.fetch`` downloads the blob (ranged, resumable) into ``.part``,
  checks its length and SHA-256 (F2) and decrypts it to check every chunk and the
  plaintext's size and SHA-256 (F3) while it arrives, fsyncs it and keeps it;
- **export**: what an officer's ``node attachment CASE N --out FILE`` does later:
  ``NodeApiClient.save_attachment`` (the CLI's code) reads the plaintext from the local
  API's streaming function ``node.attachment_stream.send_plaintext`` (the node's code:
  decrypt the kept ciphertext, every chunk authenticated, size and SHA-256 checked) on
  loopback, checks its size and SHA-256, writes it to a temporary file, fsyncs it and
  renames it (bench/_attach_export.py: the node's side in a child process, as the node
  runs apart from the CLI; the real handler's token check, case lookup and access-log
  entry are left out). Its first CPU column is that child's, not the relay's.

Each is one decryption and one fsynced write of the same bytes, like the limit: each
leg's ratio is limit seconds / leg seconds (1.0: the node's path costs no more than
encrypting or decrypting and writing the bytes once). The old single download figure
(download + export) is still printed, marked as information.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp

from bench._attach_export import Exporter
from bench._common import cpu_seconds
from bench.bench_attach import raw_decrypt, raw_encrypt
from client import RelayClient
from node.messaging._early import EarlyUpload
from node.messaging.attachments import AttachmentFiles, refs_of, upload
from protocol import attachment as fmt
from tests.support.network import Network

PIECE = 1 << 20  # plaintext handed to the encryptor at a time (as the local API reads it)


@dataclasses.dataclass
class Leg:
    """One direction: wall seconds, CPU seconds of the relay and of this process, and
    the named steps' wall seconds."""

    wall: float = 0.0
    relay_cpu: float = 0.0
    client_cpu: float = 0.0
    steps: dict[str, float] = dataclasses.field(default_factory=dict)


class Clock:
    """Wall and CPU time of one leg, for the relay process and this (client) process."""

    def __init__(self, relay_pid: int) -> None:
        self.pid = relay_pid
        self.start = (time.perf_counter(), cpu_seconds(relay_pid), time.process_time())
        self.steps: dict[str, float] = {}
        self._mark = self.start[0]

    def step(self, name: str) -> None:
        """The wall time since the previous step (or the start) is step ``name``."""
        now = time.perf_counter()
        self.steps[name] = now - self._mark
        self._mark = now

    def stop(self) -> Leg:
        wall, relay, client = self.start
        return Leg(
            time.perf_counter() - wall,
            cpu_seconds(self.pid) - relay,
            time.process_time() - client,
            dict(self.steps),
        )


def best(fn: Callable[[], None], rounds: int) -> float:
    """The fastest of ``rounds`` runs of ``fn`` (the limit least disturbed by the load)."""
    out = math.inf
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - start)
    return out


def make_plaintext(path: Path, base: bytes, size: int) -> None:
    """``size`` bytes of ``base`` (4 MiB, random) stamped block by block: incompressible."""
    path.parent.mkdir(mode=0o700, exist_ok=True)
    with open(path, "wb") as f:
        done = 0
        while done < size:
            block = done.to_bytes(8, "big") + base[8:]
            f.write(block[: size - done])
            done += len(block)


async def _pieces(path: Path) -> AsyncIterator[bytes]:
    f = await asyncio.to_thread(open, path, "rb")
    with f:
        while piece := await asyncio.to_thread(f.read, PIECE):
            yield piece


@dataclasses.dataclass
class NodeResult:
    limit_up: float
    limit_down: float
    upload: Leg
    download: Leg
    export: Leg


async def node_path(
    url: str, net: Network, root: Path, size: int, base: bytes, relay_pid: int, rounds: int
) -> NodeResult:
    """Measure the limits, then one attachment FR -> relay -> US through the node's code."""
    plain = root / "plain.bin"
    await asyncio.to_thread(make_plaintext, plain, base, size)
    key = fmt.new_key()
    ct_raw, back_raw = root / "raw.ct", root / "raw.back"
    limit_up = best(lambda: raw_encrypt(plain, ct_raw, key), rounds)
    limit_down = best(lambda: raw_decrypt(ct_raw, back_raw, key), rounds)
    ct_raw.unlink()
    back_raw.unlink()
    fr_files, us_files = AttachmentFiles(root / "fr"), AttachmentFiles(root / "us")
    for d in (root / "fr", root / "us"):
        d.mkdir(mode=0o700)
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        fr = RelayClient(url, net.members["FR"].transport, session, timeout=120.0)
        us = RelayClient(url, net.members["US"].transport, session, timeout=120.0)
        await fr.publish_directory(net.signed())

        clock = Clock(relay_pid)
        made = await fr_files.prepare(
            _pieces(plain),
            name="plain.bin",
            media_type="application/octet-stream",
            upload=EarlyUpload(fr, "US", size, time.monotonic),
        )
        clock.step("encrypt+upload+commit")
        await upload(fr, fr_files, "US", refs_of((made,)))
        clock.step("send-time check")
        up = clock.stop()

        clock = Clock(relay_pid)
        await us_files.fetch(us, "FR", (made,))
        down = clock.stop()
        out = root / "us" / "plain.out"
        async with Exporter(us_files.received_path("FR", made.blob_id), made) as exporter:
            clock = Clock(exporter.pid)  # its CPU: the node API's side
            await exporter.save(session, out)
            export = clock.stop()
    if out.stat().st_size != size:
        raise SystemExit("the plaintext written differs in size")
    return NodeResult(limit_up, limit_down, up, down, export)


def print_node(result: NodeResult, size: int, target: float) -> None:
    """The node row: each leg's MiB/s, ratio to its limit, CPU s/GiB, steps."""
    mib = size / (1 << 20)
    print(
        f"node path, {mib:.0f} MiB plaintext (FR encrypts + uploads,"
        " US downloads + checks, then exports the plaintext)"
    )
    for name, limit, leg in (
        ("limit up: raw encrypt + fsynced write", result.limit_up, None),
        ("upload: encrypt + chunks + commit", result.limit_up, result.upload),
        ("limit down: raw decrypt + fsynced write", result.limit_down, None),
        ("download: get + F2/F3 + keep", result.limit_down, result.download),
        ("export: --out, decrypt + write + fsync", result.limit_down, result.export),
    ):
        if leg is None:
            print(f"  {name:40s}{mib / limit:8.1f} MiB/s  ({limit:.2f} s)")
            continue
        ratio = limit / leg.wall
        verdict = "ok" if ratio >= target else "BELOW TARGET"
        steps = ", ".join(f"{k} {v:.2f} s" for k, v in leg.steps.items())
        other = "node API" if leg is result.export else "relay"
        print(
            f"  {name:40s}{mib / leg.wall:8.1f} MiB/s  ({leg.wall:.2f} s)  ratio {ratio:.2f}"
            f"  [{verdict}]  CPU s/GiB: {other} {leg.relay_cpu * 1024 / mib:.2f},"
            f" client {leg.client_cpu * 1024 / mib:.2f}" + (f"  ({steps})" if steps else "")
        )
    both = result.download.wall + result.export.wall
    print(
        f"  {'(info) download + export, one figure':40s}{mib / both:8.1f} MiB/s  ({both:.2f} s)"
        f"  ratio {result.limit_down / both:.2f}  (the old combined row; no target: two steps)"
    )
