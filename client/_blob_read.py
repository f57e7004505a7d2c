"""A blob download's answer read from a relay that is not trusted (PROTOCOL.md §15.4).

The recipient checks the bytes' hash afterwards (§15.2 F2), but a hash cannot stop a
relay that sends *too many* bytes: a fake relay appended 400 MiB to a 3 MiB blob and the
node wrote them all to its ``.part`` file. So the answer is held to its span: the bytes
its status and headers say it holds (``Content-Range`` start, end and total,
``Content-Length``), which must be the part asked for of a blob of the length the caller
knows (the body's ``ct_len``). A byte past it ends the download before it is yielded,
and fewer bytes at the end are a download cut short. Either is a ``TransportError``:
the node keeps the prefix it has and resumes after it later (§15.4 ``Range``).

Nor can a hash stop a relay that sends its bytes *too slowly*: one byte a second held a
download (and one of the node's :data:`~node.messaging._lanes.MAX_DOWNLOADS` lanes)
with no end and no word, since each byte restarted the socket's read timeout. So the
answer is held to a :class:`Pace` too, ended the same way when it is slower.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

import aiohttp

from protocol.errors import TransportError


@dataclass(frozen=True)
class Pace:
    """The least throughput a blob download accepts: ``least`` bytes within every
    ``window`` seconds spent waiting for the relay (time the caller spends between two
    pieces, writing them to disk, does not count)."""

    least: int
    window: float


#: 1 MiB a minute (about 17 KiB/s). A relay serves a blob from its own disk, and any link
#: fit to carry attachments is hundreds of times faster; slower than this, for a whole
#: minute, is a relay that does not serve (or a trickle meant to hold the download). A
#: download cut for it loses nothing: the node resumes after the bytes it kept, so even
#: a genuinely slow link makes progress, one minute-long stretch at a time.
DOWNLOAD_PACE: Final = Pace(least=1 << 20, window=60.0)


def answer_span(
    status: int,
    content_range: str | None,
    content_length: int | None,
    *,
    start: int,
    end: int | None,
    length: int | None,
) -> int | None:
    """The bytes a download's answer must hold (None: unknown, no ``Content-Length``
    and no ``length``).

    Raises:
        TransportError: the answer is not the part asked for: another status, another
            start, end or total in ``Content-Range``, or a ``Content-Length`` that
            disagrees with it or with ``length``.
    """
    ranged = start > 0 or end is not None
    if not ranged and status == 200:
        if length is None or content_length in (None, length):
            return length if content_length is None else content_length
    elif ranged and status == 206:
        parsed = _content_range(content_range)
        if parsed is not None:
            first, last, total = parsed
            want_last = (total if end is None else min(end, total)) - 1
            size = last - first + 1
            if (
                first == start
                and last == want_last
                and (length is None or total == length)
                and content_length in (None, size)
            ):
                return size
    raise TransportError(
        "relay answered another part of the blob",
        detail=f"HTTP {status} Content-Range {content_range} Content-Length {content_length}",
    )


class BlobReader:
    """The pieces of one answer, held to its span and to a :class:`Pace`; ``got``: the
    bytes yielded so far."""

    def __init__(self, span: int | None, pace: Pace) -> None:
        self.got = 0
        self._span = span
        self._pace = pace

    async def pieces(self, content: aiohttp.StreamReader) -> AsyncIterator[bytes]:
        """Each piece as the socket gave it (up to the read buffer).

        Raises:
            TransportError: a byte past the span, fewer bytes than the span at the end,
                or fewer than ``pace.least`` bytes within ``pace.window`` seconds.
        """
        loop = asyncio.get_running_loop()
        pace, span = self._pace, self._span
        deadline, stretch = loop.time() + pace.window, 0
        while True:
            waiting = asyncio.timeout_at(deadline)
            try:
                async with waiting:
                    piece, end_of_chunk = await content.readchunk()
            except TimeoutError:
                if not waiting.expired():
                    raise  # the socket's own read timeout: the caller's to report
                raise TransportError(
                    f"blob download too slow: fewer than {pace.least} bytes"
                    f" in {pace.window:g} s, after {self.got} bytes"
                ) from None
            if not piece:
                if end_of_chunk:
                    continue  # an empty HTTP chunk boundary, not the end
                break
            if span is not None and self.got + len(piece) > span:
                raise TransportError(
                    f"relay sent more than the {span} bytes of the part asked for",
                    detail=f"{self.got + len(piece)} bytes or more",
                )
            self.got += len(piece)
            stretch += len(piece)
            if stretch >= pace.least:
                deadline, stretch = loop.time() + pace.window, 0
            paused = loop.time()
            yield piece
            deadline += loop.time() - paused  # the caller's time is not the relay's
        if span is not None and self.got != span:
            raise TransportError(f"blob cut short: {self.got} of {span} bytes")


def _content_range(value: str | None) -> tuple[int, int, int] | None:
    """``(first, last, total)`` of an RFC 9110 §14.4 ``Content-Range: bytes a-b/n``, or
    None unless it is exactly that with ``a <= b < n``."""
    if value is None or not value.startswith("bytes "):
        return None
    first, dash, rest = value[6:].partition("-")
    last, slash, total = rest.partition("/")
    numbers = (first, last, total)
    if not dash or not slash or not all(s.isascii() and s.isdigit() for s in numbers):
        return None
    a, b, n = map(int, numbers)
    return (a, b, n) if a <= b < n else None
