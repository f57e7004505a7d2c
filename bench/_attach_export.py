"""The export leg of bench/_attach_node.py: a kept attachment written out as ``--out`` does.

``relay247 node attachment CASE N --out FILE`` runs :meth:`NodeApiClient.save_attachment`
against the node's local API, whose handler streams the plaintext with
:func:`node.attachment_stream.send_plaintext` (the console's download uses the same).
Here both run in this process on loopback: the product's client function, and the
product's streaming function behind a one-route aiohttp app. What the real handler adds
before it (the bearer token check, the case lookup, the access-log entry) is not run:
a few milliseconds per file. In the product the CLI is a process of its own; here the
two ends share one event loop and one GIL, which can only slow them.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp import web

from node.api.client import NodeApiClient
from node.attachment_stream import send_plaintext
from schemas import Attachment
from schemas import node_api as api
from tests.support.relay import free_port

CASE = "c" * 32
TOKEN = "bench"


def _entry(a: Attachment) -> api.AttachmentEntry:
    return api.AttachmentEntry(
        n=1,
        msg_id="d" * 32,
        blob_id=a.blob_id,
        direction="in",
        name=a.name,
        media_type=a.media_type,
        size=a.size,
        sha256=a.sha256,
        ct_sha256=a.ct_sha256,
        ct_len=a.ct_len,
        kept=True,
    )


class Exporter:
    """A one-route local API serving ``kept`` as attachment 1 of :data:`CASE`."""

    def __init__(self, kept: Path, a: Attachment) -> None:
        self.kept, self.a = kept, a
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _download(self, request: web.Request) -> web.StreamResponse:
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(self.a.size),
            "X-Attachment-SHA256": self.a.sha256,
        }
        return await send_plaintext(request, self.kept, self.a, headers)

    async def __aenter__(self) -> Exporter:
        app = web.Application()
        app.router.add_get("/v1/cases/{case_id}/attachments/{n}", self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def save(self, session: aiohttp.ClientSession, out: Path) -> None:
        """What ``node attachment --out OUT`` does once it found the attachment."""
        client = NodeApiClient(self.url, TOKEN, session, timeout=120.0)
        await client.save_attachment(CASE, _entry(self.a), out)
