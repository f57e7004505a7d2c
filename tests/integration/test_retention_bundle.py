"""Bundles with removed bodies (PROTOCOL.md §19.4) from a sealed node, altered: a
message listed both with its body and removed, or twice removed (B6f), and a tombstone
dated before the message's acceptance (B6c) are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from protocol import tombstone
from protocol.errors import VerificationError
from protocol.evidence import EvidenceBundle, verify_bundle
from protocol.tombstone import NO_CLOSURE, sign_tombstone
from schemas.tombstone import SignedTombstone, Tombstone
from tests.integration._node_services import peers
from tests.integration._retention_support import DAYS, exchange, moved, request
from tests.integration.test_node_export import _settled
from tests.support.network import make_network
from tests.support.relay import running_relay, signed


async def test_altered_removed_lists_and_early_tombstones_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = make_network()
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, seal=True) as p,
    ):
        fr, us = p["FR"], p["US"]
        body = request("bundle")
        await exchange(fr, us, body, "refusal")
        await _settled(relay)
        await signed(relay)
        before = await us.api.export_case(body.case_id)
        moved(us.services.retention, DAYS + 1)
        assert (await us.api.retention_pass(dry_run=False)).bodies == 2
        after = await us.api.export_case(body.case_id)
    now = datetime.now(UTC) + timedelta(days=DAYS + 2)
    key = relay.state.keys.log_key

    def check(data: bytes) -> None:
        verify_bundle(data, trust_root=net.root(), now=now, log_key=key)

    check(after)  # the genuine one (tombstones over the plain header and body) verifies
    old = msgspec.json.decode(before, type=EvidenceBundle)
    new = msgspec.json.decode(after, type=EvidenceBundle)
    assert isinstance(new.removed, tuple)
    assert len(new.removed) == 2
    enc = msgspec.json.encode
    # B6f: one message twice in `removed`; one both with its body and removed.
    twice = msgspec.structs.replace(new, removed=(*new.removed, new.removed[0]))
    with pytest.raises(VerificationError, match="listed twice"):
        check(enc(twice))
    both = msgspec.structs.replace(new, messages=old.messages[:1])
    with pytest.raises(VerificationError, match="listed twice"):
        check(enc(both))
    # B6c: a tombstone (genuinely signed by US) dated before the message was accepted.
    report = verify_bundle(after, trust_root=net.root(), now=now, log_key=key)
    gone = new.removed[0]
    facts = next(r for r in report.removed if r.number == len(report.messages) + 1)
    outer = msgspec.json.decode(gone.tombstone, type=SignedTombstone)
    t = msgspec.json.decode(outer.tombstone, type=Tombstone)
    assert t.closed_at is not msgspec.UNSET  # the pass signs the closure (TB5)
    closed = t.closed_at.date().isoformat()
    assert any(
        f"after closure); the case closed on {closed} (period checked);" in line
        for line in report.lines()
    )
    assert not any(NO_CLOSURE in w for w in report.warnings)
    # TB5/B6: a tombstone without a closure date (as written before closures were signed)
    # is refused when dated from CLOSED_AT_REQUIRED_FROM on, and verifies before it with
    # the stated warning that its removal period was not checked.
    us_key = net.members["US"].signing
    undated = msgspec.structs.replace(t, closed_at=msgspec.UNSET)
    legacy = msgspec.structs.replace(gone, tombstone=sign_tombstone(undated, us_key))
    with_legacy = enc(msgspec.structs.replace(new, removed=(legacy, *new.removed[1:])))
    with pytest.raises(VerificationError, match="no closure date"):
        check(with_legacy)
    monkeypatch.setattr(tombstone, "CLOSED_AT_REQUIRED_FROM", t.removed_at + timedelta(days=1))
    old_report = verify_bundle(with_legacy, trust_root=net.root(), now=now, log_key=key)
    day = t.removed_at.date().isoformat()
    assert old_report.warnings == (f"message {facts.number}: {NO_CLOSURE} (tombstone of {day})",)
    assert f"Warning: message {facts.number}: {NO_CLOSURE}" in "\n".join(old_report.lines())
    assert any(f"after closure); {NO_CLOSURE};" in line for line in old_report.lines())
    early = msgspec.structs.replace(  # as one written before closed_at: B6c, not TB5
        t, removed_at=facts.accepted_at - timedelta(seconds=1), closed_at=msgspec.UNSET
    )
    redated = msgspec.structs.replace(
        gone, tombstone=sign_tombstone(early, net.members["US"].signing)
    )
    bad = msgspec.structs.replace(new, removed=(redated, *new.removed[1:]))
    with pytest.raises(VerificationError, match="dated before"):
        check(enc(bad))
