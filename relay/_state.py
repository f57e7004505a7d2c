"""Everything one relay instance holds while it runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from protocol.directory import KeyLookup, TrustRoot, VerifiedDirectory
from protocol.envelope import Window
from protocol.errors import Relay247Error
from protocol.httpsig import NonceCache
from protocol.keys import SigningKey
from protocol.note import Signer
from relay.config import RelayConfig
from relay.http._metrics import Metrics
from relay.http._ratelimit import RateLimiter
from relay.storage import Store, StoredCheckpoint
from schemas.errors import ErrorCode


@dataclass
class AuditState:
    """The checkpoint being served and the checkpointer's bookkeeping.

    ``latest`` is set only after the checkpoint is stored durably, so nothing served
    can be lost by a crash; ``cosignatures`` holds the lines collected for ``latest``,
    one per witness, in arrival order.
    """

    latest: StoredCheckpoint | None = None
    cosignatures: dict[str, bytes] = field(default_factory=dict)
    #: monotonic time of the last signature, adoption (follower) or start-up
    signed_at: float = 0.0
    #: monotonic time of the last expiry sweep (or of start-up)
    swept_at: float = 0.0
    #: the role seen at the last tick, to log changes of leadership
    leader: bool | None = None
    #: why the relay stopped writing and signing (the stored log was rolled back or
    #: rewritten under it); None while healthy. Only a restart clears it, after I1-I5.
    halted: str | None = None
    task: asyncio.Task[None] | None = None
    #: held while ``latest`` is compared with storage and moved (refresh, signing)
    moving: asyncio.Lock = field(default_factory=asyncio.Lock)


#: seconds between two writes of member activity to storage (the background tick's)
ACTIVITY_SAVE_INTERVAL = 10.0


@dataclass
class MemberActivity:
    """When each member last made an authenticated request and last cosigned (§8.1).

    Updated in memory on the request path; the background tick stores what changed at
    most every ACTIVITY_SAVE_INTERVAL seconds (one write for all members), so that
    ``GET /v1/members/status`` is right after a restart and on every instance.
    """

    seen: dict[str, datetime] = field(default_factory=dict)
    cosigned: dict[str, datetime] = field(default_factory=dict)
    unsaved_seen: dict[str, datetime] = field(default_factory=dict)
    unsaved_cosigned: dict[str, datetime] = field(default_factory=dict)
    #: monotonic time of the last save (or of start-up)
    saved_at: float = 0.0

    def saw(self, member: str, when: datetime) -> None:
        """Record an authenticated request of ``member``."""
        self.seen[member] = self.unsaved_seen[member] = when

    def cosign(self, member: str, when: datetime) -> None:
        """Record a cosignature stored for ``member``."""
        self.cosigned[member] = self.unsaved_cosigned[member] = when

    def take_unsaved(self) -> tuple[dict[str, datetime], dict[str, datetime]]:
        """What changed since the last save; forgotten here (see :meth:`unsaved_again`)."""
        taken = (self.unsaved_seen, self.unsaved_cosigned)
        self.unsaved_seen, self.unsaved_cosigned = {}, {}
        return taken

    def unsaved_again(self, seen: dict[str, datetime], cosigned: dict[str, datetime]) -> None:
        """Put back what a failed save took (a newer value taken since stays)."""
        for member, when in seen.items():
            self.unsaved_seen.setdefault(member, when)
        for member, when in cosigned.items():
            self.unsaved_cosigned.setdefault(member, when)


def utc_now() -> datetime:
    """The wall clock, tz-aware (injected so tests can move time)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class RelayKeys:
    """The relay's own keys, unlocked from its keystore."""

    log_signer: Signer
    transport: SigningKey

    @property
    def log_key(self) -> str:
        """The log's signed-note verifier key string."""
        return self.log_signer.verifier().key_string()


@dataclass
class RelayState:
    """Shared state of the aiohttp app; one per relay process."""

    config: RelayConfig
    store: Store
    keys: RelayKeys
    trust_root: TrustRoot
    log_origin: str
    clock: Callable[[], datetime] = utc_now
    monotonic: Callable[[], float] = time.monotonic
    metrics: Metrics = field(default_factory=Metrics)
    nonces: NonceCache = field(default_factory=NonceCache)
    directory: VerifiedDirectory | None = None
    lookup: KeyLookup | None = None
    audit: AuditState = field(default_factory=AuditState)
    activity: MemberActivity = field(default_factory=MemberActivity)
    #: the stored directory stamp last acted on (see ``relay._directory.refresh_directory``)
    directory_stamp: bytes | None = None
    #: large bodies of unsigned writes being read now (``relay.http._auth.read_body``)
    unsigned_reads: int = 0
    limiter: RateLimiter = field(init=False)
    #: the envelope limits of the config (E2, E6, E7), built once: the config is frozen
    window: Window = field(init=False)

    def __post_init__(self) -> None:
        limits = self.config.limits
        self.limiter = RateLimiter(limits.rate_per_node, limits.rate_burst)
        self.window = Window(
            max_bytes=self.config.http.max_body_bytes,
            max_skew=timedelta(seconds=limits.max_clock_skew),
            max_lifetime=timedelta(seconds=limits.max_envelope_lifetime),
        )

    def set_directory(self, verified: VerifiedDirectory) -> None:
        """Make ``verified`` the directory in force."""
        self.directory = verified
        self.lookup = KeyLookup(verified.directory)


def ensure_writable(state: RelayState) -> None:
    """Refuse writes once the stored log stopped extending what this relay signed.

    Raises:
        Relay247Error: ``unavailable`` (503) while the relay is halted (see
            ``relay.audit._checkpointer.halt``); nothing is written.
    """
    if state.audit.halted is not None:
        raise Relay247Error(
            "the relay is halted: its stored log no longer extends its signed checkpoint",
            detail=state.audit.halted,
            code=ErrorCode.UNAVAILABLE,
        )
