"""Identifiers of the data to preserve or disclose (ETS 185 Art. 29(2)(c)).

Each identifier type is its own struct in a union tagged on ``type``, so the per-type
constraints (an IP needs its observation time, a phone number is E.164, ...) are enforced
by the decoder and appear in the JSON Schema.
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

from schemas._parts import DomainName, EmailAddress, PhoneNumber, Url
from schemas.types import ShortText, Timestamp


class IdentifierType(enum.StrEnum):
    """The value of the ``type`` tag of an identifier."""

    ACCOUNT = "account"
    EMAIL = "email"
    PHONE = "phone"
    DOMAIN = "domain"
    URL = "url"
    IP = "ip"
    IMEI = "imei"
    IMSI = "imsi"
    CRYPTO_ADDRESS = "crypto_address"
    OTHER = "other"


class IpRole(enum.StrEnum):
    """Which end of the communication the address was seen at."""

    SOURCE = "source"
    DESTINATION = "destination"


#: Textual IPv4 or IPv6 address; the exact syntax is checked by ``semantic_errors``.
IpAddressText = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9A-Fa-f:.]{2,45}\Z",
        description="IPv4 dotted-quad or RFC 5952 IPv6 address (no zone, no prefix)",
    ),
]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535, description="TCP/UDP port")]
Imei = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{14,16}\Z", description="IMEI or IMEISV")]
Imsi = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6,15}\Z", description="IMSI")]
CryptoAddress = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9:._\-]{8,128}\Z")]


class _Ident(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True, tag_field="type"
):
    """Common identifier fields: when it was observed and a short note."""

    seen_at: Timestamp | None = None
    note: ShortText | None = None


class AccountId(_Ident, frozen=True, forbid_unknown_fields=True, kw_only=True, tag="account"):
    """A user name or account number on a named service."""

    service: ShortText
    account: ShortText


class EmailId(_Ident, frozen=True, forbid_unknown_fields=True, kw_only=True, tag="email"):
    """An e-mail address."""

    address: EmailAddress


class PhoneId(_Ident, frozen=True, forbid_unknown_fields=True, kw_only=True, tag="phone"):
    """A telephone number."""

    number: PhoneNumber


class DomainId(_Ident, frozen=True, forbid_unknown_fields=True, kw_only=True, tag="domain"):
    """A domain name (registration data: CETS 224 Art. 6)."""

    domain: DomainName


class UrlId(_Ident, frozen=True, forbid_unknown_fields=True, kw_only=True, tag="url"):
    """A URL."""

    url: Url


class IpId(_Ident, frozen=True, forbid_unknown_fields=True, kw_only=True, tag="ip"):
    """An IP address seen at a given instant.

    ``seen_at`` is required: addresses are reassigned, so an address without a time names
    nobody. An IPv4 *source* address also needs its port, because carrier-grade NAT
    (RFC 6888) shares one IPv4 address among many subscribers; ``semantic_errors`` enforces it.
    """

    seen_at: Timestamp
    address: IpAddressText
    port: Port | None = None
    role: IpRole = IpRole.SOURCE


class ImeiId(_Ident, frozen=True, forbid_unknown_fields=True, kw_only=True, tag="imei"):
    """A handset identity (IMEI or IMEISV)."""

    imei: Imei


class ImsiId(_Ident, frozen=True, forbid_unknown_fields=True, kw_only=True, tag="imsi"):
    """A SIM subscriber identity (IMSI)."""

    imsi: Imsi


class CryptoAddressId(
    _Ident, frozen=True, forbid_unknown_fields=True, kw_only=True, tag="crypto_address"
):
    """A cryptocurrency address on a named chain."""

    currency: ShortText
    address: CryptoAddress


class OtherId(_Ident, frozen=True, forbid_unknown_fields=True, kw_only=True, tag="other"):
    """Any other identifier, labelled (e.g. "device serial number")."""

    label: ShortText
    value: ShortText


Identifier = (
    AccountId
    | EmailId
    | PhoneId
    | DomainId
    | UrlId
    | IpId
    | ImeiId
    | ImsiId
    | CryptoAddressId
    | OtherId
)

#: 1 to 200 identifiers: enough for a real case, small enough to review by hand.
Identifiers = Annotated[tuple[Identifier, ...], msgspec.Meta(min_length=1, max_length=200)]
