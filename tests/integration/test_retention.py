"""Retention with real nodes and a relay (issue 15 §2, PROTOCOL.md §19): a moved clock
removes the bodies of closed cases and nothing on hold or still open; a byte scan of the
node's data directory proves the removal; bundles exported before and after verify."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from node.storage import Direction
from protocol.evidence import verify_bundle
from schemas._attachment import ATTACHMENTS
from schemas.node_api_retention import PassView, RetentionView
from tests.integration._node_services import peers
from tests.integration._retention_support import (
    DAYS,
    exchange,
    found_in,
    moved,
    request,
    stored_bytes,
)
from tests.integration.test_node_api import raw
from tests.integration.test_node_export import _settled
from tests.support.network import make_network
from tests.support.relay import running_relay, signed


async def test_retention_removes_closed_bodies_provably_and_spares_held_and_open(
    tmp_path: Path,
) -> None:
    net = make_network()
    markers = {name: f"MARK-{name}-{os.urandom(6).hex()}" for name in ("closed", "held", "open")}
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, seal=True) as p,
    ):
        fr, us = p["FR"], p["US"]
        closed, held, still = (request(markers[n]) for n in ("closed", "held", "open"))
        first = await exchange(fr, us, closed, "refusal")
        await exchange(fr, us, held, "refusal")
        await exchange(fr, us, still, "taken_in_charge")
        db = us.data / "node.db"
        secret = [markers["closed"].encode(), *stored_bytes(db, closed.case_id)]
        assert found_in(us.data, secret)  # the scan finds them while they are there
        await _settled(relay)
        await signed(relay)
        before = await us.api.export_case(closed.case_id)
        # A supervisor's hold (here the node's own token, as the CLI uses it).
        why = json.dumps({"reason": "Ordonnance du juge, dossier 26/123"}).encode()
        status, answer = await raw(us, "POST", f"/v1/cases/{held.case_id}/hold", body=why)
        assert status == 201, answer
        # Today nothing is due; 40 days on, the refused case not on hold is.
        service = us.services.retention
        moved(service, 0)
        assert (await us.api.retention_pass(dry_run=True)).cases == 0
        moved(service, DAYS + 10)
        dry: PassView = await us.api.retention_pass(dry_run=True)
        assert [d.case_id for d in dry.due] == [closed.case_id]
        assert dry.bodies == 2  # FR's request and US's refusal
        assert found_in(us.data, secret)  # a dry run removes nothing
        done = await us.api.retention_pass(dry_run=False)
        assert (done.cases, done.bodies, done.dry_run, done.wal_truncated) == (1, 2, False, True)
        # The bytes are gone from every file of the node's data directory.
        assert found_in(us.data, secret) == []
        # The other cases' bodies are still there (sealed, as on every node: §18).
        kept = [*stored_bytes(db, held.case_id), *stored_bytes(db, still.case_id)]
        assert found_in(us.data, kept)
        # The case keeps its state and timeline; its removals are listed and signed.
        await us.services.cases.refresh(closed.case_id)
        detail = await us.api.case(closed.case_id)
        assert detail.summary.state == "refused"
        assert [e.kind for e in detail.timeline][:2] == ["preservation_request", "refusal"]
        view: RetentionView = await us.api.retention(closed.case_id)
        assert {(r.msg_id, r.direction) for r in view.removed} >= {(first, "in")}
        assert all(r.policy == "closed_case_bodies" for r in view.removed)
        rec = await us.node.store.message(first, Direction.IN)
        assert rec is not None
        assert rec.body is None
        after = await us.api.export_case(closed.case_id)
        # Release the hold: the next pass takes that case too.
        status, _ = await raw(us, "POST", f"/v1/cases/{held.case_id}/release")
        assert status == 200
        again = await us.api.retention_pass(dry_run=False)
        assert [d.case_id for d in again.due] == [held.case_id]
        history = (await us.api.retention(held.case_id)).history
        assert [h.action for h in history] == ["held", "released"]
        open_rec = await us.api.retention(still.case_id)
        assert open_rec.removed == ()
    now = datetime.now(UTC)
    key = relay.state.keys.log_key
    old = verify_bundle(before, trust_root=net.root(), now=now, log_key=key)
    assert len(old.messages) == 2
    assert old.removed == ()
    new = verify_bundle(after, trust_root=net.root(), now=now, log_key=key)
    assert new.messages == ()
    assert {r.msg_id for r in new.removed} >= {first}
    on = view.removed[0].removed_at.date().isoformat()
    text = "\n".join(new.lines())
    assert f"Body removed on {on} under policy closed_case_bodies ({DAYS} days" in text
    assert markers["closed"] not in after.decode()


async def test_attachments_files_go_with_the_bodies_on_both_sides(tmp_path: Path) -> None:
    net = make_network()
    net.declare(ATTACHMENTS)  # as `node init` writes it (PROTOCOL.md §10.10)
    src = tmp_path / "capture.bin"
    src.write_bytes(os.urandom(150_000))
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, seal=True) as p,
    ):
        fr, us = p["FR"], p["US"]
        made = await fr.api.upload_attachment(src, name=src.name, media_type="image/png")
        body = msgspec.structs.replace(request("attached"), attachments=(made,))
        await exchange(fr, us, body, "refusal")
        kept = {
            "FR": sorted((fr.data / "attachments" / "out").glob(f"{made.blob_id}*")),
            "US": sorted((us.data / "attachments" / "in").rglob(f"{made.blob_id}*")),
        }
        assert kept["FR"], kept
        assert kept["US"], kept
        ciphertext = kept["US"][0].read_bytes()
        middle = ciphertext[len(ciphertext) // 2 :][:64]
        for peer in (fr, us):
            moved(peer.services.retention, DAYS + 1)
            done = await peer.services.retention.run_pass(dry_run=False)
            assert (len(done.cases), done.files) == (1, len(kept[peer.node.member])), done
        assert not any(path.exists() for paths in kept.values() for path in paths)
        assert found_in(us.data, [middle]) == []
        view = await us.api.retention(body.case_id)
        assert len(view.removed) == 2
