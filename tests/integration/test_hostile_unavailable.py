"""The one 5xx a peer may see: ``503 unavailable``, and it always says when to retry.

The hostile suite allows a 503 only with ``Retry-After`` (tests/support/raw_http.py
``assert_sound``). Here the relay and the node API are put in the states that answer
503 on purpose: a relay with no directory yet, a node whose relay is down.
"""

from __future__ import annotations

import os
from pathlib import Path

from schemas.errors import ErrorCode
from tests.integration._hostile_servers import preservation_request
from tests.integration._node_services import peers
from tests.support.hostile import Findings, sign, watch_logs
from tests.support.network import make_network
from tests.support.raw_http import assert_sound, exchange, request_bytes
from tests.support.relay import envelope, running_relay


async def test_relay_without_a_directory_says_when_to_retry(tmp_path: Path) -> None:
    found = Findings()
    with watch_logs() as logs:
        async with running_relay(tmp_path, publish=False) as relay:
            key = relay.net.members["US"].transport
            body = envelope(relay.net, "US", "FR")
            requests = {
                "GET /v1/mailbox": ("GET", "/v1/mailbox", b""),
                "POST /v1/envelopes": ("POST", "/v1/envelopes", body),
                "GET /v1/members/status": ("GET", "/v1/members/status", b""),
            }
            for label, (method, path, data) in requests.items():
                with found.check(label):
                    headers = sign(relay.url, key, method, path, data)
                    answer = await exchange(relay.url, request_bytes(method, path, headers, data))
                    error = assert_sound(answer, "")
                    assert error is not None
                    assert error.code is ErrorCode.UNAVAILABLE, error
                    assert answer.headers["Retry-After"].isascii()
                    assert int(answer.headers["Retry-After"]) > 0
    found.assert_none()
    logs.assert_quiet()


async def test_node_api_export_with_the_relay_down_says_when_to_retry(tmp_path: Path) -> None:
    net = make_network()
    relay_cm = running_relay(tmp_path / "relay", net)
    relay = await relay_cm.__aenter__()
    relay_up = True
    try:
        async with peers(tmp_path, net, relay) as p:
            fr = p["FR"]
            sent = await fr.api.send("US", preservation_request("FR", "US"))
            await relay_cm.__aexit__(None, None, None)
            relay_up = False
            token = (fr.data / "api.token").read_text().strip()
            target = f"/v1/cases/{sent.case_id}/export"
            headers = {"Authorization": f"Bearer {token}"}
            answer = await exchange(fr.api.base_url, request_bytes("GET", target, headers))
            error = assert_sound(answer, f"GET {target}")
            assert error is not None
            assert error.code is ErrorCode.UNAVAILABLE, error
            assert int(answer.headers["Retry-After"]) > 0
            # A case id nobody holds is still a plain 404, relay or not.
            unknown = f"/v1/cases/{os.urandom(16).hex()}/export"
            answer = await exchange(fr.api.base_url, request_bytes("GET", unknown, headers))
            missing = assert_sound(answer, "")
            assert missing is not None
            assert missing.code is ErrorCode.NOT_FOUND
    finally:
        if relay_up:
            await relay_cm.__aexit__(None, None, None)
