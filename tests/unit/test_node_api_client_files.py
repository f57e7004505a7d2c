"""The node API client reads ``api.port``, ``api.token`` and ``node.toml`` bounded.

Before, each was ``read_text()``: a FIFO left in place of ``api.port`` hung every CLI
command that talks to the node, ``/dev/zero`` there filled the memory, and a
``node.toml`` saying ``api = 1`` was an AttributeError traceback.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from node.api.client import NodeApiClient, NodeNotRunningError
from protocol.errors import TransportError
from tests.support.fifo import fifo

TOKEN = "ab" * 32


async def test_a_fifo_for_the_port_is_not_running_not_a_hang(tmp_path: Path) -> None:
    with fifo(tmp_path / "api.port"):
        async with aiohttp.ClientSession() as session:
            with pytest.raises(NodeNotRunningError):
                NodeApiClient.from_data_dir(tmp_path, session)


@pytest.mark.parametrize(
    "target",
    [
        "/dev/zero",  # not a regular file: refused before any read (was: memory filled)
        # a real EIO: a regular file whose offset 0 cannot be read; read_file says
        # StorageUnavailableError for it (exit 1 at a start): the client catches that too
        "/proc/self/mem",
    ],
)
async def test_the_port_or_the_token_unreadable_is_our_error(tmp_path: Path, target: str) -> None:
    (tmp_path / "api.port").symlink_to(target)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(NodeNotRunningError):
            NodeApiClient.from_data_dir(tmp_path, session)
        (tmp_path / "api.port").unlink()
        (tmp_path / "api.port").write_text("4242\n")
        (tmp_path / "api.token").symlink_to(target)
        with pytest.raises(TransportError, match="cannot read the node's API token"):
            NodeApiClient.from_data_dir(tmp_path, session)


@pytest.mark.parametrize(
    ("toml", "host"),
    [
        ('[api]\nhost = "::1"\n', "[::1]"),
        ("api = 1\n", "127.0.0.1"),
        ("[api]\nhost = 7\n", "127.0.0.1"),
        ("[api\n", "127.0.0.1"),
        ("a = " + "[" * 5000 + "]" * 5000 + "\n", "127.0.0.1"),
    ],
)
async def test_the_host_from_node_toml_never_crashes(tmp_path: Path, toml: str, host: str) -> None:
    (tmp_path / "api.port").write_text("4242\n")
    (tmp_path / "api.token").write_text(TOKEN + "\n")
    (tmp_path / "node.toml").write_text(toml)
    async with aiohttp.ClientSession() as session:
        client = NodeApiClient.from_data_dir(tmp_path, session)
    assert client.base_url == f"http://{host}:4242"
