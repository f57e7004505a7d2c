"""Node data at rest with a real relay and real nodes (issue 15 §1, PROTOCOL.md §18).

FR sends US a preservation request naming a marker in free text and in an identifier,
with an attached file whose text names it too.
Once both nodes have stopped, no file under either data directory holds the marker
(node.db, its -wal and -shm, any journal or temporary file, attachments), in UTF-8,
UTF-16 or JSON-escaped form; US reads the request back after a restart. The marker also
goes into an oral emergency record, an officer's name and, after US refuses and a
retention pass runs 40 days on, the case kept in ``retained_cases``. A copy of the
data directory opens nothing without the passphrase. Then the data key is rotated with
``relay247 node rotate-data-key`` while messages arrive, and nothing is lost.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from node.cases.hold import retained_case
from node.cases.search import Query
from node.config import load_config
from node.daemon import Node
from node.officers import EmergencyDesk, LogSigner, OfficerDb, open_db
from node.storage._sealed import key_id_of
from node.storage.schema import Direction
from protocol.errors import ConfigError
from schemas.examples import EXAMPLES, example
from schemas.messages import Body
from tests.integration._crash_load import RelayProcess
from tests.integration._retention_support import DAYS, moved
from tests.integration.test_node_process import (  # noqa: F401  (fixtures)
    PASS,
    Net,
    NodeProcess,
    _passphrase,
    _publish,
    net,
    run,
)
from tests.support.bodies import addressed
from tests.unit.test_node_atrest import scan

MARKER = "zqxmarker41"


def marked_request(n: int = 0) -> Body:
    """The example request with the marker in an e-mail identifier and in free text."""
    text = msgspec.json.encode(EXAMPLES["preservation_request"]).decode()
    text = text.replace("drop.box.2026@", f"{MARKER}.{n}@")
    text = text.replace("Since March 2026", f"Since March 2026 ({MARKER} said so)")
    if n:
        text = text.replace("4f0c2a9e6b1d4e7f8a3c5b2d1e0f9a8b", f"{n:032x}")
    body: Body = msgspec.json.decode(text, type=Body)
    return addressed(body, "FR", "US")


async def _pieces() -> AsyncIterator[bytes]:
    yield f"The account holder {MARKER} wrote this statement.\n".encode() * 100


async def _shown(data: Path, case_id: str) -> str:
    """``relay247 node show CASE --json`` once the restarted node's API answers."""
    async with asyncio.timeout(60):
        while True:
            done = await asyncio.to_thread(run, "node", "show", case_id, "--json", "--data", data)
            if done.exit_code == 0:
                return done.stdout
            await asyncio.sleep(0.2)  # the node is still starting: not timing it


async def _until(check: object) -> None:
    assert callable(check)
    async with asyncio.timeout(60):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)  # polling another part's state, not timing it


def _officer_data(us: Node) -> None:
    """An officer named with the marker records an oral emergency naming it."""
    conn = open_db(us.config.path(us.config.node.database))
    try:
        signer = LogSigner("US", us.services.parts.keys.signing)
        officers = OfficerDb(conn, _now, member="US", signer=signer, sealer=us.store.sealer)
        officers.add("marta", display_name=f"Marta {MARKER}", roles=["officer"])
        desk = EmergencyDesk(officers, _now, signer)
        desk.record(
            member="FR", caller=f"Capitaine {MARKER}", called_at=_now() - timedelta(hours=1),
            asked=f"Subscriber of the account {MARKER}", procedure="cets224_art9",
            by="marta", client="cli",
        )  # fmt: skip
        assert officers.get("marta").display_name == f"Marta {MARKER}"
        assert [r.asked for r in desk.records()] == [f"Subscriber of the account {MARKER}"]
    finally:
        conn.close()


async def _retained(fr: Node, us: Node, kept_in: Path) -> None:
    attached = await fr.prepare_attachment(_pieces(), name="second.txt", media_type="text/plain")
    second = msgspec.structs.replace(marked_request(1), attachments=(attached,))
    msg_id = await fr.send(second, "US")
    blob = kept_in / f"{attached.blob_id}.ct"

    async def arrived() -> bool:
        return await us.services.case_store.case(second.case_id) is not None and blob.exists()

    await _until(arrived)
    refusal = msgspec.structs.replace(
        example("refusal"), case_id=second.case_id, in_reply_to=msg_id
    )
    await us.send(refusal, "FR")

    async def refused() -> bool:
        row = await us.services.case_store.case(second.case_id)
        return row is not None and row.case.state == "refused"

    await _until(refused)
    moved(us.services.retention, DAYS + 10)
    done = await us.services.retention.run_pass(dry_run=False)
    assert [d.case_id for d in done.cases] == [second.case_id]
    # the pass opened the sealed body to find its attachment's file, and erased it
    assert (done.files, blob.exists()) == (1, False)
    kept = await retained_case(us.services.case_store, second.case_id)
    assert kept is not None
    assert kept[0].state == "refused"
    # the case state names no identifier: the row is shown sealed instead
    raw = us.store._conn().raw.execute("SELECT data FROM retained_cases").fetchall()
    assert [key_id_of(bytes(r[0])) for r in raw] == [1]


def _now() -> datetime:
    return datetime.now(UTC)


async def test_no_file_holds_the_marker_and_the_node_reads_it_back(net: Net) -> None:  # noqa: F811
    relay = RelayProcess(net.root / "relay" / "relay.toml", net.port, env={})
    relay.env["RELAY247_PASSPHRASE"] = PASS
    await relay.start()
    try:
        await _publish(net)
        fr = await Node.open(load_config(net.node_toml("FR")), PASS.encode())
        us = await Node.open(load_config(net.node_toml("US")), PASS.encode())
        async with fr, us:
            await fr.wait_ready()
            attached = await fr.prepare_attachment(
                _pieces(), name="statement.txt", media_type="text/plain"
            )
            body = msgspec.structs.replace(marked_request(), attachments=(attached,))
            msg_id = await fr.send(body, "US")

            async def delivered() -> bool:
                case = await us.services.case_store.case(body.case_id)
                kept = list((net.root / "us" / "attachments" / "in" / "FR").glob("*.ct"))
                return (
                    await fr.store.receipt(msg_id) is not None and case is not None and kept != []
                )

            await _until(delivered)
            query = Query(identifier=f"{MARKER}.0@mail.example.net")
            now = datetime.now(UTC)
            assert await us.services.case_store.search(query, now) == [body.case_id]
            # what officers type: an oral emergency record and an officer's name
            await asyncio.to_thread(_officer_data, us)
            # a second request US refuses: a retention pass 40 days on keeps its case in
            # retained_cases (the first one is read back after the restart below)
            await _retained(fr, us, net.root / "us" / "attachments" / "in" / "FR")
        for member in ("fr", "us"):
            assert scan(net.root / member, MARKER) == [], member
        # the node reads it back after a restart, through its local API (`node show`)
        us_serve = NodeProcess(net.node_toml("US"))
        us_serve.start()
        try:
            shown = await _shown(net.root / "us", body.case_id)
        finally:
            assert us_serve.terminate() == 0
        assert f"{MARKER}.0@mail.example.net" in shown
        assert f"({MARKER} said so)" in shown
        assert scan(net.root / "us", MARKER) == []  # the serving node's log file too
        # a copied data directory without the passphrase reveals nothing
        copy = net.root / "copy"
        shutil.copytree(net.root / "us", copy)
        assert scan(copy, MARKER) == []
        with pytest.raises(ConfigError):
            await Node.open(load_config(copy / "node.toml"), b"not the passphrase")
    finally:
        relay.terminate()


@pytest.mark.slow
async def test_rotating_the_data_key_while_messages_arrive_loses_nothing(
    net: Net,  # noqa: F811
) -> None:
    relay = RelayProcess(net.root / "relay" / "relay.toml", net.port, env={})
    relay.env["RELAY247_PASSPHRASE"] = PASS
    await relay.start()
    try:
        await _publish(net)
        fr = await Node.open(load_config(net.node_toml("FR")), PASS.encode())
        us = await Node.open(load_config(net.node_toml("US")), PASS.encode())
        async with fr, us:
            await fr.wait_ready()
            sent = [await fr.send(marked_request(n), "US") for n in range(1, 6)]
            passes = us.at_rest.passes
            rotated = asyncio.to_thread(
                run, "node", "rotate-data-key", "--config", net.node_toml("US")
            )
            sent += [await fr.send(marked_request(n), "US") for n in range(6, 11)]
            assert (await rotated).exit_code == 0

            async def settled() -> bool:
                got = [await us.store.message(m, Direction.IN) for m in sent]
                # the key picked up, not only the start's own pass done (it may end after
                # `passes` was read)
                picked = us.store.sealer is not None and us.store.sealer.current == 2
                return all(got) and us.at_rest.passes > passes and picked

            await _until(settled)
            assert us.store.sealer is not None
            assert us.store.sealer.current == 2
            await us.at_rest.reseal(us.services.case_store)
            for m in sent:
                got = await us.store.message(m, Direction.IN)
                assert got is not None
                assert got.body is not None
                assert MARKER in got.body.decode()
            raw = us.store._conn().raw.execute("SELECT header, body FROM messages")
            assert {key_id_of(bytes(v)) for row in raw.fetchall() for v in row if v} == {2}
        assert scan(net.root / "us", MARKER) == []
    finally:
        relay.terminate()
