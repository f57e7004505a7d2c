"""An attachment download through the local API is the whole file, always (§8.6).

No range or conditional request is promised for ``…/attachments/{n}`` or
``…/{n}/ciphertext``: ``Range`` and ``If-…`` headers are ignored, the answer is ``200``
with every byte and ``Accept-Ranges: none``. The ciphertext route once used aiohttp's
``FileResponse``, which answered them itself: a bare ``416`` with an empty chunked body
(not the API's JSON error shape) for a malformed or unsatisfiable range, a ``206`` with
the whole file for ``bytes=-0``, a ``304`` for an ``If-Modified-Since`` in the future.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import msgspec

from node.events import ReceiptReceived
from schemas._attachment import ATTACHMENTS
from tests.integration._node_services import peers
from tests.integration.test_node_api import request
from tests.support.fake_relay import next_event
from tests.support.network import make_network
from tests.support.raw_http import assert_sound, exchange, request_bytes
from tests.support.relay import running_relay

#: every header the old ciphertext route answered outside the one shape, and a few more
ASKED: tuple[tuple[str, str], ...] = (
    ("Range", "bytes=abc"),
    ("Range", "bytes=5-1"),
    ("Range", "bytes=0-0,5-5"),
    ("Range", "items=0-1"),
    ("Range", "bytes=٠-٩"),  # Arabic-Indic digits
    ("Range", "bytes=-0"),
    ("Range", "bytes=0-9"),
    ("Range", "bytes=-10"),
    ("Range", "bytes=999999999-"),
    ("If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT"),
    ("If-Unmodified-Since", "Thu, 01 Jan 1970 00:00:00 GMT"),
    ("If-None-Match", "*"),
)


async def test_downloads_ignore_range_and_conditional_headers(tmp_path: Path) -> None:
    net = make_network()
    net.declare(ATTACHMENTS)
    data = os.urandom(3 * (1 << 20) + 7)  # more than one piece read at a time
    src = tmp_path / "r.bin"
    src.write_bytes(data)
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr = p["FR"]
        fr_q = fr.node.events.queue()
        made = await fr.api.upload_attachment(src, name=src.name, media_type="text/plain")
        body = msgspec.structs.replace(request(), attachments=(made,))
        await fr.api.send("US", body)
        await next_event(fr_q, ReceiptReceived)
        token = (fr.data / "api.token").read_text().strip()
        base = f"/v1/cases/{body.case_id}/attachments/1"
        kept = fr.node.files.sent_path(made.blob_id).read_bytes()
        assert hashlib.sha256(kept).hexdigest() == made.ct_sha256
        wrong: list[tuple[str, object]] = []
        for path, whole in ((base + "/ciphertext", kept), (base, data)):
            for name, value in (("X-None", "none"), *ASKED):
                headers = {"Authorization": f"Bearer {token}", name: value}
                answer = await exchange(fr.api.base_url, request_bytes("GET", path, headers))
                what = f"{path[-12:]} {name}: {value}"
                try:
                    assert_sound(answer, what)  # any 4xx in the JSON shape, no 5xx
                except AssertionError as exc:
                    wrong.append((what, str(exc)))
                got = (
                    answer.status,
                    answer.body == whole,
                    answer.headers.get("Content-Length"),
                    answer.headers.get("Accept-Ranges"),
                    answer.headers.get("Content-Range"),
                    answer.headers.get("Last-Modified"),
                )
                if got != (200, True, str(len(whole)), "none", None, None):
                    wrong.append((what, got))
        assert not wrong, "\n".join(map(str, wrong))
