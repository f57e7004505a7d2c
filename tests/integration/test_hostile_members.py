"""A member with valid credentials reaching for another member's data.

At the relay, DE signs its requests with its own real key and names US's mailbox, US's
message ids and US's acks; at the node API, FR's API is asked for a case only US holds,
and with US's token. Every attempt gets a sound refusal (or DE's own data), and US's
message is still delivered to US afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import msgspec
import pytest

from protocol.keys import SigningKey
from schemas.errors import ErrorCode
from schemas.relay_api import MailboxPage
from tests.integration._hostile_servers import hostile_node, hostile_relay
from tests.support.hostile import Findings, query_string, sign
from tests.support.hostile_bodies import ack_bytes
from tests.support.raw_http import assert_sound, exchange, request_bytes


async def test_a_member_cannot_read_or_ack_another_members_mail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = Findings()
    async with hostile_relay(tmp_path, monkeypatch) as relay:
        net = relay.running.net
        de = net.members["DE"].transport
        msg_id, header = await relay.new_message("FR", "US")
        for name in ("member", "recipient", "to", "mailbox", "for"):
            target = "/v1/mailbox" + query_string({name: "US", "after": "0", "limit": "500"})
            with found.check(f"DE pulls with {name}=US"):
                raw = request_bytes("GET", target, sign(relay.url, de, "GET", target))
                answer = await exchange(relay.url, raw)
                if assert_sound(answer, "") is None:
                    page = msgspec.json.decode(answer.body, type=MailboxPage)
                    assert not page.messages, "DE was handed US's mail"
            target = "/v1/mailbox/ws" + query_string({name: "US"})
            with found.check(f"DE opens US's push with {name}=US"):
                await _ws_sees_nothing(relay.url, target, de)
        acks = {
            # DE acks US's message in its own name: not DE's message.
            "DE acks US's message as DE": (
                ack_bytes(
                    net.members["DE"].signing,
                    msg_id=msg_id,
                    sender="FR",
                    recipient="DE",
                    header=header,
                ),
                ErrorCode.NOT_FOUND,
            ),
            # DE hands in an ack that US signed (a replay under DE's transport key).
            "DE posts US's own ack": (
                ack_bytes(
                    net.members["US"].signing,
                    msg_id=msg_id,
                    sender="FR",
                    recipient="US",
                    header=header,
                ),
                ErrorCode.UNAUTHENTICATED,
            ),
            "DE acks an unknown id": (
                ack_bytes(
                    net.members["DE"].signing,
                    msg_id=os.urandom(16).hex(),
                    sender="US",
                    recipient="DE",
                    header=header,
                ),
                ErrorCode.NOT_FOUND,
            ),
        }
        for label, (body, code) in acks.items():
            with found.check(label):
                headers = sign(relay.url, de, "POST", "/v1/acks", body)
                answer = await exchange(relay.url, request_bytes("POST", "/v1/acks", headers, body))
                error = assert_sound(answer, "")
                assert error is not None, f"accepted: {answer.body[:200]!r}"
                assert error.code is code, error
        # US's mail is untouched: still waiting for US.
        page = await relay.running.client("US").mailbox(0, 500)
        assert msg_id in {m.msg_id for m in page.messages}
        found.assert_none()


async def _ws_sees_nothing(url: str, target: str, key: SigningKey) -> None:
    """Open the push socket as DE; the first frame (if any) must carry none of US's mail."""
    headers = sign(url, key, "GET", target)
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url + target, headers=headers, timeout=aiohttp.ClientWSTimeout(5)) as ws,
    ):
        try:
            msg = await ws.receive(timeout=0.5)
        except TimeoutError:
            return  # nothing pushed: DE's own mailbox is empty
        if msg.type is aiohttp.WSMsgType.TEXT:
            page = msgspec.json.decode(msg.data, type=MailboxPage)
            assert not page.messages, "DE was pushed US's mail"


async def test_node_api_keeps_to_its_own_cases_and_token(tmp_path: Path) -> None:
    found = Findings()
    async with hostile_node(tmp_path) as node:
        foreign = node.foreign_case
        us_token = (node.other.data / "api.token").read_text().strip()
        for target in (f"/v1/cases/{foreign}", f"/v1/cases/{foreign}/export"):
            with found.check(f"GET {target}"):
                answer = await exchange(node.url, request_bytes("GET", target, node.auth()))
                error = assert_sound(answer, "")
                assert error is not None
                assert error.code is ErrorCode.NOT_FOUND, error
        for target in ("/v1/status", f"/v1/cases/{node.case_id}", "/v1/inbox"):
            with found.check(f"GET {target} with US's token"):
                headers = {"Authorization": f"Bearer {us_token}"}
                answer = await exchange(node.url, request_bytes("GET", target, headers))
                error = assert_sound(answer, "")
                assert error is not None
                assert error.code is ErrorCode.UNAUTHENTICATED, error
        with found.check("FR's case list"):
            cases = await node.peer.api.cases()
            assert foreign not in {c.case_id for c in cases.cases}
        found.assert_none()
