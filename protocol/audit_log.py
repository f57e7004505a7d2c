"""Incremental verification of the audit log's entries (PROTOCOL.md §7.3, steps L1–L6).

:class:`LogVerifier` takes the entries from index ``size`` onwards, in order, and for
each one: appends its leaf hash to a :class:`~protocol.merkle.CompactRange` (so the root
of any prefix is known in O(log n) memory), decodes it, and checks every signature inside
it against the directory in force at that position. ``directory_published`` entries move
the directory forward along the coordinators' trust chain. Problems are returned as
:class:`Anomaly` values naming the leaf index; nothing is raised for a bad entry, so one
run reports every anomaly.

Pure: the caller downloads the entries, persists :meth:`LogVerifier.state` and compares
:meth:`LogVerifier.root` with a verified checkpoint.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import msgspec

from protocol import domains
from protocol._audit_log_state import (
    MAX_ENTRY_BYTES,
    LogState,
    dump_state,
    kept_items,
    load_state,
    seen_index,
)
from protocol.codec import decode, encode
from protocol.directory import (
    MAX_DIRECTORY_BYTES,
    KeyLookup,
    TrustRoot,
    VerifiedDirectory,
    verify_directory,
)
from protocol.email_record import verify_email_record
from protocol.errors import PeerError, StorageError, VerificationError
from protocol.keys import verify
from protocol.merkle import CompactRange
from protocol.receipt import verify_ack
from schemas.audit import (
    AUDIT_DECODER,
    DeliveryAcked,
    DirectoryPublished,
    EmailRecorded,
    EnvelopeAccepted,
)
from schemas.directory import Directory, KeyUse, SignedDirectory
from schemas.envelope import DeliveryAck, EnvelopeHeader, SignedAck

__all__ = [
    "MAX_ENTRY_BYTES",
    "Anomaly",
    "LogState",
    "LogVerifier",
    "dump_state",
    "load_state",
    "verify_header_signature",
]

_HEADER: Final = msgspec.json.Decoder(EnvelopeHeader)
_ACK: Final = msgspec.json.Decoder(DeliveryAck)
_DIRECTORY: Final = msgspec.json.Decoder(Directory)
_SIGNED: Final = msgspec.json.Decoder(SignedDirectory)
_sha256 = hashlib.sha256


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One problem found in the log: the leaf index, the entry kind and a plain reason."""

    index: int
    kind: str
    reason: str

    def __str__(self) -> str:
        return f"entry {self.index} ({self.kind}): {self.reason}"


def verify_header_signature(header: bytes, sig: bytes, keys: KeyLookup) -> EnvelopeHeader:
    """Verify an envelope header's signature as logged (steps E3–E5 without an envelope).

    The log holds only the exact header bytes and their signature, not the routing hints,
    so the header is decoded first to learn which key to use; the signature is then checked
    over those exact bytes, never over a re-encoding.

    Args:
        header: the exact signed header bytes.
        sig: the sender's 64-byte signature.
        keys: the directory in force.

    Returns:
        The verified header.

    Raises:
        TooLargeError, MalformedError: the header does not decode.
        VerificationError: unknown or foreign key, bad signature, or a key not valid at
            the header's ``created`` time (KEY_REVOKED).
    """
    parsed = decode(_HEADER, header, "header", limit=4096)
    public = keys.signer_key(parsed.sender, parsed.sender_key)
    verify(public, domains.ENVELOPE_HEADER, header, sig)
    keys.key(parsed.sender, parsed.sender_key, KeyUse.SIGNING, parsed.created)
    return parsed


@dataclass
class LogVerifier:
    """Verify entries in order from ``state.size`` onwards.

    Args:
        state: the state after the last verified entry (``LogState(0, ())`` to start).
        trust_root: the coordinators' pinned keys; the first ``directory_published`` entry
            must satisfy them. ``None`` trusts the first directory on first use (and says so
            in :attr:`notes`).

    Raises:
        StorageError: (on construction) the state's frontier or directory does not check out.
    """

    state: LogState
    trust_root: TrustRoot | None
    counts: Counter[str] = field(default_factory=Counter)
    signatures: int = 0
    notes: list[str] = field(default_factory=list)
    _size: int = field(init=False)
    _hashes: list[bytes] = field(init=False)
    _directory: VerifiedDirectory | None = field(init=False, default=None)
    _lookup: KeyLookup | None = field(init=False, default=None)
    _directory_at: datetime | None = field(init=False, default=None)
    _records: dict[bytes, int] = field(init=False)
    _emails: dict[bytes, int] = field(init=False)

    def __post_init__(self) -> None:
        self._records = seen_index(self.state.records)
        self._emails = seen_index(self.state.emails)
        # The frontier is a compact range (protocol.merkle) kept inline: see feed().
        restored = CompactRange.from_hashes(self.state.size, self.state.hashes)
        self._size, self._hashes = restored.size, restored.to_hashes()
        if self.state.directory is not None:
            self._restore(self.state.directory, self.state.directory_at)

    def _restore(self, signed: bytes, at: datetime | None) -> None:
        # Our own state, re-verified so that a corrupted or edited file is never trusted.
        try:
            verified = _self_verified(signed, at)
        except PeerError as exc:
            raise StorageError("auditor state holds a bad directory", detail=exc.message) from None
        self._set_directory(verified, at)

    def _set_directory(self, verified: VerifiedDirectory, at: datetime | None) -> None:
        self._directory = verified
        self._lookup = KeyLookup(verified.directory)
        self._directory_at = at

    @property
    def size(self) -> int:
        """The number of entries verified so far."""
        return self._size

    @property
    def directory_version(self) -> int | None:
        """The version of the directory in force after the last entry, if any."""
        return None if self._directory is None else self._directory.version

    def root(self) -> bytes:
        """Return the root hash of the entries verified so far."""
        return CompactRange.from_hashes(self._size, self._hashes).root()

    def current_state(self) -> LogState:
        """Return the state to persist after the entries fed so far."""
        signed = None if self._directory is None else self._directory.signed_bytes
        return LogState(
            self._size,
            tuple(self._hashes),
            signed,
            self._directory_at,
            kept_items(self._records),
            kept_items(self._emails),
        )

    def feed(self, entries: Iterable[bytes], *, limit: int | None = None) -> list[Anomaly]:
        """Verify the next entries, in log order (steps L1–L6).

        Args:
            entries: the exact entry bytes of leaves ``size``, ``size + 1``, ...
            limit: stop after this many anomalies (the entries after the last one are
                not consumed, :attr:`size` says where it stopped); None: no limit.

        Returns:
            The anomalies found in these entries (empty when all verified).
        """
        found: list[Anomaly] = []
        hashes, sha = self._hashes, _sha256
        if limit is not None and limit <= 0:
            return found
        for entry in entries:
            index = self._size
            # L1: the leaf hash, whatever the entry holds: the root check needs every leaf.
            # This is CompactRange.append inlined without its list of completed subtrees:
            # at a million leaves that bookkeeping alone costs a fifth of the hashing.
            h = sha(b"\x00" + entry).digest()
            i = index
            while i & 1:
                h = sha(b"\x01" + hashes.pop() + h).digest()
                i >>= 1
            hashes.append(h)
            self._size = index + 1
            anomaly = self._check(index, entry)
            if anomaly is not None:
                found.append(anomaly)
                if len(found) == limit:
                    break
        return found

    def _check(self, index: int, entry: bytes) -> Anomaly | None:
        # L2: the entry decodes as one of the known kinds.
        try:
            parsed = decode(AUDIT_DECODER, entry, "audit entry", limit=MAX_ENTRY_BYTES)
        except PeerError as exc:
            return Anomaly(index, "entry", f"does not decode: {exc.message}")
        kind = str(parsed.__struct_config__.tag)
        self.counts[kind] += 1
        try:
            if isinstance(parsed, EnvelopeAccepted):
                self._envelope(parsed)
            elif isinstance(parsed, DeliveryAcked):
                self._ack(parsed)
            elif isinstance(parsed, DirectoryPublished):
                self._published(parsed)
            elif isinstance(parsed, EmailRecorded):
                self._email(parsed, index)
            # relay_event entries carry no signature: decoding them is the whole check.
        except PeerError as exc:
            text = exc.message + (f" ({exc.detail})" if exc.detail else "")
            return Anomaly(index, kind, text)
        return None

    def _keys(self) -> KeyLookup:
        if self._lookup is None:
            raise VerificationError("no directory was published before this entry")
        return self._lookup

    def _envelope(self, e: EnvelopeAccepted) -> None:
        # L3: the sender's header signature under the directory in force, the key valid
        # when the header was made and when the relay took it; the relay never accepts an
        # expired envelope.
        keys = self._keys()
        header = verify_header_signature(e.header, e.sig, keys)
        keys.key(header.sender, header.sender_key, KeyUse.SIGNING, e.received_at)
        if e.received_at >= header.expires:
            raise VerificationError("relay accepted an expired envelope")
        self.signatures += 1

    def _ack(self, e: DeliveryAcked) -> None:
        # L4: the recipient's ack signature (PROTOCOL.md §6, A1–A3). The log keeps the exact
        # ack bytes without the routing hints; they are read from the ack to pick the key.
        # The key must be valid when the ack was signed and when the relay logged it (A3's
        # "now" at the relay), as L3 checks a header's key and L6 a record's.
        keys = self._keys()
        ack = decode(_ACK, e.ack, "ack", limit=4096)
        wrapped = SignedAck(signer=ack.recipient, key=ack.recipient_key, ack=e.ack, sig=e.sig)
        _, verified = verify_ack(encode(wrapped), keys)
        keys.key(verified.recipient, verified.recipient_key, KeyUse.SIGNING, e.received_at)
        self.signatures += 1

    def _email(self, e: EmailRecorded, index: int) -> None:
        # L6: a node's e-mail record (PROTOCOL.md §22.5 G3, offline): the node's signature
        # by a signing key valid at the record's `at` and not revoked when it was logged,
        # and the member reached by e-mail,
        # both in the directory in force at this position. Time windows are the relay's
        # settings and are not re-checked, as for acks.
        record = verify_email_record(e.record, e.sig, self._keys(), logged_at=e.received_at)
        self.signatures += 1
        # The relay logs a record once per (node, SHA-256 of its bytes); the record names
        # its node, so its hash alone is the key. A second leaf is the relay's fault.
        first = self._records.setdefault(_sha256(e.record).digest(), index)
        if first != index:
            raise VerificationError("the same record was logged before", detail=f"entry {first}")
        # One e-mail may have two records (a repeat refused for its age is signed again,
        # §22.5): said, not an anomaly.
        what = f"{record.node}\n{record.direction}\n{record.sha256}".encode()
        first = self._emails.setdefault(_sha256(what).digest(), index)
        if first != index:
            self.notes.append(
                f"entry {index} (email_recorded): {record.node} recorded the e-mail "
                f"{record.sha256} ({record.direction}) again (first at entry {first})"
            )

    def _published(self, e: DirectoryPublished) -> None:
        # L5: the next link of the trust chain: signed by the coordinators trusted so far,
        # newer than the one in force, and the version the entry announces.
        current = self._directory
        if current is not None:
            root = TrustRoot.of(current.directory)
        elif self.trust_root is not None:
            root = self.trust_root
        else:
            verified = _self_verified(e.signed_directory, e.received_at)
            self.notes.append(
                f"directory version {verified.version} trusted on first use (no trust root)"
            )
            root = TrustRoot.of(verified.directory)
        verified = verify_directory(e.signed_directory, root, current=current, now=e.received_at)
        if verified.version != e.version:
            raise VerificationError(
                "logged version differs from the signed directory",
                detail=f"{e.version} != {verified.version}",
            )
        self.signatures += 1
        self._set_directory(verified, e.received_at)


def _self_verified(signed: bytes, at: datetime | None) -> VerifiedDirectory:
    """Verify a signed directory against the coordinators it names itself (D1–D8).

    Used only for a directory with no trusted predecessor: our own saved state, or the
    first directory when no trust root is pinned (trust on first use).
    """
    outer = decode(_SIGNED, signed, "signed directory", limit=MAX_DIRECTORY_BYTES)
    claimed = decode(_DIRECTORY, outer.directory, "directory", limit=MAX_DIRECTORY_BYTES)
    now = at if at is not None else claimed.issued_at
    return verify_directory(signed, TrustRoot.of(claimed), current=None, now=now)
