"""An attachment FR -> relay -> US with every party a process (issue 14 §1, PROTOCOL.md §15).

The relay and both nodes run as ``relay247 … serve`` processes. FR's officer sends a
generated file with ``node send --attach`` (through a named pipe: its length unknown in
advance, the node uploads it at send time); FR's node is SIGKILLed when about half of
the ciphertext is at the relay and restarted, and the upload resumes with the chunks
the relay still misses (the restarted node's log says how many). US downloads, checks
and keeps the ciphertext, and its receipt names the hash; ``node attachment`` writes the
verified plaintext. The peak RSS (``VmHWM`` in /proc) of the relay, of US and of both
runs of FR (and, in the slow test, of US, which is killed half-way through its
download and resumes it) stays under 256 MiB.

The test marked ``slow`` moves 2 GiB (``RELAY247_ATTACH_BYTES`` overrides it); the other
runs the same flow with 64 MiB, killing FR after two of its 17 upload chunks.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from protocol import attachment as fmt
from schemas.blobs import BLOB_CHUNK, chunk_count
from schemas.examples import EXAMPLES
from schemas.messages import encode_body
from tests.integration._crash_load import RelayProcess
from tests.integration.test_node_process import (
    PASS,
    Net,
    NodeProcess,
    _ok,
    _passphrase,
    _publish,
    _statuses,
    net,
    run,
)
from tests.support.bodies import addressed

__all__ = ["_passphrase", "net"]  # fixtures used here

RSS_LIMIT = 256 << 20
MiB = 1 << 20


def _generate(path: Path, size: int) -> str:
    """Write ``size`` bytes of varied data (a random MiB, numbered); return its SHA-256."""
    block = bytearray(os.urandom(MiB))
    h = hashlib.sha256()
    with path.open("wb") as f:
        n = 0
        while n < size:
            block[:8] = n.to_bytes(8, "big")
            piece = bytes(block[: min(MiB, size - n)])
            f.write(piece)
            h.update(piece)
            n += len(piece)
    return h.hexdigest()


def peak_rss(pid: int) -> int:
    """The process's peak resident set size in bytes (``VmHWM``, proc(5))."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _chunks_at_relay(db: Path) -> int:
    """Upload chunks the relay has made durable (its ``blob_chunks`` rows, Appendix A)."""
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM blob_chunks").fetchone()[0])
        except sqlite3.OperationalError:  # not migrated yet
            return 0


def _part_bytes(folder: Path) -> int:
    """Bytes of the attachment US has downloaded so far (its ``.part`` file)."""
    if not folder.exists():
        return 0
    return sum(p.stat().st_size for p in folder.glob("*.part"))


async def _until(cond: object, seconds: float) -> None:
    assert callable(cond)
    async with asyncio.timeout(seconds):
        while True:
            if cond():
                return
            await asyncio.sleep(0.1)  # polling another process's state, not timing it


def _receipt_hashes(db: Path) -> list[list[str]]:
    """The ``attachments`` each receipt FR holds names (decoded from the signed bytes)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT signed FROM receipts").fetchall()
    out = []
    for (signed,) in rows:
        inner = json.loads(base64.b64decode(json.loads(signed)["receipt"]))
        out.append(inner.get("attachments", []))
    return out


async def _flow(
    net: Net, size: int, *, kill_after: float = 0.5, kill_download: bool = False
) -> dict[str, int]:
    """The whole flow; FR is killed once ``kill_after`` of the chunks are at the relay
    (and, with ``kill_download``, US once half the ciphertext has downloaded)."""
    src = net.root / "evidence.src"
    digest = await asyncio.to_thread(_generate, src, size)
    # `node send --attach` reads the file through a pipe: no length is declared, so FR's
    # node uploads it at send time, where the kill below lands. (A regular file's length
    # is declared and the node uploads it while it encrypts it, PROTOCOL.md §15.4: the
    # blob would be committed before the send returned, nothing left to resume.)
    big = net.root / "evidence.bin"
    os.mkfifo(big)
    threading.Thread(target=_feed, args=(src, big), daemon=True).start()
    ct_len = fmt.ct_len_for(size)
    relay = RelayProcess(net.root / "relay" / "relay.toml", net.port, env={})
    relay.env["RELAY247_PASSPHRASE"] = PASS
    await relay.start()
    await _publish(net)
    fr, us = NodeProcess(net.node_toml("FR")), NodeProcess(net.node_toml("US"))
    rss: dict[str, int] = {}
    try:
        fr.start()
        us.start()
        await _until((net.root / "fr" / "api.port").exists, 60)
        await _until((net.root / "us" / "api.port").exists, 60)
        request = net.root / "request.json"
        request.write_bytes(encode_body(addressed(EXAMPLES["preservation_request"], "FR", "US")))
        sent = await asyncio.to_thread(
            run, "node", "send", request, "--to", "US", "--attach", big,
            "--data", net.root / "fr", "--json",
        )  # fmt: skip
        _ok(sent)
        case_id = json.loads(sent.output)["case_id"]
        # Kill FR once about half the chunks (the small run: a few, so that the kill
        # surely lands before the end) are durable at the relay, then restart it.
        # (The relay allocates the whole blob file at creation: its size says nothing.)
        total = chunk_count(ct_len, BLOB_CHUNK)
        relay_db = net.root / "relay" / "relay.db"
        at = max(1, int(total * kill_after))
        await _until(lambda: _chunks_at_relay(relay_db) >= at, 900)
        assert fr.proc is not None
        rss["fr_first"] = peak_rss(fr.proc.pid)
        fr.kill()
        fr.start()
        if kill_download:
            # US killed half-way through its download: the restart resumes after the
            # bytes it kept (RFC 9110 Range), as its log says.
            part_dir = net.root / "us" / "attachments" / "in" / "FR"
            await _until(lambda: _part_bytes(part_dir) >= ct_len // 2, 900)
            assert us.proc is not None
            rss["us_first"] = peak_rss(us.proc.pid)
            us.kill()
            us.start()
        db = net.root / "fr" / "node.db"
        await _until(lambda: set(_statuses(db).values()) == {"delivered"}, 1800)
        assert fr.proc is not None
        assert us.proc is not None
        assert relay.proc is not None
        rss["fr_second"] = peak_rss(fr.proc.pid)
        rss["us"] = peak_rss(us.proc.pid)
        rss["relay"] = peak_rss(relay.proc.pid)
        # The restarted node resumed: it uploaded fewer chunks than the blob has.
        resumed = [
            json.loads(line)
            for line in fr.log.read_text().splitlines()
            if line.startswith("{") and '"attachment upload"' in line
        ]
        assert resumed, fr.log.read_text()[-2000:]
        assert 0 < resumed[-1]["chunks_missing"] < total
        assert '"attachment uploaded while encrypted"' not in fr.log.read_text()
        if kill_download:
            again = [
                json.loads(line)
                for line in us.log.read_text().splitlines()
                if line.startswith("{") and '"attachment download resumed"' in line
            ]
            assert again, us.log.read_text()[-2000:]
            assert 0 < again[-1]["at"] < ct_len
        # The receipt names the ciphertext's hash; US kept the ciphertext.
        (kept,) = (net.root / "us" / "attachments" / "in" / "FR").glob("*.ct")
        assert kept.stat().st_size == ct_len
        ct_sha = await asyncio.to_thread(_sha256_file, kept)
        assert _receipt_hashes(db) == [[ct_sha]]
        # `node show` lists it; `node attachment` writes the verified plaintext.
        shown = await asyncio.to_thread(
            run, "node", "show", case_id[:12], "--data", net.root / "us"
        )
        _ok(shown)
        assert "evidence.bin" in shown.output
        out = net.root / "saved.bin"
        saved = await asyncio.to_thread(
            run, "node", "attachment", case_id[:12], "1", "--out", out, "--data", net.root / "us"
        )
        _ok(saved)
        assert out.stat().st_size == size
        got = await asyncio.to_thread(_sha256_file, out)
        assert got == digest
        assert us.proc is not None
        rss["us"] = max(rss["us"], peak_rss(us.proc.pid))
    finally:
        for proc in (fr, us):
            if proc.proc is not None and proc.proc.poll() is None:
                proc.kill()
        relay.terminate()
    print(f"\npeak RSS (MiB) moving {size / MiB:.0f} MiB:", {k: v // MiB for k, v in rss.items()})
    for who, value in rss.items():
        assert value < RSS_LIMIT, f"{who}: peak RSS {value / MiB:.0f} MiB"
    return rss


def _feed(src: Path, fifo: Path) -> None:
    """Write ``src`` into the named pipe ``fifo`` (blocks until a reader opens it)."""
    with src.open("rb") as f, fifo.open("wb") as out:
        shutil.copyfileobj(f, out, MiB)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(MiB):
            h.update(block)
    return h.hexdigest()


async def test_attachment_between_processes_with_a_killed_upload(net: Net) -> None:
    await _flow(net, 64 * MiB + 12_345, kill_after=0.1)


@pytest.mark.slow
async def test_two_gib_attachment_between_processes(net: Net) -> None:
    size = int(os.environ.get("RELAY247_ATTACH_BYTES", str(2 << 30)))
    await _flow(net, size, kill_download=True)
