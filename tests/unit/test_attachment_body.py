"""The body's optional ``attachments`` (PROTOCOL.md §10.2, §15.2) and rule S14."""

from __future__ import annotations

import base64
import json
from typing import Any

import msgspec
import pytest

from protocol.codec import decode
from protocol.errors import MalformedError
from schemas import MAX_ATTACHMENTS, Attachment
from schemas.examples import EXAMPLES
from schemas.messages import BODY_DECODER, Body, encode_body, semantic_errors
from schemas.types import CoarseKind

GOOD = Attachment(
    blob_id="ab" * 16,
    name="Ordonnance du juge (signée).pdf",
    media_type="application/pdf",
    size=100_000,
    sha256="1" * 64,
    ct_sha256="2" * 64,
    ct_len=24 + 100_000 + 17 * 2,
    key=base64.b64encode(bytes(range(32))).decode(),
)


def _body(*files: Attachment) -> Body:
    return msgspec.structs.replace(EXAMPLES["preservation_request"], attachments=tuple(files))


def _decode(raw: bytes) -> Body:
    return decode(BODY_DECODER, raw, "body", limit=1 << 20)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_bodies_without_attachments_encode_as_before(kind: str) -> None:
    raw = encode_body(EXAMPLES[kind])
    assert b"attachments" not in raw
    assert _decode(raw).attachments is msgspec.UNSET


def test_round_trip_and_no_finding() -> None:
    body = _body(GOOD, msgspec.structs.replace(GOOD, blob_id="cd" * 16, size=0, ct_len=41))
    assert _decode(encode_body(body)) == body
    assert semantic_errors(body) == []


def _with(**change: Any) -> bytes:
    raw = json.loads(encode_body(_body(GOOD)))
    raw["attachments"][0].update(change)
    return json.dumps(raw).encode()


@pytest.mark.parametrize(
    "change",
    [
        {"name": "../etc/passwd"},
        {"name": "a\\b"},
        {"name": "a\nb"},
        {"name": "a\u0085b"},  # C1 control
        {"name": ""},
        {"name": "x" * 256},
        {"media_type": "pdf"},
        {"media_type": "application/pdf; charset=x"},
        {"blob_id": "AB" * 16},
        {"size": -1},
        {"ct_len": 40},
        {"key": base64.b64encode(bytes(31)).decode()},
        {"key": base64.b64encode(bytes(33)).decode()},
        {"sha256": "1" * 63},
        {"unknown": 1},
    ],
)
def test_schema_refuses(change: dict[str, Any]) -> None:
    with pytest.raises(MalformedError):
        _decode(_with(**change))


def test_empty_list_and_too_many_refused() -> None:
    raw = json.loads(encode_body(_body(GOOD)))
    raw["attachments"] = []
    with pytest.raises(MalformedError):
        _decode(json.dumps(raw).encode())
    raw["attachments"] = [
        {**json.loads(msgspec.json.encode(GOOD)), "blob_id": f"{i:032x}"}
        for i in range(MAX_ATTACHMENTS + 1)
    ]
    with pytest.raises(MalformedError):
        _decode(json.dumps(raw).encode())


@pytest.mark.parametrize(
    ("files", "path"),
    [
        ((msgspec.structs.replace(GOOD, name=".."),), "$.attachments[0].name"),
        ((msgspec.structs.replace(GOOD, name=" a.pdf"),), "$.attachments[0].name"),
        ((GOOD, msgspec.structs.replace(GOOD, name="other")), "$.attachments[1].blob_id"),
        ((msgspec.structs.replace(GOOD, ct_len=GOOD.ct_len + 1),), "$.attachments[0].ct_len"),
    ],
)
def test_s13(files: tuple[Attachment, ...], path: str) -> None:
    assert [p for p, _ in semantic_errors(_body(*files))] == [path]


def test_attachments_do_not_change_the_coarse_kind() -> None:
    from schemas.messages import coarse_kind

    assert coarse_kind(_body(GOOD)) is CoarseKind.REQUEST
