"""Atomic publication (issue 11): the working version advances only once a relay took it.

Before, a failed `network publish --relay` still wrote directory-<v>.json and advanced
the version, so that version never reached the relay. Now it stays pending, and
`network push` re-sends the signed bytes; real relay processes on loopback.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import Result

from cli._network import read_state
from tests.integration._crash_load import RelayProcess
from tests.integration.test_cli_relay import PASS, init_relay, make_net, run
from tests.support.network import make_network
from tests.support.relay import PASSPHRASE, free_port, write_relay_dir


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY247_PASSPHRASE", PASS)


async def cli(*args: str | Path) -> Result:
    # The commands run their own event loop: keep them off this one.
    return await asyncio.to_thread(run, *args)


async def test_publish_to_a_relay_that_is_down_or_refuses_then_push(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    res = await cli("network", "publish", "--dir", net, "--relay", down)
    assert res.exit_code == 1, res.output
    assert f"relay247 network push --dir {net} --relay {down}" in res.output
    assert read_state(net).version == 1  # not advanced
    assert (net / "directory-1.json").is_file()  # signed and kept
    signed = (net / "directory-1.json").read_bytes()
    # Publishing again would sign a second, different version 1: refused, push named.
    res = await cli("network", "publish", "--dir", net, "--relay", down)
    assert res.exit_code == 2, res.output
    assert "network push" in res.output
    assert (net / "directory-1.json").read_bytes() == signed

    # A relay that refuses (another network's trust root): still pending.
    other_port = free_port()
    other = RelayProcess(
        write_relay_dir(tmp_path / "other", make_network(), other_port),
        other_port,
        env={"RELAY247_PASSPHRASE": PASSPHRASE.decode()},
    )
    await other.start()
    try:
        res = await cli("network", "push", "--dir", net, "--relay", other.url)
    finally:
        other.terminate()
    assert res.exit_code == 1, res.output
    assert "network push" in res.output
    assert read_state(net).version == 1

    # The right relay: push sends the very bytes signed above, and the version advances.
    port = free_port()
    relay = RelayProcess(init_relay(tmp_path, net, port), port, env={"RELAY247_PASSPHRASE": PASS})
    await relay.start()
    try:
        res = await cli("network", "push", "--dir", net, "--relay", relay.url, "--json")
        assert res.exit_code == 0, res.output
        pushed = json.loads(res.output)
        assert pushed["version"] == 1
        assert pushed["leaf_index"] >= 1
        assert read_state(net).version == 2
        async with asyncio.timeout(30):
            served = await asyncio.to_thread(_get, relay.url + "/v1/directory")
        assert served == signed
        res = await cli("network", "publish", "--dir", net, "--relay", relay.url, "--json")
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)["version"] == 2
        assert read_state(net).version == 3
        # Pushing what the relay holds already is harmless.
        res = await cli("network", "push", "--dir", net, "--relay", relay.url, "--json")
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)["version"] == 2
        assert read_state(net).version == 3
    finally:
        assert relay.terminate() == 0, relay.stderr()


def _get(url: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as resp:  # loopback test URL
        body: bytes = resp.read()
    return body
