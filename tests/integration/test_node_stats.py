"""``relay247 node stats`` on 1,000 generated cases: every figure matches the counts the
test computes itself from what it generated (PROTOCOL.md §20; issue 15 §3)."""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import msgspec

from node.cases import CasesService, CaseStore, load_periods, statistics
from node.events import EventHub
from node.storage import NodeStore
from schemas._stats import Outcome
from schemas.examples import example
from schemas.messages import Body
from tests.support.stats_cases import Msg, Plan, actual, expected, plan_cases, write_case

FIRST, LAST = date(2026, 1, 1), date(2026, 6, 30)
LO = datetime(2026, 1, 1, tzinfo=UTC)
UNTIL = datetime(2026, 7, 1, tzinfo=UTC)


def _noise(at: datetime) -> list[Plan]:
    """Cases the figures must leave out: a request the relay refused for good, and cases
    without a request (a lone follow-up, a statistics report)."""
    failed = Plan("sent", "US", Msg(at, _fresh("preservation_request"), False), counted=False)
    follow = Plan("received", "JP", Msg(at, _fresh("follow_up"), False), counted=False)
    report = Plan("sent", "US", Msg(at, _fresh("statistics_report"), False), counted=False)
    return [failed, follow, report]


def _fresh(kind: str) -> Body:
    return msgspec.structs.replace(example(kind), case_id=os.urandom(16).hex())


async def test_figures_of_1000_generated_cases_match_the_counts_computed_here(
    tmp_path: Path,
) -> None:
    plans = plan_cases(1000, LO, UNTIL)
    noise = _noise(LO + timedelta(days=3))
    path = tmp_path / "node.db"
    store, cases = NodeStore(path), CaseStore(path)
    await store.open()
    await cases.open()
    try:
        started = time.perf_counter()
        seqs: Counter[str] = Counter()
        for p in [*plans, *noise]:
            await write_case(store, p, seqs)
        service = CasesService(store, cases, EventHub(), load_periods())
        for case_id in await cases.case_ids():
            await service.refresh(case_id)
        setup = time.perf_counter() - started
        started, cpu = time.perf_counter(), time.process_time()
        figures = await statistics("FR", store, cases, FIRST, LAST)
        took, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await cases.close()
        await store.close()
    print(f"setup {setup:.1f} s; statistics of {len(plans)} cases {took:.2f} s, CPU {cpu:.2f} s")
    want = expected(plans, LO, UNTIL)
    got = actual(figures)
    assert got == want
    # The generated set exercises every table and most outcomes, inside and outside.
    in_period = sum(1 for p in plans if LO <= p.request.created < UNTIL)
    assert 800 < in_period < 1000
    assert sum(r.count for r in figures.requests) == in_period
    assert {r.outcome for r in figures.requests} == set(Outcome)
    assert figures.refusals
    assert figures.expired_before_mla
    assert figures.emergencies
    refused = sum(r.count for r in figures.requests if r.outcome is Outcome.REFUSED)
    assert sum(g.count for g in figures.refusals) == refused
    expired = sum(r.count for r in figures.requests if r.outcome is Outcome.EXPIRED)
    assert sum(e.count for e in figures.expired_before_mla) == expired
