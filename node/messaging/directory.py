"""The directory the node trusts: load, verify, refresh, never roll back (PROTOCOL.md §3)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import msgspec

from node.events import EventHub, NodeProblem
from node.messaging.transport_api import Transport
from node.storage import NodeStore
from protocol.codec import decode, decode_as
from protocol.directory import (
    KeyLookup,
    TrustRoot,
    VerifiedDirectory,
    key_fingerprint,
    verify_directory,
)
from protocol.errors import ConfigError, MalformedError, Relay247Error, StorageError
from schemas.directory import Directory, Member, MemberKey, TrustRootFile
from schemas.errors import ErrorCode
from serving.files import read_file

_TRUST = msgspec.json.Decoder(TrustRootFile)


def read_trust_root(path: Path) -> TrustRoot:
    """Read the pinned coordinators' keys and threshold (``trust.json``).

    Raises:
        ConfigError: missing or invalid file; the message names it.
    """
    raw = read_file(path, 1 << 20, what="trust root")
    try:
        t = decode(_TRUST, raw, "trust root", limit=1 << 20)
    except Relay247Error as exc:
        raise ConfigError(f"{path}: {exc.message}") from None
    return TrustRoot(t.coordinators, t.threshold)


class DirectoryState:
    """The current verified directory and its key look-ups.

    The first version is verified against the pinned trust root; each later one
    against the coordinators of the version held, with ``current`` passed so D7 refuses
    any older version (or the same version with other contents).
    """

    def __init__(self, pinned: TrustRoot, store: NodeStore) -> None:
        self._pinned = pinned
        self._store = store
        self.current: VerifiedDirectory | None = None
        self.lookup: KeyLookup | None = None
        self._watch: tuple[str, frozenset[bytes], EventHub] | None = None

    def watch(self, member_id: str, own_keys: frozenset[bytes], hub: EventHub) -> None:
        """Alert the operator when this node's own directory entry changes unasked.

        Args:
            member_id: this node's member id.
            own_keys: public keys this node made itself; their addition is expected.
            hub: where a :class:`NodeProblem` ``("directory-entry", ...)`` is published.
        """
        self._watch = (member_id, own_keys, hub)

    async def load(self, now: datetime) -> None:
        """Load the newest stored version, re-verified against the pinned trust root.

        Re-verification of a stored version only checks its signatures when the
        coordinators have not changed since; otherwise it is trusted as stored (it
        was verified when it was saved, and the database is ours).

        Raises:
            StorageError: the stored version does not verify.
        """
        raw = await self._store.current_directory()
        if raw is None:
            return
        try:
            verified = verify_directory(raw, self._pinned, current=None, now=now)
        except Relay247Error:
            verified = _trusted_stored(raw)
        self._set(verified)

    async def accept(self, data: bytes, now: datetime) -> bool:
        """Verify ``data`` as the next version and keep it if newer.

        Returns:
            True if it is a new version, False if it is the one held.

        Raises:
            DirectoryError: rollback (DIRECTORY_ROLLBACK), too few signatures, future.
            MalformedError, TooLargeError: not a signed directory.
            StorageError: saving failed.
        """
        root = self._pinned if self.current is None else TrustRoot.of(self.current.directory)
        verified = verify_directory(data, root, current=self.current, now=now)
        if self.current is not None and verified.version == self.current.version:
            return False
        await self._store.save_directory(verified.version, data, now)
        previous = self.current
        self._set(verified)
        if previous is not None and self._watch is not None:
            member_id, own_keys, hub = self._watch
            for change in member_changes(
                _member(previous.directory, member_id),
                _member(verified.directory, member_id),
                own_keys,
            ):
                hub.publish(NodeProblem("directory-entry", ErrorCode.CONFLICT, change))
        return True

    async def refresh(self, transport: Transport, now: datetime) -> bool:
        """Fetch the relay's directory and :meth:`accept` it.

        Raises:
            TransportError: the relay cannot be reached; and the errors of :meth:`accept`.
        """
        return await self.accept(await transport.directory(), now)

    def _set(self, verified: VerifiedDirectory) -> None:
        self.current = verified
        self.lookup = KeyLookup(verified.directory)

    def relay_urls(self) -> tuple[str, ...]:
        """The relays listed in the directory, in its order."""
        if self.current is None:
            return ()
        return tuple(r.url for r in self.current.directory.relays)


def _trusted_stored(raw: bytes) -> VerifiedDirectory:
    from schemas.directory import Directory, SignedDirectory

    try:  # verified before it was stored (J1 included), so no second J1
        signed = decode_as(
            SignedDirectory, raw, "stored directory", limit=len(raw), unique_keys=False
        )
        directory = decode_as(
            Directory, signed.directory, "stored directory", limit=len(raw), unique_keys=False
        )
    except MalformedError as exc:
        raise StorageError("stored directory is unreadable", detail=exc.diagnostics()) from None
    return VerifiedDirectory(directory, raw)


def _member(directory: Directory, member_id: str) -> Member | None:
    return next((m for m in directory.members if m.id == member_id), None)


def member_changes(old: Member | None, new: Member | None, own_keys: frozenset[bytes]) -> list[str]:
    """Describe the changes of a member entry that its node did not ask for.

    Adding a key the node made itself (in ``own_keys``) is expected; every other
    added, removed or revoked key, a removal from the directory and a change of
    authority or contacts is reported. Shortened validity is reported with the key.

    Returns:
        One human-readable line per change (no key material, only fingerprints).
    """
    if old is None or new is None:
        return [] if old is new else [f"member entry {'removed' if new is None else 'added'}"]
    before = {key_fingerprint(k): k for k in old.keys}
    after = {key_fingerprint(k): k for k in new.keys}
    changes = []
    for fp, k in after.items():
        if fp not in before and k.public not in own_keys:
            changes.append(f"{k.use.value} key {fp} added")
    for fp, k in before.items():
        now_k = after.get(fp)
        if now_k is None:
            changes.append(f"{k.use.value} key {fp} removed")
        elif now_k.revoked_at is not None and k.revoked_at != now_k.revoked_at:
            changes.append(f"{k.use.value} key {fp} revoked from {now_k.revoked_at.isoformat()}")
        elif now_k.not_after < k.not_after and not _rotated(new, k):
            changes.append(f"{k.use.value} key {fp} now ends {now_k.not_after.isoformat()}")
    if (old.authority, old.contacts) != (new.authority, new.contacts):
        changes.append("authority or contacts changed")
    return changes


def _rotated(member: Member, old_key: MemberKey) -> bool:
    # A rotation ends the old key: expected when a newer key of ours of that use exists
    # (a foreign newer key is reported as added already).
    return any(k.use is old_key.use and k.not_before > old_key.not_before for k in member.keys)
