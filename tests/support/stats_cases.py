"""Generated cases for the statistics tests, and their figures computed the test's way.

:func:`plan_cases` draws cases (who asked whom, what, which answers when) from a seeded
generator; :func:`write_case` stores one in a real node store, as the node would have
(sealed-looking headers, bodies, signed-receipt bytes); :func:`expected` computes the
figures of PROTOCOL.md §20 from the plan alone, without node/cases/stats.py. The same
:func:`expected` recomputes them from evidence bundles (:func:`plans_from_bundle`).
"""

from __future__ import annotations

import math
import os
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from node.storage import Direction, MessageRecord, NodeStore, Outgoing, ReceiptRecord, Status
from protocol.codec import decode, decode_as
from protocol.directory import TrustRoot
from protocol.evidence import EvidenceBundle, verify_bundle
from schemas import _bodies_dataprot as dp
from schemas import _bodies_other as ot
from schemas import _bodies_response as rs
from schemas.envelope import DeliveryReceipt, EnvelopeHeader, ReceiptStatus, SignedReceipt
from schemas.errors import ErrorCode
from schemas.examples import example
from schemas.messages import BODY_DECODER, Body, coarse_kind, encode_body, kind_of, priority_of

ME = "FR"
PEERS = ("US", "DE-BKA", "JP")
_FP = "0" * 32
_SHA = "0" * 64


@dataclass
class Msg:
    """One message of a planned case: signed time, body, and whether the requested side sent it."""

    created: datetime
    body: Body
    from_requested: bool

    @property
    def kind(self) -> str:
        return kind_of(self.body)


@dataclass
class Plan:
    """A case as generated (or read back from a bundle)."""

    flow: str  # "sent" (this node asked) or "received"
    peer: str
    request: Msg
    receipt: tuple[datetime, str] | None = None
    later: list[Msg] = field(default_factory=list)
    counted: bool = True  # False: noise the figures must leave out


def _body(kind: str, case_id: str, reply_to: str | None, **changes: Any) -> Body:
    body = example(kind)
    return msgspec.structs.replace(body, case_id=case_id, in_reply_to=reply_to, **changes)


def plan_cases(n: int, start: datetime, end: datetime, seed: int = 15) -> list[Plan]:
    """``n`` cases whose requests fall between ``start`` and ``end`` (some a month around)."""
    rnd = random.Random(seed)
    span = (end - start).total_seconds()
    plans = []
    for _ in range(n):
        case_id = os.urandom(16).hex()
        at = start + timedelta(seconds=rnd.uniform(-0.1 * span, 1.1 * span))
        kind = rnd.choices(
            ["preservation_request", "emergency_disclosure_request", "assistance_request",
             "onward_transfer_request"], weights=[70, 15, 10, 5],
        )[0]  # fmt: skip
        flow = rnd.choice(["sent", "received"])
        p = Plan(flow, rnd.choice(PEERS), Msg(at, _body(kind, case_id, None), False))
        if rnd.random() < 0.92:
            status = "rejected" if rnd.random() < 0.05 else "accepted"
            p.receipt = (at + timedelta(seconds=rnd.randint(1, 300)), status)
        if p.receipt is not None and p.receipt[1] == "accepted":
            _answers(p, rnd, case_id)
        plans.append(p)
    return plans


def _answers(p: Plan, rnd: random.Random, case_id: str) -> None:
    t = p.request.created
    rid = "ab" * 16  # in_reply_to: any id (the figures never follow it)

    def after(lo: int, hi: int) -> datetime:
        nonlocal t
        t = t + timedelta(seconds=rnd.randint(lo, hi))
        return t

    def answer(kind: str, **changes: Any) -> None:
        p.later.append(Msg(after(30, 20_000), _body(kind, case_id, rid, **changes), True))

    def ask(kind: str, **changes: Any) -> None:
        p.later.append(Msg(after(30, 200_000), _body(kind, case_id, None, **changes), False))

    kind = p.request.kind
    if kind == "emergency_disclosure_request":
        decision = rnd.choice(list(ot.EmergencyDecision))
        ground = rnd.choice([None, *rs.RefusalGround]) if decision == "refused" else None
        answer("emergency_disclosure_answer", decision=decision, refusal_ground=ground)
        return
    if kind == "assistance_request":
        if rnd.random() < 0.5:
            answer("assistance_answer")
        return
    if kind == "onward_transfer_request":
        onward = rnd.choice(list(dp.OnwardDecision))
        answer("onward_transfer_answer", decision=onward,
               conditions=("only this case",), explanation="Because.")  # fmt: skip
        return
    roll = rnd.random()
    if roll < 0.15:
        answer("refusal", ground=rnd.choice(list(rs.RefusalGround)))
        return
    if roll < 0.2:
        answer("impossible_to_execute")
        return
    if rnd.random() < 0.8:
        answer("taken_in_charge")
    if rnd.random() < 0.1:
        ask("preservation_withdrawal")
        return
    if rnd.random() < 0.7:
        at = after(60, 90_000)
        until = at + timedelta(days=rnd.randint(5, 200))
        body = _body("preserved", case_id, rid, preserved_at=at, preserved_until=until)
        p.later.append(Msg(at, body, True))
        if rnd.random() < 0.4:
            mla_at = at + timedelta(days=rnd.randint(1, 120))
            p.later.append(Msg(mla_at, _body("mla_submitted", case_id, None), False))


# -- the expected figures, computed from plans only ------------------------------------------


def _nearest_rank(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _outcome(p: Plan, until: datetime) -> tuple[str, str | None]:
    """(outcome, refusal ground) at ``until``, checking the rules of §20.2 in order."""
    seen = [m for m in sorted(p.later, key=lambda m: m.created) if m.created < until]
    answers = [m for m in seen if m.from_requested]
    asks = [m for m in seen if not m.from_requested]
    receipt = p.receipt if p.receipt and p.receipt[0] < until else None
    if receipt and receipt[1] == "rejected":
        return "rejected", None
    for m in answers:
        b = m.body
        if isinstance(b, rs.Refusal):
            return "refused", b.ground.value
        if isinstance(b, ot.EmergencyDisclosureAnswer) and b.decision == "refused":
            return "refused", (b.refusal_ground or rs.RefusalGround.OTHER).value
        if isinstance(b, dp.OnwardTransferAnswer) and b.decision == "refused":
            return "refused", "other"
    kinds = [m.kind for m in answers]
    if "impossible_to_execute" in kinds:
        return "impossible", None
    if "preservation_withdrawal" in [m.kind for m in asks]:
        return "withdrawn", None
    done = [m for m in answers if m.kind in ("assistance_answer", "onward_transfer_answer")]
    done += [m for m in answers if isinstance(m.body, ot.EmergencyDisclosureAnswer)
             and m.body.decision != "pending_provider"]  # fmt: skip
    if done:
        return "answered", None
    kept = [m.body for m in answers if isinstance(m.body, rs.Preserved)]
    mla = [m for m in asks if m.kind == "mla_submitted"]
    if kept:
        ends = kept[-1].preserved_until
        if ends < until and not [m for m in mla if m.created < ends]:
            return "expired", None
    if mla:
        return "mla_pending", None
    if kept:
        return "preserved", None
    if "taken_in_charge" in kinds or "emergency_disclosure_answer" in kinds:
        return "taken_in_charge", None
    return ("delivered", None) if receipt else ("pending", None)


def expected(plans: list[Plan], lo: datetime, until: datetime) -> dict[str, Any]:
    """The figures of §20 as plain dicts keyed like the export's rows."""
    requests: Counter[tuple[str, ...]] = Counter()
    refusals: Counter[tuple[str, ...]] = Counter()
    expired: Counter[tuple[str, ...]] = Counter()
    emergencies: Counter[tuple[str, ...]] = Counter()
    waits: defaultdict[tuple[str, str, str | None], list[int]] = defaultdict(list)
    for p in plans:
        t0 = p.request.created
        if not p.counted or not lo <= t0 < until:
            continue
        result, ground = _outcome(p, until)
        kind = p.request.kind
        requests[(p.flow, p.peer, kind, result)] += 1
        if ground is not None:
            refusals[(p.flow, p.peer, ground)] += 1
        if result == "expired":
            expired[(p.flow, p.peer)] += 1
        if kind == "emergency_disclosure_request":
            emergencies[(p.flow, p.peer)] += 1
        firsts: dict[str, datetime] = {}
        if p.receipt and p.receipt[0] < until:
            firsts["delivery_receipt"] = p.receipt[0]
        for m in sorted(p.later, key=lambda m: m.created):
            if not m.from_requested or m.created >= until:
                continue
            if m.kind in ("taken_in_charge", "preserved"):
                firsts.setdefault(m.kind, m.created)
            if kind == "emergency_disclosure_request":
                firsts.setdefault("emergency_response", m.created)
        for measure, at in firsts.items():
            seconds = max(0, math.floor((at - t0).total_seconds()))
            waits[(p.flow, measure, None)].append(seconds)
            waits[(p.flow, measure, p.peer)].append(seconds)
    return {
        "requests": dict(requests),
        "refusals": dict(refusals),
        "expired_before_mla": dict(expired),
        "emergencies": dict(emergencies),
        "timings": {
            k: (len(v), _nearest_rank(v, 0.5), _nearest_rank(v, 0.9)) for k, v in waits.items()
        },
    }


def actual(figures: Any) -> dict[str, Any]:
    """The same dicts from a ``Statistics`` answer (decoded as builtins)."""
    d = msgspec.to_builtins(figures)
    return {
        "requests": {(r["flow"], r["peer"], r["kind"], r["outcome"]): r["count"]
                     for r in d["requests"]},
        "refusals": {(r["flow"], r["peer"], r["ground"]): r["count"] for r in d["refusals"]},
        "expired_before_mla": {(r["flow"], r["peer"]): r["count"]
                               for r in d["expired_before_mla"]},
        "emergencies": {(r["flow"], r["peer"]): r["count"] for r in d["emergencies"]},
        "timings": {(r["flow"], r["measure"], r.get("peer")): (r["count"], r["median_s"],
                    r["p90_s"]) for r in d["timings"]},
    }  # fmt: skip


# -- writing a plan into a node store ---------------------------------------------------------


def _header(msg_id: str, sender: str, recipient: str, body: Body, created: datetime) -> bytes:
    return msgspec.json.encode(
        EnvelopeHeader(
            msg_id=msg_id, sender=sender, sender_key=_FP, recipient=recipient,
            recipient_key=_FP, created=created, expires=created + timedelta(days=1),
            kind=coarse_kind(body), priority=priority_of(body), case_id=body.case_id, seq=1,
            ct_sha256=_SHA, ct_len=1,
        )
    )  # fmt: skip


def signed_receipt(msg_id: str, case_id: str, sender: str, signer: str, at: datetime,
                   status: str) -> bytes:  # fmt: skip
    """Signed-receipt bytes as stored (the figures read them, they do not verify them)."""
    receipt = DeliveryReceipt(
        msg_id=msg_id, case_id=case_id, sender=sender, recipient=signer, recipient_key=_FP,
        header_sha256=_SHA, ct_sha256=_SHA, received_at=at, status=ReceiptStatus(status),
        reason=None if status == "accepted" else ErrorCode.MALFORMED,
    )  # fmt: skip
    raw = msgspec.json.encode(receipt)
    return msgspec.json.encode(SignedReceipt(signer=signer, key=_FP, receipt=raw, sig=b"\0" * 64))


def _record(direction: Direction, msg: Msg, peer: str, seq: int, *, status: Status,
            me: str = ME) -> MessageRecord:  # fmt: skip
    msg_id = os.urandom(16).hex()
    sender, recipient = (me, peer) if direction is Direction.OUT else (peer, me)
    raw = encode_body(msg.body)
    return MessageRecord(
        direction=direction, msg_id=msg_id, case_id=msg.body.case_id, peer=peer,
        coarse_kind=coarse_kind(msg.body).value, body_kind=msg.kind,
        in_reply_to=msg.body.in_reply_to, seq=seq, envelope=b"{}",
        header=_header(msg_id, sender, recipient, msg.body, msg.created), body=raw,
        stored_at=msg.created, status=status,
    )  # fmt: skip


async def _send(store: NodeStore, msg: Msg, peer: str, *, fail: bool = False) -> str:
    def build(seq: int) -> Outgoing:
        m = _record(Direction.OUT, msg, peer, seq, status=Status.QUEUED)
        return Outgoing(message=m, expires=msg.created + timedelta(days=1))

    out = await store.enqueue(peer, build, msg.created.timestamp())
    msg_id = out.message.msg_id
    if fail:
        await store.mark_failed(msg_id, "refused for good", msg.created)
    else:
        await store.mark_sent(msg_id, 1, msg.created)
    return msg_id


async def _receive(store: NodeStore, msg: Msg, peer: str, seq: int,
                   receipt: tuple[datetime, str] | None) -> None:  # fmt: skip
    m = _record(Direction.IN, msg, peer, seq, status=Status.ACCEPTED)
    reply = None
    if receipt is not None:
        signed = signed_receipt(m.msg_id, m.case_id, peer, ME, *receipt)
        carrier = Msg(receipt[0], msg.body, False)

        def reply(out_seq: int) -> Outgoing:
            r = _record(Direction.OUT, carrier, peer, out_seq, status=Status.QUEUED)
            r = MessageRecord(**{**r.__dict__, "coarse_kind": "receipt", "body_kind": None,
                                 "in_reply_to": m.msg_id, "body": signed})  # fmt: skip
            return Outgoing(message=r, expires=receipt[0] + timedelta(days=1))

    await store.record_inbound(m, reply=reply, receipt=None, now=msg.created.timestamp())


async def write_case(store: NodeStore, p: Plan, seqs: Counter[str]) -> None:
    """Store one planned case as this node (FR) would hold it."""

    def next_seq() -> int:
        seqs[p.peer] += 1
        return seqs[p.peer]

    if p.flow == "sent":
        request_id = await _send(store, p.request, p.peer, fail=not p.counted)
        if p.receipt is not None:
            at, status = p.receipt
            signed = signed_receipt(request_id, p.request.body.case_id, ME, p.peer, at, status)
            carrier = Msg(at, p.request.body, True)
            rec = _record(Direction.IN, carrier, p.peer, next_seq(), status=Status.ACCEPTED)
            rec = MessageRecord(**{**rec.__dict__, "coarse_kind": "receipt", "body_kind": None,
                                   "in_reply_to": request_id, "body": signed})  # fmt: skip
            kept = ReceiptRecord(request_id, p.peer, status, None, at, signed, rec.msg_id)
            await store.record_inbound(rec, reply=None, receipt=kept, now=at.timestamp())
    else:
        await _receive(store, p.request, p.peer, next_seq(), p.receipt)
    for m in p.later:
        ours = m.from_requested == (p.flow == "received")
        if ours:
            await _send(store, m, p.peer)
        else:
            await _receive(store, m, p.peer, next_seq(), (m.created, "accepted"))


# -- plans read back from evidence bundles ------------------------------------------------------


def plan_from_bundle(data: bytes, me: str, root: TrustRoot, log_key: str) -> Plan | None:
    """Verify one bundle (B1–B7) and rebuild its case's plan from what it holds: its
    messages, and its e-mails with the body the node states (B7d), each e-mail's record
    time standing for ``created`` (an e-mail has no delivery receipt)."""
    report = verify_bundle(data, trust_root=root, now=datetime.now(UTC), log_key=log_key,
                           quorum=1)  # fmt: skip
    bundle = decode_as(EvidenceBundle, data, "bundle", limit=len(data))
    items: list[tuple[datetime, str, str, Body, tuple[Any, ...]]] = []
    for facts, ev in zip(report.messages, bundle.messages, strict=True):
        body = decode(BODY_DECODER, ev.body, "bundle body", limit=len(ev.body))
        items.append((facts.created, facts.sender, facts.recipient, body, facts.receipts))
    items += [(e.at, e.sender, e.recipient, e.body, ()) for e in report.emails if e.body]
    opening = [x for x in items if kind_of(x[3]) in (
        "preservation_request", "emergency_disclosure_request", "assistance_request",
        "onward_transfer_request")]  # fmt: skip
    if not opening:
        return None
    request = min(opening, key=lambda x: x[0])
    created, requester, recipient, body, signed = request
    flow = "sent" if requester == me else "received"
    receipts = sorted((r.received_at, r.status) for r in signed)
    p = Plan(flow, recipient if flow == "sent" else requester,
             Msg(created, body, False), receipts[0] if receipts else None)  # fmt: skip
    for x in items:
        if x is not request:
            p.later.append(Msg(x[0], x[3], x[1] != requester))
    return p
