"""Read a whole HTTP answer, bounded, or fail with a clear error.

``response.content.read(n)`` returns whatever is buffered, not ``n`` bytes: a caller that
reads once gets a prefix of any answer that arrives in more than one TCP segment (on
loopback, anything over about 128 KiB; on a real network, much less). Every client of
relay247 reads its answers here instead.
"""

from __future__ import annotations

import aiohttp

from protocol.errors import TooLargeError, TransportError


async def read_body(response: aiohttp.ClientResponse, limit: int, *, what: str = "answer") -> bytes:
    """Read ``response``'s body to its end (Content-Length, last chunk, or close).

    Works for Content-Length, chunked and read-until-close answers alike. Memory stays
    bounded by ``limit`` plus one network read whatever the peer sends.

    Args:
        response: an answer whose headers were received; its body is not yet read.
        limit: the largest body accepted, in bytes (after any content decoding).
        what: names the answer in error messages, e.g. ``"relay answer"``.

    Returns:
        The exact body bytes.

    Raises:
        TooLargeError: the peer declared or sent more than ``limit`` bytes (the peer sent
            bad data; the connection is closed, not reused).
        TransportError: the connection closed or broke before the body's end (a
            Content-Length not reached, a chunked body without its last chunk), or the
            body did not arrive within the request's timeout.
    """
    # A declared length over the limit is refused before reading anything. With a
    # Content-Encoding the header counts encoded bytes, so only the running count below
    # applies (it counts decoded bytes, what actually lands in memory).
    declared = response.content_length
    encoded = response.headers.get("Content-Encoding", "identity").lower() != "identity"
    where = f"{response.method} {response.url}"
    if declared is not None and not encoded and declared > limit:
        response.close()
        raise TooLargeError(
            f"{what} larger than {limit} bytes", detail=f"{where}: Content-Length {declared}"
        )
    chunks: list[bytes] = []
    total = 0
    try:
        while chunk := await response.content.readany():
            total += len(chunk)
            if total > limit:
                response.close()
                raise TooLargeError(
                    f"{what} larger than {limit} bytes", detail=f"{where}: over {limit} sent"
                )
            chunks.append(chunk)
    except TimeoutError:  # first: aiohttp's ServerTimeoutError is also a connection error
        raise TransportError(
            f"{what} not received in time ({total} bytes read)", detail=where
        ) from None
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
        raise TransportError(
            f"{what} cut short: the connection closed after {total} bytes"
            + ("" if declared is None or encoded else f" of {declared}"),
            detail=f"{where}: {type(exc).__name__}: {exc}",
        ) from None
    if declared is not None and not encoded and total != declared:
        # aiohttp's parser stops at Content-Length and reports an early close itself;
        # this only guards against a future parser that would not.
        raise TransportError(f"{what} cut short: {total} of {declared} bytes", detail=where)
    return b"".join(chunks)
