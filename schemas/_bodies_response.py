"""Bodies sent back by the requested 24/7 point about a preservation request.

Every kind here answers an earlier message, so ``in_reply_to`` is required
(``semantic_errors`` enforces it).
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

from schemas._bodies_base import BodyBase, Categories
from schemas._identifiers import Identifier
from schemas._parts import Contact, CountryCode, Custodian
from schemas.types import LongText, Reference, ShortText, Timestamp


class RefusalGround(enum.StrEnum):
    """Coded ground of a refusal.

    Only the first five are grounds in law (ETS 185 Art. 29(5) and Art. 30(2));
    ``dual_criminality`` is the Art. 29(4) reservation. The rest are practical outcomes
    practitioners report, kept so that statistics can tell them apart.
    """

    POLITICAL_OFFENCE = "political_offence"  # Art. 29(5)(a), 30(2)(a)
    SOVEREIGNTY = "sovereignty"  # Art. 29(5)(b), 30(2)(b)
    SECURITY = "security"  # Art. 29(5)(b), 30(2)(b)
    ORDRE_PUBLIC = "ordre_public"  # Art. 29(5)(b), 30(2)(b)
    OTHER_ESSENTIAL_INTERESTS = "other_essential_interests"  # Art. 29(5)(b), 30(2)(b)
    DUAL_CRIMINALITY = "dual_criminality"  # Art. 29(4) reservation
    NO_JURISDICTION = "no_jurisdiction"
    DATA_NO_LONGER_AVAILABLE = "data_no_longer_available"
    OTHER = "other"


class ImpossibilityReason(enum.StrEnum):
    """Why a request could not be executed although it was not refused."""

    DATA_NO_LONGER_AVAILABLE = "data_no_longer_available"
    DATA_NOT_RETAINED = "data_not_retained"
    PROVIDER_NOT_IDENTIFIED = "provider_not_identified"
    DATA_IN_OTHER_COUNTRY = "data_in_other_country"
    INSUFFICIENT_IDENTIFIERS = "insufficient_identifiers"
    TECHNICAL = "technical"
    OTHER = "other"


class WarningReason(enum.StrEnum):
    """The three situations of ETS 185 Art. 29(6)."""

    AVAILABILITY_NOT_ENSURED = "availability_not_ensured"
    THREATENS_CONFIDENTIALITY = "threatens_confidentiality"
    PREJUDICES_INVESTIGATION = "prejudices_investigation"


class PreservationScope(enum.StrEnum):
    """Whether everything asked for was preserved."""

    FULL = "full"
    PARTIAL = "partial"


class TakenInCharge(
    BodyBase,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="kind",
    tag="taken_in_charge",
):
    """A human officer now has the request (not merely a machine receipt)."""

    officer: Contact
    expected_answer_by: Timestamp | None = None
    note: LongText | None = None


class Preserved(
    BodyBase,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="kind",
    tag="preserved",
):
    """The data is preserved until ``preserved_until`` (Art. 29(3), at least 60 days: 29(7)).

    ``national_basis`` names the domestic provision and its period (e.g. 90 + 90 days
    under 18 U.S.C. 2703(f)); a ``partial`` scope needs ``scope_note``.
    """

    preserved_at: Timestamp
    preserved_until: Timestamp
    scope: PreservationScope = PreservationScope.FULL
    scope_note: LongText | None = None
    categories: Categories
    custodian: Custodian | None = None
    custodian_ref: Reference | None = None
    national_basis: ShortText | None = None
    extendable: bool = True


class PreservationWarning(
    BodyBase,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="kind",
    tag="preservation_warning",
):
    """Art. 29(6): preservation will not secure the data or would harm the investigation.

    The requester answers with ``warning_decision``.
    """

    reasons: Annotated[tuple[WarningReason, ...], msgspec.Meta(min_length=1, max_length=3)]
    explanation: LongText
    decision_needed_by: Timestamp | None = None
    executing_meanwhile: bool = False


class Refusal(
    BodyBase,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="kind",
    tag="refusal",
):
    """The request is refused on a coded ground, with an explanation."""

    ground: RefusalGround
    explanation: LongText
    legal_basis: ShortText | None = None
    alternatives: LongText | None = None


class ImpossibleToExecute(
    BodyBase,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="kind",
    tag="impossible_to_execute",
):
    """The request cannot be executed; ``data_in_other_country`` needs ``redirect_country``."""

    reason: ImpossibilityReason
    explanation: LongText
    redirect_country: CountryCode | None = None


class PathHop(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One provider in the path of a communication (Art. 30(1))."""

    provider: ShortText
    country: CountryCode | None = None
    identifiers: Annotated[tuple[Identifier, ...], msgspec.Meta(max_length=50)] = ()


class TrafficDataDisclosure(
    BodyBase,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="kind",
    tag="traffic_data_disclosure",
):
    """Expedited disclosure of preserved traffic data (ETS 185 Art. 30(1)).

    Enough traffic data to identify the provider of another State and the path the
    communication took: ``path`` lists the hops in transmission order, ending with
    ``provider``'s hop.
    """

    provider: Custodian
    path: Annotated[tuple[PathHop, ...], msgspec.Meta(min_length=1, max_length=50)]
    traffic_data: LongText | None = None
