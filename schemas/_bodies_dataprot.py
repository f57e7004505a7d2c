"""Data-protection messages between Parties (CETS 224 Art. 14).

Art. 14(7)(b): a receiving Party that discovers a security incident with a significant
risk of harm notifies the transferring authority. Art. 14(10)(a): data may be transferred
on to another State or an international organisation only with the prior authorisation
of the transferring authority.
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

from schemas._bodies_base import BodyBase, Languages
from schemas._bodies_other import Conditions
from schemas._parts import Contact, CountryCode, DataCategory
from schemas.types import LongText, MsgId, Priority, ShortText, Timestamp


class IncidentType(enum.StrEnum):
    """What happened to the data received."""

    UNAUTHORISED_ACCESS = "unauthorised_access"
    UNAUTHORISED_DISCLOSURE = "unauthorised_disclosure"
    LOSS = "loss"
    DESTRUCTION = "destruction"
    ALTERATION = "alteration"
    MISDIRECTED_TRANSMISSION = "misdirected_transmission"
    KEY_COMPROMISE = "key_compromise"
    OTHER = "other"


class RiskLevel(enum.StrEnum):
    """Assessed risk of harm to individuals or to the other Party (Art. 14(7)(b))."""

    LOW = "low"
    SIGNIFICANT = "significant"


class RecipientKind(enum.StrEnum):
    """Who the data would be transferred on to (Art. 14(10))."""

    STATE = "state"
    INTERNATIONAL_ORGANISATION = "international_organisation"


class OnwardDecision(enum.StrEnum):
    """The transferring authority's decision on an onward transfer."""

    AUTHORISED = "authorised"
    AUTHORISED_WITH_CONDITIONS = "authorised_with_conditions"
    REFUSED = "refused"


MsgIds = Annotated[tuple[MsgId, ...], msgspec.Meta(max_length=500)]


class SecurityIncidentNotice(
    BodyBase,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="kind",
    tag="security_incident_notice",
):
    """Notice of a security incident affecting data received (CETS 224 Art. 14(7)(b)).

    ``restrict_further_transmission`` carries the restriction the notifying Party may put
    on passing the notice on; ``occurred_at`` must not follow ``discovered_at``.
    """

    incident: IncidentType
    discovered_at: Timestamp
    occurred_at: Timestamp | None = None
    description: LongText
    affected_messages: MsgIds = ()
    categories: Annotated[tuple[DataCategory, ...], msgspec.Meta(max_length=4)] = ()
    risk: RiskLevel
    mitigation: LongText
    individuals_notified: bool = False
    restrict_further_transmission: bool = False
    contact: Contact
    priority: Priority = Priority.HIGH


class OnwardTransferRequest(
    BodyBase,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="kind",
    tag="onward_transfer_request",
):
    """Ask the transferring authority to authorise an onward transfer (Art. 14(10)(a)).

    A ``state`` recipient needs ``recipient_country``.
    """

    recipient_kind: RecipientKind
    recipient: ShortText
    recipient_country: CountryCode | None = None
    data_messages: MsgIds = ()
    data_description: LongText
    purpose: LongText
    safeguards: LongText | None = None
    answer_needed_by: Timestamp | None = None
    languages: Languages


class OnwardTransferAnswer(
    BodyBase,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="kind",
    tag="onward_transfer_answer",
):
    """Authorisation (or not) of an onward transfer.

    ``authorised_with_conditions`` needs ``conditions``; ``refused`` needs ``explanation``.
    """

    decision: OnwardDecision
    conditions: Conditions = ()
    explanation: LongText | None = None
