"""The inbox a page at a time (issue 13 benchmark: 10,000 cases): open cases urgent
first then by next deadline, closed ones on their own pages, and every bad query
refused with 400 — against a real node whose cases came through its real inbox."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from console._pages import PAGE_SIZE
from node.cases import views
from schemas._bodies_request import PreservationRequest, PreservationWithdrawal
from schemas.examples import EXAMPLES
from schemas.messages import Body
from schemas.types import Priority
from tests.integration._console_live import desks, http_session, log_in
from tests.support.bodies import addressed
from tests.support.deliver import deliver
from tests.support.fake_relay import HANG_GUARD
from tests.support.network import make_network

_ROW = re.compile(r'<tr class="priority-(\w+)" data-case="([0-9a-f]{32})">')
N_OPEN, N_CLOSED = PAGE_SIZE + 8, 2


def _bodies() -> tuple[list[Body], set[str], set[str]]:
    """Requests DE -> US (one in ten urgent), then withdrawals of the first two."""
    base = EXAMPLES["preservation_request"]
    assert isinstance(base, PreservationRequest)
    requests = [
        addressed(
            msgspec.structs.replace(
                base,
                case_id=f"{i:032x}",
                priority=Priority.URGENT if i % 10 == 3 else Priority.NORMAL,
            ),
            "DE",
            "US",
        )
        for i in range(N_OPEN + N_CLOSED)
    ]
    withdrawal = EXAMPLES["preservation_withdrawal"]
    assert isinstance(withdrawal, PreservationWithdrawal)
    closed = [r.case_id for r in requests[:N_CLOSED]]
    withdrawals = [msgspec.structs.replace(withdrawal, case_id=c) for c in closed]
    urgent = {r.case_id for r in requests if r.priority is Priority.URGENT} - set(closed)
    return [*requests, *withdrawals], set(closed), urgent


async def test_inbox_pages_open_then_closed(tmp_path: Path) -> None:
    net = make_network()
    bodies, closed, urgent = _bodies()
    async with desks(tmp_path, with_case=False, net=net) as d, http_session() as http:
        await deliver(d.peers["US"].node, net, "DE", bodies)
        store = d.peers["US"].services.cases.cases
        async with asyncio.timeout(HANG_GUARD):
            counts = (0, 0)
            while counts != (N_OPEN, N_CLOSED):
                await asyncio.sleep(0.05)
                counts = await store.queue_counts()
        # the clocks' ticks read the open cases only (no closed case has a running clock)
        ticked = {r.case.case_id for r in await store.open_cases()}
        everything = {r.case.case_id for r in await store.cases()}
        assert ticked == everything - closed
        assert len(ticked) == N_OPEN
        await log_in(http, d.us, "duty")
        base = d.us.url

        async def rows(query: str) -> tuple[list[tuple[str, str]], str]:
            async with http.get(f"{base}/inbox{query}") as resp:
                assert resp.status == 200, query
                text = await resp.text()
            return _ROW.findall(text), text

        first, text = await rows("")
        assert len(first) == PAGE_SIZE
        assert f"{N_OPEN} open, {N_CLOSED} closed" in text
        assert 'href="/inbox?page=2"' in text
        assert 'rel="prev"' not in text
        # urgent first, all of them on the first page
        assert {c for p, c in first[: len(urgent)]} == urgent
        assert all(p == "urgent" for p, _ in first[: len(urgent)])
        assert all(p == "normal" for p, _ in first[len(urgent) :])
        second, text = await rows("?page=2")
        assert len(second) == N_OPEN - PAGE_SIZE
        assert 'href="/inbox?page=1"' in text
        assert 'rel="next"' not in text
        seen = [c for _, c in first + second]
        assert len(set(seen)) == N_OPEN
        assert not set(seen) & closed
        # within a priority: next deadline first, none last, then the latest activity
        table, now = d.peers["US"].services.parts.table, d.us.clock()
        far = datetime.max.replace(tzinfo=UTC)
        summaries = [views.summary(r, table, now) for r in await store.cases()]
        expected = sorted(
            (s for s in summaries if s.case_id not in closed),
            key=lambda s: s.last_activity,
            reverse=True,
        )
        expected.sort(
            key=lambda s: (
                s.priority != "urgent",
                s.next_deadline.due if s.next_deadline else far,
            )
        )
        assert seen == [s.case_id for s in expected]

        shut, text = await rows("?closed=1")
        assert {c for _, c in shut} == closed
        assert "Closed cases" in text
        assert (await rows("?closed=1&page=1"))[0] == shut

        refused = ["?page=\u0662", "?page=02", "?page=0", "?page=-1", "?page=1&page=1",
                   "?page=" + "9" * 40, "?closed=2", "?closed=", "?other=1",
                   "?page=%00"]  # fmt: skip
        for query in refused:
            async with http.get(f"{base}/inbox{query}") as resp:
                assert resp.status == 400, query
                assert "data-case" not in await resp.text()
        for query in ("?page=3", "?closed=1&page=2"):
            async with http.get(f"{base}/inbox{query}") as resp:
                assert resp.status == 404, query
