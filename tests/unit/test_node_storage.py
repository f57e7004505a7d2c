"""Node key file, config and store: every refusal path, on real files."""

from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.config import CONFIG_TEMPLATE, load_config
from node.keyfile import create_keys, generate_keys, load_keys, rotate_encryption
from node.messaging.relays import backoff
from node.storage.schema import Direction, MessageRecord, Outgoing, SeqEventKind, Status
from node.storage.store import NodeStore
from protocol.errors import ConfigError, StorageError
from protocol.keys import seal

PASS = b"node test passphrase"


def test_keys_round_trip_mode_0600_and_no_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "node.keys"
    keys = generate_keys("FR")
    create_keys(path, keys, PASS)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    back = load_keys(path, PASS, owner="FR")
    assert back.signing.public == keys.signing.public
    assert back.encryption.public == keys.encryption.public
    assert back.transport.public == keys.transport.public
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        create_keys(path, generate_keys("FR"), PASS)


def test_wrong_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "node.keys"
    create_keys(path, generate_keys("FR"), PASS)
    with pytest.raises(ConfigError, match="wrong passphrase"):
        load_keys(path, b"not the passphrase")


def test_corrupted_keystore(tmp_path: Path) -> None:
    path = tmp_path / "node.keys"
    create_keys(path, generate_keys("FR"), PASS)
    path.write_bytes(path.read_bytes()[:-40] + b"}")
    with pytest.raises(ConfigError, match=str(path)):
        load_keys(path, PASS)


def test_missing_keystore(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read node keys"):
        load_keys(tmp_path / "none.keys", PASS)


def test_keys_of_another_member(tmp_path: Path) -> None:
    path = tmp_path / "node.keys"
    create_keys(path, generate_keys("US"), PASS)
    with pytest.raises(ConfigError, match="belong to US"):
        load_keys(path, PASS, owner="FR")


def test_rotation_keeps_the_old_key_for_opening(tmp_path: Path) -> None:
    path = tmp_path / "node.keys"
    keys = generate_keys("FR")
    create_keys(path, keys, PASS)
    rotated = rotate_encryption(path, PASS)
    assert rotated.encryption.public != keys.encryption.public
    again = load_keys(path, PASS)
    old = again.decryption_keys[keys.encryption.fingerprint]
    assert old.unseal(seal(keys.encryption.public, b"x")) == b"x"
    assert rotated.encryption.fingerprint in again.decryption_keys


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def test_config_template_loads(tmp_path: Path) -> None:
    text = CONFIG_TEMPLATE.format(member="FR", relay_urls='"http://r.example"', trust_root="t")
    config = load_config(_config(tmp_path, text))
    assert config.relays.urls == ("http://r.example",)
    assert config.path("node.db") == tmp_path.resolve() / "node.db"


def test_config_typo_names_the_path(tmp_path: Path) -> None:
    text = CONFIG_TEMPLATE.format(member="FR", relay_urls="", trust_root="t")
    with pytest.raises(ConfigError, match=r"sync.jiter|jiter"):
        load_config(_config(tmp_path, text.replace("jitter = 0.2", "jiter = 0.2")))


def test_config_bad_value_names_the_path(tmp_path: Path) -> None:
    text = CONFIG_TEMPLATE.format(member="FR", relay_urls="", trust_root="t")
    with pytest.raises(ConfigError, match=r"sync.jitter"):
        load_config(_config(tmp_path, text.replace("jitter = 0.2", "jitter = 2.0")))


def test_config_backoff_order(tmp_path: Path) -> None:
    text = CONFIG_TEMPLATE.format(member="FR", relay_urls="", trust_root="t")
    with pytest.raises(ConfigError, match="backoff_max"):
        load_config(_config(tmp_path, text.replace("backoff_max = 300.0", "backoff_max = 0.1")))


def test_config_syntax_and_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TOML syntax"):
        load_config(_config(tmp_path, "[node\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_backoff_bounds() -> None:
    import random

    rng = random.Random(1)
    delays = [backoff(n, 0.5, 10.0, 0.2, rng) for n in range(10)]
    assert 0.5 <= delays[0] <= 0.6
    assert all(10.0 <= d <= 12.0 for d in delays[5:])


async def test_corrupted_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    path.write_bytes(b"this is not an sqlite database" * 200)
    store = NodeStore(path)
    with pytest.raises(StorageError, match="corrupted"):
        await store.open()
    await store.close()


async def test_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    store = NodeStore(path)
    await store.open()
    await store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    store = NodeStore(path)
    with pytest.raises(StorageError, match="schema version 99"):
        await store.open()
    await store.close()


async def test_closed_store_refuses() -> None:
    store = NodeStore(Path("/nonexistent/never-opened.db"))
    with pytest.raises(StorageError, match="not open"):
        await store.get_meta("x")
    await store.close()


def _in(msg_id: str, seq: int) -> MessageRecord:
    return MessageRecord(
        direction=Direction.IN,
        msg_id=msg_id,
        case_id="c" * 32,
        peer="FR",
        coarse_kind="request",
        body_kind="follow_up",
        in_reply_to=None,
        seq=seq,
        envelope=b"{}",
        header=b"{}",
        body=b"{}",
        stored_at=datetime.now(UTC),
        status=Status.ACCEPTED,
    )


async def test_inbound_exactly_once_and_seq_tracking(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "node.db")
    await store.open()
    try:
        first = await store.record_inbound(_in("a" * 32, 1), reply=None, receipt=None, now=0)
        again = await store.record_inbound(_in("a" * 32, 1), reply=None, receipt=None, now=0)
        gap = await store.record_inbound(_in("b" * 32, 4), reply=None, receipt=None, now=0)
        late = await store.record_inbound(_in("c" * 32, 2), reply=None, receipt=None, now=0)
        assert (first.duplicate, first.seq_event) == (False, None)
        assert again.duplicate
        assert gap.seq_event is not None
        assert (gap.seq_event.kind, gap.seq_event.expected, gap.seq_event.got) == (
            SeqEventKind.GAP,
            2,
            4,
        )
        assert late.seq_event is not None
        assert late.seq_event.kind is SeqEventKind.LATE
        assert len(await store.messages(direction=Direction.IN)) == 3
        assert await store.is_seen("FR", "a" * 32)
    finally:
        await store.close()


async def test_failed_build_stores_nothing(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "node.db")
    await store.open()

    def build(seq: int) -> Outgoing:
        raise StorageError("sealing failed", detail=str(seq))

    try:
        with pytest.raises(StorageError, match="sealing failed"):
            await store.enqueue("US", build, 0.0)
        assert await store.outbox() == []
        assert await store.counts() == {
            "messages_in": 0,
            "messages_out": 0,
            "outbox": 0,
            "seq_events": 0,
        }
    finally:
        await store.close()
