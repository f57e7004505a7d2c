"""An attachment uploaded while the node encrypts it, through a real relay (§8.6, §15.4).

``POST /v1/attachments?...&to=M`` with a declared ``Content-Length`` (what ``node send
--attach`` sends for a regular file): the node creates the blob without its hash, puts
its chunks as the encryption completes them and commits it with the hash, so the blob
is committed when the answer comes; the send then uploads nothing. A chunked body (no
declared length) keeps the path of before: the blob is uploaded at send time.

Every test runs on a relay with SQLite and again with PostgreSQL (``relay_backend``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from client import RelayClient, RelayRejectedError
from node.api import handlers
from node.events import MessageReceived, ReceiptReceived
from node.messaging import _early
from schemas import Attachment
from schemas._attachment import ATTACHMENTS
from schemas.envelope import ReceiptStatus
from schemas.errors import ErrorCode
from tests.integration._node_services import Peer, peers
from tests.integration.test_node_api import request
from tests.support.fake_relay import HANG_GUARD, next_event
from tests.support.network import make_network
from tests.support.relay import RunningRelay, running_relay

pytestmark = pytest.mark.usefixtures("relay_backend")

MiB = 1 << 20


@pytest.fixture(autouse=True)
def _patient(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real relay's answers on a loaded CI machine may take longer than SLOT_WAIT:
    these tests check what an early upload does once it completes, not the bound."""
    monkeypatch.setattr(_early, "SLOT_WAIT", HANG_GUARD)


async def _send_and_check(fr: Peer, us: Peer, made: Attachment, data: bytes, out: Path) -> None:
    """FR sends ``made``; US accepts it, its receipt names the hash, the file saves."""
    us_q, fr_q = us.node.events.queue(), fr.node.events.queue()
    body = msgspec.structs.replace(request(), attachments=(made,))
    sent = await fr.api.send("US", body)
    got = await next_event(us_q, MessageReceived)
    assert got.msg_id == sent.msg_id
    receipt = await next_event(fr_q, ReceiptReceived)
    assert receipt.receipt.status is ReceiptStatus.ACCEPTED
    assert receipt.receipt.attachments == (made.ct_sha256,)
    (entry,) = (await us.api.attachments(body.case_id)).attachments
    await us.api.save_attachment(body.case_id, entry, out)
    assert await asyncio.to_thread(out.read_bytes) == data


async def test_uploaded_while_encrypted_then_sent_without_uploading_again(
    tmp_path: Path,
) -> None:
    net = make_network()
    net.declare(ATTACHMENTS)
    data = os.urandom(9 * MiB + 5)  # three 4 MiB upload chunks
    src = tmp_path / "extract.bin"
    src.write_bytes(data)
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr, us = p["FR"], p["US"]
        made = await fr.api.upload_attachment(
            src, name=src.name, media_type="application/octet-stream", to="US"
        )
        assert (made.size, made.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        # The blob is committed at the relay, with the hash, before anything is sent.
        status = await relay.client("FR").blob_status(made.blob_id)
        assert (status.complete, status.ct_len) == (True, made.ct_len)
        await _send_and_check(fr, us, made, data, tmp_path / "saved.bin")


async def _chunked(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), MiB):
        yield data[i : i + MiB]


async def _upload_chunked(fr: Peer, data: bytes) -> Attachment:
    token = (fr.data / "api.token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"}
    url = f"{fr.api.base_url}/v1/attachments?name=a.bin&media_type=application/pdf&to=US"
    async with (
        aiohttp.ClientSession() as s,
        s.post(url, data=_chunked(data), headers=headers) as r,
    ):
        assert r.status == 201, await r.text()
        assert r.request_info.headers.get("Transfer-Encoding") == "chunked"
        return msgspec.json.decode(await r.read(), type=Attachment)


async def _no_blob(relay: RunningRelay, blob_id: str) -> None:
    with pytest.raises(RelayRejectedError) as err:
        await relay.client("FR").blob_status(blob_id)
    assert err.value.code is ErrorCode.NOT_FOUND


async def test_a_chunked_upload_is_uploaded_at_send_time(tmp_path: Path) -> None:
    net = make_network()
    net.declare(ATTACHMENTS)
    data = os.urandom(5 * MiB)
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr, us = p["FR"], p["US"]
        made = await _upload_chunked(fr, data)
        await _no_blob(relay, made.blob_id)  # no length declared: nothing went early
        await _send_and_check(fr, us, made, data, tmp_path / "saved.bin")


async def test_a_stalled_upload_leaves_no_blob_at_the_relay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The officer's browser declares 7 MiB, sends 6 (more than a whole first upload chunk
    # is encrypted then: the early upload announces the blob) and stalls: the node answers
    # 400 and the blob it announced is discarded at once, not left holding both members'
    # quotas until blob_ttl.
    monkeypatch.setattr(handlers, "BODY_TIMEOUT", 3.0)
    created: list[str] = []
    discarded: list[str] = []
    real_create, real_discard = RelayClient.create_blob, RelayClient.discard_blob

    async def create(self: RelayClient, blob_id: str, *args: Any, **kw: Any) -> Any:
        created.append(blob_id)
        return await real_create(self, blob_id, *args, **kw)

    async def discard(self: RelayClient, blob_id: str) -> None:
        discarded.append(blob_id)
        await real_discard(self, blob_id)

    monkeypatch.setattr(RelayClient, "create_blob", create)
    monkeypatch.setattr(RelayClient, "discard_blob", discard)
    net = make_network()
    net.declare(ATTACHMENTS)
    gone = asyncio.Event()  # set once the node has given up on the body

    async def stalled() -> AsyncIterator[bytes]:
        for _ in range(6):
            yield os.urandom(MiB)
        await gone.wait()  # then nothing more, until the answer came

    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr = p["FR"]
        token = (fr.data / "api.token").read_text().strip()
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/octet-stream",
            "Content-Length": str(7 * MiB),
        }
        url = f"{fr.api.base_url}/v1/attachments?name=a.bin&media_type=application/pdf&to=US"
        async with aiohttp.ClientSession() as s:
            status, text = await _post(s, url, stalled(), headers)
            gone.set()
        assert status == 400, text
        assert "stalled" in text
        assert len(created) == 1  # the early upload had announced it
        assert discarded == created
        await _no_blob(relay, created[0])


async def _post(
    s: aiohttp.ClientSession, url: str, body: AsyncIterator[bytes], headers: dict[str, str]
) -> tuple[int, str]:
    try:
        async with s.post(url, data=body, headers=headers) as r:
            return r.status, await r.text()
    except aiohttp.ClientError as exc:  # the node may close the connection after answering
        raise AssertionError(f"no answer: {exc!r}") from None
