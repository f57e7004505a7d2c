"""The export leg of bench/_attach_node.py: a kept attachment written out as ``--out`` does.

``relay247 node attachment CASE N --out FILE`` runs :meth:`NodeApiClient.save_attachment`
in the CLI's process against the node's local API, whose handler streams the plaintext
with :func:`node.attachment_stream.send_plaintext` (the console's download uses the
same). Here, as there, two processes on loopback: this one runs the product's client
function; a child (``python -m bench._attach_export``) serves the product's streaming
function behind a one-route aiohttp app. What the real handler does before it (the
bearer token check, the case lookup, the access-log entry) is left out: a few
milliseconds per file.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from pathlib import Path

import aiohttp
from aiohttp import web

from bench._common import wait_healthy
from node.api.client import NodeApiClient
from node.attachment_stream import send_plaintext
from protocol.codec import decode_as, encode
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
    """The child process serving ``kept`` as attachment 1 of :data:`CASE`."""

    def __init__(self, kept: Path, a: Attachment) -> None:
        self.kept, self.a = kept, a
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def __aenter__(self) -> Exporter:
        described = self.kept.with_suffix(".attachment.json")
        described.write_bytes(encode(self.a))
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        args = ["-m", "bench._attach_export", str(self.kept), str(described), str(port)]
        self.proc = _spawn(args)
        await wait_healthy(self.url, self.proc, what="export server", tries=400)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            await asyncio.to_thread(self.proc.wait, 30)

    async def save(self, session: aiohttp.ClientSession, out: Path) -> None:
        """What ``node attachment --out OUT`` does once it found the attachment."""
        client = NodeApiClient(self.url, TOKEN, session, timeout=120.0)
        await client.save_attachment(CASE, _entry(self.a), out)


def _spawn(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args])


def _serve(kept: Path, a: Attachment, port: int) -> None:
    async def download(request: web.Request) -> web.StreamResponse:
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(a.size),
            "X-Attachment-SHA256": a.sha256,
        }
        return await send_plaintext(request, kept, a, headers)

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/v1/cases/{case_id}/attachments/{n}", download)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def main() -> None:
    parser = argparse.ArgumentParser(description="serve one kept attachment's plaintext")
    parser.add_argument("kept", type=Path)
    parser.add_argument("attachment", type=Path)
    parser.add_argument("port", type=int)
    args = parser.parse_args()
    raw = args.attachment.read_bytes()
    _serve(args.kept, decode_as(Attachment, raw, "attachment", limit=len(raw)), args.port)


if __name__ == "__main__":
    main()
