"""Sub-structs and constrained scalars shared by several message bodies.

Field names follow the T-CY "Data preservation request under Articles 29 and 30" template,
T-CY(2018)11, sections 1-7, so officers recognise the form they already use.
"""

from __future__ import annotations

import enum
from datetime import date
from typing import Annotated

import msgspec

from schemas.types import LongText, MemberId, ShortText, Timestamp, TimeZoneName

# --- constrained scalars that types.py does not have -------------------------------------

#: ISO 3166-1 alpha-2 country code (a country, not necessarily a network member).
CountryCode = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Z]{2}\Z", description="ISO 3166-1 alpha-2 country code")
]

#: E.164 number: "+", country code, subscriber number, digits only, at most 15 digits.
PhoneNumber = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^\+[1-9][0-9]{6,14}\Z",
        description="E.164 telephone number, '+' then 7 to 15 digits, no spaces",
        examples=["+33199000123"],
    ),
]

#: RFC 5321 mailbox shape only; deliverability is never checked here.
EmailAddress = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[^@\s]{1,64}@[^@\s]{1,255}\Z",
        max_length=320,
        description="e-mail address (local@domain); shape only",
    ),
]

#: Absolute URL with a scheme (http, https, ftp, ...).
Url = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z][A-Za-z0-9+.\-]*://\S+\Z",
        max_length=2048,
        description="absolute URL with a scheme",
    ),
]

#: DNS name in A-label (punycode) form, at least two labels.
DomainName = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^([A-Za-z0-9]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9\-]{2,63}\.?\Z",
        max_length=254,
        description="fully qualified domain name, IDNs as A-labels (xn--)",
    ),
]

#: Free-form postal address (several lines allowed).
PostalAddress = Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]

#: A calendar date (RFC 3339 full-date), for legal dates that have no time of day.
CalendarDate = Annotated[date, msgspec.Meta(description="RFC 3339 full-date (YYYY-MM-DD)")]


class _Part(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every sub-struct: immutable, strict, keyword-only."""


# --- coded values shared by several kinds -----------------------------------------------


class DataCategory(enum.StrEnum):
    """Category of stored computer data (ETS 185 Art. 1(d) and Art. 18(3))."""

    SUBSCRIBER = "subscriber"
    #: Data requested only to identify the user (EU Reg. 2023/1543 Art. 3(10)).
    IDENTIFICATION = "identification"
    TRAFFIC = "traffic"
    CONTENT = "content"


class ReplyChannel(enum.StrEnum):
    """How the requesting authority prefers to receive answers (T-CY(2018)11 item 5)."""

    RELAY247 = "relay247"
    EMAIL = "email"
    PHONE = "phone"
    FAX = "fax"


class AuthorityRole(enum.StrEnum):
    """Role of an authority involved in the case other than the 24/7 point."""

    INVESTIGATING = "investigating"
    PROSECUTOR = "prosecutor"
    INVESTIGATING_JUDGE = "investigating_judge"
    COURT = "court"


# --- sub-structs --------------------------------------------------------------------------


class Contact(_Part, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A person to call back; at least one of phone, mobile or email is required."""

    name: ShortText
    job_title: ShortText | None = None
    function: ShortText | None = None
    phone: PhoneNumber | None = None
    mobile: PhoneNumber | None = None
    email: EmailAddress | None = None
    fax: PhoneNumber | None = None


class RequestingAuthority(_Part, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The authority seeking preservation: ETS 185 Art. 29(2)(a), T-CY(2018)11 item 5."""

    member: MemberId
    organisation: ShortText
    officer: Contact
    address: PostalAddress | None = None
    office_hours: ShortText | None = None
    time_zone: TimeZoneName
    preferred_reply: ReplyChannel = ReplyChannel.RELAY247


class RequestedAuthority(_Part, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The receiving 24/7 point (T-CY(2018)11 item 4)."""

    member: MemberId
    organisation: ShortText | None = None


class OtherAuthority(_Part, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Investigating authority, prosecutor or court, when not the requester (T-CY item 7)."""

    role: AuthorityRole
    organisation: ShortText
    case_number: ShortText | None = None
    contact: Contact | None = None


class Offence(_Part, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The offence under investigation and a brief summary of facts (Art. 29(2)(b)).

    ``convention_articles`` lists the ETS 185 Arts 2-11 offences it falls under: a Party
    may require dual criminality only for other offences (Art. 29(4)).
    """

    name: ShortText
    legal_provisions: ShortText | None = None
    max_penalty: ShortText | None = None
    convention_articles: Annotated[
        tuple[Annotated[int, msgspec.Meta(ge=2, le=11)], ...], msgspec.Meta(max_length=10)
    ] = ()
    summary_of_facts: LongText


class Custodian(_Part, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Who holds the data or where the system is (Art. 29(2)(d))."""

    name: ShortText
    country: CountryCode | None = None
    address: PostalAddress | None = None
    website: Url | None = None
    details: LongText | None = None


class DataRange(_Part, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A closed interval of instants; both ends carry their UTC offset. start <= end."""

    start: Timestamp
    end: Timestamp
