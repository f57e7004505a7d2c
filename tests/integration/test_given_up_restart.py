"""A ``delivery_failed`` alert outlives a restart: an envelope given up whose alert no
target took is alerted by the next start's clocks, once; an e-mail the bridge gave up, a
give-up older than :data:`node.cases.given_up.OWED_FOR` and one recorded before
``given_up_at`` existed are not. Real node.db files, a real webhook receiver on
127.0.0.1; the last test gives up through a real node's outbox and restarts the node."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node.alerts import Alert, AlertEvent, AlertsConfig, AlertSender, given_up_alert
from node.cases import clocks as clocks_module
from node.cases import given_up
from node.cases.clocks import Clocks, ClockSettings
from node.cases.given_up import OWED_FOR
from node.cases.periods import load_periods
from node.cases.store import CaseStore
from node.events import SendFailed
from node.storage import Direction, MessageRecord, NodeStore, Outgoing, Status
from protocol.errors import StorageError
from schemas.errors import ErrorCode
from schemas.examples import EXAMPLES
from tests.integration._node_services import alerts_to, services_for, webhook_sink
from tests.support.bodies import addressed
from tests.support.fake_relay import HANG_GUARD, FakeRelay, next_event, open_node
from tests.support.network import Network, make_network

CASE = "4f0c2a9e6b1d4e7f8a3c5b2d1e0f9a8b"
NOW = datetime(2031, 3, 4, 12, 0, tzinfo=UTC)


async def _until(ok: Callable[[], object]) -> None:
    async with asyncio.timeout(HANG_GUARD):
        while not ok():  # noqa: ASYNC110  # the webhook receiver sets no event
            await asyncio.sleep(0.02)


def _outgoing(msg_id: str, peer: str) -> Callable[[int], Outgoing]:
    def build(seq: int) -> Outgoing:
        m = MessageRecord(
            direction=Direction.OUT, msg_id=msg_id, case_id=CASE, peer=peer,
            coarse_kind="request", body_kind="preservation_request", in_reply_to=None,
            seq=seq, envelope=b"{}", header=b"{}", body=None, stored_at=NOW,
            status=Status.QUEUED,
        )  # fmt: skip
        return Outgoing(message=m, expires=NOW + timedelta(days=3))

    return build


async def _queue(db: Path, msg_id: str, peer: str = "US") -> NodeStore:
    store = NodeStore(db)
    await store.open()
    await store.enqueue(peer, _outgoing(msg_id, peer), NOW.timestamp())
    return store


async def _given_up(db: Path, msg_id: str) -> None:
    """``msg_id`` queued, then given up (``malformed``) at NOW, as the outbox does."""
    store = await _queue(db, msg_id)
    await store.mark_failed(msg_id, "malformed: bad", NOW)
    await store.close()


@asynccontextmanager
async def _clocks(db: Path, alerts: AlertsConfig, now: datetime) -> AsyncIterator[Clocks]:
    """One run of the node's clocks on ``db`` (its node store opened first, as a node's)."""
    store = NodeStore(db)
    await store.open()
    cases = CaseStore(db)
    await cases.open()
    sender = AlertSender(alerts)
    settings = ClockSettings(remind_before=timedelta(hours=72), escalate_after=timedelta(1))
    try:
        yield Clocks(cases, sender, member="FR", table=load_periods(), settings=settings,
                     clock=lambda: now)  # fmt: skip
    finally:
        await sender.close()
        await cases.close()
        await store.close()


def _id(msg_id: str) -> str:
    a = given_up_alert(case_id=CASE, msg_id=msg_id, recipient="US", code="x", member="FR", now=NOW)
    return a.alert_id


async def test_an_alert_no_target_took_is_sent_after_a_restart_once(tmp_path: Path) -> None:
    db, msg = tmp_path / "node.db", "9" * 32
    store = await _queue(db, msg)
    await store.mark_failed(msg, "malformed: not allowed", NOW)  # as the outbox gives up
    await store.close()
    gate = {"up": False, "tried": False}
    async with webhook_sink(gate) as (url, got):
        async with _clocks(db, alerts_to(url), NOW) as clocks:
            # The run before the stop: the SendFailed came, every target refused.
            clocks.on_event(SendFailed(msg, "US", ErrorCode.MALFORMED, "not allowed", CASE))
            assert await clocks.tick() == []
            assert gate["tried"]
        gate["up"] = True
        async with _clocks(db, alerts_to(url), NOW + timedelta(hours=5)) as clocks:
            (sent,) = await clocks.tick()  # no event this time: read back from node.db
        assert [a.alert_id for a in got] == [sent.alert_id] == [_id(msg)]
        (alert,) = got
        assert (alert.kind, alert.case_id, alert.member) == ("envelope_given_up", CASE, "FR")
        assert "US" in alert.summary
        assert "malformed" in alert.summary
        assert "not allowed" not in alert.summary  # the relay's words stay out of alerts
        assert alert.created_at == NOW  # when it was given up
        async with _clocks(db, alerts_to(url), NOW + timedelta(hours=6)) as clocks:
            assert await clocks.tick() == []  # sent once: a second restart sends nothing
        assert len(got) == 1


async def test_a_crash_before_the_event_reached_the_clocks_still_alerts(tmp_path: Path) -> None:
    db, msg = tmp_path / "node.db", "7" * 32
    await _given_up(db, msg)  # then the process died
    async with webhook_sink() as (url, got), _clocks(db, alerts_to(url), NOW) as clocks:
        assert [a.alert_id for a in await clocks.tick()] == [_id(msg)]
        assert await clocks.tick() == []
        assert len(got) == 1


async def test_no_target_configured_records_it_once(tmp_path: Path) -> None:
    db, msg = tmp_path / "node.db", "6" * 32
    await _given_up(db, msg)
    async with _clocks(db, AlertsConfig(), NOW) as clocks:
        assert [a.alert_id for a in await clocks.tick()] == [_id(msg)]  # recorded
    async with _clocks(db, AlertsConfig(), NOW) as clocks:
        assert await clocks.tick() == []


async def test_an_email_given_up_is_not_alerted_again_as_an_envelope(tmp_path: Path) -> None:
    db, msg = tmp_path / "node.db", "8" * 32
    store = await _queue(db, msg, peer="MT")
    # The bridge's give-up of an e-mail not sent marks its message failed too.
    with sqlite3.connect(db) as c:
        c.execute(
            "INSERT INTO email_log (direction, msg_id, member, case_id, sha256, state) "
            "VALUES ('sent', ?, 'MT', ?, ?, 'queued')",
            (msg, CASE, "0" * 64),
        )
    c.close()
    await store.email_failed("sent", msg, "smtp: SMTPRecipientsRefused")
    record = await store.message(msg, Direction.OUT)
    assert record is not None
    assert record.status is Status.FAILED
    await store.close()
    async with webhook_sink() as (url, got), _clocks(db, alerts_to(url), NOW) as clocks:
        assert await clocks.tick() == []
    assert got == []


async def test_old_give_ups_are_not_alerted_after_a_restart(tmp_path: Path) -> None:
    db, old, older, before = tmp_path / "node.db", "5" * 32, "4" * 32, "3" * 32
    store = await _queue(db, old)
    await store.enqueue("US", _outgoing(older, "US"), NOW.timestamp())
    await store.enqueue("US", _outgoing(before, "US"), NOW.timestamp())
    await store.mark_failed(old, "malformed: bad", NOW - OWED_FOR)  # the bound's edge
    await store.mark_failed(older, "malformed: bad", NOW - OWED_FOR - timedelta(seconds=1))
    await store.mark_failed(before, "malformed: bad", NOW)
    await store.close()
    with sqlite3.connect(db) as c:  # a give-up recorded by a release before given_up_at
        c.execute("UPDATE messages SET given_up_at = NULL WHERE msg_id = ?", (before,))
    c.close()
    async with webhook_sink() as (url, got), _clocks(db, alerts_to(url), NOW) as clocks:
        assert [a.alert_id for a in await clocks.tick()] == [_id(old)]
    assert len(got) == 1


async def test_a_node_db_of_an_earlier_release_gains_the_column(tmp_path: Path) -> None:
    db, msg = tmp_path / "node.db", "2" * 32
    await _given_up(db, msg)
    with sqlite3.connect(db) as c:  # as version 1 was: no given_up_at, no index
        c.execute("DROP INDEX messages_given_up")
        c.execute("ALTER TABLE messages DROP COLUMN given_up_at")
    c.close()
    async with webhook_sink() as (url, got), _clocks(db, alerts_to(url), NOW) as clocks:
        assert await clocks.tick() == []  # its old failure: not alerted
    with sqlite3.connect(db) as c:
        cols = {r[1] for r in c.execute("PRAGMA table_info(messages)")}
        (status,) = c.execute("SELECT status FROM messages WHERE msg_id = ?", (msg,)).fetchone()
        indexes = {r[1] for r in c.execute("PRAGMA index_list(messages)")}
    c.close()
    assert "given_up_at" in cols
    assert "messages_given_up" in indexes
    assert (status, got) == ("failed", [])


async def _run_fr(
    tmp: Path, net: Network, relay: FakeRelay, url: str, *, send: bool
) -> list[Alert]:
    """Start FR on ``tmp`` (its services alerting ``url``); with ``send``, send a request
    the relay refuses for good and wait for the give-up; stop FR after one explicit tick
    (returned: what it sent)."""
    node = await open_node(tmp, net, "FR", relay)
    node.services = services_for(node, tmp, None, alerts_to(url))
    events = node.events.queue()
    async with node:
        await node.wait_ready()
        if send:
            await node.send(addressed(EXAMPLES["preservation_request"], "FR", "US"), "US")
            failed = await next_event(events, SendFailed)
            assert failed.code is ErrorCode.MALFORMED
        return await node.services.clocks.tick()


async def test_a_real_node_given_up_then_restarted_alerts_once(tmp_path: Path) -> None:
    net = make_network()
    relay = FakeRelay(net.lookup(), net.signed())
    relay.refuse = ErrorCode.MALFORMED  # a permanent refusal: the outbox gives up
    gate = {"up": False, "tried": False}
    async with webhook_sink(gate) as (url, got):
        assert await _run_fr(tmp_path / "fr", net, relay, url, send=True) == []
        assert gate["tried"]
        assert got == []
        gate["up"] = True
        sent = await _run_fr(tmp_path / "fr", net, relay, url, send=False)
        await _until(lambda: got)  # by the start's tick or the explicit one
        assert [a.kind for a in got] == ["envelope_given_up"]
        assert [a.alert_id for a in sent] in ([], [got[0].alert_id])
        assert await _run_fr(tmp_path / "fr", net, relay, url, send=False) == []
        assert len(got) == 1


async def test_a_reason_without_a_code_alerts_as_internal(tmp_path: Path) -> None:
    db, msg = tmp_path / "node.db", "1" * 32
    store = await _queue(db, msg)
    await store.mark_failed(msg, "words from somewhere", NOW)  # not "<code>: ..."
    await store.close()
    async with _clocks(db, AlertsConfig(), NOW) as clocks:
        (alert,) = await clocks.tick()
    assert "(internal)" in alert.summary
    assert "words" not in alert.summary


async def test_an_alert_raised_elsewhere_is_tried_again_until_a_target_takes_it(
    tmp_path: Path,
) -> None:
    # The e-mail bridge's and the witness's alerts go through Clocks.send_now: one that
    # every target refused is not dropped but tried again at each tick, then recorded.
    db = tmp_path / "node.db"
    await (await _queue(db, "8" * 32)).close()  # a node.db as a node's
    alert = Alert(
        alert_id="e" * 32, event=AlertEvent.ANOMALY, member="FR", case_id="0" * 32,
        kind="email_not_sent", summary="An e-mail was not sent", created_at=NOW,
    )  # fmt: skip
    gate = {"up": False, "tried": False}
    async with webhook_sink(gate) as (url, got), _clocks(db, alerts_to(url), NOW) as clocks:
        assert not await clocks.send_now(alert, NOW)
        assert gate["tried"]
        assert await clocks.tick() == []  # still refused: kept
        gate["up"] = True
        assert await clocks.tick() == [alert]
        assert await clocks.tick() == []  # recorded: not again
        assert await clocks.send_now(alert, NOW) is True  # raised again: sent before
    assert [a.alert_id for a in got] == [alert.alert_id]


async def test_a_failed_read_back_does_not_hold_the_other_alerts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The read-back failing (a store error) is tried again at the next tick; the tick
    # still sends what it has (here: a give-up seen as it happened).
    db, msg = tmp_path / "node.db", "7" * 32
    await (await _queue(db, msg)).close()
    calls: list[datetime] = []
    real = given_up.owed_alerts

    async def flaky(cases: CaseStore, *, member: str, now: datetime) -> list[Alert]:
        calls.append(now)
        if len(calls) == 1:
            raise StorageError("node.db is busy")
        return await real(cases, member=member, now=now)

    monkeypatch.setattr(clocks_module, "owed_alerts", flaky)
    gate = {"up": True, "tried": False}
    async with webhook_sink(gate) as (url, got), _clocks(db, alerts_to(url), NOW) as clocks:
        clocks.on_event(SendFailed(msg, "US", ErrorCode.MALFORMED, "no", CASE))
        (sent,) = await clocks.tick()
        assert sent.alert_id == _id(msg)
        assert await clocks.tick() == []
        assert await clocks.tick() == []
    assert len(calls) == 2  # failed once, read back at the next tick, not again
    assert [a.alert_id for a in got] == [_id(msg)]
