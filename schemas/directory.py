"""The signed network directory: members, their keys and the relays (PROTOCOL.md §3)."""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

from schemas.types import (
    Fingerprint,
    LanguageTag,
    MemberId,
    ShortText,
    Timestamp,
    TimeZoneName,
    Version,
)

PublicKey = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
DirVersion = Annotated[int, msgspec.Meta(ge=1, le=2**53)]
Email = Annotated[str, msgspec.Meta(pattern=r"^[^@\s]{1,64}@[^@\s]{1,255}\Z", max_length=320)]
Phone = Annotated[
    str, msgspec.Meta(pattern=r"^\+[0-9 ]{6,20}\Z", description="E.164, spaces allowed")
]
Url = Annotated[str, msgspec.Meta(pattern=r"^https?://[!-~]{1,2000}\Z")]
Name = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")]
#: A protocol feature a member's node understands, e.g. ``case_links`` (PROTOCOL.md §3.1).
Capability = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,31}\Z")]


class KeyUse(enum.StrEnum):
    """What a published key may be used for; uses never mix (DESIGN.md §2.1)."""

    SIGNING = "signing"
    ENCRYPTION = "encryption"
    TRANSPORT = "transport"


class KeyAlg(enum.StrEnum):
    """Public-key algorithms; Ed25519 for signing/transport, X25519 for encryption."""

    ED25519 = "ed25519"
    X25519 = "x25519"


class MemberKey(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One public key with its validity period and revocation state."""

    use: KeyUse
    alg: KeyAlg
    public: PublicKey
    not_before: Timestamp
    not_after: Timestamp
    revoked_at: Timestamp | None = None
    revocation_reason: ShortText | None = None


class Contact(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How to reach the 24/7 point by other channels."""

    function: ShortText
    phone: Phone | None = None
    email: Email | None = None


#: An armored OpenPGP certificate (RFC 9580 §6.2), as the member's e-mail client exports it.
ArmoredCert = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^-----BEGIN PGP PUBLIC KEY BLOCK-----\r?\n[\x20-\x7e\r\n]{1,65536}"
        r"-----END PGP PUBLIC KEY BLOCK-----\r?\n?\Z",
        max_length=65_600,
    ),
]


class EmailReach(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How a member without a node is reached: an address and its OpenPGP certificate.

    Signed into the directory k-of-n like any key (PROTOCOL.md §22.1).
    """

    address: Email
    openpgp_cert: ArmoredCert


class Member(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A 24/7 point of contact. A node's member file (for enrollment) is one Member."""

    v: Version = 1
    id: MemberId
    authority: ShortText
    contacts: tuple[Contact, ...] = ()
    languages: Annotated[tuple[LanguageTag, ...], msgspec.Meta(min_length=1)]
    time_zone: TimeZoneName
    keys: Annotated[tuple[MemberKey, ...], msgspec.Meta(min_length=1, max_length=32)]
    #: Optional features the member's node understands; unset, the entry encodes as it
    #: did before the field existed (PROTOCOL.md §10.10: senders use a new body field
    #: only towards a member that lists it). Unknown names are ignored.
    capabilities: Annotated[tuple[Capability, ...], msgspec.Meta(max_length=32)] | (
        msgspec.UnsetType
    ) = msgspec.UNSET
    #: Set for a member reached by OpenPGP e-mail (PROTOCOL.md §22); unset, the entry
    #: encodes as it did before the field existed.
    email_bridge: EmailReach | msgspec.UnsetType = msgspec.UNSET


def supports(member: Member, capability: str) -> bool:
    """True when ``member``'s directory entry lists ``capability``."""
    caps = member.capabilities
    return not isinstance(caps, msgspec.UnsetType) and capability in caps


class RelayEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A relay the network uses, with the key its audit log is checked against."""

    id: Name
    url: Url
    log_origin: ShortText
    #: signed-note verifier key string, ``name+hash+base64``
    log_key: Annotated[str, msgspec.Meta(min_length=10, max_length=512)]


class Coordinator(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A key of the network's coordinators, who sign directory versions k of n."""

    id: Name
    public: PublicKey


class Directory(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One version of the directory. ``coordinators``/``threshold`` govern the next one."""

    v: Version = 1
    network: Name
    version: DirVersion
    issued_at: Timestamp
    coordinators: Annotated[tuple[Coordinator, ...], msgspec.Meta(min_length=1, max_length=32)]
    threshold: Annotated[int, msgspec.Meta(ge=1, le=32)]
    members: Annotated[tuple[Member, ...], msgspec.Meta(max_length=1024)] = ()
    relays: Annotated[tuple[RelayEntry, ...], msgspec.Meta(max_length=16)] = ()


class DirectorySignature(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One coordinator's Ed25519 signature over the directory's exact bytes."""

    keyid: Fingerprint
    sig: Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]


class SignedDirectory(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The published form: exact directory bytes plus coordinator signatures."""

    v: Version = 1
    directory: Annotated[bytes, msgspec.Meta(min_length=2, max_length=4 * 1024 * 1024)]
    signatures: Annotated[tuple[DirectorySignature, ...], msgspec.Meta(max_length=32)]


class TrustRootFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The pinned trust root distributed out of band (``trust.json``)."""

    v: Version = 1
    network: Name
    coordinators: Annotated[tuple[Coordinator, ...], msgspec.Meta(min_length=1, max_length=32)]
    threshold: Annotated[int, msgspec.Meta(ge=1, le=32)]
