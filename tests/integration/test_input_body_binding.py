"""E14 and J1 at a real node behind a real relay (issue 11, §1).

A sender crafts envelopes the honest node would never seal: a body naming another
member than the envelope authenticates, or a body with a repeated key. The recipient
must reject each with a signed ``rejected`` receipt, naming the field for E14, and open
no case (so no legal period is ever computed from an unbound member).
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

from cli.main import cli
from protocol.envelope import open_envelope, seal_envelope
from protocol.receipt import verify_receipt
from schemas import node_api as api
from schemas.envelope import DeliveryReceipt, ReceiptStatus
from schemas.errors import ErrorCode
from schemas.examples import example
from schemas.messages import Body, coarse_kind, encode_body, priority_of
from tests.integration._node_services import peers
from tests.support.bodies import addressed
from tests.support.fake_relay import HANG_GUARD
from tests.support.network import Network, make_network
from tests.support.relay import RunningRelay, running_relay


def _request(sender: str, recipient: str) -> Body:
    body = msgspec.structs.replace(example("preservation_request"), case_id=os.urandom(16).hex())
    return addressed(body, sender, recipient)


async def _send(relay: RunningRelay, net: Network, body: Body, raw: bytes, seq: int) -> None:
    us = net.members["US"]
    sealed = seal_envelope(
        raw,
        msg_id=os.urandom(16).hex(),
        case_id=body.case_id,
        kind=coarse_kind(body),
        priority=priority_of(body),
        seq=seq,
        sender="FR",
        signing_key=net.members["FR"].signing,
        recipient="US",
        recipient_key=us.encryption.public,
        recipient_key_fp=us.encryption.fingerprint,
        created=datetime.now(UTC),
        lifetime=timedelta(hours=1),
    )
    await relay.client("FR").submit(sealed.envelope)


async def _receipts(relay: RunningRelay, net: Network, count: int) -> list[DeliveryReceipt]:
    """The receipts US sent back to FR, opened and verified as FR would."""
    fr = net.members["FR"]
    async with asyncio.timeout(HANG_GUARD):
        while True:
            page = await relay.client("FR").mailbox()
            if len(page.messages) >= count:
                break
            await asyncio.sleep(0.05)
    out = []
    for item in page.messages:
        opened = open_envelope(
            item.envelope,
            net.lookup(),
            me="FR",
            my_keys={fr.encryption.fingerprint: fr.encryption},
            now=datetime.now(UTC),
        )
        out.append(verify_receipt(opened.body, net.lookup(), now=datetime.now(UTC)))
    return out


async def test_unbound_members_and_repeated_keys_get_rejected_receipts(tmp_path: Path) -> None:
    net = make_network()
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, members=("US",)) as p,
    ):
        us = p["US"]
        # FR claims to write for DE; a body to US that names GH as the requested party.
        impostor = _request("DE", "US")
        elsewhere = _request("FR", "GH")
        # A repeated key inside the signed body (J1): readers would disagree on it.
        doubled = _request("FR", "US")
        raw = encode_body(doubled)
        doubled_raw = raw.replace(b'"requested":{', b'"requested":{"member":"GH",', 1)
        assert doubled_raw != raw
        await _send(relay, net, impostor, encode_body(impostor), 1)
        await _send(relay, net, elsewhere, encode_body(elsewhere), 2)
        await _send(relay, net, doubled, doubled_raw, 3)
        receipts = sorted(await _receipts(relay, net, 3), key=lambda r: r.received_at)
        by_case = {r.case_id: r for r in receipts}
        for body, reason, field in (
            (impostor, ErrorCode.BINDING_MISMATCH, "$.requesting.member"),
            (elsewhere, ErrorCode.BINDING_MISMATCH, "$.requested.member"),
            (doubled, ErrorCode.MALFORMED, msgspec.UNSET),
        ):
            got = by_case[body.case_id]
            assert (got.status, got.reason, got.field) == (ReceiptStatus.REJECTED, reason, field)
        # Each shows as an anomaly, and no request was opened: no role, no deadline, so no
        # legal period was computed from an unbound member.
        cases = (await us.api.cases()).cases
        assert {c.case_id for c in cases} == set(by_case)
        for case in cases:
            assert (case.role, case.state, case.next_deadline) == (None, "new", None)
            assert case.anomalies >= 1


async def test_the_sender_sees_which_field_was_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sender without the E14 check (an older or other implementation) learns the field."""
    # Node.send is the one place the sending side checks E14 (the local API calls it).
    monkeypatch.setattr("node.daemon.member_binding_errors", lambda *_a, **_k: [])
    net = make_network()
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay) as p,
    ):
        body = _request("FR", "GH")
        msg_id = (await p["FR"].api.send("US", body)).msg_id

        async def receipt() -> api.ReceiptInfo | None:
            detail = await p["FR"].api.case(body.case_id)
            entry = next(e for e in detail.timeline if e.msg_id == msg_id)
            return entry.receipt

        async with asyncio.timeout(HANG_GUARD):
            while True:
                got = await receipt()
                if got is not None:
                    break
                await asyncio.sleep(0.05)
        assert (got.status, got.reason, got.field) == (
            "rejected",
            "binding_mismatch",
            "$.requested.member",
        )
        # The officer reads it in `node show`, next to the refused receipt, in en and fr.
        for lang, said in (
            ("en", "Binding mismatch (binding_mismatch) - field $.requested.member"),
            ("fr", "Liaison non concordante (binding_mismatch) - champ $.requested.member"),
        ):
            shown = await asyncio.to_thread(
                CliRunner().invoke,
                cli,
                ["node", "show", body.case_id, "--data", str(tmp_path / "FR"), "--lang", lang],
                catch_exceptions=False,
            )
            assert shown.exit_code == 0, shown.output
            (line,) = [ln for ln in shown.output.splitlines() if "$.requested.member" in ln]
            assert said in line
