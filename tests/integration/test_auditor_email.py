"""E-mail records through a real relay, then checked by the auditor (L6) and in an
evidence bundle (B7), by the API and by `relay247 audit verify-bundle` (PROTOCOL.md
§22.5 G4). A relay that logged a record it should have refused is caught by the audit."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner, Result

from audit.verify import Policy, read_witnesses, verify_log
from audit.witness import WitnessKeys, witness_round
from cli.main import cli
from client import PublicClient
from protocol.codec import encode
from protocol.cosignature import cosignature_verifier_key
from protocol.email_record import sign_email_record
from protocol.evidence import EmailEvidence, EmailLeaf, build_bundle, verify_bundle
from relay.audit._checkpointer import sign_if_due
from schemas.audit import EmailRecorded
from schemas.email_record import EmailRecord
from tests.support.network import Network, make_network
from tests.support.relay import RunningRelay, running_relay

WITNESSES = ("FR", "DE")
CASE, OTHER = "c" * 32, "d" * 32


def bridged() -> Network:
    net = make_network(("FR", "US", "DE", "MT"))
    net.bridge("MT")
    return net


def signed(net: Network, by: str = "FR", **changes: object) -> tuple[bytes, bytes]:
    fields: dict[str, object] = {
        "node": "FR",
        "member": "MT",
        "direction": "sent",
        "case_id": CASE,
        "sha256": hashlib.sha256(b"an e-mail").hexdigest(),
        "at": datetime.now(UTC),
    }
    fields.update(changes)
    return sign_email_record(EmailRecord(**fields), net.members[by].signing)  # type: ignore[arg-type]


async def cosigned(r: RunningRelay, tmp: Path) -> None:
    await sign_if_due(r.state, force=True)
    for m in WITNESSES:
        keys = WitnessKeys(m, r.net.members[m].signing, r.net.members[m].transport)
        done = await witness_round(
            r.client(m), keys, r.state.keys.log_key, tmp / f"w-{m}", now=datetime.now(UTC)
        )
        assert done.cosigned


def policy(r: RunningRelay) -> Policy:
    lines = [cosignature_verifier_key(m, r.net.members[m].signing.public) for m in WITNESSES]
    return Policy(r.state.keys.log_key, read_witnesses("\n".join(lines)), 2, r.net.root())


async def invoke(args: list[str]) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli, args)


async def test_records_audited_and_in_a_bundle(tmp_path: Path) -> None:
    net = bridged()
    async with running_relay(tmp_path / "relay", net) as r:
        fr = r.client("FR")
        sent = await fr.submit_email_record(*signed(net))
        taken = await fr.submit_email_record(*signed(net, direction="received", sha256="a" * 64))
        other = await fr.submit_email_record(*signed(net, case_id=OTHER))
        await cosigned(r, tmp_path)
        audited = await verify_log(
            PublicClient(r.url, r.session), policy(r), tmp_path / "state", now=datetime.now(UTC)
        )
        assert audited.ok, audited.anomalies
        assert audited.counts["email_recorded"] == 3

        client = PublicClient(r.url, r.session)
        note = await client.checkpoint()
        size = r.state.audit.latest.size if r.state.audit.latest else 0

        async def item(index: int) -> EmailEvidence:
            # What the node puts into its case export for each record it kept (§22.5 G4).
            (entry,) = await client.entries(index, index + 1)
            proof = await client.inclusion_proof(index, size)
            leaf = EmailLeaf(index=index, entry=entry, proof=proof.proof)
            return EmailEvidence(directory_version=1, recorded=leaf)

        def bundle(emails: list[EmailEvidence]) -> bytes:
            return build_bundle(
                case_id=CASE,
                log_origin=r.state.log_origin,
                log_key=r.state.keys.log_key,
                checkpoint=note,
                trust_root=net.root(),
                directories=[net.signed()],
                messages=[],
                emails=emails,
            )

        good = bundle([await item(sent.leaf_index), await item(taken.leaf_index)])
        mixed = bundle([await item(sent.leaf_index), await item(other.leaf_index)])
        log_key = r.state.keys.log_key
    report = verify_bundle(good, trust_root=net.root(), now=datetime.now(UTC), log_key=log_key)
    text = "\n".join(report.lines())
    assert "E-mail 1: FR sent an e-mail to MT" in text
    assert f"as log entry {sent.leaf_index}." in text
    assert "E-mail 2: FR accepted an e-mail from MT" in text
    trust = tmp_path / "relay" / "trust.json"
    (tmp_path / "good.json").write_bytes(good)
    (tmp_path / "mixed.json").write_bytes(mixed)
    ok = await invoke(
        ["audit", "verify-bundle", str(tmp_path / "good.json"), "--trust-root", str(trust),
         "--log-key", log_key]
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "E-mail 2: FR accepted an e-mail from MT" in ok.output
    refused = await invoke(
        ["audit", "verify-bundle", str(tmp_path / "mixed.json"), "--trust-root", str(trust),
         "--log-key", log_key]
    )  # fmt: skip
    assert refused.exit_code == 1
    assert "REFUSED" in refused.output
    assert "e-mail 2: e-mail record is for another case" in refused.output


async def test_a_record_the_relay_should_have_refused_is_an_anomaly(tmp_path: Path) -> None:
    net = bridged()
    async with running_relay(tmp_path / "relay", net) as r:
        await r.client("FR").submit_email_record(*signed(net))
        # A relay that skipped G3: a record naming US (no e-mail entry), another signed
        # by DE in FR's name, both written straight into its store.
        now = datetime.now(UTC)
        bad = [signed(net, member="US"), (signed(net)[0], signed(net, by="DE")[1])]
        indexes = []
        for raw, sig in bad:
            entry = encode(EmailRecorded(received_at=now, record=raw, sig=sig))
            stored = await r.state.store.record_email(
                "FR", hashlib.sha256(raw).digest(), entry, now
            )
            indexes.append(stored.leaf_index)
        await cosigned(r, tmp_path)
        audited = await verify_log(
            PublicClient(r.url, r.session), policy(r), tmp_path / "state", now=datetime.now(UTC)
        )
    assert not audited.ok
    assert len(audited.anomalies) == 2, audited.anomalies
    first, second = audited.anomalies
    assert first.startswith(f"entry {indexes[0]} (email_recorded): "), first
    assert "not reached by e-mail" in first
    assert second.startswith(f"entry {indexes[1]} (email_recorded): signature does not verify")
