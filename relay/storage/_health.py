"""Whether the store can write now: the state behind /healthz, the storage metrics and log.

A full disk, a read-only remount, an I/O error or a lost database connection used to
answer every write 500 ``internal`` while /healthz said ok, logged at info. Now the
store notes each outage here (StorageUnavailableError, answered 503 with Retry-After),
logs it at error level at most once per LOG_EVERY seconds, and clears it at the next
write that commits; /healthz triggers such a write (:meth:`StorageHealth.probe`) at
most once per PROBE_EVERY seconds while the fault lasts, so recovery needs no traffic.
"""

from __future__ import annotations

import time

import structlog

from protocol.errors import Relay247Error, StorageUnavailableError

log = structlog.get_logger("relay247.relay")
LOG_EVERY = 10.0  # seconds between two error lines of one outage
PROBE_EVERY = 1.0  # seconds between two health probes while unhealthy
RETRY_AFTER = "5"  # seconds, sent with every 503 of a storage outage


class StorageHealth:
    """Mixed into :class:`relay.storage.store.Store`; class defaults, so no ``__init__`` needed."""

    #: the reason of the current outage, or None while writes commit
    fault: str | None = None
    #: outages noted since start (each failed operation counts), for /metrics
    fault_count: int = 0
    _logged_at: float = -LOG_EVERY
    _suppressed: int = 0
    _probed_at: float = -PROBE_EVERY

    def note_failure(self, exc: StorageUnavailableError) -> None:
        """Record one failed operation of an outage; log it (rate-limited) at error level."""
        first = self.fault is None
        self.fault = exc.message
        self.fault_count += 1
        now = time.monotonic()
        if first or now - self._logged_at >= LOG_EVERY:
            log.error(
                "storage unavailable",
                reason=exc.message,
                detail=exc.detail,
                suppressed=self._suppressed,
            )
            self._logged_at = now
            self._suppressed = 0
        else:
            self._suppressed += 1

    def note_success(self) -> None:
        """A write committed: the outage (if any) is over."""
        if self.fault is not None:
            log.warning("storage recovered", was=self.fault, failures=self.fault_count)
            self.fault = None
            self._suppressed = 0

    async def probe(self) -> None:
        """Try one write now (rate-limited) so an idle relay notices its own recovery."""
        now = time.monotonic()
        if self.fault is None or now - self._probed_at < PROBE_EVERY:
            return
        self._probed_at = now
        try:
            await self.probe_write()
        except StorageUnavailableError:
            return  # noted by the write path
        except Relay247Error:
            return

    async def probe_write(self) -> None:
        """One small write through the normal write path (backends override)."""
