"""Step E13: body decoding after verification, and its agreement with the header."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from protocol.body import decode_opened
from protocol.envelope import Opened, open_envelope, seal_envelope
from protocol.errors import MalformedError, VerificationError
from schemas.errors import ErrorCode
from schemas.examples import EXAMPLES
from schemas.messages import coarse_kind, encode_body, priority_of
from schemas.types import CoarseKind, Priority
from tests.support.bodies import addressed
from tests.support.network import T0, Network, make_network

REQUEST = addressed(EXAMPLES["preservation_request"], "FR", "US")


def _opened(
    net: Network,
    body: bytes,
    *,
    case_id: str = REQUEST.case_id,
    kind: CoarseKind | None = None,
    priority: Priority | None = None,
) -> Opened:
    us = net.members["US"]
    sealed = seal_envelope(
        body,
        msg_id="a" * 32,
        case_id=case_id,
        kind=kind or coarse_kind(REQUEST),
        priority=priority or priority_of(REQUEST),
        seq=1,
        sender="FR",
        signing_key=net.members["FR"].signing,
        recipient="US",
        recipient_key=us.encryption.public,
        recipient_key_fp=us.encryption.fingerprint,
        created=T0,
        lifetime=timedelta(hours=1),
    )
    return open_envelope(
        sealed.envelope,
        net.lookup(),
        me="US",
        my_keys={us.encryption.fingerprint: us.encryption},
        now=T0,
    )


@pytest.fixture
def net() -> Network:
    return make_network()


def test_every_example_decodes(net: Network) -> None:
    for example_body in EXAMPLES.values():
        body = addressed(example_body, "FR", "US")
        opened = _opened(
            net,
            encode_body(body),
            case_id=body.case_id,
            kind=coarse_kind(body),
            priority=priority_of(body),
        )
        assert decode_opened(opened) == body


def test_not_json(net: Network) -> None:
    with pytest.raises(MalformedError, match="not valid JSON"):
        decode_opened(_opened(net, b"\x00not json"))


def test_schema_violation_names_field(net: Network) -> None:
    raw = msgspec.json.decode(encode_body(REQUEST))
    raw["sender_ref"] = ""
    with pytest.raises(MalformedError, match="sender_ref"):
        decode_opened(_opened(net, msgspec.json.encode(raw)))


def test_semantic_violation_names_field(net: Network) -> None:
    bad = msgspec.structs.replace(REQUEST, previous_ref=None)
    from schemas import RequestStatus

    bad = msgspec.structs.replace(bad, status=RequestStatus.EXTENSION)
    with pytest.raises(MalformedError, match="previous_ref"):
        decode_opened(_opened(net, encode_body(bad)))


@pytest.mark.parametrize(
    "changes",
    [{"case_id": "e" * 32}, {"kind": CoarseKind.NOTICE}, {"priority": Priority.NORMAL}],
)
def test_header_disagreement(net: Network, changes: dict[str, object]) -> None:
    with pytest.raises(VerificationError) as e:
        decode_opened(_opened(net, encode_body(REQUEST), **changes))  # type: ignore[arg-type]
    assert e.value.code == ErrorCode.BINDING_MISMATCH
