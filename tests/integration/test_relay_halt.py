"""The relay refuses to fork its own log or roll its directory back, on both backends.

Two guards found by review (issue 7): a directory publication is one compare-and-set in
storage, so the older of two racing versions is never stored after the newer; and a relay
whose stored log stopped extending the checkpoint it served (a database rolled back under
it) halts: no signature, no write, /healthz 503, instead of signing a fork.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import msgspec
import pytest

from protocol.errors import StorageError
from relay.audit._checkpointer import sign_if_due, tick
from relay.config import AuditSection
from relay.storage import DIRECTORY, StoredCheckpoint
from schemas.errors import ErrorBody, ErrorCode
from schemas.relay_api import DirectoryResult
from tests.support.network import make_network
from tests.support.relay import (
    RunningRelay,
    envelope,
    fetch,
    grow,
    post_signed,
    running_relay,
    signed,
)

pytestmark = pytest.mark.usefixtures("relay_backend")
FAST = AuditSection(checkpoint_interval=0.1, checkpoint_every=1000)
Publish = Callable[[int, bytes, bytes], Awaitable[int | None]]


async def post_directory(relay: RunningRelay, body: bytes) -> tuple[int, bytes]:
    async with relay.session.post(
        relay.url + "/v1/directory", data=body, headers={"Content-Type": "application/json"}
    ) as resp:
        return resp.status, await resp.read()


def racing(relay: RunningRelay, first: bytes, version: int) -> None:
    """Make another writer store ``first`` (version ``version``) just before this one writes."""
    store = relay.state.store
    real: Publish = store.publish_directory

    async def publish(v: int, signed_bytes: bytes, entry: bytes) -> int | None:
        await real(version, first, b"other instance " + entry)
        return await real(v, signed_bytes, entry)

    store.publish_directory = publish  # type: ignore[method-assign,assignment]


async def test_store_compare_and_set(tmp_path: Path) -> None:
    net = make_network()
    async with running_relay(tmp_path, net) as relay:  # publishes version 1
        store = relay.state.store
        v3 = net.signed(version=3)
        index = await store.publish_directory(3, v3, b"published 3")
        assert index is not None
        assert await store.leaf_entries(index, index + 1) == [b"published 3"]
        size = await store.tree_size()
        assert await store.publish_directory(2, net.signed(version=2), b"published 2") is None
        assert await store.publish_directory(3, v3, b"published 3 again") is None
        assert await store.tree_size() == size  # a refused publication logs nothing
        assert await store.get_meta(DIRECTORY) == v3


async def test_older_version_losing_the_race_is_refused(tmp_path: Path) -> None:
    net = make_network()
    async with running_relay(tmp_path, net) as relay:
        v3 = net.signed(version=3)
        racing(relay, v3, 3)
        status, body = await post_directory(relay, net.signed(version=2))
        assert status == 409
        assert msgspec.json.decode(body, type=ErrorBody).code == ErrorCode.DIRECTORY_ROLLBACK
        assert relay.state.directory is not None
        assert relay.state.directory.version == 3
        assert (await fetch(relay, "/v1/directory")).body == v3
        assert await relay.state.store.get_meta(DIRECTORY) == v3


async def test_same_version_published_twice_at_once_answers_alike(tmp_path: Path) -> None:
    net = make_network()
    async with running_relay(tmp_path, net) as relay:
        v2 = net.signed(version=2)
        racing(relay, v2, 2)
        status, body = await post_directory(relay, v2)
        assert status == 200, body
        result = msgspec.json.decode(body, type=DirectoryResult)
        assert result.version == 2
        entries = await relay.state.store.leaf_entries(result.leaf_index, result.leaf_index + 1)
        assert entries[0].startswith(b"other instance ")  # the one publication logged


async def assert_halted(relay: RunningRelay, size: int) -> None:
    """Health 503, a submission refused with 503 unavailable, nothing appended or signed."""
    health = await fetch(relay, "/healthz")
    assert health.status == 503
    answer = await post_signed(relay, "FR", "/v1/envelopes", envelope(relay.net, msg_id="1a7e" * 8))
    assert answer.status == 503
    assert msgspec.json.decode(answer.body, type=ErrorBody).code == ErrorCode.UNAVAILABLE
    # Cosignatures are writes too: a halted relay stores none (they were stored before).
    answer = await post_signed(relay, "FR", "/v1/audit/cosignature", b"{}")
    assert answer.status == 503
    assert msgspec.json.decode(answer.body, type=ErrorBody).code == ErrorCode.UNAVAILABLE
    assert await relay.state.store.tree_size() == size
    await tick(relay.state)  # the background task does nothing more
    assert await sign_if_due(relay.state, force=True) is None
    assert await relay.state.store.tree_size() == size


async def test_checkpoints_rolled_back_under_the_relay_halt_it(tmp_path: Path) -> None:
    async with running_relay(tmp_path, audit=FAST) as relay:
        await grow(relay, 3)
        early = await signed(relay)
        await grow(relay, 3)
        await signed(relay)
        size = await relay.state.store.tree_size()
        store = relay.state.store

        async def older(at: int | None = None) -> StoredCheckpoint | None:
            return early  # what a database restored from an older snapshot holds

        store.checkpoint = older  # type: ignore[method-assign,assignment]
        # This tick finds the rollback, unless the relay's own (every 0.1 s) found it
        # first: then it halted already and this one does nothing (seen under load).
        with contextlib.suppress(StorageError):  # "audit log was rolled back ...; halted"
            await tick(relay.state)
        assert relay.state.audit.halted is not None
        assert f"stored newest {early.size}" in relay.state.audit.halted  # the rollback
        await assert_halted(relay, size)


async def test_rewritten_prefix_is_never_signed_over(tmp_path: Path) -> None:
    async with running_relay(tmp_path, audit=FAST) as relay:
        await grow(relay, 4)
        cp = await signed(relay)
        await grow(relay, 2)
        store = relay.state.store
        real_root = store.root

        async def root(size: int) -> bytes:
            value = await real_root(size)
            # The tree below the signed size no longer has the signed root.
            return bytes(32) if size == cp.size else value

        store.root = root  # type: ignore[method-assign]
        with pytest.raises(StorageError, match="rolled back"):
            await sign_if_due(relay.state, force=True)
        latest = relay.state.audit.latest
        assert latest is not None
        assert latest.size == cp.size  # nothing new was signed
        await assert_halted(relay, await relay.state.store.tree_size())


async def test_healthy_relay_signs_on(tmp_path: Path) -> None:
    # The guard costs one root read and refuses nothing on an honest log.
    async with running_relay(tmp_path, audit=FAST) as relay:
        await grow(relay, 2)
        first = await signed(relay)
        await grow(relay, 2)
        second = await signed(relay)
        assert second.size > first.size
        assert relay.state.audit.halted is None
        assert (await fetch(relay, "/healthz")).status == 200
        async with aiohttp.ClientSession() as session, session.get(relay.url + "/healthz") as resp:
            assert (await resp.json())["status"] == "ok"
