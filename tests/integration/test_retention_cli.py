"""``relay247 node hold / release / retention [--dry-run] / show`` against a real node's
local API, and the node's scheduled retention task on a moved clock (PROTOCOL.md §19)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from node.cases import RetentionPolicy, RetentionService
from protocol.errors import Relay247Error
from protocol.evidence import EvidenceBundle, verify_bundle
from protocol.keys import SigningKey
from protocol.tombstone import sign_tombstone
from schemas.tombstone import SignedTombstone, Tombstone
from tests.integration._node_services import peers
from tests.integration._retention_support import DAYS, exchange, moved, request
from tests.integration.test_node_api import until
from tests.integration.test_node_export import _settled
from tests.support.network import make_network
from tests.support.relay import running_relay, signed


async def _cli(*args: str | Path) -> Result:
    # Each command runs its own event loop (asyncio.run): off this test's loop.
    return await asyncio.to_thread(CliRunner().invoke, cli, [str(a) for a in args])


async def test_hold_release_and_retention_from_the_command_line(tmp_path: Path) -> None:
    net = make_network()
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, seal=True) as p,
    ):
        fr, us = p["FR"], p["US"]
        body = request("cli")
        await exchange(fr, us, body, "refusal")
        data = ("--data", us.data)
        case = body.case_id
        done = await _cli("node", "hold", case[:10], "--reason", "Juge d'instruction", *data)
        assert done.exit_code == 0, done.output
        assert f"case {case} is on legal hold" in done.output
        again = await _cli("node", "hold", case, "--reason", "again", *data)
        assert "already on legal hold" in again.output
        bad = await _cli("node", "hold", case, "--reason", "", *data)
        assert bad.exit_code == 2, bad.output
        nothing = await _cli("node", "retention", "--dry-run", *data)
        assert "removes nothing" in nothing.output, nothing.output
        moved(us.services.retention, DAYS + 5)
        held = await _cli("node", "retention", "--dry-run", *data)
        assert "would remove the bodies of 0 message(s) in 0 case(s)" in held.output, held.output
        lifted = await _cli("node", "release", case, *data)
        assert f"legal hold of case {case} lifted" in lifted.output
        dry = await _cli("node", "retention", "--dry-run", *data)
        assert "would remove the bodies of 2 message(s) in 1 case(s)" in dry.output, dry.output
        assert case in dry.output
        run = await _cli("node", "retention", *data)
        assert "removed the bodies of 2 message(s) in 1 case(s)" in run.output, run.output
        shown = await _cli("node", "show", case, "--brief", *data)
        assert "Legal hold put on" in shown.output, shown.output
        assert "Juge d'instruction" in shown.output
        assert "Legal hold lifted on" in shown.output
        assert "removed on" in shown.output
        assert "under closed_case_bodies (30 days after closure)" in shown.output
        fr_text = await _cli("node", "show", case, "--brief", "--lang", "fr", *data)
        assert "Conservation légale posée le" in fr_text.output, fr_text.output
        assert "supprimé le" in fr_text.output


async def test_the_scheduled_task_removes_on_the_moved_clock_and_tampering_is_caught(
    tmp_path: Path,
) -> None:
    net = make_network()
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, seal=True) as p,
    ):
        fr, us = p["FR"], p["US"]
        body = request("task")
        first = await exchange(fr, us, body, "refusal")
        later = datetime.now(UTC) + timedelta(days=DAYS + 1)
        task_service = RetentionService(
            us.data / "node.db",
            us.data,
            member="US",
            signing=us.node._shared.keys.signing,
            policy=RetentionPolicy(closed_case_bodies_days=DAYS, interval=1.0),
            clock=lambda: later,
            sealer=us.node.store.sealer,
        )
        task = asyncio.create_task(task_service.run())
        try:
            view = await until(
                lambda: us.api.retention(body.case_id), lambda v: len(v.removed) == 2
            )
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await task_service.close()
        assert {r.removed_at for r in view.removed} == {later}
        await _settled(relay)
        await signed(relay)
        after = await us.api.export_case(body.case_id)
    now = datetime.now(UTC)
    key = relay.state.keys.log_key
    report = verify_bundle(after, trust_root=net.root(), now=now, log_key=key)
    assert first in {r.msg_id for r in report.removed}
    # The auditor's command says it in words, and exits 0.
    (tmp_path / "after.json").write_bytes(after)
    pins = ("--trust-root", us.data / "trust.json", "--log-key", key)
    checked = await _cli("audit", "verify-bundle", tmp_path / "after.json", *pins)
    assert checked.exit_code == 0, checked.output
    assert "Body removed on " in checked.output
    assert "under policy closed_case_bodies (30 days after closure)" in checked.output
    bundle = msgspec.json.decode(after, type=EvidenceBundle)
    assert isinstance(bundle.removed, tuple)
    gone = bundle.removed[0]
    outer = msgspec.json.decode(gone.tombstone, type=SignedTombstone)
    t = msgspec.json.decode(outer.tombstone, type=Tombstone)
    forged: list[bytes] = [
        # another policy, re-signed by a key that is not US's
        sign_tombstone(msgspec.structs.replace(t, policy="other"), SigningKey.generate()),
        # another policy under the genuine signature
        msgspec.json.encode(msgspec.structs.replace(
            outer, tombstone=msgspec.json.encode(msgspec.structs.replace(t, policy="other"))
        )),
    ]  # fmt: skip
    for tombstone in forged:
        changed = msgspec.structs.replace(gone, tombstone=tombstone)
        removed = (changed, *bundle.removed[1:])
        data = msgspec.json.encode(msgspec.structs.replace(bundle, removed=removed))
        with pytest.raises(Relay247Error, match="tombstone"):
            verify_bundle(data, trust_root=net.root(), now=now, log_key=key)


async def test_a_preservation_that_ran_out_is_closed_at_its_end(tmp_path: Path) -> None:
    # PROTOCOL.md §19.1: "preserved until" 2026-08-10 (the example's) is the closure, so
    # 30 days later its bodies are due, while a case taken in charge stays open.
    net = make_network()
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, seal=True) as p,
    ):
        fr, us = p["FR"], p["US"]
        ran_out, open_case = request("ran-out"), request("open")
        await exchange(fr, us, ran_out, "preserved")
        await exchange(fr, us, open_case, "taken_in_charge")
        service = us.services.retention
        moved(service, 0)
        end = datetime(2026, 8, 10, 21, 59, tzinfo=UTC)  # 23:59 at +02:00
        clock = lambda: end + timedelta(days=DAYS - 1)  # noqa: E731
        service._clock = clock
        assert (await service.run_pass(dry_run=True)).cases == ()
        service._clock = lambda: end + timedelta(days=DAYS, minutes=1)
        due = await service.run_pass(dry_run=True)
        assert [(d.case_id, d.closed) for d in due.cases] == [(ran_out.case_id, end)]


async def test_dry_run_and_run_show_whole_cases_and_access_log_entries(tmp_path: Path) -> None:
    """``node retention`` with the two other classes (§19.6, §14.6): the dry run lists the
    case due whole and counts the access-log entries, the run removes them."""
    net = make_network()
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, seal=True) as p,
    ):
        fr, us = p["FR"], p["US"]
        body = request("whole")
        await exchange(fr, us, body, "refusal")
        data = ("--data", us.data)
        # an entry to redact: the hold and its lifting, on a clock 400 days ahead
        await _cli("node", "hold", body.case_id, "--reason", "briefly", *data)
        await _cli("node", "release", body.case_id, *data)
        service = us.services.retention
        service.policy = RetentionPolicy(closed_case_metadata_years=1, access_log_days=30)
        service._clock = lambda: datetime.now(UTC) + timedelta(days=400)
        dry = await _cli("node", "retention", "--dry-run", *data)
        assert dry.exit_code == 0, dry.output
        assert "would remove 1 whole case(s) closed before" in dry.output, dry.output
        assert "(policy closed_case_metadata, 1 years)" in dry.output
        assert body.case_id in dry.output
        assert "would remove the content of 2 access-log entry(ies)" in dry.output
        assert "bodies of" not in dry.output  # that class has no period here
        run = await _cli("node", "retention", *data)
        assert "removed 1 whole case(s)" in run.output, run.output
        assert "removed the content of 2 access-log entry(ies)" in run.output
        again = await _cli("node", "retention", "--dry-run", *data)
        assert "would remove 0 whole case(s)" in again.output, again.output
        assert "content of 0 access-log" in again.output
