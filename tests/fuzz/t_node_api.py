"""Target ``node_api``: the node API's request bodies and parameters.

``POST /v1/messages`` (``SendRequest``: every body kind, then the checks ``send_linked``
runs before any I/O: the semantic rules and the member binding, and the body must
re-encode to bytes that decode to the same body), ``POST /v1/cases/{id}/links``
(``LinkRequest``) and the attachment upload's query (``name``, ``media_type``).
"""

from __future__ import annotations

from node.api.handlers import _SEND  # the handler's own decoder
from node.api.links import _LINK
from protocol.body import member_binding_errors
from protocol.codec import convert, decode
from protocol.errors import Relay247Error
from schemas import node_api
from schemas.messages import BODY_DECODER, encode_body, semantic_errors
from tests.fuzz._harness import Pick


def _send(raw: bytes) -> None:
    req = decode(_SEND, raw, "request", limit=1 << 20)
    if semantic_errors(req.body):
        return
    member_binding_errors(req.body, sender="FR", recipient=req.to)
    again = encode_body(req.body)
    assert decode(BODY_DECODER, again, "body", limit=1 << 20) == req.body


def _upload(raw: bytes) -> None:
    name, _, media_type = raw.decode("utf-8", errors="replace").partition("\n")
    convert({"name": name, "media_type": media_type}, node_api.AttachmentUpload, "attachment")


def one(data: bytes) -> None:
    pick = Pick(data)
    mode = pick.byte() % 3
    raw = pick.rest()
    try:
        if mode == 0:
            _send(raw)
        elif mode == 1:
            decode(_LINK, raw, "request", limit=1 << 20)
        else:
            _upload(raw)
    except Relay247Error:
        pass
