"""The node's local API against real nodes and a real relay on loopback (PROTOCOL.md §8.6)."""

from __future__ import annotations

import asyncio
import io
import os
import stat
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import aiohttp
import msgspec
import pytest

from node.api import ensure_token
from node.api.client import NodeApiClient, NodeApiError
from node.events import MessageReceived, ReceiptReceived
from protocol.errors import ConfigError, TransportError
from schemas import node_api as api
from schemas.errors import ErrorBody, ErrorCode
from schemas.examples import example
from schemas.messages import Body, kind_of
from schemas.types import Priority
from serving import ConnectionLimits
from tests.integration._node_services import Peer, alerts_to, peers, webhook_sink
from tests.support.bodies import addressed
from tests.support.fake_relay import HANG_GUARD, next_event
from tests.support.network import make_network
from tests.support.relay import free_port, running_relay

T = TypeVar("T")
_ERROR = msgspec.json.Decoder(ErrorBody)


def request(**changes: object) -> Body:
    """A preservation request of a fresh case, MLA announced 120 days from now."""
    changes.setdefault("case_id", os.urandom(16).hex())
    changes.setdefault("mla_expected_by", (datetime.now(UTC) + timedelta(days=120)).date())
    return addressed(
        msgspec.structs.replace(example("preservation_request"), **changes), "FR", "US"
    )


def reply(kind: str, to: Body, in_reply_to: str, **changes: object) -> Body:
    """An answer of ``kind`` in ``to``'s case, to message ``in_reply_to``."""
    return msgspec.structs.replace(
        example(kind), case_id=to.case_id, in_reply_to=in_reply_to, **changes
    )


async def until(probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool]) -> T:
    """Poll ``probe`` until ``ok``; the guard only stops a broken test from hanging."""
    async with asyncio.timeout(HANG_GUARD):
        while True:
            value = await probe()
            if ok(value):
                return value
            await asyncio.sleep(0.02)


async def raw(
    peer: Peer, method: str, path: str, *, body: bytes | None = None, token: str | None = ""
) -> tuple[int, bytes]:
    """One request to the API; ``token=""`` uses the right token, None sends none."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token or _token(peer)}"
    data = None if body is None else io.BytesIO(body)  # aiohttp warns on large raw bytes
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, peer.api.base_url + path, data=data, headers=headers) as resp,
    ):
        return resp.status, await resp.read()


def _token(peer: Peer) -> str:
    return (peer.data / "api.token").read_text().strip()


def error(data: bytes) -> ErrorBody:
    return _ERROR.decode(data)


async def test_every_endpoint_and_the_case_timeline(tmp_path: Path) -> None:
    net = make_network()
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr, us = p["FR"], p["US"]
        us_q, fr_q = us.node.events.queue(), fr.node.events.queue()
        body = request()
        sent = await fr.api.send("US", body)
        assert sent.case_id == body.case_id
        got = await next_event(us_q, MessageReceived)
        assert (got.msg_id, got.body) == (sent.msg_id, body)
        await next_event(fr_q, ReceiptReceived)

        status = await fr.api.status()
        assert (status.member, status.directory_version, status.relays) == ("FR", 1, (relay.url,))
        assert status.messages_out == 1
        assert status.api_version == api.API_VERSION
        assert status.inbox_mode in ("push", "poll")

        cases = await until(
            fr.api.cases, lambda c: bool(c.cases) and c.cases[0].state == "received"
        )
        (summary,) = cases.cases
        assert (summary.case_id, summary.peer, summary.role) == (body.case_id, "US", "requester")
        assert summary.priority == "high"
        assert summary.next_deadline is not None

        detail = await fr.api.case(body.case_id)
        (entry,) = detail.timeline
        assert (entry.msg_id, entry.direction, entry.kind) == (sent.msg_id, "out", kind_of(body))
        assert entry.body == body
        assert entry.receipt is not None
        assert entry.receipt.status == "accepted"
        assert entry.leaf_index is not None
        assert {d.kind for d in detail.deadlines} == {"preservation_expiry", "mla_submission"}

        inbox = await us.api.inbox()
        (incoming,) = inbox.messages
        assert (incoming.msg_id, incoming.case_id, incoming.peer) == (
            sent.msg_id,
            body.case_id,
            "FR",
        )
        assert (await us.api.inbox(after=incoming.seq)).messages == ()
        us_case = await until(lambda: us.api.case(body.case_id), lambda c: bool(c.timeline))
        assert us_case.summary.role == "requested"

        status_code, doc = await raw(fr, "GET", "/v1/openapi.json")
        assert status_code == 200
        paths = msgspec.json.decode(doc)["paths"]
        assert set(paths) >= {"/v1/status", "/v1/messages", "/v1/cases/{case_id}/export"}


async def test_states_and_deadlines_through_the_answers(tmp_path: Path) -> None:
    net = make_network()
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr, us = p["FR"], p["US"]
        body = request()
        sent = await fr.api.send("US", body)
        await until(us.api.inbox, lambda i: bool(i.messages))
        before = await until(
            lambda: fr.api.case(body.case_id), lambda c: c.summary.state == "received"
        )
        expiry = [d for d in before.deadlines if d.kind == "preservation_expiry"]
        assert [d.confirmed for d in expiry] == [False]  # computed from the US period

        await us.api.send("FR", reply("taken_in_charge", body, sent.msg_id))
        taken = await until(
            lambda: fr.api.case(body.case_id), lambda c: c.summary.state == "taken_in_charge"
        )
        assert [e.kind for e in taken.timeline] == ["preservation_request", "taken_in_charge"]

        now = datetime.now(UTC)
        until_date = (now + timedelta(days=90)).replace(microsecond=0)
        await us.api.send(
            "FR",
            reply("preserved", body, sent.msg_id, preserved_at=now, preserved_until=until_date),
        )
        kept = await until(
            lambda: fr.api.case(body.case_id), lambda c: c.summary.state == "preserved"
        )
        (confirmed,) = [d for d in kept.deadlines if d.kind == "preservation_expiry"]
        assert confirmed.confirmed
        assert confirmed.due == until_date
        us_view = await until(
            lambda: us.api.case(body.case_id), lambda c: c.summary.state == "preserved"
        )
        assert [e.direction for e in us_view.timeline] == ["in", "out", "out"]


async def test_authentication_failures(tmp_path: Path) -> None:
    net = make_network()
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, members=("FR",)) as p,
    ):
        fr = p["FR"]
        for token in (None, "0" * 64, _token(fr)[:-1]):
            status, data = await raw(fr, "GET", "/v1/status", token=token)
            assert status == 401
            assert error(data).code is ErrorCode.UNAUTHENTICATED
        status, data = await raw(fr, "GET", "/v1/openapi.json", token=None)
        assert status == 401
        async with aiohttp.ClientSession() as s:
            wrong = NodeApiClient(fr.api.base_url, "f" * 64, s)
            with pytest.raises(NodeApiError) as caught:
                await wrong.cases()
        assert caught.value.code is ErrorCode.UNAUTHENTICATED


async def test_bad_requests_name_the_field(tmp_path: Path) -> None:
    net = make_network()
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, members=("FR",)) as p,
    ):
        fr = p["FR"]
        good = msgspec.json.encode(api.SendRequest(to="US", body=request()))
        cases: list[tuple[bytes, int, ErrorCode, str]] = [
            (b"{not json", 400, ErrorCode.MALFORMED, "not valid JSON"),
            # J1: a repeated key, also when spelled with an escape, at any depth.
            (good.replace(b'"to":"US"', b'"to":"US","to":"DE"'), 400, ErrorCode.MALFORMED, "key"),
            (
                good.replace(b'"to":"US"', b'"to":"US","\\u0074o":"DE"'),
                400,
                ErrorCode.MALFORMED,
                "repeats an object key",
            ),
            (
                good.replace(b'"necessity":', b'"necessity":"x","necessity":'),
                400,
                ErrorCode.MALFORMED,
                "repeats an object key",
            ),
            (good.replace(b'"to":"US"', b'"to":"usa"'), 400, ErrorCode.MALFORMED, "$.to"),
            (good.replace(b'"to":"US",', b""), 400, ErrorCode.MALFORMED, "`to`"),
            (
                good.replace(b'"necessity":', b'"necessity_":'),
                400,
                ErrorCode.MALFORMED,
                "$.body",
            ),
            (good.replace(b'"to":"US"', b'"to":"JP"'), 422, ErrorCode.UNKNOWN_RECIPIENT, "JP"),
            (b"{" + b" " * (1 << 20) + b"}", 413, ErrorCode.TOO_LARGE, ""),
        ]
        for data, code, name, names in cases:
            status, answer = await raw(fr, "POST", "/v1/messages", body=data)
            assert (status, error(answer).code) == (code, name), answer
            assert names in error(answer).message
        # A cross-field rule (S1: Art. 29(2)(f) needs the MLA-intent statement).
        with pytest.raises(NodeApiError) as caught:
            await fr.api.send("US", request(mla_intent=False))
        assert caught.value.code is ErrorCode.MALFORMED
        assert "$.body.mla_intent" in caught.value.message
        async with (
            aiohttp.ClientSession() as s,
            s.post(
                fr.api.base_url + "/v1/messages",
                data=good,
                headers={"Authorization": f"Bearer {_token(fr)}", "Content-Type": "text/plain"},
            ) as resp,
        ):
            assert resp.status == 415
        assert (await fr.api.status()).messages_out == 0  # nothing refused was queued


async def test_unknown_case_and_bad_parameters(tmp_path: Path) -> None:
    net = make_network()
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, members=("FR",)) as p,
    ):
        fr = p["FR"]
        for call in (fr.api.case("a" * 32), fr.api.export_case("a" * 32)):
            with pytest.raises(NodeApiError) as caught:
                await call
            assert (caught.value.code, caught.value.status) == (ErrorCode.NOT_FOUND, 404)
        for path in ("/v1/cases/NOT-AN-ID", "/v1/inbox?after=-1", "/v1/inbox?after=01"):
            status, data = await raw(fr, "GET", path)
            assert (status, error(data).code) == (400, ErrorCode.MALFORMED), path
        status, data = await raw(fr, "GET", "/v1/nothing")
        assert (status, error(data).code) == (404, ErrorCode.NOT_FOUND)
        status, data = await raw(fr, "DELETE", "/v1/cases")
        assert (status, error(data).code) == (405, ErrorCode.METHOD_NOT_ALLOWED)


async def test_client_says_node_not_running(tmp_path: Path) -> None:
    with pytest.raises(TransportError, match="node not running"):
        async with aiohttp.ClientSession() as s:
            NodeApiClient.from_data_dir(tmp_path, s)
    async with aiohttp.ClientSession() as s:
        from tests.support.relay import free_port

        client = NodeApiClient(f"http://127.0.0.1:{free_port()}", "0" * 64, s)
        with pytest.raises(TransportError, match="node not running"):
            await client.status()


def test_token_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "api.token"
    token = ensure_token(path)
    assert len(token) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_token(path) == token
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="0600"):
        ensure_token(path)
    path.chmod(0o600)
    path.write_text("short\n")
    with pytest.raises(ConfigError, match="not an API token"):
        ensure_token(path)


def test_api_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    from node.api import check_loopback

    for host in ("127.0.0.1", "::1", "localhost"):
        check_loopback(host)
    for host in ("0.0.0.0", "192.0.2.1", "example.org"):  # the refused case
        with pytest.raises(ConfigError, match="loopback"):
            check_loopback(host)


async def test_reminder_and_escalation_reach_the_webhook_once(tmp_path: Path) -> None:
    net = make_network()
    async with (
        webhook_sink() as (url, got),
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, alerts=alerts_to(url)) as p,
    ):
        fr, us = p["FR"], p["US"]
        body = request(priority=Priority.URGENT)
        await fr.api.send("US", body)
        us_case = await until(us.api.cases, lambda c: bool(c.cases))
        opened = us_case.cases[0].opened_at
        # The clock moved 31 minutes: nobody at US answered the urgent request.
        late = opened + timedelta(minutes=31)
        sent = await us.services.clocks.tick(late)
        assert [(a.event.value, a.level) for a in sent] == [("escalation", 1)]
        assert [(a.case_id, a.member, a.kind) for a in got] == [(body.case_id, "US", "escalation")]
        assert await us.services.clocks.tick(late) == []  # once per level
        assert len(got) == 1
        # FR's computed expiry (US: 90 days): one hour before it, a reminder.
        detail = await until(
            lambda: fr.api.case(body.case_id), lambda c: c.summary.state == "received"
        )
        (expiry,) = [d for d in detail.deadlines if d.kind == "preservation_expiry"]
        before = expiry.due - timedelta(hours=1)
        fr_sent = await fr.services.clocks.tick(before)
        reminders = [a for a in fr_sent if a.kind == "preservation_expiry"]
        assert [(a.event.value, a.due) for a in reminders] == [("reminder", expiry.due)]
        assert {a.alert_id for a in fr_sent} <= {a.alert_id for a in got}
        count = len(got)
        assert await fr.services.clocks.tick(before) == []
        assert len(got) == count


async def test_an_alert_no_target_took_is_tried_again(tmp_path: Path) -> None:
    net = make_network()
    dead = f"http://127.0.0.1:{free_port()}/alerts"  # nothing listens there
    async with running_relay(tmp_path / "relay", net) as relay, webhook_sink() as (url, got):
        async with peers(tmp_path, net, relay, alerts=alerts_to(dead), members=("FR", "US")) as p:
            body = request(priority=Priority.URGENT)
            await p["FR"].api.send("US", body)
            cases = await until(p["US"].api.cases, lambda c: bool(c.cases))
            late = cases.cases[0].opened_at + timedelta(minutes=31)
            assert await p["US"].services.clocks.tick(late) == []
        # Restarted with a receiver that works: the same escalation goes out now.
        async with peers(tmp_path, net, relay, alerts=alerts_to(url), members=("US",)) as p:
            sent = await p["US"].services.clocks.tick(late)
            assert [a.kind for a in sent] == ["escalation"]
            assert [a.alert_id for a in got] == [a.alert_id for a in sent]


async def test_stalled_connections_to_the_api_are_cut(tmp_path: Path) -> None:
    """Nothing sent, or headers cut short: closed by the header bound (issue 11, §2)."""
    net = make_network()
    bound = ConnectionLimits().header_timeout
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, members=("FR",)) as p,
    ):
        port = int(p["FR"].api.base_url.rsplit(":", 1)[1])
        silent = await asyncio.open_connection("127.0.0.1", port)
        half = await asyncio.open_connection("127.0.0.1", port)
        half[1].write(b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bea")
        start = asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(bound + 5):
                assert await silent[0].read() == b""
                assert await half[0].read() == b""
            status, _ = await raw(p["FR"], "GET", "/v1/status")  # still served
            assert status == 200
        finally:
            silent[1].close()
            half[1].close()
        assert asyncio.get_running_loop().time() - start >= bound / 2


async def test_the_api_has_the_relays_connection_bounds(tmp_path: Path) -> None:
    """One set of defaults (OPERATIONS.md, "Connection limits"): every local client shares
    127.0.0.1, and the node API used to refuse its 65th connection while the relay allows
    256 from one address."""
    net = make_network()
    held = 100  # over the old per-address bound of 64, under the relay's 256
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, members=("FR",)) as p,
    ):
        port = int(p["FR"].api.base_url.rsplit(":", 1)[1])
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(held)]
        try:
            status, body = await raw(p["FR"], "GET", "/v1/status")
            assert status == 200, body
        finally:
            for _, writer in idle:
                writer.close()
