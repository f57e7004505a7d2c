"""Property tests of the case state machine (hypothesis).

- any sequence of messages and receipts, in any order, never raises;
- replaying the same events gives the same case, also when the case is stored as JSON
  half-way and the rest is applied to the decoded copy;
- deadlines never move earlier when an extension or an MLA notice arrives.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.cases import (
    Case,
    CaseEvent,
    MessageEvent,
    Side,
    apply,
    deadlines,
    due_reminders,
    effective_state,
    escalations,
    replay,
)
from schemas import _bodies_request as rq
from schemas.envelope import ReceiptStatus
from schemas.examples import CASE_ID
from schemas.messages import KINDS, kind_of
from schemas.types import Priority
from tests.unit.test_cases_support import T0, TABLE, msg, rcpt


def _pool() -> list[CaseEvent]:
    """Every kind in both directions, an urgent request, receipts, a foreign-case body."""
    events: list[CaseEvent] = []
    for i, kind in enumerate(KINDS):
        for out in (True, False):
            mid = f"{2 * i + out:032x}"
            events.append(msg(kind, out=out, minutes=2 * i + out, msg_id=mid))
            for status in ReceiptStatus:
                events.append(rcpt(mid, out=not out, minutes=2 * i + 1, status=status))
    events.append(msg("preservation_request", out=True, msg_id="f" * 32, priority=Priority.URGENT))
    events.append(msg("follow_up", out=True, msg_id="e" * 32, case_id="0" * 32))
    events.append(rcpt("d" * 32))
    return events


def msg_kind_of(event: MessageEvent) -> str:
    return kind_of(event.body)


POOL = _pool()
# A plausible preservation flow seen by the requester, so that deep states are reached
# often; mixed with the whole pool so that noise still arrives in between.
_FLOW = [
    e
    for e in POOL
    if isinstance(e, MessageEvent)
    and e.body.case_id == CASE_ID
    and e.outgoing
    is (
        msg_kind_of(e)
        in {"preservation_extension", "mla_submitted", "warning_decision", "follow_up"}
    )
    and msg_kind_of(e)
    in {
        "taken_in_charge",
        "preserved",
        "preservation_warning",
        "preservation_extension",
        "mla_submitted",
        "warning_decision",
        "traffic_data_disclosure",
        "follow_up",
    }
]
_OPEN = msg("preservation_request", out=True, msg_id="c" * 32)
EVENTS = st.one_of(
    st.lists(st.sampled_from(POOL), max_size=25),
    st.lists(st.sampled_from(_FLOW + POOL[:6]), max_size=12).map(lambda es: [_OPEN, *es]),
)
NOW = st.integers(min_value=0, max_value=400 * 24 * 60).map(lambda m: T0 + timedelta(minutes=m))


@settings(max_examples=300, deadline=None)
@given(events=EVENTS, now=NOW)
def test_any_order_never_raises(events: list[CaseEvent], now: datetime) -> None:
    case = replay(CASE_ID, events)
    assert len(case.timeline) <= len(events)
    assert len(case.anomalies) <= len(events)
    deadlines(case, TABLE, now)
    due_reminders(case, TABLE, now, timedelta(days=3))
    escalations(case, now, timedelta(minutes=15))
    effective_state(case, now)


@settings(max_examples=200, deadline=None)
@given(events=EVENTS, cut=st.integers(min_value=0, max_value=25))
def test_replay_is_deterministic_and_survives_storage(events: list[CaseEvent], cut: int) -> None:
    whole = replay(CASE_ID, events)
    assert replay(CASE_ID, list(events)) == whole
    stored = msgspec.json.decode(msgspec.json.encode(replay(CASE_ID, events[:cut])), type=Case)
    for event in events[cut:]:
        stored = apply(stored, event)
    assert stored == whole


def _sequel(case: Case, kind: str, minutes: int) -> MessageEvent:
    """An extension or MLA notice sent by the requester, whichever side we are on."""
    out = case.side is not Side.REQUESTED
    changes = {"mla_status": rq.MlaStatus.SUBMITTED} if kind == "mla_via_extension" else {}
    real = "preservation_extension" if kind == "mla_via_extension" else kind
    return msg(real, out=out, minutes=minutes, msg_id=f"{7000 + minutes:032x}", **changes)


@settings(max_examples=300, deadline=None)
@given(
    events=EVENTS,
    sequel=st.sampled_from(["preservation_extension", "mla_submitted", "mla_via_extension"]),
    minutes=st.integers(min_value=0, max_value=90 * 24 * 60),
    now=NOW,
)
def test_deadlines_never_move_earlier_on_extension_or_mla(
    events: list[CaseEvent], sequel: str, minutes: int, now: datetime
) -> None:
    before = replay(CASE_ID, events)
    after = apply(before, _sequel(before, sequel, minutes))
    old = {d.kind: d.due for d in deadlines(before, TABLE, now)}
    for d in deadlines(after, TABLE, now):
        if d.kind in old:
            assert d.due >= old[d.kind], (d.kind, old[d.kind], d.due)
