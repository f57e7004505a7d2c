"""The demo's story: who the three points of contact are and what their officers write.

Everything is fictitious: reserved example domains (RFC 2606), documentation IP ranges
and the French fiction phone range, as in ``schemas.examples``, whose preservation
request the French officer adapts here (addressed to the United States, urgent).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

import msgspec

from schemas import _bodies_request as rq
from schemas import _bodies_response as rs
from schemas import _parts as pt
from schemas.examples import EXAMPLES
from schemas.types import Priority

_NEW_YORK: Final = timezone(timedelta(hours=-5))


@dataclass(frozen=True)
class Country:
    """One member of the demo network."""

    member: str
    authority: str
    time_zone: str
    languages: str


COUNTRIES: Final = (
    Country("FR", "Office anti-cybercriminalité (OFAC), 24/7 point", "Europe/Paris", "fr,en"),
    Country("US", "U.S. Department of Justice, CCIPS, 24/7 point", "America/New_York", "en"),
    Country("DE", "Bundeskriminalamt, SO 4, 24/7 point", "Europe/Berlin", "de,en"),
)

HOST: Final = pt.Custodian(
    name="Example Cloud Inc.",
    country="US",
    address="1 Example Way, Springfield, OR 97477, USA",
    website="https://cloud.example.com/",
)


def _recent(value: object, now: datetime) -> object:
    # The example's identifiers were seen in May 2026; move them to yesterday.
    if getattr(value, "seen_at", None) is None:
        return value
    return msgspec.structs.replace(value, seen_at=now - timedelta(days=1))  # type: ignore[type-var]


def fr_request(now: datetime) -> rq.PreservationRequest:
    """FR's urgent Art. 29 request to US, built from the project's example request."""
    base = EXAMPLES["preservation_request"]
    assert isinstance(base, rq.PreservationRequest)  # the examples map kinds to their types
    now = now.astimezone(UTC).replace(microsecond=0)
    data = msgspec.structs.replace(
        base.data,
        identifiers=tuple(_recent(i, now) for i in base.data.identifiers),
        date_range=pt.DataRange(start=now - timedelta(days=60), end=now),
    )
    offence = msgspec.structs.replace(
        base.offence,
        summary_of_facts=(
            "For two months a phishing kit imitating a French bank has collected the "
            "credentials of about 4,000 customers; stolen funds were moved within hours. "
            "The kit is hosted by a US cloud provider and mails its harvest to two accounts."
        ),
    )
    return msgspec.structs.replace(
        base,
        case_id=os.urandom(16).hex(),
        issued_at=now,
        requested=pt.RequestedAuthority(member="US", organisation=COUNTRIES[1].authority),
        offence=offence,
        data=data,
        custodian=HOST,
        mla_expected_by=(now + timedelta(days=45)).date(),
        priority=Priority.URGENT,
    )


US_REF: Final = "CCIPS-247-0815"
US_OFFICER: Final = pt.Contact(
    name="Special Agent Dana Reyes",
    function="24/7 duty desk",
    email="duty-247@ccips.example.org",
)


def taken_in_charge(request: rq.PreservationRequest, msg_id: str) -> rs.TakenInCharge:
    """The US officer takes FR's request in charge."""
    return rs.TakenInCharge(
        case_id=request.case_id,
        in_reply_to=msg_id,
        sender_ref=US_REF,
        officer=US_OFFICER,
        note="Provider contacted by phone; preservation letter sent.",
    )


def preserved(request: rq.PreservationRequest, msg_id: str, now: datetime) -> rs.Preserved:
    """The US officer confirms the data is preserved for 90 days."""
    at = now.astimezone(_NEW_YORK).replace(microsecond=0)
    # The end of that day in New York, as `node reply --until DATE` states it.
    until = (at + timedelta(days=90)).replace(hour=23, minute=59, second=59)
    return rs.Preserved(
        case_id=request.case_id,
        in_reply_to=msg_id,
        sender_ref=US_REF,
        preserved_at=at,
        preserved_until=until,
        categories=request.data.categories,
        custodian=request.custodian,
        custodian_ref="EXC-LE-2026-0042",
        national_basis="18 U.S.C. § 2703(f): 90 days, renewable once for 90 days",
    )
