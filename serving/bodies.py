"""Request bodies as sent: no content coding (RFC 9110 §8.4), on every server of ours.

None of the project's protocols compresses a request body: nodes sign the exact bytes
they send (RFC 9530 ``Content-Digest`` over the content as sent) and browsers never
compress a form. aiohttp would still decode a ``Content-Encoding: gzip`` or ``deflate``
body on the fly, before any check of ours, and a body that failed to decode surfaced in
the handler as ``RequestPayloadError``: a 500 with a traceback on the relay, the local
API and the console alike (an outside probe). So the runners of all three servers take
bodies as sent (:func:`serving.runner_kwargs` sets ``auto_decompress=False``), and a
request that names a content coding other than ``identity`` is refused ``415`` with
``Accept-Encoding: identity`` (RFC 9110 §15.5.16) before its body is read.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

#: the answer's header naming the one content coding taken (RFC 9110 §12.5.3)
ACCEPT_ENCODING: Final = {"Accept-Encoding": "identity"}
#: what a read of a body may raise for the peer's doing (a body cut or badly framed)
PEER_BODY_ERRORS: Final = (ConnectionError, RequestPayloadError)


def coding_refused(request: web.BaseRequest) -> str | None:
    """Why the request's ``Content-Encoding`` cannot be taken (a message), or None.

    Absent, or only ``identity`` (in any case, possibly listed more than once), is fine.
    """
    codings = [
        c.strip().lower()
        for field in request.headers.getall("Content-Encoding", [])
        for c in field.split(",")
    ]
    if all(c in ("", "identity") for c in codings):
        return None
    return "request bodies are taken as sent: no Content-Encoding (only identity)"


async def name_server(_request: web.BaseRequest, response: web.StreamResponse) -> None:
    """``on_response_prepare``: ``Server: relay247`` instead of aiohttp's, which names the
    Python and aiohttp versions (what a scanner matches against advisories)."""
    response.headers["Server"] = "relay247"
