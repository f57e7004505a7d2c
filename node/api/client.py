"""A client of the node's local API (PROTOCOL.md §8.6), for the CLI and for integrators.

aiohttp exceptions never escape: a node that is not running (connection refused, or no
``api.port`` file) is :class:`NodeNotRunningError`; an answer that did not arrive whole (cut
short, too slow, too large) is another :class:`TransportError` that says which; an error
answer is :class:`NodeApiError`, a :class:`PeerError` carrying the API's code.
"""

from __future__ import annotations

import asyncio
import os
import stat
import tomllib
import urllib.parse
from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO, Final, NoReturn, TypeVar, cast

import aiohttp
import msgspec

from client import read_body
from node import _threads
from node._writeback import fsync_and_forget
from node.api._file_pieces import file_pieces
from node.api._save import publish, write_hashed
from protocol.codec import decode, decode_as
from protocol.errors import MalformedError, PeerError, Relay247Error, TooLargeError, TransportError
from schemas import Attachment
from schemas import node_api as api
from schemas._stats import ReceivedReports, Statistics
from schemas.errors import ErrorBody, ErrorCode
from schemas.messages import Body
from schemas.node_api_links import CaseLinkView, LinkRequest, UnlinkResult
from schemas.node_api_retention import HoldRequest, PassView, RetentionView
from serving.config_file import MAX_CONFIG_BYTES
from serving.files import read_file

T = TypeVar("T")
_MAX_ANSWER: Final = 256 << 20  # bytes: an evidence bundle of a large case
_OCTETS: Final = "application/octet-stream"
_ERROR: Final = msgspec.json.Decoder(ErrorBody)
_INBOX_PAGE: Final = 1000  # the API's largest page (node.api.handlers.MAX_INBOX_PAGE)
_PIECE: Final = 1 << 20  # bytes of an attachment's answer buffered as they arrive


class NodeApiError(PeerError):
    """The node refused the request; ``code`` is the API's error code."""

    def __init__(self, status: int, body: ErrorBody) -> None:
        super().__init__(
            body.message, detail=f"HTTP {status}, request {body.request_id}", code=body.code
        )
        self.status = status


class NodeNotRunningError(TransportError):
    """Nothing to talk to: no ``api.port`` file, or nothing listens on that port."""


class NodeApiClient:
    """Talk to a running node.

    Args:
        base_url: e.g. ``http://127.0.0.1:PORT`` (PORT from ``DATA/api.port``).
        token: the bearer token (``DATA/api.token``).
        session: an aiohttp session the caller owns.
        timeout: seconds per request.
    """

    def __init__(
        self, base_url: str, token: str, session: aiohttp.ClientSession, *, timeout: float = 30.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = {"Authorization": f"Bearer {token}"}
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    @classmethod
    def from_data_dir(cls, data_dir: Path, session: aiohttp.ClientSession) -> NodeApiClient:
        """Build a client from a node's data directory (``api.port``, ``api.token``, config).

        The host is ``[api] host`` of ``node.toml`` in ``data_dir`` when present, else
        127.0.0.1.

        Raises:
            NodeNotRunningError: no ``api.port`` (the node is not running).
            TransportError: the token cannot be read.
        """
        try:  # bounded, regular files only: a FIFO there hung the command, /dev/zero ate RAM
            port = int(read_file(data_dir / "api.port", 64).decode("ascii").strip())
        except (Relay247Error, ValueError):  # ConfigError, or an I/O error's StorageError
            raise NodeNotRunningError(
                "node not running", detail=f"no {data_dir}/api.port"
            ) from None
        try:
            token = read_file(data_dir / "api.token", 4096).decode("ascii").strip()
        except (Relay247Error, UnicodeDecodeError) as exc:
            raise TransportError("cannot read the node's API token", detail=str(exc)) from None
        host = _host(data_dir)  # an IPv6 literal (`::1`) goes in brackets (RFC 3986 §3.2.2)
        return cls(f"http://{f'[{host}]' if ':' in host else host}:{port}", token, session)

    async def _request(self, method: str, path: str, body: bytes | None = None) -> bytes:
        headers = dict(self._auth)
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with self._session.request(
                method, self.base_url + path, data=body, headers=headers, timeout=self._timeout
            ) as resp:
                raw = await read_body(resp, _MAX_ANSWER, what="node answer")
                status = resp.status
        except TooLargeError as exc:
            # The node's fault, not the officer's input: a transport failure (exit 1).
            raise TransportError(exc.message, detail=exc.detail) from None
        except aiohttp.ClientConnectorError as exc:
            raise NodeNotRunningError("node not running", detail=str(exc)) from None
        except TimeoutError:
            raise TransportError(
                f"node did not answer within {self._timeout.total} s", detail=method + " " + path
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            # It accepted the connection: running, but broke off before a whole answer.
            raise TransportError(
                f"no whole answer from the node ({type(exc).__name__}: {exc})",
                detail=method + " " + path,
            ) from None
        if status >= 400:
            try:
                refusal = decode(_ERROR, raw, "error answer", limit=_MAX_ANSWER)
            except (MalformedError, TooLargeError):
                raise PeerError(f"node answered HTTP {status}", code=ErrorCode.INTERNAL) from None
            raise NodeApiError(status, refusal)
        return raw

    async def _get(self, path: str, tp: type[T]) -> T:
        return _decode(tp, await self._request("GET", path))

    async def status(self) -> api.NodeStatus:
        """GET /v1/status."""
        return await self._get("/v1/status", api.NodeStatus)

    async def send(self, to: str, body: Body) -> api.SendResult:
        """POST /v1/messages: validate, seal and queue ``body`` for ``to``.

        Raises:
            NodeApiError: ``malformed`` (the message names the field), ``unknown_recipient``.
        """
        raw = msgspec.json.encode(api.SendRequest(to=to, body=body))
        return _decode(api.SendResult, await self._request("POST", "/v1/messages", raw))

    async def cases_page(
        self, after: str | None = None, limit: int = api.CASE_PAGE, prefix: str = ""
    ) -> api.CaseList:
        """GET /v1/cases: one page, from the cursor ``after`` (a page's ``next``)."""
        query: dict[str, str | int] = {"limit": limit}
        if after is not None:
            query["after"] = after
        if prefix:
            query["prefix"] = prefix
        return await self._get(f"/v1/cases?{urllib.parse.urlencode(query)}", api.CaseList)

    async def cases(self) -> api.CaseList:
        """Every case, most recent activity first (GET /v1/cases, page after page)."""
        page = await self.cases_page()
        found = list(page.cases)
        while page.next is not None:
            page = await self.cases_page(page.next)
            found.extend(page.cases)
        return api.CaseList(cases=tuple(found))

    async def cases_since(self, since: datetime) -> list[api.CaseSummary]:
        """The cases with activity at or after ``since``, most recent first: pages are read
        until the first older case (the list's order), not to the end."""
        found: list[api.CaseSummary] = []
        page = await self.cases_page()
        while True:
            for case in page.cases:
                if case.last_activity < since:
                    return found
                found.append(case)
            if page.next is None:
                return found
            page = await self.cases_page(page.next)

    async def case(self, case_id: str) -> api.CaseDetail:
        """GET /v1/cases/{case_id}.

        Raises:
            NodeApiError: ``not_found`` for an unknown case.
        """
        return await self._get(f"/v1/cases/{case_id}", api.CaseDetail)

    async def inbox(self, after: int = 0, limit: int = 100) -> api.Inbox:
        """GET /v1/inbox?after=N&limit=L: one page, at most ``limit`` messages."""
        return await self._get(f"/v1/inbox?after={after}&limit={limit}", api.Inbox)

    async def inbox_all(self, after: int = 0) -> api.Inbox:
        """Every incoming message after ``after``, page by page (the API pages at 1000)."""
        messages: list[api.InboxEntry] = []
        while True:
            page = await self.inbox(after, _INBOX_PAGE)
            messages.extend(page.messages)
            if len(page.messages) < _INBOX_PAGE:
                return api.Inbox(messages=tuple(messages))
            after = page.messages[-1].seq

    async def stats(self, start: date, end: date) -> Statistics:
        """GET /v1/stats: this member's figures for the UTC days ``start`` to ``end``."""
        query = urllib.parse.urlencode({"from": start.isoformat(), "to": end.isoformat()})
        return await self._get(f"/v1/stats?{query}", Statistics)

    async def stats_reports(self) -> ReceivedReports:
        """GET /v1/stats/reports: the statistics reports received (secretariat)."""
        return await self._get("/v1/stats/reports", ReceivedReports)

    async def export_case(self, case_id: str, *, with_linked: bool = False) -> bytes:
        """GET /v1/cases/{case_id}/export: the evidence bundle bytes, exactly as built.

        ``with_linked``: the linked cases are included (PROTOCOL.md §17.5).

        Raises:
            NodeApiError: ``not_found``; ``unavailable`` while the log's latest checkpoint
                does not yet cover the case (retry a few seconds later).
        """
        query = "?with_linked=1" if with_linked else ""
        return await self._request("GET", f"/v1/cases/{case_id}/export{query}")

    async def link(self, case_id: str, req: LinkRequest) -> CaseLinkView:
        """POST /v1/cases/{case_id}/links: link the case to another, on this node only.

        Raises:
            NodeApiError: ``not_found`` (either case), ``conflict`` (already linked),
                ``malformed`` (a case linked to itself).
        """
        raw = msgspec.json.encode(req)
        path = f"/v1/cases/{case_id}/links"
        return _decode(CaseLinkView, await self._request("POST", path, raw))

    async def unlink(self, case_id: str, other: str, link_type: str | None) -> UnlinkResult:
        """DELETE /v1/cases/{case_id}/links/{other}[?type=T]: remove this node's links.

        Raises:
            NodeApiError: ``not_found`` when no such link of this node is active.
        """
        query = f"?type={link_type}" if link_type else ""
        path = f"/v1/cases/{case_id}/links/{other}{query}"
        return _decode(UnlinkResult, await self._request("DELETE", path))

    async def set_hold(self, case_id: str, reason: str | None) -> RetentionView:
        """POST /v1/cases/{case_id}/hold (``reason``) or ``/release`` (None): §19.

        Raises:
            NodeApiError: ``not_found``, ``malformed`` (the reason), ``forbidden``.
        """
        if reason is None:
            raw = await self._request("POST", f"/v1/cases/{case_id}/release")
        else:
            body = msgspec.json.encode(HoldRequest(reason=reason))
            raw = await self._request("POST", f"/v1/cases/{case_id}/hold", body)
        return _decode(RetentionView, raw)

    async def retention(self, case_id: str) -> RetentionView:
        """GET /v1/cases/{case_id}/retention: the hold, its history, bodies removed."""
        return await self._get(f"/v1/cases/{case_id}/retention", RetentionView)

    async def retention_pass(self, *, dry_run: bool, limit: int = 100) -> PassView:
        """GET (``dry_run``) or POST /v1/retention: what a pass removes (or removed)."""
        method = "GET" if dry_run else "POST"
        return _decode(PassView, await self._request(method, f"/v1/retention?limit={limit}"))

    async def upload_attachment(
        self, path: Path, *, name: str, media_type: str, to: str | None = None
    ) -> Attachment:
        """POST /v1/attachments: stream the file to the node, which encrypts it (§15.2).

        ``to``: the member it is for; the node refuses it before encrypting anything when
        that member could not take it.

        Returns:
            The ``Attachment`` to put in a body's ``attachments``.
        """
        fields = {"name": name, "media_type": media_type}
        query = urllib.parse.urlencode(fields if to is None else {**fields, "to": to})
        f = await _threads.run(_open, path, "rb", undo=lambda g: g.close())  # never leaked
        with f:
            # A regular file's length is declared: with ``to``, the node can then upload
            # the ciphertext to the relay while it encrypts it (§15.4). Else: chunked.
            st = os.fstat(f.fileno())
            length = st.st_size if stat.S_ISREG(st.st_mode) else None
            raw = await self._stream_request(
                "POST", f"/v1/attachments?{query}", file_pieces(f, length), _OCTETS, length=length
            )
        return _decode(Attachment, raw)

    async def attachments(self, case_id: str) -> api.AttachmentList:
        """GET /v1/cases/{case_id}/attachments."""
        return await self._get(f"/v1/cases/{case_id}/attachments", api.AttachmentList)

    async def save_attachment(
        self, case_id: str, entry: api.AttachmentEntry, out: Path, *, ciphertext: bool = False
    ) -> None:
        """GET /v1/cases/{case_id}/attachments/{n} into ``out``, never a partial file.

        The plaintext (with ``ciphertext``: the kept ciphertext, ``…/{n}/ciphertext``)
        goes to a temporary file beside ``out``, is checked against the entry's size and
        SHA-256 (``ct_len``, ``ct_sha256``), fsynced, then renamed to ``out``.

        Raises:
            TransportError: the stream was cut or its bytes differ (nothing is written).
            NodeApiError: ``not_found``.
        """
        path = f"/v1/cases/{case_id}/attachments/{entry.n}" + ("/ciphertext" if ciphertext else "")
        size, sha256 = (entry.ct_len, entry.ct_sha256) if ciphertext else (entry.size, entry.sha256)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
        timeout = aiohttp.ClientTimeout(total=None, sock_read=self._timeout.total)
        try:
            f = await _threads.run(_open, tmp, "xb", undo=lambda g: g.close())
            with f:
                async with self._session.get(
                    self.base_url + path, headers=self._auth, timeout=timeout, read_bufsize=_PIECE
                ) as resp:
                    if resp.status >= 400:
                        raw = await read_body(resp, _MAX_ANSWER, what="node answer")
                        self._refused(resp.status, raw)
                    n, got = await write_hashed(_pieces(resp), f)
                if n != size or got != sha256:
                    raise TransportError(
                        "attachment arrived incomplete or altered", detail=f"{n} of {size} bytes"
                    )
                f.flush()
                await _threads.run(fsync_and_forget, f.fileno())  # ends before f closes
            await _threads.run(publish, tmp, out)  # the directory fsynced too
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"attachment not saved: {exc}", detail=path) from None
        finally:
            await asyncio.to_thread(tmp.unlink, missing_ok=True)

    async def _stream_request(
        self,
        method: str,
        path: str,
        data: AsyncIterator[bytes],
        content_type: str,
        *,
        length: int | None = None,
    ) -> bytes:
        headers = {**self._auth, "Content-Type": content_type}
        if length is not None:  # sent with this Content-Length instead of chunked
            headers["Content-Length"] = str(length)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=self._timeout.total)
        try:
            async with self._session.request(
                method, self.base_url + path, data=data, headers=headers, timeout=timeout
            ) as resp:
                raw = await read_body(resp, _MAX_ANSWER, what="node answer")
                status = resp.status
        except aiohttp.ClientConnectorError as exc:
            raise NodeNotRunningError("node not running", detail=str(exc)) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TransportError(f"no whole answer from the node ({exc})", detail=path) from None
        if status >= 400:
            self._refused(status, raw)
        return raw

    def _refused(self, status: int, raw: bytes) -> NoReturn:
        try:
            refusal = decode(_ERROR, raw, "error answer", limit=_MAX_ANSWER)
        except (MalformedError, TooLargeError):
            raise PeerError(f"node answered HTTP {status}", code=ErrorCode.INTERNAL) from None
        raise NodeApiError(status, refusal)


async def _pieces(resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    # As the socket gave them: iter_any joins what is buffered, a copy of every byte.
    async for piece, _ in resp.content.iter_chunks():
        yield piece


def _open(path: Path, mode: str) -> BinaryIO:
    return cast(BinaryIO, open(path, mode))  # closed by the caller


def _decode(tp: type[T], raw: bytes) -> T:
    try:
        return decode_as(tp, raw, "node answer", limit=_MAX_ANSWER)
    except (MalformedError, TooLargeError) as exc:
        raise PeerError("node answer does not match the API", detail=exc.diagnostics()) from None


def _host(data_dir: Path) -> str:
    try:
        config = tomllib.loads(read_file(data_dir / "node.toml", MAX_CONFIG_BYTES).decode("utf-8"))
    except (Relay247Error, tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError):
        return "127.0.0.1"
    table = config.get("api")  # `api = 1` made this an AttributeError traceback
    host = table.get("host") if isinstance(table, dict) else None
    return host if isinstance(host, str) else "127.0.0.1"
