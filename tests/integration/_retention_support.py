"""Shared steps of the retention tests: closed and open cases with a marker, a moved
clock on the node's retention task, and a scan of a data directory for bytes."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from node.cases import RetentionPolicy, RetentionService
from node.events import ReceiptReceived
from schemas._bodies_request import PreservationRequest
from schemas.examples import example
from schemas.messages import Body
from tests.integration._node_services import Peer
from tests.support.bodies import addressed
from tests.support.fake_relay import next_event

DAYS = 30


def request(marker: str) -> Body:
    """A preservation request FR → US whose summary of facts carries ``marker``."""
    body = example("preservation_request")
    assert isinstance(body, PreservationRequest)
    offence = msgspec.structs.replace(body.offence, summary_of_facts=f"Facts {marker} end.")
    body = msgspec.structs.replace(body, case_id=os.urandom(16).hex(), offence=offence)
    return addressed(body, "FR", "US")


async def exchange(fr: Peer, us: Peer, body: Body, answer_kind: str) -> str:
    """FR sends ``body``; US answers ``answer_kind``; both receipts come back."""
    fr_q, us_q = fr.node.events.queue(), us.node.events.queue()
    sent = await fr.api.send("US", body)
    await next_event(fr_q, ReceiptReceived)
    answer = msgspec.structs.replace(
        example(answer_kind), case_id=body.case_id, in_reply_to=sent.msg_id
    )
    await us.api.send("FR", answer)
    await next_event(us_q, ReceiptReceived)
    return sent.msg_id


def moved(service: RetentionService, days_ahead: float, policy_days: int = DAYS) -> None:
    """Run ``service`` on a clock ``days_ahead`` days ahead, with a ``policy_days`` policy."""
    service.policy = RetentionPolicy(closed_case_bodies_days=policy_days, batch=2)
    service._clock = lambda: datetime.now(UTC) + timedelta(days=days_ahead)
    service._remover = dataclasses.replace(service._remover, policy_days=policy_days)


def stored_bytes(db: Path, case_id: str) -> list[bytes]:
    """The raw column bytes of a case's bodies and envelopes as SQLite holds them."""
    with sqlite3.connect(db) as c:
        rows = c.execute(
            "SELECT body, envelope FROM messages WHERE case_id=? AND coarse_kind != 'receipt'",
            (case_id,),
        ).fetchall()
    out = []
    for body, envelope in rows:
        assert body is not None
        out.append(bytes(body))
        env = msgspec.json.decode(envelope)
        out.append(env["ciphertext"].encode()[:96])  # the ciphertext, as stored (base64)
    return out


def found_in(root: Path, needles: Iterable[bytes]) -> list[str]:
    """Every file under ``root`` holding one of ``needles`` (file: needle prefix)."""
    wanted = [n for n in needles if n]
    hits = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        hits += [f"{path.name}: {n[:24]!r}" for n in wanted if n in data]
    return hits
