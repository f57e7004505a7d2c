"""The CLI tells "node not running" from "the node's answer did not arrive whole" (issue 11).

A node whose answer was cut short used to be reported as "node not running", which sends
the officer to start a node that is running. A raw server on loopback, found through an
``api.port`` file as the CLI finds a node, breaks its answers in each way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import cli

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _cut_short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    writer.write(b'Content-Length: 100\r\n\r\n{"cases": [')
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def _too_large(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n{" % (1 << 40))
    await writer.drain()
    await reader.read()  # until the client gives up and closes
    writer.close()
    await writer.wait_closed()


async def _no_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.close()
    await writer.wait_closed()


@pytest.fixture
async def fake_node(tmp_path: Path) -> AsyncIterator[Callable[[Answer], Awaitable[Path]]]:
    servers: list[asyncio.Server] = []

    async def start(answer: Answer) -> Path:
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        servers.append(server)
        data = tmp_path / f"node{len(servers)}"
        data.mkdir()
        (data / "api.port").write_text(str(server.sockets[0].getsockname()[1]))
        (data / "api.token").write_text("00" * 32)
        return data

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def _cases(data: Path) -> Result:
    # The command runs its own event loop; the fake node serves on this one.
    runner = CliRunner()
    return await asyncio.to_thread(
        runner.invoke, cli, ["node", "cases", "--data", str(data)], catch_exceptions=False
    )


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (_cut_short, "cut short: the connection closed after 11 bytes of 100"),
        (_too_large, "larger than"),
        (_no_answer, "no whole answer from the node"),
    ],
)
async def test_a_broken_answer_is_not_node_not_running(
    fake_node: Callable[[Answer], Awaitable[Path]], answer: Answer, said: str
) -> None:
    data = await fake_node(answer)
    result = await _cases(data)
    assert result.exit_code == 1, result.output
    assert "node not running" not in result.output
    assert said in result.output
    assert str(data) in result.output


async def test_nothing_listening_is_still_node_not_running(tmp_path: Path) -> None:
    server = await asyncio.start_server(_no_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    (tmp_path / "api.port").write_text(str(port))
    (tmp_path / "api.token").write_text("00" * 32)
    result = await _cases(tmp_path)
    assert result.exit_code == 1
    assert f"node not running in {tmp_path}" in result.output
