"""The directory in force on this instance: loaded at start-up, refreshed from storage.

The directory is state of the running relay (it lives on :class:`RelayState`), not of
any endpoint: the publication endpoint puts a new version in force, the background
tick picks up a version another instance published, and start-up loads the stored one.
Each stored version is verified again (PROTOCOL.md §5) before it is put in force.
"""

from __future__ import annotations

import msgspec
import structlog

from protocol.codec import decode
from protocol.directory import TrustRoot, VerifiedDirectory, verify_directory
from protocol.errors import DirectoryError
from relay._state import RelayState
from relay.storage import DIRECTORY, DIRECTORY_STAMP, directory_stamp, stamp_version
from schemas.directory import Directory, SignedDirectory

log = structlog.get_logger("relay247.relay")
_SIGNED = msgspec.json.Decoder(SignedDirectory)
_DIRECTORY = msgspec.json.Decoder(Directory)


def load_directory_bytes(raw: bytes | None, state: RelayState) -> None:
    """At start-up: load the directory version stored when it was last published.

    It is re-verified against the pinned trust root; after a coordinator rotation the
    pinned root no longer signs it, so it is then checked against the coordinators it
    lists itself (it reached the database only through the verified chain).

    Raises:
        DirectoryError, MalformedError: the stored directory does not verify.
    """
    if raw is None:
        return
    state.set_directory(_verify_stored(raw, state))


def _verify_stored(raw: bytes, state: RelayState) -> VerifiedDirectory:
    try:
        return verify_directory(raw, state.trust_root, current=None, now=state.clock())
    except DirectoryError:
        signed = decode(_SIGNED, raw, "stored directory", limit=8 << 20)
        own = TrustRoot.of(decode(_DIRECTORY, signed.directory, "stored directory", limit=8 << 20))
        return verify_directory(raw, own, current=None, now=state.clock())


async def refresh_directory(state: RelayState) -> bool:
    """Put in force a newer directory that another instance published (one small read).

    The stored directory reached the database only through a verified chain; it is
    verified again here as at start-up, and never replaces a newer version.

    Returns:
        True when a newer directory was put in force.

    Raises:
        StorageError: the read failed.
        DirectoryError, MalformedError: the stored directory does not verify (reported
            once per stored version).
    """
    stamp = await state.store.get_meta(DIRECTORY_STAMP)
    if stamp is None or stamp == state.directory_stamp:
        return False
    state.directory_stamp = stamp
    raw = await state.store.get_meta(DIRECTORY)
    if raw is None or directory_stamp(stamp_version(stamp), raw) != stamp:
        # Read between two writes of a publication: the next tick sees both.
        state.directory_stamp = None
        return False
    verified = _verify_stored(raw, state)
    if state.directory is not None and verified.version <= state.directory.version:
        return False
    state.set_directory(verified)
    log.info("directory refreshed", version=verified.version)
    return True
