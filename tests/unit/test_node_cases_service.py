"""Cases kept by the node (rebuilt from its store) and the clocks' alert bookkeeping."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

from node.cases.service import body_of, case_events
from node.cases.store import CaseRow, CaseStore
from node.config import CONFIG_TEMPLATE, alerts_config, escalate_after, load_config
from node.daemon import Node
from node.events import MessageReceived, ReceiptReceived, SendFailed
from node.storage.schema import Direction, Status
from protocol.cases import CaseState, Side
from protocol.errors import ConfigError, StorageError
from schemas.errors import ErrorCode
from schemas.examples import example
from schemas.messages import Body
from schemas.types import Priority
from tests.support.bodies import addressed
from tests.support.fake_relay import HANG_GUARD, FakeRelay, next_event, open_node
from tests.support.network import Network, make_network

REQUEST: Body = addressed(example("preservation_request"), "FR", "US")


@dataclass
class Pair:
    net: Network
    relay: FakeRelay
    fr: Node
    us: Node
    root: Path


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    net = make_network()
    relay = FakeRelay(net.lookup(), net.signed())
    fr = await open_node(tmp_path / "fr", net, "FR", relay)
    us = await open_node(tmp_path / "us", net, "US", relay)
    await fr.start()
    await us.start()
    await fr.wait_ready()
    await us.wait_ready()
    try:
        yield Pair(net, relay, fr, us, tmp_path)
    finally:
        await fr.stop()
        await us.stop()


async def case_when(node: Node, ok: Callable[[CaseRow], bool]) -> CaseRow:
    """The node's kept case of REQUEST once ``ok``; the guard only stops a hang."""
    async with asyncio.timeout(HANG_GUARD):
        while True:
            row = await node.services.case_store.case(REQUEST.case_id)
            if row is not None and ok(row):
                return row
            await asyncio.sleep(0.01)  # polling a condition, not asserting a duration


async def test_both_sides_follow_the_case(pair: Pair) -> None:
    fr_q = pair.fr.events.queue()
    await pair.fr.send(REQUEST, "US")
    await next_event(fr_q, ReceiptReceived)
    fr_row = await case_when(pair.fr, lambda r: r.case.state is CaseState.RECEIVED)
    assert (fr_row.case.side, fr_row.peer, fr_row.priority) == (Side.REQUESTER, "US", "high")
    us_row = await case_when(pair.us, lambda r: r.case.state is CaseState.RECEIVED)
    assert us_row.case.side is Side.REQUESTED
    # The receipt US signed is in its timeline too.
    assert [e.kind for e in us_row.case.timeline] == ["preservation_request", "delivery_receipt"]


async def test_cases_are_rebuilt_from_the_store_at_start(pair: Pair) -> None:
    fr_q = pair.fr.events.queue()
    await pair.fr.send(REQUEST, "US")
    await next_event(fr_q, ReceiptReceived)
    before = await case_when(pair.fr, lambda r: r.case.state is CaseState.RECEIVED)
    await pair.fr.stop()
    # The derived table is lost (or stale): the next start rebuilds it from messages.
    db = pair.fr.config.path(pair.fr.config.node.database)
    await asyncio.to_thread(_drop_cases, db)
    again = await open_node(pair.root / "fr", pair.net, "FR", pair.relay)
    await again.start()
    try:
        row = await again.services.case_store.case(REQUEST.case_id)
        assert row is not None
        assert row.case == before.case
    finally:
        await again.stop()


async def test_a_case_folded_event_by_event_equals_its_full_rebuild(pair: Pair) -> None:
    # Issue 16: each event folds only the messages stored since the case's last fold.
    fr_q = pair.fr.events.queue()
    await pair.fr.send(REQUEST, "US")
    await next_event(fr_q, ReceiptReceived)
    await case_when(pair.fr, lambda r: r.case.state is CaseState.RECEIVED)
    again = msgspec.structs.replace(REQUEST, in_reply_to=None)
    await pair.fr.send(again, "US")
    await next_event(fr_q, ReceiptReceived)
    await case_when(pair.fr, lambda r: len(r.case.timeline) >= 4)
    store = pair.fr.services.case_store
    folded = await store.case(REQUEST.case_id)
    kept = await store.folded(REQUEST.case_id)
    assert folded is not None
    assert kept is not None
    rebuilt = await pair.fr.services.cases.refresh(REQUEST.case_id, full=True)
    assert rebuilt is not None
    assert msgspec.json.encode(rebuilt.case) == msgspec.json.encode(folded.case)
    assert (rebuilt.priority, rebuilt.last_activity) == (folded.priority, folded.last_activity)
    assert await store.folded(REQUEST.case_id) == kept
    # Nothing new since: a refresh reads the kept case and writes nothing.
    assert await pair.fr.services.cases.refresh(REQUEST.case_id) == rebuilt
    # At the next start no case is behind its messages: none is rebuilt.
    assert await store.stale_cases(pair.fr.services.cases._version) == []


def _drop_cases(db: Path) -> None:
    with sqlite3.connect(db) as c:
        c.execute("DELETE FROM cases")


async def test_a_message_the_relay_refused_opens_nothing(pair: Pair) -> None:
    fr_q = pair.fr.events.queue()
    pair.relay.refuse = ErrorCode.MALFORMED
    msg_id = await pair.fr.send(REQUEST, "US")
    await next_event(fr_q, SendFailed)
    stored = await pair.fr.store.message(msg_id, Direction.OUT)
    assert stored is not None
    assert stored.status is Status.FAILED
    # Rebuilt after the failure: the refused request is not counted as sent.
    row = await case_when(pair.fr, lambda r: r.case.state is CaseState.NEW)
    assert row.case.timeline == ()


async def test_rejected_or_unreadable_inbound_bodies_change_nothing(pair: Pair) -> None:
    us_q = pair.us.events.queue()
    await pair.fr.send(REQUEST, "US")
    got = await next_event(us_q, MessageReceived)
    stored = await pair.us.store.message(got.msg_id, Direction.IN)
    assert stored is not None
    assert body_of(stored) == REQUEST
    # Unreadable bytes (a body the inbox refused at E13) and receipts read as None.
    assert body_of(dataclasses.replace(stored, body=b"{not json")) is None
    assert body_of(dataclasses.replace(stored, coarse_kind="receipt")) is None
    rejected = dataclasses.replace(stored, status=Status.REJECTED)
    events = await case_events(pair.us.store, [rejected])
    assert events == []


async def test_clocks_alert_once_even_without_a_target(pair: Pair) -> None:
    fr_q = pair.fr.events.queue()
    urgent = msgspec.structs.replace(REQUEST, priority=Priority.URGENT)
    await pair.fr.send(urgent, "US")
    await next_event(fr_q, ReceiptReceived)
    row = await case_when(pair.fr, lambda r: r.case.urgent)
    late = row.opened_at + timedelta(minutes=31)
    first = await pair.fr.services.clocks.tick(late)
    assert "escalation" in [a.kind for a in first]
    assert await pair.fr.services.clocks.tick(late) == []
    # The next level is a new alert.
    later = await pair.fr.services.clocks.tick(row.opened_at + timedelta(minutes=61))
    assert [a.level for a in later if a.kind == "escalation"] == [2]


async def test_a_corrupted_kept_case_is_a_storage_error(tmp_path: Path) -> None:
    db = tmp_path / "node.db"
    store = CaseStore(db)
    await store.open()
    try:
        await asyncio.to_thread(_corrupt, db)
        with pytest.raises(StorageError, match="corrupted"):
            await store.case("a" * 32)
    finally:
        await store.close()
    with pytest.raises(StorageError, match="not open"):
        await store.case("a" * 32)


def _corrupt(db: Path) -> None:
    with sqlite3.connect(db) as c:
        c.execute(
            "INSERT INTO cases VALUES (?, 'US', 'normal', ?, ?, ?)",
            ("a" * 32, "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00", b"{junk"),
        )


def _config(tmp: Path, extra: str) -> Path:
    text = CONFIG_TEMPLATE.format(member="FR", relay_urls="", trust_root="trust.json")
    path = tmp / "node.toml"
    path.write_text(text + extra)
    return path


HOOK = '\n[[alerts.webhooks]]\nurl = "http://127.0.0.1:9/alerts"\n'


def test_webhook_secret_comes_from_a_private_file(tmp_path: Path) -> None:
    secret = tmp_path / "hook.secret"
    secret.write_text("x" * 32 + "\n")
    secret.chmod(0o600)
    config = load_config(_config(tmp_path, HOOK + 'secret_file = "hook.secret"\n'))
    (hook,) = alerts_config(config).webhooks
    assert hook.secret == "x" * 32
    assert alerts_config(config).escalate_after_minutes == escalate_after(config) == 30.0


@pytest.mark.parametrize(
    ("extra", "mode", "names"),
    [
        (HOOK, 0o600, "exactly one of secret_file and secret"),
        (HOOK + 'secret = "' + "y" * 32 + '"\nsecret_file = "hook.secret"\n', 0o600, "exactly one"),
        (HOOK + 'secret_file = "hook.secret"\n', 0o644, "owner only"),
        (HOOK + 'secret_file = "missing.secret"\n', 0o600, "cannot read"),
        (HOOK + 'secret = "short"\n', 0o600, "alerts.webhooks[0]"),
    ],
)
def test_bad_webhook_secrets_stop_start_up(
    tmp_path: Path, extra: str, mode: int, names: str
) -> None:
    secret = tmp_path / "hook.secret"
    secret.write_text("x" * 32)
    secret.chmod(mode)
    with pytest.raises(ConfigError, match=re.escape(names)):
        load_config(_config(tmp_path, extra))


@pytest.mark.parametrize(
    ("line", "bad", "names"),
    [
        ("port = 0", "port = 70000", "api.port"),
        ("interval = 10.0", "interval = 0", "witness.interval"),
        ("remind_before_hours = 72.0", "remind_before_hours = -1", "clocks.remind_before_hours"),
    ],
)
def test_bad_service_settings_name_their_path(
    tmp_path: Path, line: str, bad: str, names: str
) -> None:
    path = _config(tmp_path, "")
    path.write_text(path.read_text().replace(line, bad))
    with pytest.raises(ConfigError, match=re.escape(names)):
        load_config(path)
