"""The recipient killed with SIGKILL inside a batched inbox commit (issue 16).

The inbox stores a page of envelopes in one transaction and acks them only after its
commit. Here US, a real ``relay247 node serve`` process reading pages of 10 by long-poll,
is killed again and again while the relay holds 60 envelopes for it: a moment after one
of its commits is seen (the page's acks, or the next page's verification and commit, are
in flight), or at a time spread over its start-up and its first pages. All along, the
relay's count of acked envelopes never exceeds US's count of stored ones. After a last clean
run every message is stored exactly once, every one was answered by exactly one
receipt, and FR holds a verified receipt for each.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from pathlib import Path

import pytest

from node.config import load_config
from node.daemon import Node
from schemas.examples import EXAMPLES
from tests.integration._crash_load import RelayProcess
from tests.integration.test_node_process import (
    PASS,
    Net,
    NodeProcess,
    _passphrase,  # noqa: F401 - the autouse fixture
    _publish,
    _statuses,
    _until,
    net,  # noqa: F401 - the fixture
)
from tests.support.bodies import addressed

N = 60
KILLS = 8


def _inbound(db: Path) -> int:
    """Business messages US stored (0 before its database exists)."""
    if not db.exists():
        return 0
    for _ in range(50):
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM messages WHERE direction='in' AND coarse_kind!='receipt'"
                ).fetchone()
            return int(row[0])
        except sqlite3.OperationalError as exc:  # created, or recovered, just now
            last = exc
            time.sleep(0.01)  # a moment for the other process; never 0 by mistake
    raise last


def _poll_pages_of_ten(config: Path) -> None:
    text = config.read_text()
    assert "push = true" in text
    assert "page_size = 100" in text
    config.write_text(text.replace("push = true", "push = false").replace(
        "page_size = 100", "page_size = 10"
    ))  # fmt: skip


def _acked(relay_db: Path) -> int:
    """Envelopes for US the relay no longer holds: acked (read before US's count)."""
    with sqlite3.connect(f"file:{relay_db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT depth FROM mailboxes WHERE recipient='US'").fetchone()
    return N - (0 if row is None else int(row[0]))


def _check(relay_db: Path, db: Path) -> int:
    """US's stored count, after checking that nothing was acked before it was stored."""
    acked = _acked(relay_db)  # first: a later count of stored ones can only be higher
    stored = _inbound(db)
    assert acked <= stored, f"{acked} envelopes acked but only {stored} stored"
    return stored


async def _kill_after_a_commit(
    proc: NodeProcess, db: Path, relay_db: Path, rng: random.Random
) -> int:
    """Start US and SIGKILL it a moment after one of its commits is seen (or at a random
    moment), checking all along that no envelope is acked before it is stored; return
    how many messages it had stored then."""
    before = _check(relay_db, db)
    proc.start()
    async with asyncio.timeout(60):
        if before < N and rng.random() < 0.75:
            while True:
                if _check(relay_db, db) != before:
                    break
                await asyncio.sleep(0.003)  # polling another process's state
            wait = rng.uniform(0.0, 0.06)  # the acks, the next page, its commit
        else:
            wait = rng.uniform(0.5, 3.0)  # start-up, first pages
        end = asyncio.get_running_loop().time() + wait
        while asyncio.get_running_loop().time() < end:
            _check(relay_db, db)
            await asyncio.sleep(0.003)
    proc.kill()
    return _check(relay_db, db)


@pytest.mark.slow
async def test_sigkill_inside_batched_inbox_commits_then_everything_once(
    net: Net,  # noqa: F811 - the fixture imported above
) -> None:
    relay = RelayProcess(net.root / "relay" / "relay.toml", net.port, env={})
    relay.env["RELAY247_PASSPHRASE"] = PASS
    await relay.start()
    await _publish(net)
    _poll_pages_of_ten(net.node_toml("US"))
    fr = await Node.open(load_config(net.node_toml("FR")), PASS.encode())
    us = NodeProcess(net.node_toml("US"))
    fr_db, us_db = net.root / "fr" / "node.db", net.root / "us" / "node.db"
    relay_db = net.root / "relay" / "relay.db"
    rng = random.Random(16)  # test timing, not cryptography
    try:
        await fr.start()
        await fr.wait_ready()
        sent = {
            await fr.send(addressed(EXAMPLES["preservation_request"], "FR", "US"), "US")
            for _ in range(N)
        }
        await _until(lambda: set(_statuses(fr_db).values()) == {"sent"})  # all at the relay
        at_kill = [await _kill_after_a_commit(us, us_db, relay_db, rng) for _ in range(KILLS)]
        assert any(0 < n < N for n in at_kill), at_kill  # killed while pages were left
        started = us.log.read_text().count("node started") if us.log.exists() else 0
        us.start()
        # Up (its signal handlers set) before the SIGTERM below, even if nothing is left.
        await _until(lambda: us.log.read_text().count("node started") > started)
        await _until(
            lambda: (
                set(_statuses(fr_db)) == sent and set(_statuses(fr_db).values()) == {"delivered"}
            )
        )
        assert us.terminate() == 0
    finally:
        if us.proc is not None and us.proc.poll() is None:
            us.kill()
        await fr.stop()
        relay.terminate()
    with sqlite3.connect(f"file:{us_db}?mode=ro", uri=True) as conn:
        stored = conn.execute(
            "SELECT msg_id, count(*) FROM messages WHERE direction='in' GROUP BY msg_id"
        ).fetchall()
        answered = conn.execute(
            "SELECT in_reply_to, count(*) FROM messages WHERE direction='out'"
            " AND coarse_kind='receipt' GROUP BY in_reply_to"
        ).fetchall()
        seen = conn.execute("SELECT count(*) FROM seen").fetchone()[0]
    assert {r[0] for r in stored} == sent
    assert all(r[1] == 1 for r in stored)  # stored once
    assert {r[0] for r in answered} == sent
    assert all(r[1] == 1 for r in answered)  # one receipt each
    assert seen == N
    with sqlite3.connect(f"file:{fr_db}?mode=ro", uri=True) as conn:
        receipts = conn.execute("SELECT msg_id FROM receipts").fetchall()
    assert {r[0] for r in receipts} == sent
