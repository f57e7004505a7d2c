"""The message-body union: every business message carried encrypted inside an envelope.

Bodies are JSON objects tagged by ``kind`` (a msgspec tagged union). Decoding enforces
the shape and the per-field constraints; ``semantic_errors`` adds the cross-field rules.
This module knows nothing of the protocol's exception types (schemas imports no protocol):
it gives the raw decoder :data:`BODY_DECODER`, and product code runs it only through
``protocol.codec.decode``, the one place that turns msgspec's errors into
``MalformedError`` (step J1 included). The protocol layer turns any ``semantic_errors``
result into ``MalformedError`` too.
"""

from __future__ import annotations

from typing import Any, Final, get_args

import msgspec

from schemas import _semantic
from schemas._bodies_base import BodyBase
from schemas._bodies_dataprot import (
    OnwardTransferAnswer,
    OnwardTransferRequest,
    SecurityIncidentNotice,
)
from schemas._bodies_other import (
    AssistanceAnswer,
    AssistanceRequest,
    EmergencyDisclosureAnswer,
    EmergencyDisclosureRequest,
    FollowUp,
    FollowUpRole,
)
from schemas._bodies_request import (
    MlaSubmitted,
    PreservationExtension,
    PreservationRequest,
    PreservationWithdrawal,
    WarningDecisionBody,
)
from schemas._bodies_response import (
    ImpossibleToExecute,
    PreservationWarning,
    Preserved,
    Refusal,
    TakenInCharge,
    TrafficDataDisclosure,
)
from schemas._stats import StatisticsReport
from schemas.types import CoarseKind, Priority

Body = (
    PreservationRequest
    | PreservationExtension
    | PreservationWithdrawal
    | MlaSubmitted
    | TakenInCharge
    | Preserved
    | PreservationWarning
    | WarningDecisionBody
    | Refusal
    | ImpossibleToExecute
    | TrafficDataDisclosure
    | EmergencyDisclosureRequest
    | EmergencyDisclosureAnswer
    | AssistanceRequest
    | AssistanceAnswer
    | FollowUp
    | SecurityIncidentNotice
    | OnwardTransferRequest
    | OnwardTransferAnswer
    | StatisticsReport
)

# The relay-visible class of each kind (DESIGN.md §2.1). FollowUp depends on its role.
_COARSE: Final[dict[type[Any], CoarseKind]] = {
    PreservationRequest: CoarseKind.REQUEST,
    PreservationExtension: CoarseKind.REQUEST,
    PreservationWithdrawal: CoarseKind.NOTICE,
    MlaSubmitted: CoarseKind.NOTICE,
    TakenInCharge: CoarseKind.RESPONSE,
    Preserved: CoarseKind.RESPONSE,
    PreservationWarning: CoarseKind.RESPONSE,
    WarningDecisionBody: CoarseKind.RESPONSE,
    Refusal: CoarseKind.RESPONSE,
    ImpossibleToExecute: CoarseKind.RESPONSE,
    TrafficDataDisclosure: CoarseKind.RESPONSE,
    EmergencyDisclosureRequest: CoarseKind.REQUEST,
    EmergencyDisclosureAnswer: CoarseKind.RESPONSE,
    AssistanceRequest: CoarseKind.REQUEST,
    AssistanceAnswer: CoarseKind.RESPONSE,
    SecurityIncidentNotice: CoarseKind.NOTICE,
    OnwardTransferRequest: CoarseKind.REQUEST,
    OnwardTransferAnswer: CoarseKind.RESPONSE,
    StatisticsReport: CoarseKind.NOTICE,
}

#: Every body struct, in the order of the union.
BODY_TYPES: Final[tuple[type[BodyBase], ...]] = get_args(Body)


def _tag(cls: type[BodyBase]) -> str:
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str)  # every body class declares a string tag
    return tag


#: The ``kind`` string of every body, e.g. ``"preservation_request"``.
KINDS: Final[tuple[str, ...]] = tuple(_tag(c) for c in BODY_TYPES)

#: The raw decoder of a body (shape and field constraints, not semantics). It raises
#: msgspec's errors: call it through ``protocol.codec.decode`` (schemas may not import
#: protocol, so the mapping to ``MalformedError`` lives there).
BODY_DECODER: Final[msgspec.json.Decoder[Body]] = msgspec.json.Decoder(Body)
_ENCODER: Final = msgspec.json.Encoder()


def encode_body(body: Body) -> bytes:
    """Encode a body to its JSON wire bytes (compact, field order as declared).

    Args:
        body: any body struct.

    Returns:
        UTF-8 JSON bytes; these exact bytes are what the sender signs.
    """
    return _ENCODER.encode(body)


def kind_of(body: Body) -> str:
    """Return the ``kind`` tag of a body, e.g. ``"refusal"``."""
    return _tag(type(body))


def coarse_kind(body: Body) -> CoarseKind:
    """Return the relay-visible class of a body.

    Args:
        body: any body struct.

    Returns:
        ``REQUEST``, ``RESPONSE`` or ``NOTICE`` (never ``RECEIPT``: receipts are not
        bodies). A follow-up is a request when it asks and a response when it answers.
    """
    if isinstance(body, FollowUp):
        return CoarseKind.REQUEST if body.role is FollowUpRole.QUESTION else CoarseKind.RESPONSE
    return _COARSE[type(body)]


def priority_of(body: Body) -> Priority:
    """Return the relay-visible priority of a body.

    Args:
        body: any body struct.

    Returns:
        ``URGENT`` for both sides of a CETS 224 Art. 9 emergency (life or safety at risk);
        the body's own ``priority`` field where it has one; ``NORMAL`` otherwise.
    """
    if isinstance(body, EmergencyDisclosureRequest | EmergencyDisclosureAnswer):
        return Priority.URGENT
    prio = getattr(body, "priority", None)
    return prio if isinstance(prio, Priority) else Priority.NORMAL


def semantic_errors(body: Body) -> list[tuple[str, str]]:
    """Check the cross-field rules S1-S12 of docs/_sections/messages.md.

    Args:
        body: a body decoded with :data:`BODY_DECODER` (or built in code).

    Returns:
        ``(json_path, message)`` pairs, empty when the body is valid. The protocol layer
        rejects a non-empty result with ``MalformedError``; ``json_path`` uses msgspec's
        ``$.field[index]`` notation.
    """
    return _semantic.check(body, is_answer=coarse_kind(body) is CoarseKind.RESPONSE)


__all__ = [
    "BODY_DECODER",
    "BODY_TYPES",
    "KINDS",
    "Body",
    "coarse_kind",
    "encode_body",
    "kind_of",
    "priority_of",
    "semantic_errors",
]
