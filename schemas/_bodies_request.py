"""Bodies sent by the requesting 24/7 point: the preservation request and its sequels.

Legal basis: ETS 185 Art. 29 (expedited preservation) with the Art. 30 option, in the
shape of the T-CY template T-CY(2018)11.
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

from schemas._bodies_base import BodyBase, DataSpec, Languages
from schemas._parts import (
    CalendarDate,
    Contact,
    Custodian,
    Offence,
    OtherAuthority,
    RequestedAuthority,
    RequestingAuthority,
)
from schemas.types import LongText, Priority, Reference, ShortText, Timestamp


class RequestStatus(enum.StrEnum):
    """T-CY(2018)11 item 3: a new request, or the extension of an earlier one."""

    NEW = "new"
    EXTENSION = "extension"


class MlaStatus(enum.StrEnum):
    """Where the follow-up mutual legal assistance request stands (Art. 29(7))."""

    IN_PREPARATION = "in_preparation"
    SUBMITTED = "submitted"


class WithdrawalReason(enum.StrEnum):
    """Why the requester no longer needs the preservation."""

    NO_LONGER_NEEDED = "no_longer_needed"
    DATA_OBTAINED_OTHERWISE = "data_obtained_otherwise"
    INVESTIGATION_CLOSED = "investigation_closed"
    MLA_NOT_PURSUED = "mla_not_pursued"
    REQUEST_IN_ERROR = "request_in_error"
    OTHER = "other"


class WarningDecision(enum.StrEnum):
    """The requester's answer to an Art. 29(6) warning."""

    PROCEED = "proceed"
    WITHDRAW = "withdraw"
    MODIFY = "modify"


class PreservationRequest(
    BodyBase,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="kind",
    tag="preservation_request",
):
    """Request for expedited preservation of stored computer data (ETS 185 Art. 29).

    Items (a)-(f) of Art. 29(2) are mandatory: ``requesting`` (a), ``offence`` (b),
    ``data`` (c), ``custodian`` (d, when known), ``necessity`` (e) and ``mla_intent`` (f),
    which must be true. ``art30_disclosure`` asks for the traffic data identifying a
    provider of another State found in the path (Art. 30(1)). An ``extension`` must cite
    the earlier request in ``previous_ref``.
    """

    issued_at: Timestamp
    status: RequestStatus
    previous_ref: Reference | None = None
    requested: RequestedAuthority
    requesting: RequestingAuthority
    confirmation_contact: Contact | None = None
    other_authorities: Annotated[tuple[OtherAuthority, ...], msgspec.Meta(max_length=8)] = ()
    offence: Offence
    data: DataSpec
    custodian: Custodian | None = None
    necessity: LongText
    mla_intent: bool
    mla_expected_by: CalendarDate | None = None
    art30_disclosure: bool = False
    confidential: bool = True
    priority: Priority = Priority.NORMAL
    languages: Languages


class PreservationExtension(
    BodyBase,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="kind",
    tag="preservation_extension",
):
    """Ask the requested side to keep preserving past the current end date.

    Preservation lasts at least 60 days and continues while the MLA request is pending
    (Art. 29(7)); national periods differ, so the requester states its need explicitly.
    """

    previous_ref: Reference
    requested_until: CalendarDate | None = None
    mla_status: MlaStatus
    reason: LongText
    priority: Priority = Priority.NORMAL
    languages: Languages


class PreservationWithdrawal(
    BodyBase,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="kind",
    tag="preservation_withdrawal",
):
    """The preservation is no longer needed; the requested side may release the data."""

    previous_ref: Reference
    reason: WithdrawalReason
    explanation: LongText | None = None


class MlaSubmitted(
    BodyBase,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="kind",
    tag="mla_submitted",
):
    """The mutual legal assistance request announced under Art. 29(2)(f) was sent.

    From then on the preservation continues until a decision on it (Art. 29(7)).
    """

    previous_ref: Reference
    submitted_on: CalendarDate
    mla_reference: Reference
    sent_to: ShortText
    channel: ShortText | None = None


class WarningDecisionBody(
    BodyBase,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="kind",
    tag="warning_decision",
):
    """The requester decides whether the request is executed despite the warning (29(6)).

    ``modify`` requires an ``explanation`` stating the change.
    """

    decision: WarningDecision
    explanation: LongText | None = None
