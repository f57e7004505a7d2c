"""A case exported by a real node verifies offline (PROTOCOL.md §7.3, B1–B5)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import msgspec
import pytest
from click.testing import CliRunner

from cli.main import cli
from node.api.client import NodeApiError
from node.api.server import UNAVAILABLE_RETRY_AFTER
from node.events import ReceiptReceived
from protocol.errors import Relay247Error, TransportError
from protocol.evidence import verify_bundle
from schemas.errors import ErrorBody, ErrorCode
from schemas.examples import example
from schemas.messages import Body
from tests.integration._node_services import Peer, peers
from tests.support.bodies import addressed
from tests.support.fake_relay import HANG_GUARD, next_event
from tests.support.network import make_network
from tests.support.relay import RunningRelay, running_relay, signed


async def _settled(relay: RunningRelay) -> None:
    # Every mailbox empty: every delivery ack is in the log.
    async with asyncio.timeout(HANG_GUARD):
        for member in ("FR", "US"):
            while True:
                if not (await relay.client(member).mailbox()).messages:
                    break
                await asyncio.sleep(0.02)  # polling a condition, not asserting a duration


async def _case(fr: Peer, us: Peer) -> tuple[Body, str]:
    """FR asks, US takes the case in charge; both receipts come back."""
    fr_q, us_q = fr.node.events.queue(), us.node.events.queue()
    body = msgspec.structs.replace(example("preservation_request"), case_id=os.urandom(16).hex())
    body = addressed(body, "FR", "US")
    sent = await fr.api.send("US", body)
    await next_event(fr_q, ReceiptReceived)
    answer = msgspec.structs.replace(
        example("taken_in_charge"), case_id=body.case_id, in_reply_to=sent.msg_id
    )
    await us.api.send("FR", answer)
    await next_event(us_q, ReceiptReceived)
    return body, sent.msg_id


async def test_exported_case_verifies_offline_from_both_sides(tmp_path: Path) -> None:
    net = make_network()
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr, us = p["FR"], p["US"]
        body, request_id = await _case(fr, us)
        await _settled(relay)
        await signed(relay)
        # US witnesses first; FR's export cosigns the checkpoint itself before building.
        await us.services.witness.round(*(us.services.relay() or ()))
        bundles = {m: await p[m].api.export_case(body.case_id) for m in ("FR", "US")}
    for member, data in bundles.items():
        report = verify_bundle(
            data,
            trust_root=net.root(),
            now=datetime.now(UTC),
            log_key=relay.state.keys.log_key,
            quorum=2 if member == "FR" else 1,
        )
        assert report.case_id == body.case_id
        request, answer = report.messages
        assert (request.msg_id, request.sender, request.recipient) == (request_id, "FR", "US")
        assert (answer.kind, answer.sender) == ("taken_in_charge", "US")
        for m in report.messages:
            assert m.acked_index is not None
            assert [r.status for r in m.receipts] == ["accepted"]
        text = "\n".join(report.lines())
        assert "FR sent US a message of kind preservation_request" in text
        assert "US signed a delivery receipt: accepted (delivered, and its signatures" in text
        assert report.warnings == ()


async def test_one_changed_byte_is_refused(tmp_path: Path) -> None:
    net = make_network()
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr, us = p["FR"], p["US"]
        body, _ = await _case(fr, us)
        await _settled(relay)
        await signed(relay)
        data = await fr.api.export_case(body.case_id)
    now = datetime.now(UTC)
    key = relay.state.keys.log_key
    verify_bundle(data, trust_root=net.root(), now=now, log_key=key)
    for at in (len(data) // 3, len(data) // 2, 2 * len(data) // 3):
        changed = bytearray(data)
        changed[at] ^= 0x01
        with pytest.raises(Relay247Error):
            verify_bundle(bytes(changed), trust_root=net.root(), now=now, log_key=key)


async def test_a_case_not_yet_in_a_checkpoint_is_unavailable(tmp_path: Path) -> None:
    net = make_network()
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr, us = p["FR"], p["US"]
        await signed(relay)  # a checkpoint that predates the case
        body, _ = await _case(fr, us)
        with pytest.raises(NodeApiError) as caught:
            await fr.api.export_case(body.case_id)
        assert (caught.value.code, caught.value.status) == (ErrorCode.UNAVAILABLE, 503)
        await _settled(relay)
        await signed(relay)
        assert await fr.api.export_case(body.case_id)  # a later checkpoint covers it


async def test_before_the_first_checkpoint_export_is_unavailable_not_unknown(
    tmp_path: Path,
) -> None:
    """§8.6: before the relay signed any checkpoint, none covers the case: 503 with
    Retry-After (the relay's ``not_found`` for its checkpoint is not "no such case"); the
    CLI says so (exit 1, not the usage exit 2 of an unknown case), the console shows the
    message of ``Services.export``."""
    net = make_network()
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr, us = p["FR"], p["US"]
        body, _ = await _case(fr, us)  # no checkpoint signed: the test relay has no signer
        headers = {"Authorization": "Bearer " + (fr.data / "api.token").read_text().strip()}
        url = f"{fr.api.base_url}/v1/cases/{body.case_id}/export"
        async with aiohttp.ClientSession() as s, s.get(url, headers=headers) as resp:
            assert resp.status == 503, await resp.text()
            assert resp.headers["Retry-After"] == UNAVAILABLE_RETRY_AFTER
            answer = msgspec.json.decode(await resp.read(), type=ErrorBody)
        assert answer.code is ErrorCode.UNAVAILABLE
        assert "no checkpoint yet" in answer.message
        with pytest.raises(TransportError) as caught:  # what the console's page shows
            await fr.services.export(body.case_id)
        assert caught.value.code is ErrorCode.UNAVAILABLE
        out = tmp_path / "bundle.json"
        args = ["node", "export-case", body.case_id, "--out", str(out), "--data", str(fr.data)]
        result = await asyncio.to_thread(CliRunner().invoke, cli, args)  # its own loop
        assert result.exit_code == 1, result.output
        assert "no checkpoint yet" in result.output
        assert not out.exists()
        unknown = "0" * 32  # an unknown case is still not_found
        other = url.replace(body.case_id, unknown)
        async with aiohttp.ClientSession() as s, s.get(other, headers=headers) as resp:
            assert resp.status == 404
        await _settled(relay)
        await signed(relay)
        assert await fr.api.export_case(body.case_id)  # the first checkpoint covers it


async def test_export_without_a_pinned_log_key_is_unavailable(tmp_path: Path) -> None:
    net = make_network()
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr, us = p["FR"], p["US"]
        body, _ = await _case(fr, us)
        fr.services.settings = dataclasses.replace(fr.services.settings, witness_log_key=None)
        with pytest.raises(NodeApiError) as caught:
            await fr.api.export_case(body.case_id)
        assert caught.value.code is ErrorCode.UNAVAILABLE


async def test_export_refuses_a_checkpoint_this_node_has_not_cosigned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bundle must carry the exporter's own cosignature (race with a newer checkpoint)."""
    net = make_network()
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr, us = p["FR"], p["US"]
        body, _ = await _case(fr, us)
        await _settled(relay)
        await signed(relay)

        async def no_round(*args: object) -> None:
            return None  # the relay always shows a checkpoint FR did not cosign

        monkeypatch.setattr(fr.services.witness, "round", no_round)
        with pytest.raises(NodeApiError) as caught:
            await fr.api.export_case(body.case_id)
        assert (caught.value.code, caught.value.status) == (ErrorCode.UNAVAILABLE, 503)
        assert "not cosigned by this node" in str(caught.value)
