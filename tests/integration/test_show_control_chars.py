"""A member's body text cannot drive the recipient officer's terminal.

Body text is the sender's. ``relay247 node show`` printed it as is, so a member could
put ESC sequences in a field (clear the screen, retitle the window, write the officer's
clipboard through OSC 52), a CR that overwrites the line, or a bidi override that
reorders what the officer reads. They are now shown as ``\\uXXXX``; line breaks stay.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
from click.testing import CliRunner

from cli.main import cli
from schemas._bodies_request import PreservationRequest
from schemas.messages import encode_body
from tests.integration._node_services import peers
from tests.integration.test_input_body_binding import _request, _send
from tests.support.fake_relay import HANG_GUARD
from tests.support.network import make_network
from tests.support.relay import running_relay

HOSTILE = "Facts.\x1b]52;c;ZXZpbA==\x07\x1b[2J\rline two\u202eevil\nNext paragraph."


async def test_body_text_cannot_drive_the_terminal(tmp_path: Path) -> None:
    net = make_network()
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, members=("US",)) as p,
    ):
        us = p["US"]
        body = _request("FR", "US")
        assert isinstance(body, PreservationRequest)
        body = msgspec.structs.replace(
            body, offence=msgspec.structs.replace(body.offence, summary_of_facts=HOSTILE)
        )
        await _send(relay, net, body, encode_body(body), 1)
        async with asyncio.timeout(HANG_GUARD):
            while True:
                if (await us.api.cases()).cases:
                    break
                await asyncio.sleep(0.05)
        result = await asyncio.to_thread(
            CliRunner().invoke, cli, ["node", "show", body.case_id, "--data", str(us.data)]
        )
        assert result.exit_code == 0, result.output
        out = result.output
        assert "Facts." in out
        assert "Next paragraph." in out
        for ch in ("\x1b", "\x07", "\r", "\u202e"):
            assert ch not in out, repr(ch)
        assert "\\u001b]52;c;" in out  # shown, not obeyed
