"""Retention of case metadata and of the access log with real nodes and a relay (issue 15
§2, PROTOCOL.md §19.6 and §14.6): a moved clock removes a closed case whole and redacts
old access-log entries, spares what is held or open, a byte scan proves the removal, the
case tombstone verifies, the access log still verifies, a bundle exported before still
verifies and an export after is refused with the case's removal named."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node.api.client import NodeApiError
from node.cases import RetentionPolicy, RetentionService
from node.officers import AccessLog, Action, origin_of, verify_access_log
from protocol.evidence import verify_bundle
from protocol.tombstone import verify_case_tombstone
from schemas.errors import ErrorCode
from tests.integration._node_services import peers
from tests.integration._retention_support import exchange, found_in, request, stored_bytes
from tests.integration.test_node_api import raw
from tests.integration.test_node_export import _settled
from tests.support.network import make_network
from tests.support.relay import running_relay, signed


def _moved(service: RetentionService, days_ahead: float) -> None:
    """Metadata kept 1 year, access-log entries 30 days, bodies for ever; clock ahead."""
    service.policy = RetentionPolicy(closed_case_metadata_years=1, access_log_days=30, batch=2)
    service._clock = lambda: datetime.now(UTC) + timedelta(days=days_ahead)
    service._remover = dataclasses.replace(service._remover, policy_days=0)


def _raw_case_rows(db: Path, case_id: str) -> list[bytes]:
    """The sealed headers and the envelopes of a case, as SQLite holds them."""
    with sqlite3.connect(db) as c:
        rows = c.execute(
            "SELECT header, envelope FROM messages WHERE case_id=?", (case_id,)
        ).fetchall()
    return [bytes(x)[-64:] for row in rows for x in row]


async def test_a_closed_case_goes_whole_and_old_access_entries_are_redacted(
    tmp_path: Path,
) -> None:
    net = make_network()
    mark = {n: f"MARK-{n}-{os.urandom(6).hex()}" for n in ("closed", "held", "open", "officer")}
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, seal=True) as p,
    ):
        fr, us = p["FR"], p["US"]
        closed, held, still = (request(mark[n]) for n in ("closed", "held", "open"))
        await exchange(fr, us, closed, "refusal")
        await exchange(fr, us, held, "refusal")
        await exchange(fr, us, still, "taken_in_charge")
        db = us.data / "node.db"
        service = us.services.retention
        # an officer's view of each case, in the access log (its login is a marker)
        log_conn = sqlite3.connect(db, isolation_level=None)
        log = AccessLog(log_conn, service._signer, lambda: datetime.now(UTC))
        for case in (closed, held):
            log.record(Action.BODY_VIEWED, officer=mark["officer"], client="10.1.2.3",
                       case=case.case_id)  # fmt: skip
        log_conn.close()
        secret = [
            mark["closed"].encode(),
            *stored_bytes(db, closed.case_id),
            *_raw_case_rows(db, closed.case_id),
        ]
        assert found_in(us.data, secret)
        await _settled(relay)
        await signed(relay)
        before = await us.api.export_case(closed.case_id)
        why = json.dumps({"reason": "Ordonnance 26/124"}).encode()
        status, answer = await raw(us, "POST", f"/v1/cases/{held.case_id}/hold", body=why)
        assert status == 201, answer
        assert found_in(us.data, [b"Ordonnance 26/124"]) == []  # the reason is sealed (§18.2)
        # Today nothing is due; 400 days on, the refused case not on hold is.
        _moved(service, 0)
        today = await us.api.retention_pass(dry_run=True)
        assert (today.removed_cases, today.log_entries) == (0, 0)
        _moved(service, 370)  # a year after closure, within the test keys (to 2028)
        dry = await us.api.retention_pass(dry_run=True)
        assert [c.case_id for c in dry.removed_due] == [closed.case_id]
        assert (dry.metadata_years, dry.access_log_days) == (1, 30)
        assert dry.log_entries >= 1
        assert found_in(us.data, secret)  # a dry run removes nothing
        done = await us.api.retention_pass(dry_run=False)
        assert (done.removed_cases, done.wal_truncated) == (1, True)
        assert done.log_entries == dry.log_entries
        # The bytes are gone from every file, and so is the officer's login.
        assert found_in(us.data, secret) == []
        assert found_in(us.data, [mark["officer"].encode()]) != []  # kept: held case
        # the case is gone from the node; the held and open ones are there
        assert await us.services.cases.cases.case(closed.case_id) is None
        assert found_in(
            us.data, [*stored_bytes(db, held.case_id), *stored_bytes(db, still.case_id)]
        )
        with pytest.raises(NodeApiError) as gone:
            await us.api.export_case(closed.case_id)
        assert gone.value.code is ErrorCode.NOT_FOUND
        assert "under policy closed_case_metadata" in gone.value.message
        # The case tombstone verifies and names the messages and the access entries.
        with sqlite3.connect(db) as c:
            (signed_t,) = c.execute(
                "SELECT signed FROM case_tombstones WHERE case_id=?", (closed.case_id,)
            ).fetchone()
            case_rows = c.execute(
                "SELECT count(*) FROM messages WHERE case_id=?", (closed.case_id,)
            ).fetchone()
        assert case_rows == (0,)
        t = verify_case_tombstone(bytes(signed_t), net.lookup())
        assert (t.node, t.case_id, t.policy, t.policy_years) == (
            "US", closed.case_id, "closed_case_metadata", 1,
        )  # fmt: skip
        assert len(t.messages) >= 2
        # the log leaves the node knew (the export before found them)
        assert sum(m.accepted is not None for m in t.messages) >= 2, t.messages
        ids = [m.msg_id for m in t.messages]
        with sqlite3.connect(db) as c:
            for table in ("receipts", "log_leaves", "tombstones"):
                marks = ",".join("?" * len(ids))
                sql = f"SELECT count(*) FROM {table} WHERE msg_id IN ({marks})"
                assert c.execute(sql, ids).fetchone() == (0,), table
            for table in ("cases", "case_index", "case_queue", "case_fold", "retained_cases"):
                sql = f"SELECT count(*) FROM {table} WHERE case_id=?"
                assert c.execute(sql, (closed.case_id,)).fetchone() == (0,), table
        assert t.access_log  # the officer's view, at least
        # The access log still verifies, with the redacted entries.
        with sqlite3.connect(db) as c:
            keys = [service._signer.signer.verifier()]
            later = datetime.now(UTC) + timedelta(days=370)  # the pass's time (_moved)
            report = verify_access_log(c, keys, origin_of("US"), now=later)
        assert report.problems == []
        assert report.redacted == done.log_entries
    key = relay.state.keys.log_key
    old = verify_bundle(before, trust_root=net.root(), now=datetime.now(UTC), log_key=key)
    assert len(old.messages) == 2
