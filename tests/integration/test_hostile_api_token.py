"""The node API's bearer token check, fed bytes that are not UTF-8.

aiohttp decodes header bytes as UTF-8 with ``surrogateescape``; a token compared after a
strict ``str.encode()`` then raised before the API's error handling, so any local
process without the token got ``500 internal`` and an error-level traceback in the log.
"""

from __future__ import annotations

from pathlib import Path

from schemas.errors import ErrorCode
from tests.integration._hostile_servers import hostile_node
from tests.support.raw_http import assert_sound, exchange


def _status_request(authorization: bytes) -> bytes:
    return (
        b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: "
        + authorization
        + b"\r\nConnection: close\r\n\r\n"
    )


async def test_non_utf8_token_is_unauthenticated(tmp_path: Path) -> None:
    async with hostile_node(tmp_path) as node:
        for authorization in (
            b"Bearer \xff\xfe",
            b"Bearer " + node.token.encode() + b"\xff",
            b"\xc3 " + node.token.encode(),
        ):
            answer = await exchange(node.url, _status_request(authorization))
            error = assert_sound(answer, "")
            assert answer.status == 401, (authorization, answer)
            assert error is not None
            assert error.code is ErrorCode.UNAUTHENTICATED
        # hostile_node's exit checks that the API still serves and logged no error.
