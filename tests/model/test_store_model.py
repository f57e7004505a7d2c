"""The relay store against an in-memory model, on SQLite and on PostgreSQL.

Rules: accept (new, retry, conflicting retry, over a quota), mailbox reads (whole and
paged), ack (own, repeated, another member's, unknown, after expiry), expiry, purge,
other audit events, e-mail records (new and repeated, PROTOCOL.md §22.5). After every
step the store's log (size, entries, root) and every mailbox (order, bytes, depth,
usage) equal the model's. PostgreSQL runs when ``RELAY247_TEST_PG`` is set, each
machine run in a fresh schema (dropped after).
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from protocol import merkle
from protocol.errors import PeerError
from relay.storage import Quotas, Store, Submission
from schemas.errors import ErrorCode
from tests.model._profile import model_settings
from tests.support.pg import PG_DSN, SKIP_REASON, drop_schema
from tests.support.relay import Backend

T = TypeVar("T")
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
SENDERS = ("alice", "carol")
RECIPIENTS = ("bob", "dave")
QUOTAS = Quotas(envelopes=4, mailbox_bytes=200, sender_bytes=130)

PENDING, ACKED, EXPIRED = "pending", "acked", "expired"


@dataclass
class Msg:
    recipient: str
    envelope: bytes
    received_at: datetime
    expires_at: datetime
    leaf: int
    state: str = PENDING
    ack_leaf: int | None = None


def _envelope(sender: str, n: int, variant: int, size: int) -> bytes:
    head = f"{sender}/{n}/{variant}:".encode()
    return (head + b"x" * size)[: max(size, len(head))]


class StoreMachine(RuleBasedStateMachine):
    backend_name = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.TemporaryDirectory(prefix="relay247-model-")
        self.backend = Backend(self.backend_name, Path(self.tmp.name))
        self.store: Store = self.backend.open_store(quotas=QUOTAS)
        self.run(self.store.start())
        self.msgs: dict[tuple[str, str], Msg] = {}
        self.order: list[tuple[str, str]] = []  # acceptance order of the live records
        self.leaves: list[bytes] = []
        self.emails: dict[tuple[str, bytes], tuple[int, datetime]] = {}
        self.clock = 0
        self.sizes_seen: list[int] = []

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        try:
            self.run(self.store.close())
            for schema in self.backend.schemas:
                self.run(drop_schema(schema))
        finally:
            self.loop.close()
            self.tmp.cleanup()

    # --- the model's view ------------------------------------------------------------

    def _waiting(self, recipient: str) -> list[tuple[str, str]]:
        return [
            k
            for k in self.order
            if self.msgs[k].recipient == recipient and self.msgs[k].state == PENDING
        ]

    def _usage(self, recipient: str) -> tuple[int, int, dict[str, int]]:
        keys = self._waiting(recipient)
        by: dict[str, int] = {}
        for s, m in keys:
            by[s] = by.get(s, 0) + len(self.msgs[(s, m)].envelope)
        return len(keys), sum(by.values()), by

    # --- rules -----------------------------------------------------------------------

    @rule(
        sender=st.sampled_from(SENDERS),
        n=st.integers(0, 5),
        recipient=st.sampled_from(RECIPIENTS),
        variant=st.integers(0, 1),
        size=st.integers(10, 70),
        lifetime_h=st.integers(1, 6),
    )
    def accept(
        self, sender: str, n: int, recipient: str, variant: int, size: int, lifetime_h: int
    ) -> None:
        self.clock += 1
        env = _envelope(sender, n, variant, size)
        received = NOW + timedelta(minutes=self.clock)
        msg_id = f"m{n}"
        sub = Submission(
            sender=sender,
            msg_id=msg_id,
            recipient=recipient,
            envelope=env,
            envelope_sha256=hashlib.sha256(env).digest(),
            header_sha256=hashlib.sha256(b"h" + env).digest(),
            leaf_entry=b"accept:%s:%s:%d" % (sender.encode(), msg_id.encode(), self.clock),
            received_at=received,
            expires_at=received + timedelta(hours=lifetime_h),
        )
        key = (sender, msg_id)
        earlier = self.msgs.get(key)
        if earlier is not None:
            if earlier.envelope != env:  # kept after an ack or expiry: the hash is
                with pytest.raises(PeerError) as exc:
                    self.run(self.store.accept(sub))
                assert exc.value.code is ErrorCode.CONFLICT
                return
            got = self.run(self.store.accept(sub))
            assert (got.duplicate, got.leaf_index, got.received_at) == (
                True,
                earlier.leaf,
                earlier.received_at,
            )
            return
        depth, used, by = self._usage(recipient)
        full = by.get(sender, 0) + len(env) > QUOTAS.sender_bytes or (
            depth >= QUOTAS.envelopes or used + len(env) > QUOTAS.mailbox_bytes
        )
        if full:
            with pytest.raises(PeerError) as exc:
                self.run(self.store.accept(sub))
            assert exc.value.code is ErrorCode.MAILBOX_FULL
            return
        got = self.run(self.store.accept(sub))
        assert (got.duplicate, got.leaf_index) == (False, len(self.leaves))
        self.leaves.append(sub.leaf_entry)
        self.msgs[key] = Msg(recipient, env, received, sub.expires_at, got.leaf_index)
        self.order.append(key)

    @rule(
        recipient=st.sampled_from(RECIPIENTS),
        sender=st.sampled_from(SENDERS),
        n=st.integers(0, 5),
    )
    def ack(self, recipient: str, sender: str, n: int) -> None:
        key = (sender, f"m{n}")
        entry = b"ack:%s:%s:%d" % (recipient.encode(), key[1].encode(), len(self.leaves))
        msg = self.msgs.get(key)
        if msg is None or msg.recipient != recipient:
            with pytest.raises(PeerError) as exc:
                self.run(self.store.ack(recipient, sender, key[1], entry))
            assert exc.value.code is ErrorCode.NOT_FOUND
            return
        got = self.run(self.store.ack(recipient, sender, key[1], entry))
        if msg.state == ACKED:
            assert (got.duplicate, got.leaf_index) == (True, msg.ack_leaf)
            return
        assert (got.duplicate, got.leaf_index) == (False, len(self.leaves))
        self.leaves.append(entry)
        msg.state, msg.ack_leaf = ACKED, got.leaf_index

    @rule(hours=st.integers(0, 8))
    def expire(self, hours: int) -> None:
        now = NOW + timedelta(minutes=self.clock, hours=hours)
        want = [
            k
            for k in self.order
            if self.msgs[k].state == PENDING and self.msgs[k].expires_at <= now
        ]
        assert self.run(self.store.expire(now)) == len(want)
        for k in want:
            self.msgs[k].state = EXPIRED

    @rule(minutes=st.integers(0, 40))
    def purge(self, minutes: int) -> None:
        cutoff = NOW + timedelta(minutes=minutes)
        gone = [
            k
            for k in self.order
            if self.msgs[k].state != PENDING and self.msgs[k].received_at < cutoff
        ]
        assert self.run(self.store.purge_acked(cutoff)) == len(gone)
        for k in gone:
            del self.msgs[k]
            self.order.remove(k)

    @rule(node=st.sampled_from(SENDERS), n=st.integers(0, 3))
    def record_email(self, node: str, n: int) -> None:
        self.clock += 1
        key = (node, hashlib.sha256(b"%s/%d" % (node.encode(), n)).digest())
        entry = b"email:%s:%d:%d" % (node.encode(), n, len(self.leaves))
        received = NOW + timedelta(minutes=self.clock)
        got = self.run(self.store.record_email(key[0], key[1], entry, received))
        earlier = self.emails.get(key)
        if earlier is not None:
            assert (got.duplicate, got.leaf_index, got.received_at) == (True, *earlier)
            return
        assert (got.duplicate, got.leaf_index, got.received_at) == (
            False,
            len(self.leaves),
            received,
        )
        self.leaves.append(entry)
        self.emails[key] = (got.leaf_index, received)

    @rule()
    def event(self) -> None:
        entry = b"event:%d" % len(self.leaves)
        assert self.run(self.store.append_event(entry)) == len(self.leaves)
        self.leaves.append(entry)

    @rule(recipient=st.sampled_from(RECIPIENTS), limit=st.integers(1, 3))
    def page_through(self, recipient: str, limit: int) -> None:
        seen: list[tuple[str, str]] = []
        after = 0
        for _ in range(20):
            page = self.run(self.store.mailbox(recipient, after=after, limit=limit))
            assert len(page) <= limit
            seen += [(e.sender, e.msg_id) for e in page]
            if len(page) < limit:
                break
            after = page[-1].seq
        assert seen == self._waiting(recipient)

    # --- invariants --------------------------------------------------------------------

    @invariant()
    def log_matches(self) -> None:
        size = self.run(self.store.tree_size())
        assert size == len(self.leaves)
        assert not self.sizes_seen or size >= self.sizes_seen[-1]  # a log never shrinks
        self.sizes_seen.append(size)
        if size:
            assert self.run(self.store.leaf_entries(0, size)) == self.leaves
            want = merkle.root([merkle.leaf_hash(e) for e in self.leaves])
            assert self.run(self.store.root(size)) == want

    @invariant()
    def mailboxes_match(self) -> None:
        for r in RECIPIENTS:
            page = self.run(self.store.mailbox(r, after=0, limit=100))
            want = self._waiting(r)
            assert [(e.sender, e.msg_id) for e in page] == want
            assert [e.envelope for e in page] == [self.msgs[k].envelope for k in want]
            assert [e.leaf_index for e in page] == [self.msgs[k].leaf for k in want]
            seqs = [e.seq for e in page]
            assert seqs == sorted(set(seqs))
            assert self.run(self.store.mailbox_depth(r)) == len(want)
            assert self.run(self.store.usage(r)) == self._usage(r)


class PostgresStoreMachine(StoreMachine):
    backend_name = "postgres"


def test_store_model_sqlite() -> None:
    run_state_machine_as_test(StoreMachine, settings=model_settings(25))


@pytest.mark.skipif(PG_DSN is None, reason=SKIP_REASON)
def test_store_model_postgres() -> None:
    run_state_machine_as_test(PostgresStoreMachine, settings=model_settings(10))
