"""Emergencies taken by phone (issue 14 §2): the record opens with its clocks; the written
request is linked and reconciled; no written request by the confirmation deadline alerts
the node's targets and the roster; the escalation ladder runs on a fake clock and stops
when someone acknowledges it, recorded with the officer. Real SQLite files; the alert
sender records instead of posting.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from node.alerts import Alert, AlertEvent, AlertsConfig, AlertSender, DeliveryResult
from node.cases import (
    CaseStore,
    DutyAlerts,
    DutySettings,
    EmergencyWatch,
    Ladder,
    build_ladder,
    candidates,
    load_procedures,
    reconcile,
    record_clocks,
)
from node.officers import (
    EmergencyDesk,
    LogSigner,
    OfficerDb,
    OfficerError,
    OfficerErrorCode,
    OralRecord,
    Roster,
    open_db,
)
from protocol.keys import SigningKey
from schemas.examples import example
from schemas.node_api import CaseDetail, CaseSummary, TimelineEntry
from tests.support.emergency import OTHER, T0, access_log
from tests.support.stores import opened


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[tuple[str, ...], Alert]] = []

    def __call__(self, config: AlertsConfig) -> AlertSender:
        recorder = self

        class _Sender(AlertSender):
            async def send(self, alert: Alert) -> list[DeliveryResult]:
                urls = tuple(w.url for w in config.webhooks)
                recorder.sent.append((urls, alert))
                return [DeliveryResult(target=t, ok=True, attempts=1) for t in urls]

        return _Sender(config)


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
    db.add("chief", display_name="Chief", roles=["officer"])
    return db


@pytest.fixture
def desk(officers: OfficerDb, clock: FakeClock, signer: LogSigner) -> EmergencyDesk:
    return EmergencyDesk(officers, clock, signer)


@pytest.fixture
def roster(officers: OfficerDb, clock: FakeClock, signer: LogSigner) -> Roster:
    r = Roster(officers, clock, signer)
    for login in ("alice", "sue"):
        r.add_shift(login, T0 - timedelta(hours=1), T0 + timedelta(hours=36), by=None, client="t")
    for login in ("alice", "bob", "sue", "chief"):
        r.set_channels(
            login, webhook=f"http://127.0.0.1:9/{login}", email=None, by=None, client="t"
        )
    return r


@pytest.fixture
async def cases(tmp_path: Path) -> AsyncIterator[CaseStore]:
    async with opened(CaseStore(tmp_path / "node.db")) as store:
        yield store


def _record(desk: EmergencyDesk, **changes: Any) -> OralRecord:
    fields: dict[str, Any] = {
        "member": "FR",
        "caller": "Capitaine Claire Martin, OFAC, +33 1 00 00 00 00",
        "called_at": T0,
        "asked": "Subscriber and last IP logins of the account that posted the threat",
        "procedure": "cets224_art9",
        "by": "alice",
        "client": "test",
    }
    return desk.record(**(fields | changes))


# -- recording, linking, reconciling ------------------------------------------------------


def test_a_record_opens_with_its_clocks_and_is_logged(
    desk: EmergencyDesk, conn: sqlite3.Connection
) -> None:
    rec = desk.record(
        member="DE-BKA", caller="KOK Weber", called_at=T0, asked="Preserve and disclose",
        procedure="eu_epoc_emergency", by="alice", client="test",
    )  # fmt: skip
    assert desk.get(rec.record_id) == rec
    assert rec.case_id is None
    clocks = {c.name: c for c in record_clocks(rec, load_procedures())}
    assert clocks["response"].due == T0 + timedelta(hours=8)
    assert clocks["confirmation"].due == T0 + timedelta(hours=24)
    assert not clocks["confirmation"].checked
    actions = [r[0] for r in conn.execute("SELECT action FROM access_log ORDER BY idx")]
    assert actions[-1] == "emergency_recorded"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"member": "ＦＲ"}, "from"),  # full-width letters
        ({"member": "fr"}, "from"),
        ({"caller": "x\x07y"}, "caller"),
        ({"caller": " "}, "caller"),
        ({"asked": "a" * 4001}, "asked"),
        ({"procedure": "EU EPOC"}, "procedure"),
        ({"called_at": T0.replace(tzinfo=None)}, "at"),
        ({"called_at": T0 + timedelta(hours=1)}, "at: in the future"),
        ({"called_at": T0 - timedelta(days=31)}, "at: more than 30 days"),
    ],
)
def test_bad_records_are_refused(
    desk: EmergencyDesk, changes: dict[str, object], field: str
) -> None:
    with pytest.raises(OfficerError) as err:
        _record(desk, **changes)
    assert err.value.reason is OfficerErrorCode.INVALID
    assert err.value.message.startswith(field)


def _detail(case_id: str, at: datetime, peer: str = "FR") -> CaseDetail:
    body = example("emergency_disclosure_request")
    summary = CaseSummary(
        case_id=case_id, peer=peer, role="requested", state="received", effective_state="received",
        opened_at=at, last_activity=at, priority="urgent", next_deadline=None, anomalies=0,
    )  # fmt: skip
    entry = TimelineEntry(
        msg_id="1" * 32,
        direction="in",
        kind="emergency_disclosure_request",
        at=at,
        status="accepted",
        body=body,
    )
    return CaseDetail(summary=summary, timeline=(entry,), deadlines=(), anomalies=())


def test_written_request_two_hours_later_is_linked_and_reconciled(desk: EmergencyDesk) -> None:
    rec = _record(desk)
    case_id = "c0ffee00c0ffee00c0ffee00c0ffee00"
    detail = _detail(case_id, T0 + timedelta(hours=2))
    table = load_procedures()
    other = msgspec.structs.replace(detail.summary, case_id=OTHER, peer="US")
    assert [c.case_id for c in candidates(rec, [detail.summary, other], [])] == [case_id]
    linked = desk.link(rec.record_id, case_id, by="alice", client="test")
    assert linked.case_id == case_id
    assert desk.for_case(case_id) == linked
    assert candidates(rec, [detail.summary], [case_id]) == []
    diffs = {d.name: d for d in reconcile(linked, detail, table)}
    assert diffs["member"].same
    assert diffs["procedure"].same
    assert diffs["caller"].same  # "Capitaine Claire Martin" is in the recorded caller
    assert not diffs["asked"].same  # said on the phone and written differ
    assert diffs["asked"].written == "The account posted the threat."
    assert diffs["time"].same  # 2 h after the call: before the 24 h confirmation deadline
    late = reconcile(linked, _detail(case_id, T0 + timedelta(hours=25), peer="US"), table)
    assert {d.name for d in late if not d.same} == {"member", "asked", "time"}


def test_link_errors(desk: EmergencyDesk) -> None:
    rec = _record(desk)
    case_id = "c0ffee00c0ffee00c0ffee00c0ffee00"
    for bad in ("C0FFEE00C0FFEE00C0FFEE00C0FFEE00", "c0ffee", "٠" * 32):
        with pytest.raises(OfficerError, match="32 lowercase"):
            desk.link(rec.record_id, bad, by=None, client="t")
    with pytest.raises(OfficerError) as err:
        desk.link(OTHER, case_id, by=None, client="t")
    assert err.value.reason is OfficerErrorCode.NOT_FOUND
    desk.link(rec.record_id, case_id, by=None, client="t")
    second = _record(desk)
    for record_id, case in ((rec.record_id, OTHER), (second.record_id, case_id)):
        with pytest.raises(OfficerError) as err:
            desk.link(record_id, case, by=None, client="t")
        assert err.value.reason is OfficerErrorCode.EXISTS


# -- the ladder and the confirmation deadline ---------------------------------------------


def _watch(
    cases: CaseStore, roster: Roster, desk: EmergencyDesk, clock: FakeClock, rec: Recorder
) -> tuple[DutyAlerts, EmergencyWatch, list[Alert]]:
    ladder = build_ladder(load_procedures(), (), {})
    settings = DutySettings(
        escalate_after=timedelta(minutes=30), last_level=("chief",), ladder=ladder
    )
    duty = DutyAlerts(
        cases, roster, member="FR", settings=settings, clock=clock, sender=rec, desk=desk
    )
    node_wide: list[Alert] = []

    async def deliver(alert: Alert, now: datetime) -> bool:
        node_wide.append(alert)
        await cases.mark_alert(alert.alert_id, now)
        return True

    return duty, EmergencyWatch(duty, cases, deliver, ladder=ladder, member="FR"), node_wide


def _targets(rec: Recorder, event: AlertEvent) -> list[tuple[str, ...]]:
    return [urls for urls, a in rec.sent if a.event is event]


async def test_ladder_runs_and_an_ack_stops_it(
    cases: CaseStore, roster: Roster, desk: EmergencyDesk, clock: FakeClock
) -> None:
    rec = Recorder()
    duty, watch, _ = _watch(cases, roster, desk, clock, rec)
    oral = _record(desk)  # cets224_art9: 15 and 15 minutes
    rid = oral.record_id
    assert await watch.tick(clock.now) == [f"{rid}:level-1"]
    assert _targets(rec, AlertEvent.ESCALATION) == [
        ("http://127.0.0.1:9/alice", "http://127.0.0.1:9/sue")
    ]
    clock.now = T0 + timedelta(minutes=14, seconds=59)
    assert await watch.tick(clock.now) == []
    clock.now = T0 + timedelta(minutes=15)  # nobody acknowledged: the supervisor is alerted
    assert await watch.tick(clock.now) == [f"{rid}:level-2"]
    assert _targets(rec, AlertEvent.ESCALATION)[-1] == ("http://127.0.0.1:9/sue",)
    with pytest.raises(OfficerError) as err:  # bob was not alerted and is no supervisor
        desk.ack(rid, "bob", client="t")
    assert err.value.reason is OfficerErrorCode.FORBIDDEN
    ack = desk.ack(rid, "sue", client="t")
    assert (ack.level, ack.login, ack.at) == (2, "sue", clock.now)
    with pytest.raises(OfficerError) as err:
        desk.ack(rid, "sue", client="t")
    assert err.value.reason is OfficerErrorCode.EXISTS
    clock.now = T0 + timedelta(hours=2)
    assert await watch.tick(clock.now) == []  # acknowledged: no level 3
    assert [e.level for e in roster.escalations(case_id=rid)] == [2, 1]
    assert [a.level for a in desk.acks(rid)] == [2]
    await duty.close()


async def test_no_written_request_alerts_at_the_deadline_and_once(
    cases: CaseStore, roster: Roster, desk: EmergencyDesk, clock: FakeClock
) -> None:
    rec = Recorder()
    duty, watch, node_wide = _watch(cases, roster, desk, clock, rec)
    oral = _record(desk)
    rid = oral.record_id
    clock.now = T0 + timedelta(hours=24) - timedelta(seconds=1)
    await watch.tick(clock.now)
    assert node_wide == []
    assert _targets(rec, AlertEvent.UNCONFIRMED) == []
    clock.now = T0 + timedelta(hours=24)
    done = await watch.tick(clock.now)
    assert f"{rid}:unconfirmed" in done
    assert f"{rid}:unconfirmed-roster" in done
    assert [a.event for a in node_wide] == [AlertEvent.UNCONFIRMED]
    assert node_wide[0].case_id == rid
    assert node_wide[0].due == T0 + timedelta(hours=24)
    assert _targets(rec, AlertEvent.UNCONFIRMED) == [
        ("http://127.0.0.1:9/alice", "http://127.0.0.1:9/sue")
    ]
    clock.now += timedelta(hours=1)
    assert await watch.tick(clock.now) == []  # once
    await duty.close()


async def test_a_linked_record_raises_nothing(
    cases: CaseStore, roster: Roster, desk: EmergencyDesk, clock: FakeClock
) -> None:
    rec = Recorder()
    duty, watch, node_wide = _watch(cases, roster, desk, clock, rec)
    oral = _record(desk)
    desk.link(oral.record_id, OTHER, by="alice", client="t")
    clock.now = T0 + timedelta(days=2)
    assert await watch.tick(clock.now) == []
    assert node_wide == []
    assert rec.sent == []
    await duty.close()


async def test_an_old_unconfirmed_record_is_watched_behind_many_newer_ones(
    cases: CaseStore, roster: Roster, desk: EmergencyDesk, clock: FakeClock
) -> None:
    """The watch reads every unlinked record, not the newest 100 (review L2): an old call
    still alerts at its deadline when 150 newer calls were recorded and linked since."""
    rec = Recorder()
    duty, watch, node_wide = _watch(cases, roster, desk, clock, rec)
    old = _record(desk)
    clock.now = T0 + timedelta(hours=1)
    for i in range(150):
        newer = _record(desk, called_at=T0 + timedelta(minutes=1 + i % 50))
        desk.link(newer.record_id, f"{i:032x}", by="alice", client="t")
    assert [r.record_id for r in desk.unlinked()] == [old.record_id]
    assert len(desk.linked_cases()) == 150
    assert old.record_id not in {r.record_id for r in desk.records()}  # past the newest 100
    clock.now = T0 + timedelta(hours=24)
    done = await watch.tick(clock.now)
    assert f"{old.record_id}:unconfirmed" in done
    assert [a.case_id for a in node_wide] == [old.record_id]
    await duty.close()


def test_ack_needs_an_escalation_and_an_enabled_account(
    desk: EmergencyDesk, officers: OfficerDb
) -> None:
    with pytest.raises(OfficerError) as err:
        desk.ack(OTHER, "sue", client="t")
    assert err.value.reason is OfficerErrorCode.NOT_FOUND
    officers.disable("sue")
    with pytest.raises(OfficerError) as err:
        desk.ack(OTHER, "sue", client="t")
    assert err.value.reason is OfficerErrorCode.DISABLED
    with pytest.raises(OfficerError) as err:
        desk.ack(OTHER, "nobody", client="t")
    assert err.value.reason is OfficerErrorCode.NOT_FOUND


def test_acks_are_in_the_verifiable_access_log(
    desk: EmergencyDesk,
    roster: Roster,
    conn: sqlite3.Connection,
    signer: LogSigner,
    clock: FakeClock,
) -> None:
    roster.record_escalation(OTHER, 1, ["alice"], 1)
    desk.ack(OTHER, "alice", client="127.0.0.1")
    rows = conn.execute(
        "SELECT action, officer, case_id FROM access_log ORDER BY idx DESC LIMIT 1"
    ).fetchall()
    assert rows == [("escalation_acked", "alice", OTHER)]
    report, entries = access_log(conn, signer, clock)
    assert report.problems == []
    assert report.size == len(entries)


def test_ladder_default_without_procedure() -> None:
    ladder = Ladder(table=load_procedures())
    assert ladder.steps("unknown") == (timedelta(minutes=30), timedelta(minutes=30))
