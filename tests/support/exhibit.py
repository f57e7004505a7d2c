"""A case of N messages through a real relay, exported as an evidence bundle: the input
of the court exhibit's tests and benchmark (issue 18 §1).

FR asks DE-BKA to preserve data; DE-BKA and FR then exchange notes, each delivered,
opened, receipted and acknowledged through the relay; both members witness the
checkpoint. The free text mixes Latin, Cyrillic and Arabic script.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from audit.witness import WitnessKeys, witness_round
from client import PublicClient
from protocol.codec import encode
from protocol.envelope import open_envelope, seal_envelope
from protocol.evidence import LogLeaf, MessageEvidence, build_bundle, split_plaintext
from protocol.receipt import make_ack, make_receipt
from relay.audit._checkpointer import sign_if_due
from schemas._bodies_request import PreservationRequest
from schemas.examples import example
from schemas.messages import Body, coarse_kind, priority_of
from tests.support.network import make_network
from tests.support.relay import running_relay

FREE_TEXT = (
    "Le fournisseur a confirmé la conservation. "
    "Провайдер подтвердил сохранение данных. "
    "أكّد المزوّد حفظ البيانات."
)


@dataclass(frozen=True)
class CaseBundle:
    """A verified-to-be bundle with the pins an auditor would hold."""

    data: bytes
    trust: Path
    log_key: str
    case_id: str
    #: wall and process-CPU seconds of the export proper: every log leaf and inclusion
    #: proof read from the relay, and the bundle built (what ``export_case`` does)
    export_wall: float = 0.0
    export_cpu: float = 0.0


def _bodies(n: int, case_id: str, first_id: str) -> list[tuple[str, str, Body]]:
    first = example("preservation_request")
    assert isinstance(first, PreservationRequest)
    offence = msgspec.structs.replace(
        first.offence, summary_of_facts=first.offence.summary_of_facts + " " + FREE_TEXT
    )
    out: list[tuple[str, str, Body]] = [
        ("FR", "DE-BKA", msgspec.structs.replace(first, case_id=case_id, offence=offence))
    ]
    note = example("taken_in_charge")
    for i in range(1, n):
        sender, recipient = ("DE-BKA", "FR") if i % 2 else ("FR", "DE-BKA")
        body = msgspec.structs.replace(
            note, case_id=case_id, in_reply_to=first_id, note=f"{i}. {FREE_TEXT}"
        )
        out.append((sender, recipient, body))
    return out


async def case_bundle(tmp: Path, n: int = 2) -> CaseBundle:
    """Run ``n`` messages of one case through a real relay and export the bundle."""
    net = make_network(("FR", "DE-BKA", "US"))
    case_id = os.urandom(16).hex()
    async with running_relay(tmp / "relay", net) as r:
        seq: dict[tuple[str, str], int] = {}
        sent: list[tuple[int, int, bytes, bytes, bytes, bytes, bytes]] = []
        first_id = os.urandom(16).hex()
        for i, (sender, recipient, body_obj) in enumerate(_bodies(n, case_id, first_id)):
            to = net.members[recipient]
            seq[(sender, recipient)] = seq.get((sender, recipient), 0) + 1
            sealed = seal_envelope(
                encode(body_obj),
                msg_id=first_id if i == 0 else os.urandom(16).hex(),
                case_id=case_id,
                kind=coarse_kind(body_obj),
                priority=priority_of(body_obj),
                seq=seq[(sender, recipient)],
                sender=sender,
                signing_key=net.members[sender].signing,
                recipient=recipient,
                recipient_key=to.encryption.public,
                recipient_key_fp=to.encryption.fingerprint,
                created=datetime.now(UTC),
                lifetime=timedelta(hours=1),
            )
            submitted = await r.client(sender).submit(sealed.envelope)
            item = (await r.client(recipient).mailbox()).messages[0]
            opened = open_envelope(
                item.envelope,
                net.lookup(),
                me=recipient,
                my_keys={to.encryption.fingerprint: to.encryption},
                now=datetime.now(UTC),
            )
            inner_sig, meta, plain = split_plaintext(
                to.encryption.unseal(opened.checked.envelope.ciphertext)
            )
            receipt = make_receipt(opened, signing_key=to.signing, received_at=datetime.now(UTC))
            ack = make_ack(
                opened.header,
                opened.checked.envelope.header,
                signing_key=to.signing,
                acked_at=datetime.now(UTC),
            )
            acked = await r.client(recipient).ack(ack)
            sent.append(
                (
                    submitted.leaf_index,
                    acked.leaf_index,
                    sealed.envelope,
                    inner_sig,
                    meta,
                    plain,
                    receipt,
                )
            )
        await sign_if_due(r.state, force=True)
        client = PublicClient(r.url, r.session)
        for m in ("FR", "DE-BKA"):
            await witness_round(
                r.client(m),
                WitnessKeys(m, net.members[m].signing, net.members[m].transport),
                r.state.keys.log_key,
                tmp / "witness" / m,
                now=datetime.now(UTC),
            )
        wall, cpu = time.perf_counter(), time.process_time()
        note = await client.checkpoint()
        size = r.state.audit.latest.size if r.state.audit.latest else 0

        async def leaf(index: int) -> LogLeaf:
            (entry,) = await client.entries(index, index + 1)
            proof = await client.inclusion_proof(index, size)
            return LogLeaf(index=index, entry=entry, proof=proof.proof)

        messages = [
            MessageEvidence(
                envelope=env,
                inner_sig=sig,
                inner_meta=meta,
                body=plain,
                directory_version=1,
                accepted=await leaf(accepted),
                acked=await leaf(acked_at),
                receipts=(receipt,),
            )
            for accepted, acked_at, env, sig, meta, plain, receipt in sent
        ]
        data = build_bundle(
            case_id=case_id,
            log_origin=r.state.log_origin,
            log_key=r.state.keys.log_key,
            checkpoint=note,
            trust_root=net.root(),
            directories=[net.signed()],
            messages=messages,
        )
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        trust = tmp / "relay" / "trust.json"
        return CaseBundle(data, trust, r.state.keys.log_key, case_id, wall, cpu)
