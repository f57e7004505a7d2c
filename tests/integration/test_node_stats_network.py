"""Statistics between real nodes and a relay (PROTOCOL.md §20; issue 15 §3).

Every figure ``GET /v1/stats`` answers is recomputed, independently, from the evidence
bundles of the same cases; ``relay247 node stats`` prints the same figures as JSON and
CSV; a member opts in with ``--send-to`` the secretariat (the member whose directory entry
lists ``statistics_secretariat``), and ``relay247 network stats`` adds up what it received.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sqlite3
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from node.api.client import NodeApiError
from node.events import MessageReceived, ReceiptReceived
from schemas._stats import NetworkStatistics, Outcome, Statistics, StatisticsReport
from schemas.errors import ErrorCode
from schemas.examples import example
from schemas.messages import Body
from tests.integration._node_services import Peer, peers
from tests.support.bodies import addressed
from tests.support.fake_relay import HANG_GUARD, next_event
from tests.support.network import make_network
from tests.support.relay import RunningRelay, running_relay, signed
from tests.support.stats_cases import actual, expected, plan_from_bundle

MEMBERS = ("FR", "US", "DE")
RELAY247 = str(Path(sys.executable).with_name("relay247"))


async def _exchange(asker: Peer, answerer: Peer, request: Body, *answers: Body) -> str:
    """``asker`` sends ``request``; ``answerer`` sends each answer; every receipt back."""
    a_q, b_q = asker.node.events.queue(), answerer.node.events.queue()
    sent = await asker.api.send(answerer.node.member, request)
    await next_event(a_q, ReceiptReceived)
    for answer in answers:
        body = msgspec.structs.replace(answer, case_id=request.case_id, in_reply_to=sent.msg_id)
        await answerer.api.send(asker.node.member, body)
        await next_event(b_q, ReceiptReceived)
    return request.case_id


def _new(kind: str, sender: str, recipient: str) -> Body:
    body = msgspec.structs.replace(example(kind), case_id=os.urandom(16).hex())
    if kind == "preservation_request":
        mla = (datetime.now(UTC) + timedelta(days=120)).date()
        body = msgspec.structs.replace(body, mla_expected_by=mla)
    return addressed(body, sender, recipient)


async def _cases(fr: Peer, us: Peer) -> list[str]:
    now = datetime.now(UTC)
    kept = msgspec.structs.replace(
        example("preserved"), preserved_at=now, preserved_until=now + timedelta(days=90)
    )
    return [
        # FR asks US: preserved (until a later date), refused, an emergency answered,
        # preserved until a date already past without an MLA notice (expired)
        await _exchange(fr, us, _new("preservation_request", "FR", "US"),
                        example("taken_in_charge"), kept),
        await _exchange(fr, us, _new("preservation_request", "FR", "US"), example("refusal")),
        await _exchange(fr, us, _new("emergency_disclosure_request", "FR", "US"),
                        example("emergency_disclosure_answer")),
        await _exchange(fr, us, _new("preservation_request", "FR", "US"), example("preserved")),
        # US asks FR: taken in charge only
        await _exchange(us, fr, _new("preservation_request", "US", "FR"),
                        example("taken_in_charge")),
    ]  # fmt: skip


async def _settled(relay: RunningRelay) -> None:
    async with asyncio.timeout(HANG_GUARD):
        for member in MEMBERS:
            while True:
                if not (await relay.client(member).mailbox()).messages:
                    break
                await asyncio.sleep(0.02)  # polling a condition, not asserting a duration


async def _cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        RELAY247, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(HANG_GUARD):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_figures_match_the_bundles_and_reach_the_secretariat(tmp_path: Path) -> None:
    net = make_network(MEMBERS)
    net.declare("statistics_secretariat", "DE")
    today = datetime.now(UTC).date()
    first, last = today - timedelta(days=1), today + timedelta(days=1)
    lo = datetime.combine(first, datetime.min.time(), UTC)
    until = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC)
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, members=MEMBERS) as p,
    ):
        fr, us, de = p["FR"], p["US"], p["DE"]
        case_ids = await _cases(fr, us)
        await _settled(relay)
        await signed(relay)
        for peer in (us, de):
            await peer.services.witness.round(*(peer.services.relay() or ()))
        figures = {m: await p[m].api.stats(first, last) for m in ("FR", "US")}
        bundles = {m: [await p[m].api.export_case(c) for c in case_ids] for m in ("FR", "US")}

        # 1. Every figure, recomputed from the verified bundles alone.
        for member, data in bundles.items():
            plans = [plan_from_bundle(b, member, net.root(), relay.state.keys.log_key)
                     for b in data]  # fmt: skip
            assert None not in plans
            want = expected([x for x in plans if x is not None], lo, until)
            assert actual(figures[member]) == want, member
        outcomes = {(r.flow, r.outcome) for r in figures["FR"].requests}
        assert outcomes == {
            ("sent", Outcome.PRESERVED), ("sent", Outcome.REFUSED), ("sent", Outcome.ANSWERED),
            ("sent", Outcome.EXPIRED), ("received", Outcome.TAKEN_IN_CHARGE),
        }  # fmt: skip
        assert figures["FR"].member == "FR"
        assert figures["FR"].refusals[0].ground == example("refusal").ground  # type: ignore[union-attr]

        # 2. The CLI prints the same figures (JSON, CSV, labelled tables).
        period = ("--from", first.isoformat(), "--to", last.isoformat())
        code, out, _ = await _cli("node", "stats", *period, "--format", "json",
                                  "--data", str(fr.data))  # fmt: skip
        assert code == 0
        assert msgspec.json.decode(out, type=Statistics) == figures["FR"]
        code, out, _ = await _cli("node", "stats", *period, "--format", "csv",
                                  "--data", str(fr.data))  # fmt: skip
        rows = list(csv.DictReader(io.StringIO(out)))
        assert code == 0
        assert sum(int(r["count"]) for r in rows if r["table"] == "requests") == 5
        code, out, _ = await _cli("node", "stats", *period, "--lang", "fr",
                                  "--data", str(fr.data))  # fmt: skip
        assert code == 0
        assert "Demandes" in out
        assert "Refusée" in out

        # 3. Only the secretariat takes reports (T1), and only a member's own figures (E14).
        code, _, err = await _cli("node", "stats", *period, "--send-to", "US",
                                  "--data", str(fr.data))  # fmt: skip
        assert code == 2
        assert "statistics_secretariat" in err
        forged = StatisticsReport(
            case_id=os.urandom(16).hex(), sender_ref="X",
            figures=msgspec.structs.replace(figures["US"]),
        )  # fmt: skip
        with pytest.raises(NodeApiError) as refused:
            await fr.api.send("DE", forged)
        assert refused.value.code is ErrorCode.MALFORMED  # E14, refused before sealing
        assert "$.body.figures.member" in refused.value.message

        # 4. FR and US opt in; the secretariat adds up what it received.
        de_q = de.node.events.queue()
        for peer in (fr, us):
            code, _, err = await _cli("node", "stats", *period, "--format", "json",
                                      "--send-to", "DE", "--data", str(peer.data))  # fmt: skip
            assert code == 0, err
        for _ in range(2):
            await next_event(de_q, MessageReceived)
        reports = await de.api.stats_reports()
        assert {r.sender for r in reports.reports} == {"FR", "US"}
        # 5. A report is not a case to work on: kept with its timeline, but in no case
        # list, inbox count or search, at the secretariat or at the sender (§20.5, ST5).
        for peer in (de, fr):
            with sqlite3.connect(peer.data / "node.db") as db:
                report_cases = {
                    str(r[0]) for r in db.execute(
                        "SELECT DISTINCT case_id FROM messages WHERE body_kind=?",
                        ("statistics_report",),
                    )
                }  # fmt: skip
            assert report_cases
            for case_id in report_cases:
                await peer.services.cases.refresh(case_id)
                assert await peer.services.cases.cases.case(case_id) is not None  # kept
            listed = {c.case_id for c in (await peer.api.cases()).cases}
            assert not listed & report_cases
            n_open, n_closed = await peer.services.cases.cases.queue_counts()
            assert n_open + n_closed == len(listed)
        code, out, _ = await _cli("network", "stats", "--node", str(de.data),
                                  "--format", "json")  # fmt: skip
    assert code == 0
    network = msgspec.json.decode(out, type=NetworkStatistics)
    assert network.reports == (figures["FR"], figures["US"])
    sent = sum(r.count for s in figures.values() for r in s.requests if r.flow == "sent")
    assert sum(k.count for k in network.requests) == sent == 5
    assert network.emergencies == 1
    assert network.expired_before_mla == 1


def test_period_of_the_bundle_helper_is_whole_utc_days() -> None:
    # The bounds the test uses are the ones §20.1 states.
    from node.cases.stats import period_bounds

    lo, hi = period_bounds(date(2026, 1, 1), date(2026, 1, 1))
    assert (lo.isoformat(), hi.isoformat()) == (
        "2026-01-01T00:00:00+00:00",
        "2026-01-02T00:00:00+00:00",
    )
