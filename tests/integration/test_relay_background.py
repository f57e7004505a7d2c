"""The relay's background task and instance settings on one instance, on both backends.

Expiry sweep, leader role and metrics, requests signed for ``relay.instance_url``, and
what an instance picks up from storage that another instance wrote (directory,
cosignatures). The two-instance PostgreSQL tests are in test_relay_instances.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import msgspec
import pytest

from protocol.httpsig import sign_request
from relay.config import AuditSection
from relay.storage import DIRECTORY_STAMP
from schemas.errors import ErrorBody
from schemas.relay_api import RelayInfo
from tests.support.network import Network, make_network
from tests.support.relay import (
    RunningRelay,
    envelope,
    fetch,
    free_port,
    running_relay,
    write_relay_dir,
)

pytestmark = pytest.mark.usefixtures("relay_backend")
FAST = AuditSection(checkpoint_interval=0.1, checkpoint_every=1000)
DEADLINE = 15.0  # seconds: a hang guard for conditions the next tick or two makes true


@asynccontextmanager
async def relay_with(
    tmp: Path, net: Network, clock: list[timedelta] | None = None, **settings: str
) -> AsyncIterator[RunningRelay]:
    """A running relay (with its background task) whose config has these ``key = value``."""
    config = write_relay_dir(tmp, net, free_port())
    text = config.read_text()
    for key, value in settings.items():
        text, n = re.subn(rf"(?m)^(# )?{key} = .*$", f"{key} = {value}", text, count=1)
        assert n == 1, key
    config.write_text(text)
    offset = clock if clock is not None else [timedelta()]
    async with running_relay(
        tmp, net, fresh=False, audit=FAST, clock=lambda: datetime.now(UTC) + offset[0]
    ) as relay:
        yield relay


async def metric(relay: RunningRelay, name: str) -> float | None:
    """The value of one sample of ``/metrics`` (``name`` with its labels), or None."""
    text = (await fetch(relay, "/metrics")).body.decode()
    m = re.search(rf"(?m)^{re.escape(name)} (\S+)$", text)
    return float(m[1]) if m else None


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll an async condition until true; fail after DEADLINE (a hang guard)."""
    deadline = time.monotonic() + DEADLINE
    while not await condition():
        assert time.monotonic() < deadline, f"not within {DEADLINE} s: {what}"
        await asyncio.sleep(0.05)  # polling a condition, not asserting a duration


async def test_expired_envelope_leaves_the_mailbox_and_is_counted(tmp_path: Path) -> None:
    net = make_network()
    clock = [timedelta()]
    async with relay_with(tmp_path, net, clock, expire_interval="0.1") as relay:
        short = envelope(net, "FR", "US", lifetime=timedelta(hours=1))
        long = envelope(net, "FR", "US", lifetime=timedelta(days=2))
        for data in (short, long):
            await relay.client("FR").submit(data)
        assert [m.envelope for m in (await relay.client("US").mailbox()).messages] == [short, long]
        clock[0] = timedelta(hours=2)  # the relay's clock only: requests are signed now

        async def dropped() -> bool:
            return len(await relay.state.store.mailbox("US", 0, 10)) == 1

        await until(dropped, "the expired envelope is dropped")
        [left] = await relay.state.store.mailbox("US", 0, 10)
        assert left.envelope == long
        # counted by the sweep that dropped it, once its storage call returned
        await until(
            lambda: _equals(metric(relay, "relay247_expired_total"), 1.0), "the drop is counted"
        )
        await until(
            lambda: _equals(metric(relay, 'relay247_mailbox_depth{recipient="US"}'), 1.0),
            "the depth gauge is recounted",
        )
        # The leaf of the dropped envelope stays in the log.
        assert await relay.state.store.tree_size() >= 3


async def _equals(value: Awaitable[float | None], expected: float) -> bool:
    return await value == expected


async def test_no_sweep_before_the_interval(tmp_path: Path) -> None:
    net = make_network()
    clock = [timedelta()]
    async with relay_with(tmp_path, net, clock, expire_interval="3600.0") as relay:
        await relay.client("FR").submit(envelope(net, "FR", "US"))
        clock[0] = timedelta(hours=2)
        size = await relay.state.store.tree_size()
        for _ in range(2):  # the second tick starts after the clock moved
            relay.state.metrics.log_size.set(-1)  # set again at the end of every tick
            await until(
                lambda: _equals(metric(relay, "relay247_log_size"), size), "a background tick"
            )
        assert len(await relay.state.store.mailbox("US", 0, 10)) == 1
        assert await metric(relay, "relay247_expired_total") == 0.0


async def test_single_instance_is_leader_with_checkpoint_metrics(tmp_path: Path) -> None:
    net = make_network()
    async with relay_with(tmp_path, net) as relay:
        before = time.time()
        await relay.client("FR").submit(envelope(net, "FR", "US"))
        health = msgspec.json.decode((await fetch(relay, "/healthz")).body)
        assert health["role"] == "leader"

        async def signed() -> bool:
            latest = relay.state.audit.latest
            return latest is not None and latest.size == await relay.state.store.tree_size()

        await until(signed, "a checkpoint of the whole log")
        size = await relay.state.store.tree_size()
        await until(lambda: _equals(metric(relay, "relay247_log_size"), size), "log size")
        assert await metric(relay, "relay247_leader") == 1.0
        assert await metric(relay, "relay247_checkpoint_size") == size
        stamp = await metric(relay, "relay247_checkpoint_timestamp_seconds")
        assert stamp is not None
        assert stamp >= before - 1
        assert await metric(relay, "relay247_checkpoint_cosignatures") == 0.0
        seen = await metric(relay, 'relay247_member_last_seen_timestamp_seconds{member="FR"}')
        assert seen is not None
        assert seen >= before - 1
        # Only members that made an authenticated request appear.
        assert (
            await metric(relay, 'relay247_member_last_seen_timestamp_seconds{member="DE"}') is None
        )


async def _signed_submit(relay: RunningRelay, origin: str, data: bytes) -> tuple[int, bytes]:
    """POST the envelope to the relay, signed for ``origin`` + path (not the URL used)."""
    key = relay.net.members["FR"].transport
    headers = {"Content-Type": "application/json"}
    headers.update(
        sign_request(
            "POST",
            origin + "/v1/envelopes",
            headers,
            data,
            key=key,
            keyid=key.fingerprint,
            now=int(time.time()),
            nonce=os.urandom(16).hex(),
        )
    )
    async with relay.session.post(relay.url + "/v1/envelopes", data=data, headers=headers) as resp:
        return resp.status, await resp.read()


async def test_requests_signed_for_the_instance_url_are_accepted(tmp_path: Path) -> None:
    net = make_network()
    instance = "http://relay-1.internal:8247"
    async with relay_with(tmp_path, net, instance_url=f'"{instance}"') as relay:
        public = relay.state.config.relay.public_url
        for origin in (public, instance):
            status, body = await _signed_submit(relay, origin, envelope(net, "FR", "US"))
            assert status == 202, body
        # A third origin is not ours: the signature does not verify.
        status, body = await _signed_submit(
            relay, "http://relay-2.internal:8247", envelope(net, "FR", "US")
        )
        assert status == 401, body
        assert msgspec.json.decode(body, type=ErrorBody).code.value == "unauthenticated"
        # The log origin is still the public URL's.
        info = msgspec.json.decode((await fetch(relay, "/v1/info")).body, type=RelayInfo)
        assert info.log_origin == f"{public.split('://')[1]}/test-relay"


async def test_without_instance_url_only_the_public_url_is_accepted(tmp_path: Path) -> None:
    net = make_network()
    async with relay_with(tmp_path, net) as relay:
        status, body = await _signed_submit(
            relay, "http://relay-1.internal:8247", envelope(net, "FR", "US")
        )
        assert status == 401, body


async def test_a_directory_stored_by_another_instance_comes_into_force(tmp_path: Path) -> None:
    net = make_network()
    async with relay_with(tmp_path, net) as relay:
        assert relay.state.directory is not None
        assert relay.state.directory.version == 1
        net.version = 2
        v2 = net.signed()
        store = relay.state.store
        # What another instance writes when it publishes (see post_directory): a stamp
        # that does not match the stored directory is a half-finished publication...
        stamp = f"2 {hashlib.sha256(v2).hexdigest()}".encode()
        await store.set_meta(DIRECTORY_STAMP, stamp)
        await until(
            lambda: _is(relay.state.directory_stamp, None), "the torn publication is retried"
        )
        assert relay.state.directory.version == 1
        # ...and once the directory is there too, it is in force on this instance.
        await store.set_meta("directory", v2)

        async def v2_served() -> bool:
            return (await fetch(relay, "/v1/directory")).body == v2

        await until(v2_served, "directory v2 is served")
        # An older version stored later never replaces a newer one.
        net.version = 1
        v1 = net.signed()
        await store.set_meta("directory", v1)
        await store.set_meta(DIRECTORY_STAMP, f"1 {hashlib.sha256(v1).hexdigest()}".encode())
        await until(
            lambda: _is(
                relay.state.directory_stamp, f"1 {hashlib.sha256(v1).hexdigest()}".encode()
            ),
            "the older stamp is seen",
        )
        assert (await fetch(relay, "/v1/directory")).body == v2


async def _is(value: object, expected: object) -> bool:
    return value == expected


async def test_a_cosignature_stored_by_another_instance_is_served(tmp_path: Path) -> None:
    net = make_network()
    async with relay_with(tmp_path, net) as relay:
        await relay.client("FR").submit(envelope(net, "FR", "US"))
        size = await relay.state.store.tree_size()

        async def covered() -> bool:
            latest = relay.state.audit.latest
            return latest is not None and latest.size == size

        await until(covered, "a checkpoint of the whole log (which then stops growing)")
        latest = relay.state.audit.latest
        assert latest is not None
        # Verified by the instance that received it; here only storage is shared.
        line = b"\xe2\x80\x94 DE stored-elsewhere\n"
        assert await relay.state.store.add_cosignature(latest.size, "DE", line)

        async def served() -> bool:
            body = (await fetch(relay, "/v1/audit/checkpoint")).body
            return body.endswith(line)

        await until(served, "the cosignature is served")
        assert await metric(relay, "relay247_checkpoint_cosignatures") == 1.0


async def test_mailbox_signed_for_the_instance_url(tmp_path: Path) -> None:
    net = make_network()
    instance = "http://relay-1.internal:8247"
    async with relay_with(tmp_path, net, instance_url=f'"{instance}"') as relay:
        key = net.members["US"].transport
        path = "/v1/mailbox?after=0"
        headers = sign_request(
            "GET",
            instance + path,
            {},
            b"",
            key=key,
            keyid=key.fingerprint,
            now=int(time.time()),
            nonce=os.urandom(16).hex(),
        )
        async with relay.session.get(relay.url + path, headers=headers) as resp:
            assert resp.status == 200
        async with aiohttp.ClientSession() as session:
            headers = sign_request(
                "GET",
                "http://elsewhere.internal" + path,
                {},
                b"",
                key=key,
                keyid=key.fingerprint,
                now=int(time.time()),
                nonce=os.urandom(16).hex(),
            )
            async with session.get(relay.url + path, headers=headers) as resp:
                assert resp.status == 401
