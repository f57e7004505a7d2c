"""The units set MemoryDenyWriteExecute=yes: the real relay must run under that restriction.

systemd cannot be run here (no systemd as PID 1, so no `systemd-run`), so the same
restriction is applied with the kernel's own switch, ``prctl(PR_SET_MDWE,
PR_MDWE_REFUSE_EXEC_GAIN)`` (Linux >= 6.3, inherited across fork and execve): no mapping
may be both writable and executable, and none may become executable later. systemd 252
enforces MemoryDenyWriteExecute= with a seccomp filter on mmap/mprotect with the same
effect on these two cases (systemd.exec(5)); systemd >= 253 uses the prctl when the
kernel has it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from node.messaging.transport import RelayClient
from tests.integration._crash_load import RelayProcess
from tests.support.network import make_network
from tests.support.pg import PG_DSN, requires_pg
from tests.support.relay import PASSPHRASE, envelope, free_port, write_relay_dir

# Sets the restriction, then replaces itself with the given command (argv[1:]).
_WRAPPER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    sys.exit(77)
os.execv(sys.argv[1], sys.argv[1:])
"""

_WX_MAP = """
import mmap, sys
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
except PermissionError:
    sys.exit(0)
sys.exit(1)
"""


def _mdwe(*argv: str) -> list[str]:
    return [sys.executable, "-c", _WRAPPER, *argv]


def _require_mdwe() -> None:
    probe = subprocess.run(_mdwe(sys.executable, "-c", _WX_MAP), check=False)
    if probe.returncode == 77:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux >= 6.3 needed)")
    # The restriction is active after execve: a W+X mapping is refused.
    assert probe.returncode == 0, "PR_SET_MDWE did not refuse a writable+executable mapping"


class _MdweRelay(RelayProcess):
    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            argv = _mdwe(sys.executable, "-m", "cli", "relay", "serve", "--config")
            return subprocess.Popen([*argv, str(self.config)], stdout=log, stderr=log, env=self.env)


async def test_relay_serves_and_stops_under_memory_deny_write_execute(tmp_path: Path) -> None:
    _require_mdwe()
    net = make_network()
    port = free_port()
    config = write_relay_dir(tmp_path, net, port)
    relay = _MdweRelay(config, port, env={"RELAY247_PASSPHRASE": PASSPHRASE.decode()})
    await relay.start()
    try:
        async with aiohttp.ClientSession() as session:
            fr = RelayClient(relay.url, net.members["FR"].transport, session)
            us = RelayClient(relay.url, net.members["US"].transport, session)
            # Directory signatures, envelope and RFC 9421 checks: PyNaCl/cffi, msgspec,
            # aiohttp and SQLite all run inside the restricted process.
            await fr.publish_directory(net.signed())
            data = envelope(net)
            await fr.submit(data)
            assert [m.envelope for m in (await us.mailbox()).messages] == [data]
    finally:
        code = relay.terminate()
    # Clean stop: the stop event is logged and a last checkpoint signed.
    assert code == 0, relay.stderr()


@requires_pg
def test_asyncpg_works_under_memory_deny_write_execute() -> None:
    _require_mdwe()
    code = (
        "import asyncio, sys, asyncpg\n"
        "async def main():\n"
        "    c = await asyncpg.connect(sys.argv[1])\n"
        "    assert await c.fetchval('SELECT 41 + 1') == 42\n"
        "    await c.close()\n"
        "asyncio.run(main())\n"
    )
    assert PG_DSN is not None
    done = subprocess.run(_mdwe(sys.executable, "-c", code, PG_DSN), check=False)
    assert done.returncode == 0
