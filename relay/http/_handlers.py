"""The relay's HTTP endpoints under /v1/ (PROTOCOL.md §8)."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta

import msgspec
import structlog
from aiohttp import web

from protocol.codec import decode, encode
from protocol.decimal import parse_decimal
from protocol.directory import TrustRoot, VerifiedDirectory, verify_directory
from protocol.envelope import Window, check_header
from protocol.errors import (
    DirectoryError,
    MalformedError,
    PeerError,
    Relay247Error,
    VerificationError,
)
from protocol.receipt import verify_ack
from relay import __version__
from relay._state import RelayState, ensure_writable
from relay.config import RelayConfig
from relay.http._auth import authenticate, read_body
from relay.http._middleware import STATE, HeaderedError
from relay.storage._health import RETRY_AFTER
from relay.storage.store import (
    DIRECTORY,
    DIRECTORY_LEAF,
    DIRECTORY_STAMP,
    Submission,
    directory_stamp,
    meta_int,
    stamp_version,
)
from schemas.audit import DeliveryAcked, DirectoryPublished, EnvelopeAccepted
from schemas.directory import Directory, SignedDirectory
from schemas.envelope import Envelope, EnvelopeHeader
from schemas.errors import ErrorCode
from schemas.relay_api import (
    AckResult,
    DirectoryResult,
    MailboxItem,
    MailboxPage,
    MemberActivityEntry,
    MembersStatus,
    RelayInfo,
    SubmitResult,
)

log = structlog.get_logger("relay247.relay")
_ENVELOPE = msgspec.json.Decoder(Envelope)  # our own stored bytes: checked at submission
JSON = "application/json"
MAX_PAGE = 500
#: envelope bytes in one mailbox page past its first envelope (PROTOCOL.md §8.1 "Mailbox"):
#: with the default 2 MiB body limit a page stays under 4 MiB of JSON, aiohttp's default
#: WebSocket message limit, and within a client's answer limit whatever the sizes.
MAX_PAGE_BYTES = 2 << 20
_PAGE_BATCH = 64  # envelopes read from the store at a time while filling a page


def _json(obj: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=encode(obj), content_type=JSON)


def _require_json(request: web.Request) -> None:
    if request.content_type != JSON:
        raise Relay247Error(
            "content type must be application/json", code=ErrorCode.UNSUPPORTED_MEDIA_TYPE
        )


def window(state: RelayState) -> Window:
    """The envelope limits from the config."""
    # The config is frozen: build its Window once, not per submission. One entry is
    # enough for a relay process; several relays in one process just rebuild it.
    global _last_window  # noqa: PLW0603
    config = state.config
    if _last_window is None or _last_window[0] is not config:
        lim = config.limits
        _last_window = (
            config,
            Window(
                max_bytes=config.http.max_body_bytes,
                max_skew=timedelta(seconds=lim.max_clock_skew),
                max_lifetime=timedelta(seconds=lim.max_envelope_lifetime),
            ),
        )
    return _last_window[1]


_last_window: tuple[RelayConfig, Window] | None = None


def submission(
    envelope: Envelope, header: EnvelopeHeader, body: bytes, now: datetime
) -> Submission:
    """What the store keeps of a verified envelope, with its ``envelope_accepted`` leaf.

    Args:
        envelope: the outer envelope as decoded (its exact header bytes and signature
            go into the log entry).
        header: the verified header (E1–E8).
        body: the exact bytes submitted.
        now: the relay's time of acceptance.

    Returns:
        The submission for :meth:`relay.storage.store.Store.accept`.
    """
    entry = encode(EnvelopeAccepted(received_at=now, header=envelope.header, sig=envelope.sig))
    return Submission(
        sender=header.sender,
        msg_id=header.msg_id,
        recipient=header.recipient,
        envelope=body,
        envelope_sha256=hashlib.sha256(body).digest(),
        leaf_entry=entry,
        received_at=now,
        expires_at=header.expires,
    )


async def submit(request: web.Request) -> web.Response:
    """POST /v1/envelopes: verify the header (E1–E8), store durably, answer 202."""
    state = request.app[STATE]
    ensure_writable(state)
    started = state.monotonic()
    body = await read_body(request, state)
    _require_json(request)
    member = authenticate(request, body)
    assert state.lookup is not None  # authenticate() refuses without a directory
    now = state.clock()
    checked = check_header(body, state.lookup, now=now, window=window(state), key_valid_now=True)
    header = checked.header
    if header.sender != member:
        raise VerificationError(
            "envelope sender is not the authenticated member", detail=f"{member} != {header.sender}"
        )
    accepted = await state.store.accept(submission(checked.envelope, header, body, now))
    metrics = state.metrics
    if accepted.duplicate:
        metrics.duplicates.inc()
    else:
        metrics.accepted.inc()
        metrics.depth(header.recipient).inc()
        metrics.log_size.set(accepted.leaf_index + 1)
    metrics.accept_latency.observe(state.monotonic() - started)
    log.info(
        "accepted",
        msg_id=header.msg_id,
        sender=header.sender,
        recipient=header.recipient,
        leaf_index=accepted.leaf_index,
        duplicate=accepted.duplicate,
    )
    result = SubmitResult(
        msg_id=header.msg_id,
        leaf_index=accepted.leaf_index,
        received_at=accepted.received_at,
        duplicate=accepted.duplicate,
    )
    return _json(result, status=202)


def _int_query(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    values = request.query.getall(name, [])
    if not values:
        return default
    if len(values) > 1:  # two readers could take different ones (as with JSON keys, J1)
        raise MalformedError(f"query parameter {name} is repeated")
    raw = values[0]
    return parse_decimal(raw, name=f"query parameter {name}", low=lo, high=hi)


async def page(state: RelayState, member: str, after: int, limit: int) -> MailboxPage:
    """One page of ``member``'s mailbox after sequence number ``after``.

    At most ``limit`` envelopes, and past the first at most ``MAX_PAGE_BYTES`` of them: a
    page of large envelopes is shorter, never larger than a client can take.
    """
    items: list[MailboxItem] = []
    size = 0
    cursor = after
    while len(items) < limit:
        want = min(limit - len(items), _PAGE_BATCH)
        stored = await state.store.mailbox(member, cursor, want)
        for s in stored:
            if items and size + len(s.envelope) > MAX_PAGE_BYTES:
                return MailboxPage(messages=tuple(items), next=items[-1].seq)
            size += len(s.envelope)
            items.append(
                MailboxItem(
                    seq=s.seq,
                    sender=s.sender,
                    msg_id=s.msg_id,
                    leaf_index=s.leaf_index,
                    received_at=s.received_at,
                    envelope=s.envelope,
                )
            )
        if len(stored) < want:
            break
        cursor = stored[-1].seq
    return MailboxPage(messages=tuple(items), next=items[-1].seq if items else after)


async def mailbox(request: web.Request) -> web.Response:
    """GET /v1/mailbox?after=&limit=&wait=: pull, long-polling up to ``wait`` seconds."""
    state = request.app[STATE]
    member = authenticate(request, b"")
    after = _int_query(request, "after", 0, 0, 2**62)
    limit = _int_query(request, "limit", 100, 1, MAX_PAGE)
    wait = _int_query(request, "wait", 0, 0, int(state.config.http.max_poll_wait))
    result = await page(state, member, after, limit)
    if not result.messages and wait > 0:
        try:
            async with asyncio.timeout(wait):
                await state.store.wait_for_mail(member, after)
        except TimeoutError:
            pass
        result = await page(state, member, after, limit)
    state.metrics.delivered.labels("pull").inc(len(result.messages))
    return _json(result)


async def ack(request: web.Request) -> web.Response:
    """POST /v1/acks: the recipient's signed ack; the envelope leaves the mailbox."""
    state = request.app[STATE]
    ensure_writable(state)
    body = await read_body(request, state)
    _require_json(request)
    member = authenticate(request, body)
    assert state.lookup is not None
    now = state.clock()
    signed, parsed = verify_ack(body, state.lookup, now=now, window=window(state))
    if parsed.recipient != member:
        raise VerificationError("ack signer is not the authenticated member")
    # The ack must name the header the relay delivered, or the log would record an ack
    # for bytes the recipient never received.
    stored = await state.store.pending_envelope(member, parsed.sender, parsed.msg_id)
    if stored is not None:
        header = _ENVELOPE.decode(stored).header
        if hashlib.sha256(header).hexdigest() != parsed.header_sha256:
            raise VerificationError(
                "ack does not match the delivered envelope", code=ErrorCode.BINDING_MISMATCH
            )
    entry = encode(DeliveryAcked(received_at=now, ack=signed.ack, sig=signed.sig))
    result = await state.store.ack(member, parsed.sender, parsed.msg_id, entry)
    if not result.duplicate:
        state.metrics.acked.inc()
        state.metrics.depth(member).dec()
        state.metrics.log_size.set(result.leaf_index + 1)
    log.info("acked", msg_id=parsed.msg_id, recipient=member, leaf_index=result.leaf_index)
    return _json(
        AckResult(msg_id=parsed.msg_id, leaf_index=result.leaf_index, duplicate=result.duplicate)
    )


async def get_directory(request: web.Request) -> web.Response:
    """GET /v1/directory: the signed directory in force, exact bytes."""
    state = request.app[STATE]
    if state.directory is None:
        raise Relay247Error("no directory has been published yet", code=ErrorCode.NOT_FOUND)
    return web.Response(body=state.directory.signed_bytes, content_type=JSON)


async def post_directory(request: web.Request) -> web.Response:
    """POST /v1/directory: publish a new version; k-of-n signatures are the authorization."""
    state = request.app[STATE]
    ensure_writable(state)
    body = await read_body(request, state)
    _require_json(request)
    # Another instance may have published a newer version a moment ago.
    await refresh_directory(state)
    now = state.clock()
    root = TrustRoot.of(state.directory.directory) if state.directory else state.trust_root
    verified = verify_directory(body, root, current=state.directory, now=now)
    if state.directory is not None and verified.version == state.directory.version:
        return _json(
            DirectoryResult(version=verified.version, leaf_index=await _directory_leaf(state))
        )
    entry = encode(
        DirectoryPublished(received_at=now, version=verified.version, signed_directory=body)
    )
    # One compare-and-set in storage: of two publications racing (here or through another
    # instance) the older can never be stored, or put in force, after the newer.
    index = await state.store.publish_directory(verified.version, body, entry)
    if index is None:
        await refresh_directory(state)
        current = state.directory.version if state.directory else None
        if current == verified.version:  # the same version, published concurrently
            return _json(
                DirectoryResult(version=verified.version, leaf_index=await _directory_leaf(state))
            )
        raise PeerError(
            "a newer directory version was published meanwhile",
            detail=f"version {verified.version}, stored {current}",
            code=ErrorCode.DIRECTORY_ROLLBACK,
        )
    if state.directory is None or verified.version > state.directory.version:
        state.set_directory(verified)
        state.directory_stamp = directory_stamp(verified.version, body)
    log.info("directory published", version=verified.version, leaf_index=index)
    return _json(DirectoryResult(version=verified.version, leaf_index=index))


async def _directory_leaf(state: RelayState) -> int:
    return meta_int(await state.store.get_meta(DIRECTORY_LEAF), "directory leaf")


async def info(request: web.Request) -> web.Response:
    """GET /v1/info: relay id, log origin and key, software version."""
    state = request.app[STATE]
    return _json(
        RelayInfo(
            relay_id=state.config.relay.id,
            public_url=state.config.relay.public_url,
            log_origin=state.log_origin,
            log_key=state.keys.log_key,
            transport_key=state.keys.transport.fingerprint,
            software=f"relay247/{__version__}",
            directory_version=state.directory.version if state.directory else None,
        )
    )


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: 200 when the store answers and writes, 503 (with the reason) otherwise.

    ``role`` tells whether this instance is the one that sequences and signs
    (``leader``) or one of the others (``follower``); SQLite is always ``leader``.
    """
    state = request.app[STATE]
    store = state.store
    await store.probe()  # while a storage outage lasts: has it ended? (rate-limited)
    if store.fault is not None:
        raise HeaderedError(
            store.fault, code=ErrorCode.UNAVAILABLE, headers={"Retry-After": RETRY_AFTER}
        )
    try:
        size = await store.tree_size()
    except Relay247Error:
        raise HeaderedError("storage unavailable", code=ErrorCode.UNAVAILABLE, headers={}) from None
    if state.audit.halted is not None:
        raise HeaderedError(
            "halted: the stored log no longer extends the last signed checkpoint",
            code=ErrorCode.UNAVAILABLE,
            headers={},
        )
    role = "leader" if state.store.is_leader() else "follower"
    return _json(
        {"status": "ok", "log_size": size, "directory": state.directory is not None, "role": role}
    )


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text format."""
    state = request.app[STATE]
    state.metrics.storage_sync(state.store.fault is None, state.store.fault_count)
    return web.Response(body=state.metrics.render(), content_type="text/plain", charset="utf-8")


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


#: meta key: "<version> <sha256 of the signed directory>", written after the directory
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


_SIGNED = msgspec.json.Decoder(SignedDirectory)
_DIRECTORY = msgspec.json.Decoder(Directory)


async def members_status(request: web.Request) -> web.Response:
    """GET /v1/members/status: when each member was last seen and last cosigned.

    Activity is not public (it tells who is on duty), so only members may ask.
    """
    state = request.app[STATE]
    authenticate(request, b"")
    assert state.directory is not None  # authenticate() refuses without a directory
    # Stored by every instance (at most ACTIVITY_SAVE_INTERVAL old), and this
    # instance's own newer times not yet saved.
    stored = await state.store.activity()
    own = state.activity

    def later(a: datetime | None, b: datetime | None) -> datetime | None:
        return b if a is None or (b is not None and b > a) else a

    def entry(member: str) -> MemberActivityEntry:
        seen, cosigned = stored.get(member, (None, None))
        return MemberActivityEntry(
            id=member,
            last_seen=later(seen, own.seen.get(member)),
            last_cosigned=later(cosigned, own.cosigned.get(member)),
        )

    return _json(
        MembersStatus(
            now=state.clock(),
            directory_version=state.directory.version,
            members=tuple(entry(m.id) for m in state.directory.directory.members),
        )
    )
