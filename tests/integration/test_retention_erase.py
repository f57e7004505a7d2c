"""Attachments' files a committed retention pass must erase (PROTOCOL.md §19), on a
sealed node: a crash between the commit and the erasure, or a file that cannot be erased,
leaves them listed in ``pending_erase`` and the next pass erases them; a failure is logged
with the case id and errno only, and the scheduled task goes on."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import msgspec
import pytest
import structlog

from node.cases import retention
from schemas._attachment import ATTACHMENTS
from tests.integration._node_services import peers
from tests.integration._retention_support import DAYS, exchange, moved, request
from tests.support.network import make_network
from tests.support.relay import running_relay


def _pending(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as c:
        return [(str(a), str(b)) for a, b in c.execute("SELECT path, case_id FROM pending_erase")]


async def test_files_left_by_a_crash_or_a_failed_erase_go_at_the_next_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = make_network()
    net.declare(ATTACHMENTS)
    src = tmp_path / "capture.bin"
    src.write_bytes(os.urandom(40_000))
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, seal=True) as p,
    ):
        fr, us = p["FR"], p["US"]
        made = await fr.api.upload_attachment(src, name=src.name, media_type="image/png")
        first = msgspec.structs.replace(request("crash"), attachments=(made,))
        await exchange(fr, us, first, "refusal")
        (ct,) = sorted((us.data / "attachments" / "in").rglob(f"{made.blob_id}*"))
        service = us.services.retention
        moved(service, DAYS + 1)
        # A crash after the commit, before any erasure: only the transaction ran.
        conn = retention.connect(us.data / "node.db")
        try:
            (due,) = retention.plan(conn, retention.cutoff_of(service.policy, service._clock()), 9)
            await us.services.cases.refresh(first.case_id)
            assert retention.remove_cases(conn, service._remover, [due], service._clock())[0] == 1
        finally:
            conn.close()
        assert ct.exists()
        assert [c for _, c in _pending(us.data / "node.db")] == [first.case_id]
        # The file cannot be erased (here: replaced by a directory): logged, kept listed.
        data = ct.read_bytes()
        ct.unlink()
        ct.mkdir()
        with structlog.testing.capture_logs() as logs:
            done = await service.run_pass(dry_run=False)
        assert done.files == 0
        failed = [e for e in logs if e["event"] == "attachment erase failed"]
        assert [(e["case_id"], e["errno"]) for e in failed] == [(first.case_id, 21)]  # EISDIR
        assert str(ct) not in repr(logs)
        assert len(_pending(us.data / "node.db")) == 1
        # Once the file can be erased, the next pass does it: zeros synced, then unlinked.
        ct.rmdir()
        ct.write_bytes(data)
        synced: list[int] = []
        real = os.fsync

        def fsync(fd: int) -> None:
            synced.append(fd)
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        done = await service.run_pass(dry_run=False)
        assert done.files == 1
        assert synced
        assert not ct.exists()
        assert _pending(us.data / "node.db") == []
