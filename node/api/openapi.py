"""The OpenAPI 3.1 document of the node's local API (PROTOCOL.md §8.6).

Schemas come from the same msgspec Structs the API encodes (``schemas.node_api``), so the
document cannot drift from the answers.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from node.api._stats_doc import STATS_TYPES, stats_paths
from schemas import Attachment
from schemas import node_api as api
from schemas import node_api_retention as ret
from schemas.errors import ErrorBody
from schemas.node_api_links import CaseLinkView, LinkRequest, UnlinkResult

_REF: Final = "#/components/schemas/{name}"
_TYPES: Final = (
    api.NodeStatus,
    api.SendRequest,
    api.SendResult,
    api.CaseList,
    api.CaseDetail,
    api.Inbox,
    CaseLinkView,
    LinkRequest,
    UnlinkResult,
    api.AttachmentList,
    Attachment,
    ret.HoldRequest,
    ret.RetentionView,
    ret.PassView,
    ErrorBody,
    *STATS_TYPES,
)


def _json(t: type) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(name=t.__name__)}}}


def _op(summary: str, ok: int, answer: dict[str, Any], *errors: int) -> dict[str, Any]:
    responses: dict[str, Any] = {str(ok): {"description": "OK", "content": answer}}
    for status in (401, 403, *errors):  # 403 forbidden: an officer token's roles (§14.4)
        responses[str(status)] = {"description": "Error", "content": _json(ErrorBody)}
    return {"summary": summary, "security": [{"bearer": []}], "responses": responses}


def _case_id() -> dict[str, Any]:
    return {
        "name": "case_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
    }


def build_openapi() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document as a JSON-ready dict."""
    _, components = msgspec.json.schema_components(_TYPES, ref_template=_REF)
    send = _op("Seal and queue a message", 202, _json(api.SendResult), 400, 413, 415, 422)
    send["requestBody"] = {"required": True, "content": _json(api.SendRequest)}
    inbox = _op("Incoming messages, newest last", 200, _json(api.Inbox), 400)
    inbox["parameters"] = [
        {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    ]
    case = _op("One case: timeline, deadlines, anomalies", 200, _json(api.CaseDetail), 400, 404)
    case["parameters"] = [_case_id()]
    bundle = {"application/json": {"schema": {"type": "object"}}}
    export = _op("The case's evidence bundle (PROTOCOL.md §7.3)", 200, bundle, 400, 404, 503)
    export["parameters"] = [_case_id()]
    with_linked = {"name": "with_linked", "in": "query", "schema": {"enum": ["0", "1"]}}
    export["parameters"].append(with_linked)
    link = _op("Link the case to another, on this node only", 201, _json(CaseLinkView), 400, 404)
    link["parameters"] = [_case_id()]
    link["requestBody"] = {"required": True, "content": _json(LinkRequest)}
    unlink = _op("Remove this node's links to another case", 200, _json(UnlinkResult), 400, 404)
    other = {**_case_id(), "name": "other"}
    kind = {"name": "type", "in": "query", "schema": {"type": "string"}}
    unlink["parameters"] = [_case_id(), other, kind]
    return {
        "openapi": "3.1.0",
        "info": {"title": "relay247 node local API", "version": str(api.API_VERSION)},
        "servers": [
            {
                "url": "http://127.0.0.1:{port}",
                "variables": {"port": {"default": "0", "description": "the port in DATA/api.port"}},
            }
        ],
        "paths": {
            "/v1/status": {"get": _op("Node status", 200, _json(api.NodeStatus))},
            "/v1/messages": {"post": send},
            "/v1/cases": {"get": _op("One page of cases", 200, _json(api.CaseList))},
            "/v1/cases/{case_id}": {"get": case},
            "/v1/cases/{case_id}/export": {"get": export},
            "/v1/cases/{case_id}/links": {"post": link},
            "/v1/cases/{case_id}/links/{other}": {"delete": unlink},
            "/v1/inbox": {"get": inbox},
            **_attachment_paths(),
            **stats_paths(_op, _json),
            **_retention_paths(),
            "/v1/openapi.json": {"get": _op("This document", 200, {"application/json": {}})},
        },
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The node's token (DATA/api.token, every call) or an"
                    " officer's (`relay247 node officer token`, the calls its roles allow:"
                    " PROTOCOL.md §14.4)",
                }
            },
        },
    }


def _attachment_paths() -> dict[str, Any]:
    """The attachment routes (``node.api.attachments``, PROTOCOL.md §15.2)."""
    octets = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    upload = _op(
        "Encrypt a file for a body's attachments", 201, _json(Attachment), 400, 413, 415, 422
    )
    upload["parameters"] = [
        {"name": "name", "in": "query", "required": True, "schema": {"type": "string"}},
        {"name": "media_type", "in": "query", "required": True, "schema": {"type": "string"}},
        {"name": "to", "in": "query", "required": False, "schema": {"type": "string"}},
    ]
    upload["requestBody"] = {"required": True, "content": octets}
    listing = _op("A case's attachments", 200, _json(api.AttachmentList), 400, 404)
    listing["parameters"] = [_case_id()]
    one = _op("One attachment's verified plaintext, streamed", 200, octets, 400, 404)
    number = {"name": "n", "in": "path", "required": True, "schema": {"type": "integer"}}
    one["parameters"] = [_case_id(), number]
    raw = _op("One attachment's kept ciphertext", 200, octets, 400, 404)
    raw["parameters"] = [_case_id(), number]
    return {
        "/v1/attachments": {"post": upload},
        "/v1/cases/{case_id}/attachments": {"get": listing},
        "/v1/cases/{case_id}/attachments/{n}": {"get": one},
        "/v1/cases/{case_id}/attachments/{n}/ciphertext": {"get": raw},
    }


def _retention_paths() -> dict[str, Any]:
    """Legal hold and retention (``node.api.retention``, PROTOCOL.md §19)."""
    hold = _op("Put the case on legal hold (hold_cases)", 201, _json(ret.RetentionView), 400, 404)
    hold["parameters"] = [_case_id()]
    hold["requestBody"] = {"required": True, "content": _json(ret.HoldRequest)}
    release = _op("Lift the case's legal hold (hold_cases)", 200, _json(ret.RetentionView), 404)
    release["parameters"] = [_case_id()]
    facts = _op("The case's hold, its history, bodies removed", 200, _json(ret.RetentionView), 404)
    facts["parameters"] = [_case_id()]
    limit = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0}}
    dry = _op("What a retention pass would remove now", 200, _json(ret.PassView), 400)
    run = _op("Run a retention pass now (configure)", 200, _json(ret.PassView), 400)
    dry["parameters"] = run["parameters"] = [limit]
    return {
        "/v1/cases/{case_id}/hold": {"post": hold},
        "/v1/cases/{case_id}/release": {"post": release},
        "/v1/cases/{case_id}/retention": {"get": facts},
        "/v1/retention": {"get": dry, "post": run},
    }
