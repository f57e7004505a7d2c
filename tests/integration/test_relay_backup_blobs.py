"""Issue 14 §1: an SQLite relay's backup carries its committed attachment blobs.

A blob committed and carried by a waiting envelope comes back byte for byte after a
backup of the serving relay and a restore into a fresh directory; a blob whose file
went away (purged after the snapshot) and an upload in progress leave no row behind;
a restore whose blob files are missing or altered is refused before anything changes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from protocol.errors import PeerError
from schemas.blobs import BLOB_CHUNK
from schemas.errors import ErrorCode
from tests.integration.test_relay_backup import cli
from tests.support.blobs import download, upload
from tests.support.network import make_network
from tests.support.relay import envelope, running_relay, signed


async def test_backup_carries_committed_blobs_and_restore_serves_them(tmp_path: Path) -> None:
    net = make_network()
    live = tmp_path / "live"
    data = os.urandom(2 * BLOB_CHUNK + 777)
    backup = tmp_path / "relay.backup"
    async with running_relay(live, net) as relay:
        fr = relay.client("FR")
        ref = await upload(fr, "US", data)
        sent = envelope(net, attachments=(ref,))
        await fr.submit(sent)
        gone = await upload(fr, "US", os.urandom(1000))  # committed, its file purged
        (live / "blobs" / gone.blob_id).unlink()
        half = os.urandom(16).hex()  # an upload still in progress
        await fr.create_blob(half, "US", 2 * BLOB_CHUNK, "ab" * 32)
        await fr.put_blob_chunk(half, 0, os.urandom(BLOB_CHUNK))
        await signed(relay)
        # Online: the relay serves while the backup runs.
        config = live / "relay.toml"
        code, _, err = await cli("relay", "backup", "--config", config, "--out", backup)
        assert code == 0, err
    blobs = tmp_path / "relay.backup.blobs"
    assert sorted(p.name for p in blobs.iterdir()) == [ref.blob_id]
    assert (blobs / ref.blob_id).read_bytes() == (live / "blobs" / ref.blob_id).read_bytes()
    assert (blobs / ref.blob_id).stat().st_mode & 0o777 == 0o600

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for name in ("relay.keys", "trust.json", "relay.toml"):
        shutil.copy2(live / name, fresh / name)
    code, _, err = await cli("relay", "restore", "--config", fresh / "relay.toml", "--from", backup)
    assert code == 0, err
    assert sorted(p.name for p in (fresh / "blobs").iterdir()) == [ref.blob_id]

    async with running_relay(fresh, net, fresh=False, publish=False) as restored:
        us = restored.client("US")
        page = await us.mailbox()
        assert [m.envelope for m in page.messages] == [sent]
        assert await download(us, ref.blob_id) == data  # the exact bytes, not cut short
        for missing in (gone.blob_id, half):
            with pytest.raises(PeerError) as caught:
                await us.blob_status(missing)
            assert caught.value.code == ErrorCode.NOT_FOUND


async def test_restore_refuses_missing_or_altered_blob_files(tmp_path: Path) -> None:
    net = make_network()
    live = tmp_path / "live"
    async with running_relay(live, net) as relay:
        fr = relay.client("FR")
        ref = await upload(fr, "US", os.urandom(BLOB_CHUNK + 5))
        await fr.submit(envelope(net, attachments=(ref,)))
        await signed(relay)
    backup = tmp_path / "b.backup"
    code, _, err = await cli("relay", "backup", "--config", live / "relay.toml", "--out", backup)
    assert code == 0, err
    code, _, err = await cli("relay", "backup", "--config", live / "relay.toml", "--out", backup)
    assert code == 2  # the database file and its blobs exist
    assert "exists already" in err
    blobs = tmp_path / "b.backup.blobs"
    original = (blobs / ref.blob_id).read_bytes()

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for name in ("relay.keys", "trust.json", "relay.toml"):
        shutil.copy2(live / name, fresh / name)
    altered = bytearray(original)
    altered[100] ^= 1
    damages: list[tuple[Callable[[], object], str]] = [
        (lambda: (blobs / ref.blob_id).write_bytes(bytes(altered)), "not the blob the backup"),
        (lambda: (blobs / ref.blob_id).write_bytes(original[:-1]), "not the blob the backup"),
        ((blobs / ref.blob_id).unlink, "not the blob the backup"),
        (lambda: shutil.rmtree(blobs), "b.backup.blobs: missing"),
    ]
    for damage, message in damages:
        damage()
        code, _, err = await cli(
            "relay", "restore", "--config", fresh / "relay.toml", "--from", backup
        )
        assert code == 2, err
        assert message in err, err
        assert not (fresh / "relay.db").exists()  # nothing replaced
        left = list((fresh / "blobs").iterdir()) if (fresh / "blobs").exists() else []
        assert left == []  # not even a staged copy
    blobs.mkdir()
    (blobs / ref.blob_id).write_bytes(original)
    code, _, err = await cli("relay", "restore", "--config", fresh / "relay.toml", "--from", backup)
    assert code == 0, err
    assert (fresh / "blobs" / ref.blob_id).read_bytes() == original
