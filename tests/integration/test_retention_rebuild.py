"""A retained case rebuilt in full (PROTOCOL.md §19) on a sealed node: it starts from the
snapshot kept at removal and applies the messages stored after it, so a follow-up that
came after the pass survives a restart; a case that does not rebuild does not stop the
start of the others."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import structlog

from node.cases import CasesService
from node.events import EventHub, MessageReceived
from schemas.examples import example
from tests.integration._node_services import peers
from tests.integration._retention_support import DAYS, exchange, moved, request
from tests.support.fake_relay import next_event
from tests.support.network import make_network
from tests.support.relay import running_relay


async def test_a_message_after_the_removal_survives_a_full_rebuild(tmp_path: Path) -> None:
    net = make_network()
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, seal=True) as p,
    ):
        fr, us = p["FR"], p["US"]
        body = request("rebuilt")
        await exchange(fr, us, body, "refusal")
        moved(us.services.retention, DAYS + 10)
        done = await us.api.retention_pass(dry_run=False)
        assert done.cases == 1
        # After the pass, FR asks something more in the same case.
        us_q = us.node.events.queue()
        more = msgspec.structs.replace(example("follow_up"), case_id=body.case_id)
        sent = await fr.api.send("US", more)
        got = await next_event(us_q, MessageReceived)
        assert got.msg_id == sent.msg_id
        row = await us.services.cases.refresh(body.case_id)
        assert row is not None
        kinds = [e.kind for e in row.case.timeline]
        assert "follow_up" in kinds, kinds
        # A full rebuild (as at a start with a refolded case) keeps it too.
        again = await us.services.cases.refresh(body.case_id, full=True)
        assert again is not None
        assert [e.kind for e in again.case.timeline] == kinds
        assert again.case == row.case
        assert (await us.api.case(body.case_id)).summary.state == "refused"
        rows = (
            sqlite3.connect(us.data / "node.db")
            .execute(
                "SELECT r.last_id, f.last_id FROM retained_cases r JOIN case_fold f USING (case_id)"
            )
            .fetchall()
        )
        assert len(rows) == 1
        assert rows[0][0] < rows[0][1]  # the snapshot is older than the kept fold


async def test_a_case_behind_its_messages_is_not_removed_until_folded(tmp_path: Path) -> None:
    net = make_network()
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, seal=True) as p,
    ):
        fr, us = p["FR"], p["US"]
        body = request("behind")
        await exchange(fr, us, body, "refusal")
        db = us.data / "node.db"
        await us.services.cases.refresh(body.case_id)
        await us.services.cases.stop()  # no event folds it behind the test's back
        with sqlite3.connect(db) as c:  # as if the last fold had not run yet
            c.execute("UPDATE case_fold SET last_id = last_id - 1 WHERE case_id=?", (body.case_id,))
        service = us.services.retention
        moved(service, DAYS + 10)
        fold, service._fold = service._fold, None  # a pass that does not fold first
        assert (await us.api.retention_pass(dry_run=False)).bodies == 2  # planned...
        assert (await us.api.retention(body.case_id)).removed == ()  # ...but left alone
        service._fold = fold  # the node's pass folds its due cases first
        await us.api.retention_pass(dry_run=False)
        assert len((await us.api.retention(body.case_id)).removed) == 2


async def test_one_case_that_does_not_rebuild_does_not_stop_the_start(tmp_path: Path) -> None:
    net = make_network()
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, seal=True) as p,
    ):
        fr, us = p["FR"], p["US"]
        broken, fine = request("broken"), request("fine")
        await exchange(fr, us, broken, "refusal")
        await exchange(fr, us, fine, "refusal")
        moved(us.services.retention, DAYS + 10)
        assert (await us.api.retention_pass(dry_run=False)).cases == 2
        with sqlite3.connect(us.data / "node.db") as c:
            # One retained copy altered on disk (it no longer opens), and both cases stale.
            c.execute(
                "UPDATE retained_cases SET data = substr(data, 1, 40) || x'00' WHERE case_id=?",
                (broken.case_id,),
            )
            c.execute("DELETE FROM case_fold")
        svc = CasesService(
            us.node.store, us.services.case_store, EventHub(), us.services.parts.table
        )
        with structlog.testing.capture_logs() as logs:
            await svc.start()
        await svc.stop()
        failed = [e for e in logs if e["event"] == "case rebuild failed at start"]
        assert [(e["case_id"], e["code"]) for e in failed] == [(broken.case_id, "internal")]
        assert set(failed[0]) == {"event", "log_level", "case_id", "code"}
        assert await us.services.case_store.folded(fine.case_id) is not None
