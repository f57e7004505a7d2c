"""bench_peers, end to end: the crypto both systems do per round trip, and the load shapes.

The same work on both sides (PROTOCOL.md §4, §5, §8.4):

* the sender seals a preservation request FR -> US (inner signature, sealed box, header
  signature) and signs the transport request (RFC 9421, ``sign_request``);
* the recipient opens it (E1–E13: header and inner signature, unseal), signs an
  ``accepted`` receipt and seals it back to FR in a ``receipt`` envelope, signed again for
  transport;
* the sender opens that envelope and verifies the receipt (R1–R5) against what it sent.

Through the relay, the relay verifies each transport signature and envelope header (H1–H7,
E1–E8) on its side and the acks are signed objects (§6). Through JetStream the server
verifies nothing, so each consumer runs the relay's two checks itself
(:meth:`Crypto.relay_checks`) before the recipient's own, and acks are NATS acks.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from protocol.envelope import check_header, open_envelope, seal_envelope
from protocol.httpsig import sign_request, verify_request
from protocol.receipt import bind_receipt, make_ack, make_receipt, verify_receipt
from schemas.envelope import DeliveryReceipt, EnvelopeHeader
from schemas.examples import EXAMPLES
from schemas.messages import coarse_kind, encode_body, priority_of
from schemas.types import CoarseKind
from tests.support.bodies import addressed
from tests.support.network import Network

LIFETIME = timedelta(hours=1)


def sign(target: str, data: bytes, key_owner: str, net: Network) -> dict[str, str]:
    """``Content-Type`` plus the RFC 9421 fields of a POST of ``data`` to ``target``."""
    key = net.members[key_owner].transport
    headers = {"Content-Type": "application/json"}
    headers |= sign_request(
        "POST",
        target,
        headers,
        data,
        key=key,
        keyid=key.fingerprint,
        now=int(time.time()),
        lifetime=240,
        nonce=os.urandom(16).hex(),
    )
    return headers


class Crypto:
    """One network's keys and the per-message protocol work of FR (sender) and US."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self.lookup = net.lookup()
        self._transport = {
            m.transport.fingerprint: m.transport.public for m in net.members.values()
        }
        request = addressed(EXAMPLES["preservation_request"], "FR", "US")
        self.body = encode_body(request)
        self._kind, self._priority = coarse_kind(request), priority_of(request)
        self._seq = {"FR": 0, "US": 0}

    def _seal(
        self, frm: str, to: str, body: bytes, kind: CoarseKind
    ) -> tuple[bytes, EnvelopeHeader]:
        self._seq[frm] += 1
        keys, rcpt = self.net.members[frm], self.net.members[to]
        sealed = seal_envelope(
            body,
            msg_id=os.urandom(16).hex(),
            case_id=os.urandom(16).hex(),
            kind=kind,
            priority=self._priority,
            seq=self._seq[frm],
            sender=frm,
            signing_key=keys.signing,
            recipient=to,
            recipient_key=rcpt.encryption.public,
            recipient_key_fp=rcpt.encryption.fingerprint,
            created=datetime.now(UTC),
            lifetime=LIFETIME,
        )
        return sealed.envelope, sealed.header

    def request(self) -> tuple[bytes, EnvelopeHeader]:
        """FR seals a new preservation request to US."""
        return self._seal("FR", "US", self.body, self._kind)

    def relay_checks(self, target: str, headers: dict[str, str], data: bytes) -> None:
        """What the relay verifies of a submission: RFC 9421 (H1–H7) and E1–E8."""
        now = datetime.now(UTC)
        verify_request(
            "POST", target, headers, data, resolve_key=self._transport.get, now=int(now.timestamp())
        )
        check_header(data, self.lookup, now=now, key_valid_now=True)

    def answer(self, data: bytes) -> tuple[bytes, bytes]:
        """US opens a request, signs the receipt and seals it back to FR.

        Returns:
            The receipt envelope, and US's signed delivery ack for the request (§6).
        """
        us = self.net.members["US"]
        now = datetime.now(UTC)
        opened = open_envelope(
            data, self.lookup, me="US", my_keys={us.encryption.fingerprint: us.encryption}, now=now
        )
        signed = make_receipt(opened, signing_key=us.signing, received_at=now)
        envelope, _ = self._seal("US", "FR", signed, CoarseKind.RECEIPT)
        ack = make_ack(
            opened.header, opened.checked.envelope.header, signing_key=us.signing, acked_at=now
        )
        return envelope, ack

    def receipt(self, data: bytes) -> tuple[DeliveryReceipt, bytes]:
        """FR opens a receipt envelope and verifies the receipt in it (R1–R4).

        Returns:
            The receipt (bind it with :func:`bind_receipt`), and FR's signed ack for it.
        """
        fr = self.net.members["FR"]
        now = datetime.now(UTC)
        opened = open_envelope(
            data, self.lookup, me="FR", my_keys={fr.encryption.fingerprint: fr.encryption}, now=now
        )
        receipt = verify_receipt(opened.body, self.lookup, now=now)
        ack = make_ack(
            opened.header, opened.checked.envelope.header, signing_key=fr.signing, acked_at=now
        )
        return receipt, ack


class RoundTrips:
    """Requests in flight, keyed by msg_id, until FR has verified their receipt (R5)."""

    def __init__(self, crypto: Crypto) -> None:
        self.crypto = crypto
        self._pending: dict[str, tuple[EnvelopeHeader, asyncio.Future[None]]] = {}

    async def one(self, send: Callable[[bytes], Awaitable[None]]) -> float:
        """Seal, send and wait for the verified receipt; return the seconds it took."""
        t0 = time.perf_counter()
        data, header = self.crypto.request()
        done = asyncio.get_running_loop().create_future()
        self._pending[header.msg_id] = (header, done)
        await send(data)
        await done
        return time.perf_counter() - t0

    def watch(self, tasks: set[asyncio.Future[None]]) -> Callable[[asyncio.Future[None]], None]:
        """A done-callback for a message handler: forget it; on an error, fail every
        round trip in flight (a lost receipt would otherwise hang the bench)."""

        def done(task: asyncio.Future[None]) -> None:
            tasks.discard(task)
            if not task.cancelled() and (exc := task.exception()) is not None:
                for _, waiter in self._pending.values():
                    if not waiter.done():
                        waiter.set_exception(exc)

        return done

    def received(self, receipt: DeliveryReceipt) -> None:
        """Bind a verified receipt to the request it answers (R5) and wake its sender."""
        header, done = self._pending.pop(receipt.msg_id)
        bind_receipt(receipt, header)
        done.set_result(None)

    async def at_rate(
        self, send: Callable[[bytes], Awaitable[None]], rate: float, n: int
    ) -> list[float]:
        """Open loop: round trip ``i`` starts at ``start + i / rate``; its latencies."""
        start = time.perf_counter()
        tasks = []
        for i in range(n):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(self.one(send)))
        return list(await asyncio.gather(*tasks))

    async def closed(
        self, send: Callable[[bytes], Awaitable[None]], workers: int, seconds: float
    ) -> float:
        """Closed loop: ``workers`` round trips in flight for ``seconds``; completed/s."""
        deadline = time.perf_counter() + seconds
        count = 0

        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < deadline:
                await self.one(send)
                count += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        return count / (time.perf_counter() - start)


def median(values: list[float]) -> float:
    """The median (upper middle for an even count)."""
    s = sorted(values)
    return s[len(s) // 2]


async def measure(
    trips: RoundTrips,
    send: Callable[[bytes], Awaitable[None]],
    *,
    rate: float,
    n: int,
    workers: int,
    seconds: float,
) -> tuple[list[float], float]:
    """Warm up, then ``n`` round trips at ``rate``/s (their latencies), then the
    closed-loop round trips/s with ``workers`` in flight for ``seconds``."""
    await trips.closed(send, 4, 0.5)
    latencies = await trips.at_rate(send, rate, n)
    return latencies, await trips.closed(send, workers, seconds)
