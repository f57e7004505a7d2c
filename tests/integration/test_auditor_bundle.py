"""An evidence bundle built from a real exchange through a real relay (PROTOCOL.md §7.3)."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner, Result

from audit.witness import WitnessKeys, witness_round
from cli.main import cli
from client import PublicClient
from protocol.codec import encode
from protocol.envelope import open_envelope, seal_envelope
from protocol.evidence import (
    LogLeaf,
    MessageEvidence,
    build_bundle,
    split_plaintext,
    verify_bundle,
)
from protocol.receipt import make_ack, make_receipt
from relay.audit._checkpointer import sign_if_due
from schemas.examples import example
from schemas.messages import coarse_kind, priority_of
from tests.support.network import make_network
from tests.support.relay import running_relay


async def invoke(args: list[str]) -> Result:
    # The CLI runs its own event loop: give it a thread of its own.
    return await asyncio.to_thread(CliRunner().invoke, cli, args)


async def test_evidence_bundle_of_a_real_exchange(tmp_path: Path) -> None:
    net = make_network(("FR", "DE-BKA", "US"))
    async with running_relay(tmp_path / "relay", net) as r:
        body_obj = example("preservation_request")
        body = encode(body_obj)
        de = net.members["DE-BKA"]
        sealed = seal_envelope(
            body,
            msg_id=os.urandom(16).hex(),
            case_id=body_obj.case_id,
            kind=coarse_kind(body_obj),
            priority=priority_of(body_obj),
            seq=1,
            sender="FR",
            signing_key=net.members["FR"].signing,
            recipient="DE-BKA",
            recipient_key=de.encryption.public,
            recipient_key_fp=de.encryption.fingerprint,
            created=datetime.now(UTC),
            lifetime=timedelta(hours=1),
        )
        submitted = await r.client("FR").submit(sealed.envelope)
        item = (await r.client("DE-BKA").mailbox()).messages[0]
        opened = open_envelope(
            item.envelope,
            net.lookup(),
            me="DE-BKA",
            my_keys={de.encryption.fingerprint: de.encryption},
            now=datetime.now(UTC),
        )
        plaintext = de.encryption.unseal(opened.checked.envelope.ciphertext)
        inner_sig, meta, plain = split_plaintext(plaintext)
        receipt = make_receipt(opened, signing_key=de.signing, received_at=datetime.now(UTC))
        ack = make_ack(
            opened.header,
            opened.checked.envelope.header,
            signing_key=de.signing,
            acked_at=datetime.now(UTC),
        )
        acked = await r.client("DE-BKA").ack(ack)
        r_tmp = tmp_path / "w"
        await sign_if_due(r.state, force=True)
        client = PublicClient(r.url, r.session)
        for m in ("FR", "DE-BKA"):
            await witness_round(
                r.client(m),  # the member's signed client posts its cosignature
                WitnessKeys(m, net.members[m].signing, net.members[m].transport),
                r.state.keys.log_key,
                r_tmp / m,
                now=datetime.now(UTC),
            )
        note = await client.checkpoint()
        size = r.state.audit.latest.size if r.state.audit.latest else 0

        async def leaf(index: int) -> LogLeaf:
            (entry,) = await client.entries(index, index + 1)
            proof = await client.inclusion_proof(index, size)
            return LogLeaf(index=index, entry=entry, proof=proof.proof)

        message = MessageEvidence(
            envelope=sealed.envelope,
            inner_sig=inner_sig,
            inner_meta=meta,
            body=plain,
            directory_version=1,
            accepted=await leaf(submitted.leaf_index),
            acked=await leaf(acked.leaf_index),
            receipts=(receipt,),
        )
        data = build_bundle(
            case_id=body_obj.case_id,
            log_origin=r.state.log_origin,
            log_key=r.state.keys.log_key,
            checkpoint=note,
            trust_root=net.root(),
            directories=[net.signed()],
            messages=[message],
        )
    report = verify_bundle(
        data,
        trust_root=net.root(),
        now=datetime.now(UTC),
        log_key=r.state.keys.log_key,
        quorum=2,
    )
    text = "\n".join(report.lines())
    assert "FR sent DE-BKA a message of kind preservation_request" in text
    assert f"as log entry {submitted.leaf_index}" in text
    assert "DE-BKA acknowledged delivery at " in text
    assert f"(log entry {acked.leaf_index})" in text
    assert "cosigned by FR, DE-BKA" in text or "cosigned by DE-BKA, FR" in text
    bundle = tmp_path / "case.json"
    bundle.write_bytes(data)
    trust = tmp_path / "relay" / "trust.json"
    ok = await invoke(
        [
            "audit",
            "verify-bundle",
            str(bundle),
            "--trust-root",
            str(trust),
            "--log-key",
            r.state.keys.log_key,
        ]
    )
    assert ok.exit_code == 0, ok.output
    assert "FR sent DE-BKA a message of kind preservation_request" in ok.output
    changed = bytearray(data)
    changed[len(changed) // 2] ^= 0x01
    bundle.write_bytes(bytes(changed))
    refused = await invoke(["audit", "verify-bundle", str(bundle), "--trust-root", str(trust)])
    assert refused.exit_code == 1
    assert "REFUSED" in refused.output
