"""A deterministic test network: coordinators, members with keys, a signed directory."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from protocol.directory import KeyLookup, TrustRoot, VerifiedDirectory, sign_directory
from protocol.keys import EncryptionKey, SigningKey
from schemas.directory import (
    Coordinator,
    Directory,
    KeyAlg,
    KeyUse,
    Member,
    MemberKey,
    RelayEntry,
)

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
KEY_START = datetime(2026, 1, 1, tzinfo=UTC)
KEY_END = datetime(2028, 1, 1, tzinfo=UTC)
#: armor the directory schema accepts around bytes that are no certificate (§22.1)
FAKE_CERT = (
    "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nbm90IGEgY2VydGlmaWNhdGU=\n"
    "-----END PGP PUBLIC KEY BLOCK-----\n"
)


def seed(label: str) -> bytes:
    """A fixed 32-byte seed derived from a label (test keys only)."""
    return hashlib.sha256(b"relay247-test-seed/" + label.encode()).digest()


@dataclass
class MemberKeys:
    """The private keys of one test member."""

    id: str
    signing: SigningKey
    encryption: EncryptionKey
    transport: SigningKey

    def member(self, **overrides: object) -> Member:
        """The directory entry for this member."""
        keys = (
            MemberKey(
                use=KeyUse.SIGNING,
                alg=KeyAlg.ED25519,
                public=self.signing.public,
                not_before=KEY_START,
                not_after=KEY_END,
            ),
            MemberKey(
                use=KeyUse.ENCRYPTION,
                alg=KeyAlg.X25519,
                public=self.encryption.public,
                not_before=KEY_START,
                not_after=KEY_END,
            ),
            MemberKey(
                use=KeyUse.TRANSPORT,
                alg=KeyAlg.ED25519,
                public=self.transport.public,
                not_before=KEY_START,
                not_after=KEY_END,
            ),
        )
        fields: dict[str, object] = {
            "id": self.id,
            "authority": f"24/7 point of contact {self.id}",
            "languages": ("en",),
            "time_zone": "UTC",
            "keys": keys,
        }
        fields.update(overrides)
        return Member(**fields)  # type: ignore[arg-type]


def member_keys(member_id: str) -> MemberKeys:
    """Deterministic keys for a member id."""
    return MemberKeys(
        id=member_id,
        signing=SigningKey(seed(f"{member_id}/signing")),
        encryption=EncryptionKey(seed(f"{member_id}/encryption")),
        transport=SigningKey(seed(f"{member_id}/transport")),
    )


@dataclass
class Network:
    """Coordinators, members and the current signed directory."""

    coordinators: list[SigningKey]
    threshold: int
    members: dict[str, MemberKeys]
    version: int = 1
    relays: tuple[RelayEntry, ...] = ()
    overrides: dict[str, dict[str, object]] = field(default_factory=dict)

    def declare(self, capability: str, *member_ids: str) -> None:
        """Make the members' directory entries list ``capability`` (all members when
        none is named), as the entry ``relay247 node init`` writes does (PROTOCOL.md §3.1)."""
        for mid in member_ids or tuple(self.members):
            fields = self.overrides.setdefault(mid, {})
            held = fields.get("capabilities", ())
            assert isinstance(held, tuple)
            if capability not in held:
                fields["capabilities"] = (*held, capability)

    def bridge(self, member_id: str, address: str | None = None) -> None:
        """Make ``member_id`` a member reached by OpenPGP e-mail (PROTOCOL.md §22.1).

        The certificate is armor around bytes that are not a certificate: the directory
        schema checks only the armor, and nothing of the relay's reads it.
        """
        from schemas.directory import EmailReach

        self.overrides.setdefault(member_id, {})["email_bridge"] = EmailReach(
            address=address or f"24-7@{member_id.lower()}.example",
            openpgp_cert=FAKE_CERT,
        )

    def directory(self, **changes: object) -> Directory:
        """The unsigned directory of the current state."""
        d = Directory(
            network="test-net",
            version=self.version,
            issued_at=T0 - timedelta(hours=1),
            coordinators=tuple(
                Coordinator(id=f"coord{i}", public=k.public)
                for i, k in enumerate(self.coordinators)
            ),
            threshold=self.threshold,
            members=tuple(
                mk.member(**self.overrides.get(mid, {})) for mid, mk in sorted(self.members.items())
            ),
            relays=self.relays,
        )
        if changes:
            import msgspec

            d = msgspec.structs.replace(d, **changes)
        return d

    def signed(self, **changes: object) -> bytes:
        """The directory signed by the first ``threshold`` coordinators."""
        return sign_directory(self.directory(**changes), self.coordinators[: self.threshold])

    def root(self) -> TrustRoot:
        """The trust root of this network's coordinators."""
        return TrustRoot.of(self.directory())

    def verified(self) -> VerifiedDirectory:
        """The current directory, verified."""
        from protocol.directory import verify_directory

        return verify_directory(self.signed(), self.root(), current=None, now=T0)

    def lookup(self) -> KeyLookup:
        """Key look-ups over the current directory."""
        return KeyLookup(self.verified().directory)


def make_network(
    members: tuple[str, ...] = ("FR", "US", "DE"), *, n: int = 3, k: int = 2
) -> Network:
    """A network with ``n`` coordinators, threshold ``k`` and the given members."""
    return Network(
        coordinators=[SigningKey(seed(f"coordinator/{i}")) for i in range(n)],
        threshold=k,
        members={m: member_keys(m) for m in members},
    )
