"""Attachments end to end through a real relay and the nodes' local API (§8.6, §15).

Every test runs on a relay with SQLite and again with PostgreSQL (``relay_backend``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import aiohttp
import msgspec
import pytest

from node.api.client import NodeApiError
from node.events import MessageReceived, ReceiptReceived
from protocol.errors import TransportError
from schemas import node_api as api
from schemas._attachment import ATTACHMENTS
from schemas.envelope import ReceiptStatus
from schemas.errors import ErrorCode
from tests.integration._node_services import Peer, peers
from tests.integration.test_node_api import request
from tests.support.fake_relay import next_event
from tests.support.network import make_network
from tests.support.relay import running_relay

pytestmark = pytest.mark.usefixtures("relay_backend")


def _token(peer: Peer) -> str:
    return (peer.data / "api.token").read_text().strip()


async def _raw(
    peer: Peer, method: str, path: str, body: bytes = b"", **headers: str
) -> tuple[int, bytes]:
    h = {"Authorization": f"Bearer {_token(peer)}", "Content-Type": "application/octet-stream"}
    h.update(headers)
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, peer.api.base_url + path, data=body, headers=h) as r,
    ):
        return r.status, await r.read()


async def test_send_list_and_save_through_the_api(tmp_path: Path) -> None:
    net = make_network()
    net.declare(ATTACHMENTS)  # as `node init` writes it (PROTOCOL.md §10.10)
    data = os.urandom(9 * (1 << 20) + 5)  # three 4 MiB upload chunks at the relay
    src = tmp_path / "log extract.csv"
    src.write_bytes(data)
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr, us = p["FR"], p["US"]
        us_q, fr_q = us.node.events.queue(), fr.node.events.queue()
        made = await fr.api.upload_attachment(src, name=src.name, media_type="text/csv")
        assert (made.size, made.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        body = msgspec.structs.replace(request(), attachments=(made,))
        sent = await fr.api.send("US", body)
        got = await next_event(us_q, MessageReceived)
        assert got.msg_id == sent.msg_id
        receipt = await next_event(fr_q, ReceiptReceived)
        assert receipt.receipt.status is ReceiptStatus.ACCEPTED
        assert receipt.receipt.attachments == (made.ct_sha256,)

        for peer, direction in ((us, "in"), (fr, "out")):
            listing = await peer.api.attachments(body.case_id)
            (entry,) = listing.attachments
            assert (entry.n, entry.direction, entry.name, entry.kept) == (
                1,
                direction,
                src.name,
                True,
            )
            out = tmp_path / f"saved-{direction}.csv"
            await peer.api.save_attachment(body.case_id, entry, out)
            assert out.read_bytes() == data

        # The client refuses bytes that differ from the body's hash: no file is left.
        (entry,) = (await us.api.attachments(body.case_id)).attachments
        lying = msgspec.structs.replace(entry, sha256="0" * 64)
        with pytest.raises(TransportError):
            await us.api.save_attachment(body.case_id, lying, tmp_path / "never.csv")
        assert not (tmp_path / "never.csv").exists()
        assert not [f for f in os.listdir(tmp_path) if f.startswith(".never")]

        # The kept ciphertext altered on disk: the stream is cut, nothing is written.
        kept = us.node.files.received_path("FR", made.blob_id)
        raw = bytearray(kept.read_bytes())
        raw[5 * (1 << 20)] ^= 1
        kept.write_bytes(bytes(raw))
        with pytest.raises(TransportError):
            await us.api.save_attachment(body.case_id, entry, tmp_path / "cut.csv")
        assert not (tmp_path / "cut.csv").exists()


async def test_hostile_attachment_requests(tmp_path: Path) -> None:
    net = make_network()
    net.declare(ATTACHMENTS)  # as `node init` writes it (PROTOCOL.md §10.10)
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr = p["FR"]
        bad: list[tuple[str, dict[str, str]]] = [
            ("/v1/attachments?name=a.txt", {}),  # no media_type
            ("/v1/attachments?name=a.txt&name=b.txt&media_type=text/plain", {}),  # twice
            ("/v1/attachments?name=..%2Fx&media_type=text/plain", {}),  # a path
            ("/v1/attachments?name=a%0Ab&media_type=text/plain", {}),  # control character
            ("/v1/attachments?name=a.txt&media_type=text", {}),  # not type/subtype
            ("/v1/attachments?name=a.txt&media_type=text/plain&x=1", {}),  # unknown
        ]
        for path, headers in bad:
            status, answer = await _raw(fr, "POST", path, b"data", **headers)
            assert status == 400, (path, answer)
        status, _ = await _raw(
            fr, "POST", "/v1/attachments?name=a&media_type=text/plain", b"x",
            **{"Content-Type": "application/json"},
        )  # fmt: skip
        assert status == 415
        body = request()
        await fr.api.send("US", body)
        for path in (
            f"/v1/cases/{body.case_id}/attachments/1",  # none
            f"/v1/cases/{body.case_id}/attachments/0",
            f"/v1/cases/{body.case_id}/attachments/١",  # non-ASCII digit
            f"/v1/cases/{'f' * 32}/attachments",  # no such case
        ):
            status, _ = await _raw(fr, "GET", path)
            assert status in (400, 404), path
        # A body naming an attachment this node did not prepare is refused by field.
        made = await fr.api.upload_attachment(
            _write(tmp_path / "x.txt", b"x"), name="x.txt", media_type="text/plain"
        )
        forged = msgspec.structs.replace(made, blob_id="e" * 32)
        with pytest.raises(NodeApiError) as err:
            await fr.api.send("US", msgspec.structs.replace(request(), attachments=(forged,)))
        assert err.value.code is ErrorCode.MALFORMED
        assert "$.body.attachments[0]" in err.value.message
        listing = await fr.api.attachments(body.case_id)
        assert listing == api.AttachmentList(attachments=())


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


async def test_stalled_oversized_and_cut_uploads_leave_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import node.api.handlers as routes
    from schemas._attachment import MAX_ATTACHMENT_SIZE
    from tests.support.raw_http import exchange, request_bytes

    monkeypatch.setattr(routes, "BODY_TIMEOUT", 0.3)
    net = make_network()
    net.declare(ATTACHMENTS)  # as `node init` writes it (PROTOCOL.md §10.10)
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr = p["FR"]
        target = "/v1/attachments?name=a.bin&media_type=application/octet-stream"
        auth = {"Authorization": f"Bearer {_token(fr)}", "Content-Type": "application/octet-stream"}
        # Announces 1000 bytes, sends 10, then waits: refused once the piece is late.
        stalled = request_bytes(
            "POST", target, {**auth, "Content-Length": "1000"}, b"0123456789", content_length=False
        )
        answer = await exchange(fr.api.base_url, stalled)
        assert answer.status == 400
        # Announces more than an attachment may be: refused before reading it.
        big = request_bytes(
            "POST",
            target,
            {**auth, "Content-Length": str(MAX_ATTACHMENT_SIZE + 1)},
            b"",
            content_length=False,
        )
        answer = await exchange(fr.api.base_url, big)
        assert answer.status == 413
        # No temporary ciphertext is left behind by either.
        out = fr.data / "attachments" / "out"
        assert not out.exists() or not [f for f in os.listdir(out) if f.endswith(".tmp")]


async def test_a_recipient_that_cannot_take_files_is_refused_before_any_is_encrypted(
    tmp_path: Path,
) -> None:
    # `node send --attach` names the recipient with each file (POST /v1/attachments?to=):
    # US's entry lists no `attachments`, so FR's node refuses before it reads a byte of
    # the file, and nothing is left in its data directory (issue 14; it used to encrypt
    # every file first and refuse at the send).
    from cli import _node_attach as na

    net = make_network(("FR", "US", "DE", "MT"))
    net.declare(ATTACHMENTS, "FR", "DE", "MT")
    net.bridge("MT")  # reached by e-mail (§22): no file, whatever its entry lists
    src = _write(tmp_path / "order.pdf", os.urandom(1 << 20))
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr = p["FR"]
        out = fr.data / "attachments" / "out"
        with pytest.raises(NodeApiError) as err:
            await na.with_files(fr.api, request(), (src,), "US")
        assert err.value.code is ErrorCode.MALFORMED
        assert "US's directory entry does not list the `attachments` capability" in str(
            err.value.message
        )
        assert not out.exists() or not list(out.iterdir())
        # The same through the API's query, and its hostile forms.
        target = "/v1/attachments?name=a.txt&media_type=text/plain"
        for to, status, code in (
            ("US", 400, "malformed"),  # no capability
            ("MT", 400, "malformed"),  # an e-mail member
            ("FR", 400, "malformed"),  # this node itself
            ("JP", 422, "unknown_recipient"),  # not in the directory (as a send)
            ("U%D5%8F", 400, "malformed"),  # not a member id (non-ASCII)
            ("us", 400, "malformed"),
            ("DE&to=DE", 400, "malformed"),  # given twice
            ("", 400, "malformed"),
        ):
            got, answer = await _raw(fr, "POST", f"{target}&to={to}", b"data")
            assert (got, msgspec.json.decode(answer)["code"]) == (status, code), (to, answer)
        assert not out.exists() or not list(out.iterdir())
        # A member that takes them: encrypted as before (and, with the declared length,
        # uploaded for DE meanwhile, §15.4).
        made = await fr.api.upload_attachment(src, name=src.name, media_type="a/b", to="DE")
        assert made.size == 1 << 20
