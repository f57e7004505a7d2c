"""The node's case machine (protocol.cases) against a small model of a preservation
case's flow (MESSAGES.md: request, receipt, taken in charge, preserved, Art. 29(6)
warning and decision, extension, MLA notice, refusal, withdrawal; follow-ups).

Messages arrive in any order, twice, or from the wrong side. After every step the real
case's state, preservation date and anomalies agree with the model, a terminal state
never changes, replaying the same events gives the same case, and the clocks
(deadlines, reminders, escalations, the effective state) answer without raising.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from protocol.cases import (
    TERMINAL_STATES,
    AnomalyCode,
    CaseEvent,
    CaseState,
    MessageEvent,
    ReceiptEvent,
    Side,
    apply,
    deadlines,
    due_reminders,
    effective_state,
    escalations,
    new_case,
    replay,
)
from schemas import _bodies_request as rq
from schemas.envelope import ReceiptStatus
from schemas.examples import CASE_ID
from tests.model._profile import model_settings
from tests.unit.test_cases_support import T0, TABLE, body

S = CaseState
ACTIVE = {S.SENT, S.RECEIVED, S.TAKEN_IN_CHARGE, S.PRESERVED, S.EXTENSION_REQUESTED, S.MLA_PENDING}
HOLDING = {S.PRESERVED, S.EXTENSION_REQUESTED}
#: who sends each kind in a preservation case: True = the requester (us, outgoing)
FROM_US = {
    "preservation_request": True,
    "preservation_extension": True,
    "preservation_withdrawal": True,
    "mla_submitted": True,
    "warning_decision": True,
    "taken_in_charge": False,
    "preserved": False,
    "preservation_warning": False,
    "refusal": False,
}

#: what the other side or we plausibly send next, by the model's state
NEXT: dict[CaseState, list[str]] = {
    S.NEW: ["preservation_request"],
    S.SENT: ["taken_in_charge", "preserved", "refusal"],
    S.RECEIVED: ["taken_in_charge", "preserved"],
    S.TAKEN_IN_CHARGE: ["preserved", "preservation_warning", "refusal"],
    S.PRESERVED: ["preservation_extension", "mla_submitted", "preservation_warning", "preserved"],
    S.EXTENSION_REQUESTED: ["preserved", "mla_submitted", "preservation_withdrawal"],
    S.MLA_PENDING: ["preserved", "preservation_extension", "preservation_withdrawal"],
    S.WARNED: ["warning_decision", "preserved", "mla_submitted"],
}


@dataclass
class Model:
    """What MESSAGES.md says the requester's case should be."""

    state: CaseState = S.NEW
    opened: bool = False
    request_id: str | None = None
    mla: bool = False
    before_warning: CaseState | None = None
    preserved_until: object = None
    seen: set[str] = field(default_factory=set)
    anomalies: list[AnomalyCode] = field(default_factory=list)

    def message(self, kind: str, msg_id: str, outgoing: bool, changes: dict[str, object]) -> None:
        if msg_id in self.seen:
            return  # a stored message replayed changes nothing
        self.seen.add(msg_id)
        if kind in FROM_US and FROM_US[kind] is not outgoing:
            self.anomalies.append(AnomalyCode.WRONG_DIRECTION)
            return
        if kind == "follow_up":
            return
        if not self.opened and kind != "preservation_request":
            self.anomalies.append(AnomalyCode.NO_REQUEST)
            return
        bad = getattr(self, "_" + kind)(msg_id, changes)
        if bad is not None:
            self.anomalies.append(bad)

    def _preservation_request(self, msg_id: str, _c: dict[str, object]) -> AnomalyCode | None:
        if self.opened:
            return AnomalyCode.SECOND_REQUEST
        self.opened, self.request_id, self.state = True, msg_id, S.SENT
        return None

    def _taken_in_charge(self, _m: str, _c: dict[str, object]) -> AnomalyCode | None:
        if self.state in (S.SENT, S.RECEIVED):
            self.state = S.TAKEN_IN_CHARGE
        elif self.state is not S.TAKEN_IN_CHARGE:
            return AnomalyCode.INVALID_TRANSITION
        return None

    def _preserved(self, _m: str, c: dict[str, object]) -> AnomalyCode | None:
        if self.state in TERMINAL_STATES:
            return AnomalyCode.INVALID_TRANSITION
        until = c["preserved_until"]
        assert isinstance(until, datetime)
        earlier = isinstance(self.preserved_until, datetime) and until < self.preserved_until
        # PROTOCOL.md §10.11: an earlier date is still the requested side's answer: the
        # date and the state are taken (after an extension request: `preserved` again,
        # not still waiting), and the anomaly alerts the officer to the shorter period.
        self.preserved_until = until
        held = S.MLA_PENDING if self.mla else S.PRESERVED
        if self.state is S.WARNED:
            self.before_warning = held
        else:
            self.state = held
        return AnomalyCode.DATE_MOVED_EARLIER if earlier else None

    def _preservation_warning(self, _m: str, _c: dict[str, object]) -> AnomalyCode | None:
        if self.state not in ACTIVE | {S.WARNED}:
            return AnomalyCode.INVALID_TRANSITION
        if self.state is not S.WARNED:
            self.before_warning = (
                S.TAKEN_IN_CHARGE if self.state in (S.SENT, S.RECEIVED) else self.state
            )
        self.state = S.WARNED
        return None

    def _warning_decision(self, _m: str, c: dict[str, object]) -> AnomalyCode | None:
        if self.state is not S.WARNED:
            return AnomalyCode.INVALID_TRANSITION
        if c["decision"] is rq.WarningDecision.WITHDRAW:
            self.state = S.WITHDRAWN
        else:
            self.state = self.before_warning or S.TAKEN_IN_CHARGE
        self.before_warning = None
        return None

    def _final(self, state: CaseState) -> AnomalyCode | None:
        if self.state in TERMINAL_STATES:
            return AnomalyCode.INVALID_TRANSITION
        self.state = state
        return None

    def _refusal(self, _m: str, _c: dict[str, object]) -> AnomalyCode | None:
        return self._final(S.REFUSED)

    def _preservation_withdrawal(self, _m: str, _c: dict[str, object]) -> AnomalyCode | None:
        return self._final(S.WITHDRAWN)

    def _mla_submitted(self, _m: str, _c: dict[str, object]) -> AnomalyCode | None:
        if self.state in TERMINAL_STATES:
            return AnomalyCode.INVALID_TRANSITION
        if self.mla:
            return None
        self.mla = True
        if self.state in HOLDING:
            self.state = S.MLA_PENDING
        elif self.state is S.WARNED and self.before_warning in HOLDING:
            self.before_warning = S.MLA_PENDING
        return None

    def _preservation_extension(self, _m: str, _c: dict[str, object]) -> AnomalyCode | None:
        if self.state in TERMINAL_STATES:
            return AnomalyCode.INVALID_TRANSITION
        if self.state is S.PRESERVED:
            self.state = S.EXTENSION_REQUESTED
        return None

    def receipt(self, msg_id: str, rejected: bool, known: bool) -> None:
        key = "receipt:" + msg_id
        if key in self.seen:
            return
        self.seen.add(key)
        if not known:
            self.anomalies.append(AnomalyCode.UNKNOWN_MESSAGE)
            return
        if msg_id == self.request_id and self.state is S.SENT:
            self.state = S.REJECTED if rejected else S.RECEIVED


class CaseMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.case = new_case(CASE_ID, Side.REQUESTER)
        self.model = Model()
        self.events: list[CaseEvent] = []
        self.clock = 0
        self.ids: list[tuple[str, bool]] = []  # (msg_id, outgoing) of messages applied
        self.terminal: CaseState | None = None

    def _apply(self, ev: CaseEvent) -> None:
        self.case = apply(self.case, ev)
        self.events.append(ev)

    def _message(self, kind: str, outgoing: bool, msg_id: str | None, **changes: object) -> None:
        self.clock += 1
        mid = msg_id or f"{self.clock:032x}"
        ev = MessageEvent(
            msg_id=mid,
            at=T0 + timedelta(hours=self.clock),
            outgoing=outgoing,
            body=body(kind, **changes),
        )
        self._apply(ev)
        self.model.message(kind, mid, outgoing, changes)
        if msg_id is None:  # a receipt answers the message as first stored
            self.ids.append((mid, outgoing))

    @rule(
        kind=st.sampled_from([*sorted(FROM_US), "follow_up"]),
        wrong_side=st.booleans(),
        data=st.data(),
    )
    def message(self, kind: str, wrong_side: bool, data: st.DataObject) -> None:
        outgoing = FROM_US.get(kind, data.draw(st.booleans()))
        outgoing = outgoing is not wrong_side
        again = data.draw(st.booleans()) and self.ids
        msg_id = data.draw(st.sampled_from(self.ids))[0] if again else None
        changes: dict[str, object] = {}
        if kind == "preserved":
            changes["preserved_until"] = T0 + timedelta(days=data.draw(st.integers(1, 200)))
        elif kind == "warning_decision":
            changes["decision"] = data.draw(st.sampled_from(list(rq.WarningDecision)))
        self._message(kind, outgoing, msg_id, **changes)

    @rule(data=st.data())
    def next_step(self, data: st.DataObject) -> None:
        """A message the flow expects now, so deep states are reached often."""
        kind = data.draw(st.sampled_from(NEXT.get(self.model.state, ["follow_up"])))
        changes: dict[str, object] = {}
        if kind == "preserved":
            changes["preserved_until"] = T0 + timedelta(days=data.draw(st.integers(1, 200)))
        elif kind == "warning_decision":
            changes["decision"] = data.draw(st.sampled_from(list(rq.WarningDecision)))
        self._message(kind, FROM_US.get(kind, True), None, **changes)

    @rule(data=st.data(), rejected=st.booleans())
    def receipt(self, data: st.DataObject, rejected: bool) -> None:
        self.clock += 1
        known = bool(self.ids) and data.draw(st.booleans())
        if known:
            mid, outgoing = data.draw(st.sampled_from(self.ids))
        else:
            mid, outgoing = "f" * 32, True
        status = ReceiptStatus.REJECTED if rejected else ReceiptStatus.ACCEPTED
        self._apply(
            ReceiptEvent(
                msg_id=mid,
                at=T0 + timedelta(hours=self.clock),
                outgoing=not outgoing,
                status=status,
            )
        )
        # A receipt comes from the message's recipient: the model only sends it that way.
        self.model.receipt(mid, rejected, known)

    @invariant()
    def agrees_with_model(self) -> None:
        assert self.case.state is self.model.state, (self.case.state, self.model)
        assert self.case.preserved_until == self.model.preserved_until
        assert [a.code for a in self.case.anomalies] == self.model.anomalies

    @invariant()
    def terminal_is_final(self) -> None:
        if self.terminal is not None:
            assert self.case.state is self.terminal
        elif self.case.state in TERMINAL_STATES:
            self.terminal = self.case.state

    @invariant()
    def replay_is_the_same(self) -> None:
        assert replay(CASE_ID, self.events, Side.REQUESTER) == self.case

    @invariant()
    def clocks_answer(self) -> None:
        for days in (0, 30, 400):
            now = T0 + timedelta(hours=self.clock, days=days)
            found = deadlines(self.case, TABLE, now)
            assert all(d.due.tzinfo is not None for d in found)
            due_reminders(self.case, TABLE, now, timedelta(days=2))
            escalations(self.case, now, timedelta(minutes=30))
            state = effective_state(self.case, now)
            assert state is self.case.state or state is S.EXPIRED


def test_case_model() -> None:
    run_state_machine_as_test(CaseMachine, settings=model_settings(50, steps=20))
