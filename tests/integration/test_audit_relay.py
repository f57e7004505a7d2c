"""The relay's audit endpoints over a real server: checkpoints, proofs, entries, errors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import msgspec
import pytest

from protocol import merkle
from protocol.checkpoint import Checkpoint, open_checkpoint
from protocol.note import Verifier
from relay.audit._checkpointer import sign_if_due
from relay.config import AuditSection
from schemas.audit_api import ConsistencyProof, EntriesPage, InclusionProof
from schemas.errors import ErrorBody
from tests.support.relay import RunningRelay, fetch, grow, running_relay, signed

# Every test runs on SQLite and on PostgreSQL (tests/integration/conftest.py).
pytestmark = pytest.mark.usefixtures("relay_backend")

VECTORS = Path(__file__).resolve().parents[1] / "vectors/external/merkle/rfc6962"
FAST = AuditSection(checkpoint_interval=0.02, checkpoint_every=1000)


async def served_checkpoint(relay: RunningRelay, at_least: int) -> Checkpoint:
    """Wait for the background signer to serve a checkpoint of ``at_least`` leaves."""
    info = await relay.client("FR").info()
    verifier = Verifier.from_key(info.log_key)
    async with asyncio.timeout(10):
        while True:
            answer = await fetch(relay, "/v1/audit/checkpoint")
            if answer.status == 200:
                assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
                cp, _ = open_checkpoint(answer.body, verifier, info.log_origin)
                if cp.size >= at_least:
                    return cp
            await asyncio.sleep(0.01)  # waiting for the signer, not asserting a duration


def error_code(body: bytes) -> str:
    return msgspec.json.decode(body, type=ErrorBody).code.value


async def test_background_signer_serves_log_signed_checkpoints(tmp_path: Path) -> None:
    async with running_relay(tmp_path, audit=FAST) as relay:
        first = await served_checkpoint(relay, 1)
        assert first.root_hash == await relay.state.store.root(first.size)
        await grow(relay, 5)
        second = await served_checkpoint(relay, first.size + 5)
        assert second.root_hash == await relay.state.store.root(second.size)
        # The history of signed sizes is kept.
        older = await relay.state.store.checkpoint(first.size)
        assert older is not None
        assert older.root == first.root_hash


async def test_checkpoint_every_entries_signs_before_the_interval(tmp_path: Path) -> None:
    audit = AuditSection(checkpoint_interval=86_400, checkpoint_every=10)
    async with running_relay(tmp_path, audit=audit) as relay:
        start = await relay.state.store.tree_size()
        await grow(relay, 10)
        cp = await served_checkpoint(relay, start + 10)
        assert cp.size == start + 10


async def test_sign_if_due_waits_for_interval_or_count(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        state = relay.state
        state.config = msgspec.structs.replace(
            state.config, audit=AuditSection(checkpoint_interval=60, checkpoint_every=3)
        )
        now = [1000.0]
        state.monotonic = lambda: now[0]
        first = await signed(relay)
        assert await sign_if_due(state) is None  # not grown
        await grow(relay, 2)
        assert await sign_if_due(state) is None  # grown by 2 < 3, 0 s < 60 s
        now[0] += 60
        by_time = await sign_if_due(state)
        assert by_time is not None
        assert by_time.size == first.size + 2
        await grow(relay, 3)
        by_count = await sign_if_due(state)
        assert by_count is not None
        assert by_count.size == by_time.size + 3


async def test_no_checkpoint_before_the_first_signature(tmp_path: Path) -> None:
    async with running_relay(tmp_path, publish=False) as relay:
        answer = await fetch(relay, "/v1/audit/checkpoint")
        assert (answer.status, error_code(answer.body)) == (404, "not_found")


async def test_inclusion_by_index_and_by_hash_for_every_leaf(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        await grow(relay, 12)
        cp = await signed(relay)
        entries = await relay.state.store.leaf_entries(0, cp.size)
        for index, entry in enumerate(entries):
            leaf = merkle.leaf_hash(entry)
            for query in (f"index={index}", f"leaf_hash={leaf.hex()}"):
                answer = await fetch(relay, f"/v1/audit/proof/inclusion?{query}&size={cp.size}")
                assert answer.status == 200, answer.body
                proof = msgspec.json.decode(answer.body, type=InclusionProof)
                assert (proof.index, proof.size, proof.leaf_hash) == (index, cp.size, leaf.hex())
                merkle.verify_inclusion(leaf, index, cp.size, proof.proof, cp.root)


async def test_consistency_between_every_pair_of_checkpoints(tmp_path: Path) -> None:
    async with running_relay(tmp_path, publish=False) as relay:
        checkpoints = []
        for _ in range(11):
            await grow(relay, 1)
            checkpoints.append(await signed(relay))
        for old in checkpoints:
            for new in checkpoints:
                if old.size > new.size:
                    continue
                path = f"/v1/audit/proof/consistency?old={old.size}&new={new.size}"
                answer = await fetch(relay, path)
                assert answer.status == 200, answer.body
                proof = msgspec.json.decode(answer.body, type=ConsistencyProof)
                assert (proof.old, proof.new) == (old.size, new.size)
                merkle.verify_consistency(old.size, new.size, proof.proof, old.root, new.root)


async def test_reference_vectors_through_storage_backed_proofs(tmp_path: Path) -> None:
    ref = json.loads((VECTORS / "reference-tree.json").read_text())
    async with running_relay(tmp_path, publish=False) as relay:
        for leaf in ref["leaves_hex"]:
            await relay.state.store.append_event(bytes.fromhex(leaf))
        for size, root in ref["roots_by_size_hex"].items():
            assert (await relay.state.store.root(int(size))).hex() == root
        for case in ref["inclusion_proofs"]:
            index, size = case["leaf_index_0based"], case["tree_size"]
            answer = await fetch(relay, f"/v1/audit/proof/inclusion?index={index}&size={size}")
            proof = msgspec.json.decode(answer.body, type=InclusionProof)
            assert [p.hex() for p in proof.proof] == case["proof_hex"]
        checked = 0
        for case in ref["consistency_proofs"]:
            old, new = case["size1"], case["size2"]
            if old == 0:
                continue  # old size 0 is refused by policy (PROTOCOL.md §7.1)
            answer = await fetch(relay, f"/v1/audit/proof/consistency?old={old}&new={new}")
            proof_c = msgspec.json.decode(answer.body, type=ConsistencyProof)
            assert [p.hex() for p in proof_c.proof] == case["proof_hex"]
            checked += 1
        assert checked >= 4


async def test_entries_pages(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        await grow(relay, 1200)
        size = await relay.state.store.tree_size()
        everything = await relay.state.store.leaf_entries(0, size)
        got: list[bytes] = []
        for start in range(0, size, 1000):
            end = min(start + 1000, size)
            answer = await fetch(relay, f"/v1/audit/entries?start={start}&end={end}")
            page = msgspec.json.decode(answer.body, type=EntriesPage)
            assert page.start == start
            got.extend(page.entries)
        assert got == everything


BAD_QUERIES = [
    "proof/inclusion",
    "proof/inclusion?index=0",
    "proof/inclusion?size=1",
    "proof/inclusion?index=-1&size=2",
    "proof/inclusion?index=01&size=2",
    "proof/inclusion?index=%2B1&size=2",
    "proof/inclusion?index=a&size=2",
    "proof/inclusion?index=0&size=0",
    "proof/inclusion?index=0&size=9223372036854775808",
    "proof/inclusion?index=0&leaf_hash=" + "0" * 64 + "&size=2",
    "proof/inclusion?leaf_hash=" + "A" * 64 + "&size=2",
    "proof/inclusion?leaf_hash=abc&size=2",
    "proof/inclusion?index=0&index=1&size=2",
    "proof/inclusion?index=0&size=2&extra=1",
    "proof/consistency?old=1",
    "proof/consistency?new=1",
    "proof/consistency?old=0&new=2",
    "proof/consistency?old=3&new=2",
    "proof/consistency?old=1&new=x",
    "proof/consistency?old=1&new=2&old=1",
    "entries?start=0",
    "entries?end=1",
    "entries?start=1&end=1",
    "entries?start=2&end=1",
    "entries?start=0&end=1001",
    "entries?start=-1&end=1",
    "entries?start=0&end=1&limit=5",
]


@pytest.mark.parametrize("query", BAD_QUERIES)
async def test_bad_query_parameters_are_malformed(tmp_path: Path, query: str) -> None:
    async with running_relay(tmp_path) as relay:
        await grow(relay, 3)
        answer = await fetch(relay, "/v1/audit/" + query)
        assert (answer.status, error_code(answer.body)) == (400, "malformed")


NOT_FOUND = [
    "proof/inclusion?index=4&size=4",  # index >= size: no such leaf in that tree
    "proof/inclusion?index=0&size=5",  # size beyond the tree (4 leaves)
    "proof/inclusion?leaf_hash=" + "0" * 64 + "&size=4",
    "proof/consistency?old=1&new=5",
    "entries?start=0&end=5",
]


@pytest.mark.parametrize("query", NOT_FOUND)
async def test_beyond_the_log_is_not_found(tmp_path: Path, query: str) -> None:
    async with running_relay(tmp_path) as relay:
        await grow(relay, 3)
        assert await relay.state.store.tree_size() == 4
        answer = await fetch(relay, "/v1/audit/" + query)
        assert (answer.status, error_code(answer.body)) == (404, "not_found")


async def test_leaf_hash_found_only_within_the_requested_size(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        await grow(relay, 3)
        last = (await relay.state.store.leaf_entries(3, 4))[0]
        leaf = merkle.leaf_hash(last).hex()
        assert (
            await fetch(relay, f"/v1/audit/proof/inclusion?leaf_hash={leaf}&size=4")
        ).status == 200
        answer = await fetch(relay, f"/v1/audit/proof/inclusion?leaf_hash={leaf}&size=3")
        assert (answer.status, error_code(answer.body)) == (404, "not_found")
