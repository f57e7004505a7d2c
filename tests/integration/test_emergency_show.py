"""A phone call at T, the written emergency request through the relay about two hours
later: `relay247 node emergency candidates` suggests it, and once linked `node emergency
show` and `node show` print what the written request says differently, the member's
text unable to drive the officer's terminal. Real relay and node; the link is written
as the CLI writes it (the test node keeps its keys in memory, so no passphrase file).
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
from click.testing import CliRunner, Result

from cli.main import cli
from node.officers import EmergencyDesk, LogSigner, OfficerDb, open_db
from schemas._bodies_other import EmergencyDisclosureRequest
from schemas.examples import example
from schemas.messages import encode_body
from tests.integration._node_services import peers
from tests.integration.test_input_body_binding import _send
from tests.support.bodies import addressed
from tests.support.fake_relay import HANG_GUARD
from tests.support.network import make_network
from tests.support.relay import running_relay

HOSTILE_NAME = "Claire Martin\x1b[2J\u202eevil"


def _cli(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env={"RELAY247_NODE_DATA": None})


async def test_phone_call_then_written_request_is_linked_and_reconciled(tmp_path: Path) -> None:
    net = make_network()
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, members=("US",)) as p,
    ):
        us = p["US"]
        called = datetime.now(UTC) - timedelta(hours=2)
        db_path = us.node.config.path(us.node.config.node.database)
        conn = open_db(db_path)
        signer = LogSigner("US", us.services.parts.keys.signing)
        officers = OfficerDb(conn, lambda: datetime.now(UTC), member="US", signer=signer)
        desk = EmergencyDesk(officers, lambda: datetime.now(UTC), signer)
        rec = desk.record(
            member="FR", caller="Capitaine Claire Martin, OFAC", called_at=called,
            asked="Subscriber of the account that posted the threat",
            procedure="cets224_art9", by=None, client="cli",
        )  # fmt: skip
        base = example("emergency_disclosure_request")
        assert isinstance(base, EmergencyDisclosureRequest)
        officer = msgspec.structs.replace(base.requesting.officer, name=HOSTILE_NAME)
        body = msgspec.structs.replace(
            addressed(base, "FR", "US"),
            case_id=os.urandom(16).hex(),
            requesting=msgspec.structs.replace(base.requesting, member="FR", officer=officer),
        )
        await _send(relay, net, body, encode_body(body), 1)
        async with asyncio.timeout(HANG_GUARD):
            while True:
                if (await us.api.cases()).cases:
                    break
                await asyncio.sleep(0.05)

        found = await asyncio.to_thread(
            _cli, "node", "emergency", "candidates", rec.record_id, "--data", us.data, "--json"
        )
        assert found.exit_code == 0, found.output
        assert [c["case"] for c in json.loads(found.stdout)["candidates"]] == [body.case_id]

        desk.link(rec.record_id, body.case_id, by=None, client="cli")
        conn.close()
        shown = await asyncio.to_thread(
            _cli, "node", "emergency", "show", rec.record_id, "--data", us.data, "--json"
        )
        assert shown.exit_code == 0, shown.output
        diffs = {d["name"]: d for d in json.loads(shown.stdout)["differences"]}
        assert diffs["member"]["same"]
        assert diffs["procedure"]["same"]
        assert diffs["time"]["same"]  # 2 hours after the call, within 24 hours
        assert not diffs["asked"]["same"]
        assert diffs["asked"]["written"] == "The account posted the threat."

        case = await asyncio.to_thread(_cli, "node", "show", body.case_id, "--data", us.data)
        assert case.exit_code == 0, case.output
        assert f"written follow-up of oral emergency {rec.record_id}" in case.output
        assert "asked [DIFFERS]" in case.output
        assert "caller [DIFFERS]" in case.output  # the written name is not the one recorded
        for ch in ("\x1b", "\u202e"):
            assert ch not in case.output, repr(ch)
        assert "\\u001b[2J" in case.output  # shown, not obeyed
