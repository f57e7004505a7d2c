"""The duty roster (issue 13 §1): who is on duty at a time, shift bounds in the node's zone
across a DST change, officers' channels, and the escalation levels 1 -> 2 -> 3 on a fake
clock, each once, across a restart. Real SQLite files; the alert sender records instead
of posting (the integration test posts to a real receiver).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import msgspec
import pytest

from node.alerts import Alert, AlertsConfig, AlertSender, DeliveryResult, SmtpTarget
from node.cases import CaseRow, CaseStore, DutyAlerts, DutySettings, due_levels
from node.events import EventHub, MessageReceived
from node.officers import (
    AccessLog,
    Action,
    LogSigner,
    OfficerDb,
    OfficerError,
    OfficerErrorCode,
    Roster,
    check_webhook,
    open_db,
)
from protocol.cases import Case, CaseState, Side
from protocol.errors import StorageError
from protocol.keys import SigningKey
from schemas.examples import example
from tests.support.stores import opened

PARIS = ZoneInfo("Europe/Paris")
T0 = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)
REQ = "9b1e4c7a2d5f4a8e9c3b6d1f0e2a7c4b"
CASE = "c0ffee00c0ffee00c0ffee00c0ffee00"
DELAY = timedelta(minutes=30)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = open_db(tmp_path / "node.db")
    yield c
    c.close()


@pytest.fixture
def signer() -> LogSigner:
    return LogSigner("FR", SigningKey.generate())


@pytest.fixture
def officers(conn: sqlite3.Connection, clock: FakeClock, signer: LogSigner) -> OfficerDb:
    db = OfficerDb(conn, clock, member="FR", signer=signer)
    for login, roles in (("alice", ["officer"]), ("bob", ["officer"]), ("sue", ["supervisor"])):
        db.add(login, display_name=login.title(), roles=roles)
    db.add("chief", display_name="Chief", roles=["supervisor"])
    return db


@pytest.fixture
def roster(officers: OfficerDb, clock: FakeClock, signer: LogSigner) -> Roster:
    return Roster(officers, clock, signer)


def _shift(roster: Roster, login: str, start: datetime, hours: float) -> None:
    roster.add_shift(login, start, start + timedelta(hours=hours), by="sue", client="test")


# -- who is on duty ----------------------------------------------------------------------


def test_on_duty_at_a_time_start_included_end_excluded(roster: Roster) -> None:
    _shift(roster, "alice", T0, 8)
    _shift(roster, "bob", T0 + timedelta(hours=8), 8)
    assert [o.login for o in roster.on_duty(T0 - timedelta(seconds=1))] == []
    assert [o.login for o in roster.on_duty(T0)] == ["alice"]
    assert [o.login for o in roster.on_duty(T0 + timedelta(hours=8))] == ["bob"]
    last = T0 + timedelta(hours=16) - timedelta(microseconds=1)
    assert [o.login for o in roster.on_duty(last)] == ["bob"]
    assert roster.on_duty(T0 + timedelta(hours=16)) == []


def test_a_disabled_account_is_not_on_duty(roster: Roster, officers: OfficerDb) -> None:
    _shift(roster, "alice", T0, 8)
    officers.disable("alice")
    assert roster.on_duty(T0 + timedelta(hours=1)) == []


def test_night_shift_across_the_autumn_dst_change_in_paris(roster: Roster) -> None:
    # 2026-10-25 03:00 CEST -> 02:00 CET: a 22:00-06:00 Paris night shift lasts 9 hours.
    start = datetime(2026, 10, 24, 22, 0, tzinfo=PARIS)
    end = datetime(2026, 10, 25, 6, 0, tzinfo=PARIS)
    shift = roster.add_shift("alice", start, end, by=None, client="cli")
    assert shift.end - shift.start == timedelta(hours=9)
    assert shift.start == datetime(2026, 10, 24, 20, 0, tzinfo=UTC)
    assert shift.end == datetime(2026, 10, 25, 5, 0, tzinfo=UTC)
    # 02:30 happens twice that night: both instants are inside the shift
    first = datetime(2026, 10, 25, 2, 30, tzinfo=PARIS, fold=0)
    second = datetime(2026, 10, 25, 2, 30, tzinfo=PARIS, fold=1)
    assert second.astimezone(UTC) - first.astimezone(UTC) == timedelta(hours=1)
    for t in (first, second):
        assert [o.login for o in roster.on_duty(t)] == ["alice"]
    # read back and shown in the node's zone, the wall-clock bounds are the typed ones
    [kept] = roster.shifts(start, end)
    assert kept.start.astimezone(PARIS).hour == 22
    assert kept.end.astimezone(PARIS).hour == 6
    assert roster.on_duty(datetime(2026, 10, 25, 6, 0, tzinfo=PARIS)) == []


def test_spring_dst_change_shortens_the_night(roster: Roster) -> None:
    start = datetime(2026, 3, 28, 22, 0, tzinfo=PARIS)
    end = datetime(2026, 3, 29, 6, 0, tzinfo=PARIS)
    shift = roster.add_shift("bob", start, end, by=None, client="cli")
    assert shift.end - shift.start == timedelta(hours=7)


@pytest.mark.parametrize(
    ("start", "end", "reason"),
    [
        (T0, T0, OfficerErrorCode.INVALID),
        (T0, T0 - timedelta(hours=1), OfficerErrorCode.INVALID),
        (T0, T0 + timedelta(days=8), OfficerErrorCode.INVALID),
        (T0.replace(tzinfo=None), T0 + timedelta(hours=1), OfficerErrorCode.INVALID),
    ],
)
def test_bad_shifts_are_refused(
    roster: Roster, start: datetime, end: datetime, reason: OfficerErrorCode
) -> None:
    with pytest.raises(OfficerError) as exc:
        roster.add_shift("alice", start, end, by=None, client="cli")
    assert exc.value.reason is reason


def test_unknown_officer_and_unknown_shift(roster: Roster) -> None:
    with pytest.raises(OfficerError) as exc:
        roster.add_shift("nobody", T0, T0 + timedelta(hours=1), by=None, client="cli")
    assert exc.value.reason is OfficerErrorCode.NOT_FOUND
    with pytest.raises(OfficerError) as exc:
        roster.remove_shift(999, by=None, client="cli")
    assert exc.value.reason is OfficerErrorCode.NOT_FOUND


def test_shift_changes_are_in_the_access_log(
    roster: Roster, conn: sqlite3.Connection, clock: FakeClock, signer: LogSigner
) -> None:
    shift = roster.add_shift("alice", T0, T0 + timedelta(hours=1), by="sue", client="10.0.0.1")
    roster.remove_shift(shift.id, by="sue", client="10.0.0.1")
    assert roster.shifts(T0, T0 + timedelta(hours=1)) == []
    entries = AccessLog(conn, signer, clock).entries(limit=2)
    assert [(e.action, e.officer, e.subject) for e in entries] == [
        (Action.SHIFT_REMOVED, "sue", "alice"),
        (Action.SHIFT_ADDED, "sue", "alice"),
    ]


# -- channels ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://example.org/hook",
        "ftp://127.0.0.1/x",
        "https://user:pw@example.org/hook",
        "http://127.0.0.2/hook",
        "https://exa mple.org/",
        "https://",
        "https://example.org:99999/",
    ],
)
def test_bad_webhooks_are_refused(url: str) -> None:
    with pytest.raises(OfficerError):
        check_webhook(url)


def test_channels_keep_their_secret_until_the_url_changes(roster: Roster) -> None:
    with pytest.raises(OfficerError):
        roster.set_channels("alice", webhook=None, email="not-mail", by=None, client="cli")
    one = roster.set_channels(
        "alice", webhook="http://127.0.0.1:8/a", email="a@example.org", by=None, client="cli"
    )
    same = roster.set_channels(
        "alice", webhook="http://127.0.0.1:8/a", email=None, by=None, client="cli"
    )
    other = roster.set_channels(
        "alice", webhook="https://duty.example.org/a", email=None, by=None, client="cli"
    )
    assert one.webhook_secret is not None
    assert len(one.webhook_secret) >= 32
    assert same.webhook_secret == one.webhook_secret
    assert other.webhook_secret != one.webhook_secret
    assert roster.channels("alice") == other
    assert roster.channels("bob") is None


# -- escalation ----------------------------------------------------------------------------


class Recorder:
    """Stands for the network: records (targets, alert) for each send."""

    def __init__(self) -> None:
        self.sent: list[tuple[tuple[str, ...], Alert]] = []
        self.fail = False
        self.any = asyncio.Event()

    def __call__(self, config: AlertsConfig) -> AlertSender:
        recorder = self

        class _Sender(AlertSender):
            async def send(self, alert: Alert) -> list[DeliveryResult]:
                urls = tuple(w.url for w in config.webhooks)
                mails = tuple(r for s in config.smtp for r in s.recipients)
                recorder.sent.append((urls + mails, alert))
                recorder.any.set()
                return [
                    DeliveryResult(target=t, ok=not recorder.fail, attempts=1) for t in urls + mails
                ]

        return _Sender(config)


def _urgent(**changes: object) -> CaseRow:
    case = Case(
        case_id=CASE,
        side=Side.REQUESTED,
        state=CaseState.RECEIVED,
        request_kind="preservation_request",
        request_msg_id=REQ,
        request_at=T0,
        urgent=True,
    )
    case = msgspec.structs.replace(case, **changes)
    return CaseRow(case=case, peer="US", priority="urgent", opened_at=T0, last_activity=T0)


@pytest.fixture
async def cases(tmp_path: Path) -> AsyncIterator[CaseStore]:
    async with opened(CaseStore(tmp_path / "node.db")) as store:
        yield store


def _duty(cases: CaseStore, roster: Roster, clock: FakeClock, recorder: Recorder) -> DutyAlerts:
    smtp = SmtpTarget(host="127.0.0.1", sender="relay247@example.org", recipients=("x@y.org",))
    settings = DutySettings(escalate_after=DELAY, last_level=("chief",), smtp=smtp)
    return DutyAlerts(cases, roster, member="FR", settings=settings, clock=clock, sender=recorder)


def _staff(roster: Roster) -> None:
    for login in ("alice", "bob", "sue"):
        _shift(roster, login, T0 - timedelta(hours=1), 12)
        roster.set_channels(
            login, webhook=f"http://127.0.0.1:9/{login}", email=None, by=None, client="cli"
        )
    roster.set_channels("chief", webhook=None, email="chief@example.org", by=None, client="cli")


def test_due_levels_timing() -> None:
    row = _urgent()
    assert due_levels(row, T0 - timedelta(seconds=1), DELAY) == []
    assert due_levels(row, T0, DELAY) == [1]
    assert due_levels(row, T0 + DELAY - timedelta(seconds=1), DELAY) == [1]
    assert due_levels(row, T0 + DELAY, DELAY) == [1, 2]
    assert due_levels(row, T0 + 2 * DELAY, DELAY) == [1, 2, 3]
    assert due_levels(row, T0 + 10 * DELAY, DELAY) == [1, 2, 3]
    answered = _urgent(human_response_at=T0 + timedelta(minutes=5))
    assert due_levels(answered, T0 + 2 * DELAY, DELAY) == []
    assert due_levels(_urgent(urgent=False), T0 + DELAY, DELAY) == []
    assert due_levels(_urgent(side=Side.REQUESTER), T0 + DELAY, DELAY) == []


async def test_levels_one_two_three_each_once_across_a_restart(
    cases: CaseStore,
    roster: Roster,
    clock: FakeClock,
    tmp_path: Path,
    signer: LogSigner,
) -> None:
    _staff(roster)
    await cases.save_case(_urgent())
    rec = Recorder()
    duty = _duty(cases, roster, clock, rec)
    assert await duty.tick() == [(CASE, 1)]
    targets, alert = rec.sent[0]
    assert set(targets) == {f"http://127.0.0.1:9/{x}" for x in ("alice", "bob", "sue")}
    assert alert.level == 1
    assert alert.event.value == "new_request"
    clock.now = T0 + DELAY - timedelta(seconds=1)
    assert await duty.tick() == []
    clock.now = T0 + DELAY
    assert await duty.tick() == [(CASE, 2)]
    assert rec.sent[-1][0] == ("http://127.0.0.1:9/sue",)  # the supervisor on duty only
    assert rec.sent[-1][1].level == 2
    assert await duty.tick() == []  # once

    # restart: a new connection, roster and engine over the same files
    conn2 = open_db(tmp_path / "node.db")
    try:
        officers2 = OfficerDb(conn2, clock, member="FR", signer=signer)
        roster2 = Roster(officers2, clock, signer)
        rec2 = Recorder()
        duty2 = _duty(cases, roster2, clock, rec2)
        assert await duty2.tick() == []
        assert rec2.sent == []
        clock.now = T0 + 2 * DELAY
        assert await duty2.tick() == [(CASE, 3)]
        assert rec2.sent[0][0] == ("chief@example.org",)
        assert await duty2.tick() == []
        records = roster2.escalations(case_id=CASE)
        assert [(r.level, r.recipients) for r in records] == [
            (3, ("chief",)),
            (2, ("sue",)),
            (1, ("alice", "bob", "sue")),
        ]
        logged = AccessLog(conn2, signer, clock).entries(case=CASE)
        assert [(e.action, e.subject, e.officer) for e in logged] == [
            (Action.ESCALATED, f"level-{n}", None) for n in (3, 2, 1)
        ]
    finally:
        conn2.close()


async def test_a_failed_delivery_is_tried_again_and_an_answer_stops_it(
    cases: CaseStore, roster: Roster, clock: FakeClock
) -> None:
    _staff(roster)
    await cases.save_case(_urgent())
    rec = Recorder()
    rec.fail = True
    duty = _duty(cases, roster, clock, rec)
    assert await duty.tick() == []
    assert roster.escalations() == []
    rec.fail = False
    assert await duty.tick() == [(CASE, 1)]
    await cases.save_case(_urgent(human_response_at=T0 + timedelta(minutes=3)))
    clock.now = T0 + 3 * DELAY
    assert await duty.tick() == []
    assert [r.level for r in roster.escalations()] == [1]


async def test_nobody_on_duty_is_still_recorded_once(
    cases: CaseStore, roster: Roster, clock: FakeClock
) -> None:
    await cases.save_case(_urgent())
    rec = Recorder()
    duty = _duty(cases, roster, clock, rec)
    assert await duty.tick() == [(CASE, 1)]
    assert rec.sent[0][0] == ()
    assert [r.recipients for r in roster.escalations()] == [()]


async def test_the_loop_survives_a_failed_check_and_wakes_on_arrival(
    cases: CaseStore, roster: Roster, clock: FakeClock
) -> None:
    _staff(roster)
    await cases.save_case(_urgent())
    rec = Recorder()
    refreshed: list[str] = []
    done = asyncio.Event()  # the second refresh ran

    async def refresh(case_id: str) -> None:
        refreshed.append(case_id)
        if len(refreshed) == 1:
            raise StorageError("disk went away")
        done.set()

    settings = DutySettings(escalate_after=DELAY, interval=3600)
    duty = DutyAlerts(
        cases, roster, member="FR", settings=settings, clock=clock, sender=rec, refresh=refresh
    )
    hub = EventHub()
    unsubscribe = duty.subscribe(hub)
    task = asyncio.create_task(duty.run())
    try:
        arrived = MessageReceived(
            msg_id=REQ,
            case_id=CASE,
            sender="US",
            body=example("preservation_request"),
            header=cast(Any, None),
            received_at=T0,
        )
        hub.publish(arrived)  # the first check fails: logged, the loop goes on
        hub.publish(arrived)
        async with asyncio.timeout(10):
            await done.wait()
            await rec.any.wait()  # the check after the refresh sends level 1
        assert await duty.tick() == []  # waits for that check (one lock): recorded once
    finally:
        unsubscribe()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await duty.close()
    assert refreshed == [CASE, CASE]
    assert [r.level for r in roster.escalations()] == [1]
