"""The header's optional ``attachments`` (PROTOCOL.md §15.3) and the blob schemas (§15.4).

Old headers must encode byte for byte as before the field existed: the committed
vectors' headers decode and re-encode unchanged, and a seal without attachments writes
no ``attachments`` key at all.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from protocol.codec import decode_as, encode
from protocol.envelope import check_header, seal_envelope
from protocol.errors import MalformedError, Relay247Error
from schemas.blobs import (
    BLOB_CHUNK,
    MAX_ATTACHMENTS,
    BlobCreate,
    BlobRef,
    BlobStatus,
    chunk_count,
    chunk_span,
)
from schemas.envelope import Envelope, EnvelopeHeader
from schemas.types import CoarseKind, Priority
from tests.support.network import Network, make_network

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def _ref(n: int = 0, ct_len: int = 1000) -> BlobRef:
    return BlobRef(blob_id=f"{n:032x}", ct_sha256="ab" * 32, ct_len=ct_len)


def _seal(net: Network, attachments: tuple[BlobRef, ...] = ()) -> bytes:
    us = net.members["US"].encryption
    return seal_envelope(
        b'{"kind":"follow_up"}',
        msg_id=os.urandom(16).hex(),
        case_id="c" * 32,
        kind=CoarseKind.REQUEST,
        priority=Priority.NORMAL,
        seq=1,
        sender="FR",
        signing_key=net.members["FR"].signing,
        recipient="US",
        recipient_key=us.public,
        recipient_key_fp=us.fingerprint,
        created=datetime.now(UTC),
        lifetime=timedelta(hours=1),
        attachments=attachments,
    ).envelope


def test_committed_vector_headers_reencode_byte_for_byte() -> None:
    cases = json.loads((VECTORS / "envelopes.json").read_bytes())["cases"]
    seen = 0
    for case in cases:
        if "data_b64" not in case:
            continue
        try:
            env = decode_as(Envelope, base64.b64decode(case["data_b64"]), "envelope", limit=1 << 22)
            header = decode_as(EnvelopeHeader, env.header, "header", limit=4096)
        except Relay247Error:
            continue  # the malformed cases
        assert header.attachments is msgspec.UNSET
        assert encode(header) == env.header, case["name"]
        seen += 1
    assert seen >= 10


def test_seal_without_attachments_writes_no_key() -> None:
    net = make_network(("FR", "US"))
    env = msgspec.json.decode(_seal(net), type=Envelope)
    assert b"attachments" not in env.header
    checked = check_header(_seal(net), net.lookup(), now=datetime.now(UTC))
    assert checked.header.attachments is msgspec.UNSET


def test_seal_with_attachments_signs_them_into_the_header() -> None:
    net = make_network(("FR", "US"))
    refs = (_ref(1), _ref(2, ct_len=2**40))
    checked = check_header(_seal(net, refs), net.lookup(), now=datetime.now(UTC))
    assert checked.header.attachments == refs


def test_header_naming_one_blob_twice_is_refused() -> None:
    net = make_network(("FR", "US"))
    with pytest.raises(MalformedError, match="twice"):
        check_header(_seal(net, (_ref(1), _ref(1))), net.lookup(), now=datetime.now(UTC))


def test_more_than_the_maximum_attachments_is_refused() -> None:
    net = make_network(("FR", "US"))
    _seal(net, tuple(_ref(i) for i in range(MAX_ATTACHMENTS)))
    with pytest.raises(Relay247Error):
        _seal(net, tuple(_ref(i) for i in range(MAX_ATTACHMENTS + 1)))


def test_empty_attachment_list_is_refused_on_the_wire() -> None:
    """None is spelled by leaving the key out: ``[]`` would be a second spelling."""
    net = make_network(("FR", "US"))
    env = msgspec.json.decode(_seal(net, (_ref(),)), type=Envelope)
    header = json.loads(env.header)
    header["attachments"] = []
    with pytest.raises(MalformedError):
        decode_as(EnvelopeHeader, json.dumps(header).encode(), "header", limit=4096)


@pytest.mark.parametrize(
    "bad",
    [
        {"blob_id": "A" * 32},
        {"blob_id": "0" * 31},
        {"ct_len": 0},
        {"ct_len": 2**53 + 1},
        {"ct_sha256": "ab" * 31},
        {"extra": 1},
    ],
)
def test_blob_ref_refuses(bad: dict[str, object]) -> None:
    obj: dict[str, object] = {"blob_id": "0" * 32, "ct_sha256": "ab" * 32, "ct_len": 5}
    obj.update(bad)
    with pytest.raises(MalformedError):
        decode_as(BlobRef, json.dumps(obj).encode(), "blob ref", limit=4096)


def test_create_and_status_round_trip() -> None:
    create = BlobCreate(blob_id="1" * 32, recipient="US", ct_len=10, ct_sha256="cd" * 32)
    assert msgspec.json.decode(encode(create), type=BlobCreate) == create
    status = BlobStatus(
        blob_id="1" * 32, ct_len=10, chunk_size=BLOB_CHUNK, missing=(0,), complete=False
    )
    assert msgspec.json.decode(encode(status), type=BlobStatus) == status


def test_chunk_arithmetic() -> None:
    assert BLOB_CHUNK == 4_194_304
    assert chunk_count(1) == 1
    assert chunk_count(BLOB_CHUNK) == 1
    assert chunk_count(BLOB_CHUNK + 1) == 2
    assert chunk_span(1, BLOB_CHUNK + 5) == (BLOB_CHUNK, BLOB_CHUNK + 5)
    assert chunk_span(0, 7) == (0, 7)
    for bad in (-1, 2):
        with pytest.raises(ValueError, match="out of range"):
            chunk_span(bad, BLOB_CHUNK + 1)
