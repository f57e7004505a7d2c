"""OpenAPI 3.1 document of the relay API, generated from the msgspec schemas."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from schemas.audit_api import (
    ConsistencyProof,
    CosignatureResult,
    CosignatureSubmission,
    EntriesPage,
    InclusionProof,
)
from schemas.blobs import BlobCommit, BlobCreate, BlobStatus
from schemas.directory import SignedDirectory
from schemas.email_record import SignedEmailRecord
from schemas.envelope import Envelope, SignedAck
from schemas.errors import ErrorBody
from schemas.relay_api import (
    AckResult,
    DirectoryResult,
    EmailRecordResult,
    MailboxPage,
    MembersStatus,
    RelayInfo,
    SubmitResult,
)

_TYPES = (
    Envelope,
    SignedAck,
    SignedDirectory,
    ErrorBody,
    SubmitResult,
    MailboxPage,
    AckResult,
    DirectoryResult,
    EmailRecordResult,
    SignedEmailRecord,
    RelayInfo,
    MembersStatus,
    InclusionProof,
    ConsistencyProof,
    EntriesPage,
    CosignatureSubmission,
    CosignatureResult,
    BlobCreate,
    BlobCommit,
    BlobStatus,
)
_SIGNED: list[dict[str, list[str]]] = [{"httpSignature": []}]


def _ref(t: type) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{t.__name__}"}


def _json(t: type) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": _ref(t)}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": "error", **_json(ErrorBody)} for c in codes}


def _op(
    summary: str,
    ok: tuple[int, type | None],
    errors: tuple[int, ...],
    *,
    body: type | None = None,
    signed: bool = True,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {}}
    status, rtype = ok
    op["responses"][str(status)] = {"description": "ok", **(_json(rtype) if rtype else {})}
    op["responses"].update(_errors(*errors))
    if body is not None:
        op["requestBody"] = {"required": True, **_json(body)}
    if signed:
        op["security"] = _SIGNED
    if params:
        op["parameters"] = params
    return op


def _q(name: str, maximum: int) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 0, "maximum": maximum},
    }


def _required(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": True, "schema": schema}


def _raw(summary: str, media: str, params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A public GET answering non-JSON bytes (signed note, tile)."""
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            "200": {"description": "ok", "content": {media: {"schema": {"type": "string"}}}},
            **_errors(400, 404),
        },
    }
    if params:
        op["parameters"] = params
    return op


def _audit_paths() -> dict[str, Any]:
    """The /v1/audit/ endpoints (PROTOCOL.md §7.2)."""
    size = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
    index = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
    leaf = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
    inclusion = _op(
        "Inclusion proof of a leaf (give index or leaf_hash)",
        (200, InclusionProof),
        (400, 404),
        signed=False,
        params=[
            _required("size", size),
            {"name": "index", "in": "query", "required": False, "schema": index},
            {"name": "leaf_hash", "in": "query", "required": False, "schema": leaf},
        ],
    )
    tail = {"name": "tail", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/v1/audit/checkpoint": {
            "get": _raw("Latest signed checkpoint with cosignatures", "text/plain")
        },
        "/v1/audit/proof/inclusion": {"get": inclusion},
        "/v1/audit/proof/consistency": {
            "get": _op(
                "Consistency proof between two tree sizes",
                (200, ConsistencyProof),
                (400, 404),
                signed=False,
                params=[_required("old", size), _required("new", size)],
            )
        },
        "/v1/audit/entries": {
            "get": _op(
                "Leaf entries [start, end), at most 1000",
                (200, EntriesPage),
                (400, 404),
                signed=False,
                params=[_required("start", index), _required("end", size)],
            )
        },
        "/v1/audit/tile/{tail}": {
            "get": _raw(
                "C2SP tlog-tiles: tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]",
                "application/octet-stream",
                [tail],
            )
        },
        "/v1/audit/cosignature": {
            "post": _op(
                "Submit a witness cosignature",
                (200, CosignatureResult),
                (400, 401, 403, 409, 413, 415, 429),
                body=CosignatureSubmission,
            )
        },
    }


def _blob_paths() -> dict[str, Any]:
    """The /v1/blobs endpoints (PROTOCOL.md §15.4), all signed."""
    blob_id = {
        "name": "blob_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
    }
    index = {
        "name": "n",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 0, "maximum": 2**53},
    }
    auth = (400, 401, 403, 404, 429, 503)
    create = _op(
        "Announce a blob (201), or find the same one again to resume (200); ct_sha256"
        " omitted: announced at the commit",
        (201, BlobStatus),
        (400, 401, 403, 409, 413, 415, 422, 429, 503),
        body=BlobCreate,
    )
    create["responses"]["200"] = {"description": "resumed", **_json(BlobStatus)}
    chunk = _op(
        "Upload chunk n, exactly its bytes, Content-Digest signed",
        (200, BlobStatus),
        (*auth, 409, 413, 415),
        params=[blob_id, index],
    )
    octets = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    chunk["requestBody"] = {"required": True, "content": octets}
    rng = {"name": "Range", "in": "header", "required": False, "schema": {"type": "string"}}
    content = _op(
        "The committed ciphertext, streamed (recipient only); one RFC 9110 range",
        (200, None),
        (*auth, 409, 416),
        params=[blob_id, rng],
    )
    content["responses"]["200"]["content"] = octets
    content["responses"]["206"] = {"description": "the range asked for", "content": octets}
    commit = _op(
        "Commit: every chunk present and the SHA-256 right; a body only to name the hash"
        " the create did not",
        (200, BlobStatus),
        (*auth, 409, 413, 415, 422),
        body=BlobCommit,
        params=[blob_id],
    )
    commit["requestBody"]["required"] = False
    discard = _op(
        "Discard an upload not committed (owner only, no body): its chunks and quota freed",
        (204, None),
        (*auth, 409, 413),
        params=[blob_id],
    )
    discard["responses"]["204"]["description"] = "discarded"
    return {
        "/v1/blobs": {"post": create},
        "/v1/blobs/{blob_id}/chunks/{n}": {"put": chunk},
        "/v1/blobs/{blob_id}": {
            "get": _op("Where an upload stands", (200, BlobStatus), auth, params=[blob_id])
        },
        "/v1/blobs/{blob_id}/commit": {"post": commit},
        "/v1/blobs/{blob_id}/discard": {"post": discard},
        "/v1/blobs/{blob_id}/content": {"get": content},
    }


def build_openapi(version: str) -> dict[str, Any]:
    """Return the OpenAPI document as a dict."""
    _, components = msgspec.json.schema_components(
        _TYPES, ref_template="#/components/schemas/{name}"
    )
    auth = (400, 401, 403, 409, 413, 415, 429)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "relay247 relay",
            "version": version,
            "description": "See docs/PROTOCOL.md for the signing profile and checks.",
        },
        "paths": {
            "/v1/envelopes": {
                "post": _op("Submit an envelope", (202, SubmitResult), (*auth, 422), body=Envelope)
            },
            "/v1/mailbox": {
                "get": _op(
                    "Pull the caller's mailbox",
                    (200, MailboxPage),
                    auth,
                    params=[_q("after", 2**62), _q("limit", 500), _q("wait", 30)],
                )
            },
            "/v1/mailbox/ws": {
                "get": _op(
                    "WebSocket push of the caller's mailbox",
                    (101, None),
                    auth,
                    params=[_q("after", 2**62)],
                )
            },
            "/v1/acks": {
                "post": _op("Acknowledge delivery", (200, AckResult), (*auth, 404), body=SignedAck)
            },
            "/v1/email-records": {
                "post": _op(
                    "Log a record of a bridged e-mail (§22.5)",
                    (200, EmailRecordResult),
                    (*auth, 422),
                    body=SignedEmailRecord,
                )
            },
            "/v1/directory": {
                "get": _op(
                    "The signed directory in force", (200, SignedDirectory), (404,), signed=False
                ),
                "post": _op(
                    "Publish a directory version",
                    (200, DirectoryResult),
                    (400, 409, 413, 415),
                    body=SignedDirectory,
                    signed=False,
                ),
            },
            "/v1/info": {
                "get": _op("Relay identity and log key", (200, RelayInfo), (), signed=False)
            },
            "/v1/members/status": {
                "get": _op(
                    "When each member was last seen and last cosigned (members only)",
                    (200, MembersStatus),
                    (401, 403, 429, 503),
                )
            },
            "/healthz": {"get": _op("Liveness", (200, None), (503,), signed=False)},
            "/metrics": {"get": _op("Prometheus metrics", (200, None), (), signed=False)},
            **_blob_paths(),
            **_audit_paths(),
        },
        "components": {
            "schemas": components,
            "securitySchemes": {
                "httpSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Signature",
                    "description": "RFC 9421 signature, profile in docs/PROTOCOL.md §8.2",
                }
            },
        },
    }


async def openapi_handler(request: web.Request) -> web.Response:
    """GET /v1/openapi.json."""
    from relay import __version__

    return web.json_response(build_openapi(__version__))
