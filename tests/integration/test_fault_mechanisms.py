"""The fault suite's mechanisms do what they claim (tests/faults; issue 17 item 2).

The TCP fault proxy against a real echo server on loopback; libfaketime moving one child
process's wall clock and back (skipped with the reason where it is not installed, failed
when RELAY247_REQUIRE_TOOLS names ``faketime``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.faults.proxy import FaultProxy
from tests.faults.tools import Missing, faketime_lib, required

GUARD = 10.0  # seconds: a hang guard only


@asynccontextmanager
async def echo_through_proxy() -> AsyncIterator[FaultProxy]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = FaultProxy("test", [("127.0.0.1", 1), ("127.0.0.1", port)])  # 1: refused
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
        server.close()


async def _round_trip(port: int, data: bytes = b"ping") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(GUARD):
            return await reader.readexactly(len(data))
    finally:
        writer.close()


async def test_the_proxy_forwards_to_the_first_upstream_that_accepts() -> None:
    async with echo_through_proxy() as proxy:
        assert await _round_trip(proxy.port) == b"ping"


async def test_a_partition_resets_open_connections_and_refuses_new_ones() -> None:
    async with echo_through_proxy() as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"x")
        assert await reader.readexactly(1) == b"x"
        proxy.partition()
        async with asyncio.timeout(GUARD):
            assert await reader.read(1) == b""  # reset or closed
        writer.close()
        with pytest.raises((asyncio.IncompleteReadError, OSError)):
            await _round_trip(proxy.port)
        assert proxy.refused >= 1
        proxy.unpartition()
        assert await _round_trip(proxy.port) == b"ping"


async def test_a_stall_holds_bytes_until_it_heals() -> None:
    async with echo_through_proxy() as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        proxy.stall()
        writer.write(b"held")
        await writer.drain()
        read = asyncio.ensure_future(reader.readexactly(4))
        await asyncio.sleep(0.3)  # nothing may arrive while stalled
        assert not read.done()
        proxy.unstall()
        async with asyncio.timeout(GUARD):
            assert await read == b"held"
        writer.close()


async def test_delay_holds_each_chunk_at_least_the_base_delay() -> None:
    async with echo_through_proxy() as proxy:
        proxy.delay(0.2, 0.0)
        started = time.monotonic()
        assert await _round_trip(proxy.port) == b"ping"
        assert time.monotonic() - started >= 0.4  # both directions, a lower bound only


async def test_certain_loss_ends_the_connection() -> None:
    async with echo_through_proxy() as proxy:
        proxy.loss(1.0)
        with pytest.raises((asyncio.IncompleteReadError, OSError)):
            await _round_trip(proxy.port)
        proxy.loss(0.0)
        assert await _round_trip(proxy.port) == b"ping"


def test_faketime_moves_one_process_wall_clock_and_back(tmp_path: Path) -> None:
    try:
        lib = faketime_lib()
    except Missing as exc:
        if required("faketime"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    clock = tmp_path / "clock"
    clock.write_text("+3600\n")
    env = {
        **os.environ,
        "LD_PRELOAD": lib,
        "FAKETIME_TIMESTAMP_FILE": str(clock),
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_NO_CACHE": "1",
    }
    code = "import time; print(time.time() - float(input()), time.monotonic())"

    def offset() -> float:
        out = subprocess.run(
            [sys.executable, "-c", code],
            input=f"{time.time()}\n",
            capture_output=True,
            text=True,
            env=env,
            check=True,
            timeout=60,
        ).stdout.split()
        return float(out[0])

    assert 3500 < offset() < 3700  # an hour ahead (minus the start-up time)
    clock.write_text("-600\n")
    assert -700 < offset() < -500
