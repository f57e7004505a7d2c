"""Two nodes with default configs on one host (issue 11, "Node API port").

`node init` used to write `[api] port = 8248`: the second node on a host could not
listen, and any test failed whenever that port was taken. The default is now 0 (a free
port at each start, written to DATA/api.port, where the CLI finds it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.integration.test_node_process import PASS, Net, NodeProcess, _until
from tests.integration.test_node_process import net as node_net

net = node_net  # the fixture: FR and US made by `node init` with its defaults


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY247_PASSPHRASE", PASS)


def _status(net: Net, member: str) -> dict[str, object]:
    # The installed command as an operator runs it, in its own process.
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "node",
            "status",
            "--json",
            "--config",
            str(net.node_toml(member)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "RELAY247_PASSPHRASE": PASS},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    answer: dict[str, object] = json.loads(out.stdout)
    return answer


@pytest.mark.slow
async def test_two_default_nodes_on_one_host_both_answer_the_cli(net: Net) -> None:
    for member in ("FR", "US"):
        assert "\nport = 0\n" in net.node_toml(member).read_text()
    procs = [NodeProcess(net.node_toml(m)) for m in ("FR", "US")]
    for p in procs:
        p.start()
    try:
        ports = [p.config.parent / "api.port" for p in procs]
        await _until(lambda: all(f.exists() for f in ports))
        assert len({f.read_text() for f in ports}) == 2
        assert _status(net, "FR")["member"] == "FR"
        assert _status(net, "US")["member"] == "US"
        assert all(p.proc is not None and p.proc.poll() is None for p in procs)
    finally:
        codes = [p.terminate() for p in procs]
    assert codes == [0, 0]
