"""Emergency disclosure (CETS 224 Art. 9), Art. 35 assistance and in-case follow-ups."""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

from schemas._bodies_base import BodyBase, DataSpec, Languages
from schemas._bodies_response import RefusalGround
from schemas._identifiers import Identifier
from schemas._parts import Custodian, Offence, RequestedAuthority, RequestingAuthority
from schemas.types import LongText, Priority, ShortText, Timestamp


class EmergencyDecision(enum.StrEnum):
    """The requested Party's determination on an emergency request (CETS 224 Art. 9(6))."""

    DISCLOSED = "disclosed"
    DISCLOSED_WITH_CONDITIONS = "disclosed_with_conditions"
    PENDING_PROVIDER = "pending_provider"
    REFUSED = "refused"


class AssistanceType(enum.StrEnum):
    """The forms of immediate assistance a 24/7 point gives (ETS 185 Art. 35(1))."""

    TECHNICAL_ADVICE = "technical_advice"
    LEGAL_INFORMATION = "legal_information"
    EVIDENCE_COLLECTION = "evidence_collection"
    LOCATE_SUSPECT = "locate_suspect"
    OTHER = "other"


class AssistanceOutcome(enum.StrEnum):
    """How an assistance request was answered; ``redirected`` needs ``redirect_to``."""

    ANSWERED = "answered"
    PARTIALLY_ANSWERED = "partially_answered"
    CANNOT_ASSIST = "cannot_assist"
    REDIRECTED = "redirected"


class FollowUpRole(enum.StrEnum):
    """A follow-up asks or answers; an ``answer`` must set ``in_reply_to``."""

    QUESTION = "question"
    ANSWER = "answer"


class FollowUpTopic(enum.StrEnum):
    """What a follow-up is about, so it can be routed and filed without reading it."""

    CLARIFICATION = "clarification"
    STATUS = "status"
    CONDITIONS = "conditions"  # CETS 224 Art. 9(7): cannot comply with a condition
    FORMALISATION = "formalisation"  # CETS 224 Art. 9(5): request submitted afterwards
    OTHER = "other"


Conditions = Annotated[tuple[LongText, ...], msgspec.Meta(max_length=20)]


class EmergencyDisclosureRequest(
    BodyBase,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="kind",
    tag="emergency_disclosure_request",
):
    """Expedited disclosure of stored data in an emergency (CETS 224 Art. 9).

    An emergency is a significant and imminent risk to the life or safety of a natural
    person (CETS 224 Art. 3(2)(c)). Art. 9(3) items: authority and date (``requesting``,
    ``issued_at``), ``protocol_statement`` (must be true), ``providers``, ``offence``
    with its legal provisions and penalty, ``emergency_facts``, a detailed ``data``
    description and ``procedural_instructions``. Always sent with urgent priority.
    """

    issued_at: Timestamp
    requested: RequestedAuthority
    requesting: RequestingAuthority
    protocol_statement: bool
    providers: Annotated[tuple[Custodian, ...], msgspec.Meta(min_length=1, max_length=10)]
    offence: Offence
    emergency_facts: LongText
    data: DataSpec
    procedural_instructions: LongText | None = None
    confidential: bool = True
    languages: Languages


class EmergencyDisclosureAnswer(
    BodyBase,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="kind",
    tag="emergency_disclosure_answer",
):
    """Determination on an emergency request, with conditions and formalisation (9(5)-(6)).

    ``disclosed_with_conditions`` needs ``conditions``; ``refused`` needs
    ``refusal_ground``; ``formalisation_required`` needs ``formalisation_instructions``.
    """

    decision: EmergencyDecision
    data_disclosed: LongText | None = None
    conditions: Conditions = ()
    refusal_ground: RefusalGround | None = None
    explanation: LongText | None = None
    other_cooperation: LongText | None = None
    formalisation_required: bool = False
    formalisation_instructions: LongText | None = None


class AssistanceRequest(
    BodyBase,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="kind",
    tag="assistance_request",
):
    """Request for immediate assistance through the 24/7 network (ETS 185 Art. 35)."""

    assistance: AssistanceType
    requesting: RequestingAuthority
    subject: ShortText
    details: LongText
    identifiers: Annotated[tuple[Identifier, ...], msgspec.Meta(max_length=200)] = ()
    answer_needed_by: Timestamp | None = None
    confidential: bool = True
    priority: Priority = Priority.NORMAL
    languages: Languages


class AssistanceAnswer(
    BodyBase,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="kind",
    tag="assistance_answer",
):
    """Answer to an assistance request."""

    outcome: AssistanceOutcome
    answer: LongText
    redirect_to: ShortText | None = None


class FollowUp(
    BodyBase,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="kind",
    tag="follow_up",
):
    """A question or answer inside an existing case."""

    role: FollowUpRole
    topic: FollowUpTopic = FollowUpTopic.CLARIFICATION
    text: LongText
    priority: Priority = Priority.NORMAL
