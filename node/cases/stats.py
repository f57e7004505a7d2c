"""A member's statistics for a period, from the messages it stored (PROTOCOL.md §20).

Only what an evidence bundle of the same case also proves is read (§20.1): messages in
the audit log (sent ones a relay accepted, received ones this node accepted), their
signed ``created`` times, their bodies, and the signed delivery receipts' ``received_at``.
The node's own clock (``stored_at``) never enters a figure, so anyone holding the
period's bundles can recompute every number.

:func:`gather` (:mod:`node.cases._stats_facts`) reads the store, e-mail exchanges
(§22) included; :func:`figures` is pure and turns the facts of each case
into the coded tables of :class:`schemas._stats.Statistics`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Final

from node.cases._stats_facts import (
    CHUNK,
    CaseFacts,
    Event,
    facts_of,
    gather,
    period_bounds,
    signed_header,
    signed_receipt_time,
)
from node.cases.store import CaseStore
from node.storage import NodeStore
from schemas import _bodies_dataprot as dp
from schemas import _bodies_other as ot
from schemas import _bodies_request as rq
from schemas._bodies_response import Preserved, Refusal, RefusalGround
from schemas._stats import (
    Flow,
    Measure,
    Outcome,
    PeerCount,
    RefusalCount,
    RequestCount,
    RequestKind,
    Statistics,
    Timing,
)
from schemas.envelope import ReceiptStatus

__all__ = [
    "CHUNK", "MAX_PERIOD_DAYS", "CaseFacts", "Event", "facts_of", "figures", "gather",
    "period_bounds", "signed_header", "signed_receipt_time", "statistics",
]  # fmt: skip
_EMERGENCY_REFUSED: Final = ot.EmergencyDecision.REFUSED
#: Longest period one export covers (ten years and leap days).
MAX_PERIOD_DAYS: Final = 3660


# -- the figures (pure) --------------------------------------------------------------------


def _answers(facts: CaseFacts) -> list[Event]:
    return [e for e in facts.events if e.from_requested]


def _refused_ground(facts: CaseFacts) -> RefusalGround | None:
    """The coded ground of the first refusal (``other`` where the answer codes none)."""
    for e in _answers(facts):
        b = e.body
        if e.kind == "refusal":
            return b.ground if isinstance(b, Refusal) else RefusalGround.OTHER
        if isinstance(b, ot.EmergencyDisclosureAnswer) and b.decision is _EMERGENCY_REFUSED:
            return b.refusal_ground or RefusalGround.OTHER
        if isinstance(b, dp.OnwardTransferAnswer) and b.decision is dp.OnwardDecision.REFUSED:
            return RefusalGround.OTHER
    return None


def _answered(e: Event) -> bool:
    b = e.body
    if e.kind == "emergency_disclosure_answer":
        return not (
            isinstance(b, ot.EmergencyDisclosureAnswer)
            and b.decision is ot.EmergencyDecision.PENDING_PROVIDER
        )
    return e.kind in ("assistance_answer", "onward_transfer_answer")


def _mla_notice(e: Event) -> bool:
    if e.kind == "mla_submitted":
        return True
    b = e.body
    return isinstance(b, rq.PreservationExtension) and b.mla_status is rq.MlaStatus.SUBMITTED


def expired_before_mla(facts: CaseFacts, until: datetime) -> bool:
    """A preservation whose last confirmed "preserved until" passed before ``until`` with no
    MLA notice created before that date (§20.2)."""
    if facts.kind is not RequestKind.PRESERVATION:
        return False
    preserved = [e.body for e in _answers(facts) if isinstance(e.body, Preserved)]
    if not preserved:
        return False
    ends = preserved[-1].preserved_until
    mla = any(_mla_notice(e) and e.created < ends for e in facts.events if not e.from_requested)
    return ends < until and not mla


def outcome(facts: CaseFacts, until: datetime) -> Outcome:
    """Where the request stood at ``until``: the first rule of §20.2 that holds."""
    answers = _answers(facts)
    asks = [e for e in facts.events if not e.from_requested]
    kinds = {e.kind for e in answers}
    if any(s is ReceiptStatus.REJECTED for _, s in facts.receipts):
        return Outcome.REJECTED
    if _refused_ground(facts) is not None:
        return Outcome.REFUSED
    if "impossible_to_execute" in kinds:
        return Outcome.IMPOSSIBLE
    withdrawn = any(
        e.kind == "preservation_withdrawal"
        or (
            isinstance(e.body, rq.WarningDecisionBody)
            and e.body.decision is rq.WarningDecision.WITHDRAW
        )
        for e in asks
    )
    if withdrawn:
        return Outcome.WITHDRAWN
    if any(_answered(e) for e in answers):
        return Outcome.ANSWERED
    if expired_before_mla(facts, until):
        return Outcome.EXPIRED
    if any(_mla_notice(e) for e in asks):
        return Outcome.MLA_PENDING
    if "preserved" in kinds:
        return Outcome.PRESERVED
    if "taken_in_charge" in kinds or "emergency_disclosure_answer" in kinds:
        return Outcome.TAKEN_IN_CHARGE
    if facts.receipts:
        return Outcome.DELIVERED
    return Outcome.PENDING


def delays(facts: CaseFacts) -> dict[Measure, int]:
    """Whole seconds from the request's ``created`` to each first milestone reached."""
    found: dict[Measure, datetime] = {}
    if facts.receipts:
        found[Measure.DELIVERY_RECEIPT] = facts.receipts[0][0]
    for e in _answers(facts):  # in signed-time order: the first one of each stays
        if e.kind == "taken_in_charge":
            found.setdefault(Measure.TAKEN_IN_CHARGE, e.created)
        if e.kind == "preserved":
            found.setdefault(Measure.PRESERVED, e.created)
        if facts.kind is RequestKind.EMERGENCY:
            found.setdefault(Measure.EMERGENCY_RESPONSE, e.created)
    return {
        m: max(0, int((at - facts.requested_at) // timedelta(seconds=1))) for m, at in found.items()
    }


def nearest_rank(values: list[int], percent: int) -> int:
    """The ``percent``-th percentile by the nearest-rank method (sorted, 1-based rank
    ceil(percent x n / 100)); ``values`` must not be empty."""
    ordered = sorted(values)
    rank = max(1, -(-percent * len(ordered) // 100))
    return ordered[rank - 1]


def _timing(flow: Flow, measure: Measure, peer: str | None, values: list[int]) -> Timing:
    return Timing(
        flow=flow,
        measure=measure,
        peer=peer,
        count=len(values),
        median_s=nearest_rank(values, 50),
        p90_s=nearest_rank(values, 90),
    )


def figures(member: str, facts: Iterable[CaseFacts], start: date, end: date) -> Statistics:
    """The statistics of ``facts`` (already limited to the period), rows sorted."""
    _, until = period_bounds(start, end)
    requests: Counter[tuple[Flow, str, RequestKind, Outcome]] = Counter()
    refusals: Counter[tuple[Flow, str, RefusalGround]] = Counter()
    expired: Counter[tuple[Flow, str]] = Counter()
    emergencies: Counter[tuple[Flow, str]] = Counter()
    waits: defaultdict[tuple[Flow, Measure, str | None], list[int]] = defaultdict(list)
    for f in facts:
        result = outcome(f, until)
        requests[(f.flow, f.peer, f.kind, result)] += 1
        if result is Outcome.REFUSED:
            ground = _refused_ground(f)
            assert ground is not None
            refusals[(f.flow, f.peer, ground)] += 1
        if result is Outcome.EXPIRED:
            expired[(f.flow, f.peer)] += 1
        if f.kind is RequestKind.EMERGENCY:
            emergencies[(f.flow, f.peer)] += 1
        for measure, seconds in delays(f).items():
            waits[(f.flow, measure, None)].append(seconds)
            waits[(f.flow, measure, f.peer)].append(seconds)
    return Statistics(
        member=member,
        period_from=start,
        period_to=end,
        requests=tuple(
            RequestCount(flow=k[0], peer=k[1], kind=k[2], outcome=k[3], count=n)
            for k, n in sorted(requests.items())
        ),
        timings=tuple(
            _timing(fl, m, p, v)
            for (fl, m, p), v in sorted(waits.items(), key=lambda kv: _timing_order(kv[0]))
        ),
        refusals=tuple(
            RefusalCount(flow=k[0], peer=k[1], ground=k[2], count=n)
            for k, n in sorted(refusals.items())
        ),
        expired_before_mla=tuple(
            PeerCount(flow=k[0], peer=k[1], count=n) for k, n in sorted(expired.items())
        ),
        emergencies=tuple(
            PeerCount(flow=k[0], peer=k[1], count=n) for k, n in sorted(emergencies.items())
        ),
    )


def _timing_order(key: tuple[Flow, Measure, str | None]) -> tuple[str, str, str]:
    flow, measure, peer = key
    return (flow.value, measure.value, "" if peer is None else peer)


async def statistics(
    member: str, store: NodeStore, cases: CaseStore, start: date, end: date
) -> Statistics:
    """The member's statistics for the days ``start`` to ``end`` (UTC, inclusive).

    Raises:
        StorageError: the store failed.
    """
    return figures(member, await gather(store, cases, start, end), start, end)
