"""A TCP fault proxy for the fault suite (asyncio, loopback only).

It sits on a link (node and load generator -> relay instances; relay instances ->
PostgreSQL) and injects, per direction where it matters:

- ``partition``: every open connection is reset and new ones are refused (closed at
  once) until it heals;
- ``stall`` (blackhole): connections stay open but no byte moves either way until it
  heals, so peers see a hang, not an error (their timeouts must act);
- ``delay``: each chunk waits ``base + uniform(0, jitter)`` seconds before it is
  forwarded; chunks of one direction still leave in order;
- ``loss``: each chunk is, with probability ``p``, the end of its connection (both
  sides reset), as a lossy path ends in a timeout and a reset.

Reordering is not meaningful on TCP: the kernel delivers a stream in order whatever the
path did to segments. What reordering does to a TCP peer is variable delay, so it is
modelled as delay jitter (and the bursts that follow a stall). Segment-level loss and
reordering would need ``tc netem`` in a network namespace; this proxy needs nothing but
asyncio, so it runs anywhere the suite runs.

The proxy may have several upstreams: it then connects to the first that accepts,
starting from the last one that worked (a load balancer in front of relay instances).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field

CHUNK = 65536


@dataclass
class Faults:
    """The proxy's current faults (all off by default)."""

    partition: bool = False
    stall: bool = False
    delay: float = 0.0
    jitter: float = 0.0
    loss: float = 0.0


@dataclass
class FaultProxy:
    """Listen on a free loopback port and forward to ``upstreams`` with :class:`Faults`."""

    name: str
    upstreams: list[tuple[str, int]]
    faults: Faults = field(default_factory=Faults)
    port: int = 0
    connections: int = 0
    #: connections closed at once because of a partition
    refused: int = 0
    _server: asyncio.Server | None = None
    _open: set[asyncio.StreamWriter] = field(default_factory=set)
    _flowing: asyncio.Event = field(default_factory=asyncio.Event)
    _preferred: int = 0
    _rng: random.Random = field(default_factory=random.Random)

    async def start(self, port: int = 0) -> int:
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        self.heal()
        if self._server is not None:
            self._server.close()
            self._reset_all()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    # -- faults ----------------------------------------------------------------------

    def partition(self) -> None:
        self.faults.partition = True
        self._reset_all()

    def stall(self) -> None:
        self.faults.stall = True
        self._flowing.clear()

    def delay(self, base: float, jitter: float) -> None:
        self.faults.delay, self.faults.jitter = base, jitter

    def loss(self, p: float) -> None:
        self.faults.loss = p

    def unpartition(self) -> None:
        self.faults.partition = False

    def unstall(self) -> None:
        self.faults.stall = False
        self._flowing.set()

    def heal(self) -> None:
        self.faults = Faults()
        self._flowing.set()

    def _reset_all(self) -> None:
        for w in list(self._open):
            _abort(w)
        self._open.clear()

    # -- forwarding ------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.faults.partition:
            self.refused += 1
            _abort(writer)
            return
        upstream = await self._connect()
        if upstream is None:
            _abort(writer)
            return
        up_reader, up_writer = upstream
        self.connections += 1
        self._open.update((writer, up_writer))
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, writer), self._pump(up_reader, writer, up_writer)
            )
        finally:
            for w in (writer, up_writer):
                self._open.discard(w)
                _abort(w)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        n = len(self.upstreams)
        for i in range(n):
            k = (self._preferred + i) % n
            host, port = self.upstreams[k]
            try:
                pair = await asyncio.open_connection(host, port)
            except OSError:
                continue
            self._preferred = k
            return pair
        return None

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, src_writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                data = await src.read(CHUNK)
                if not data:
                    if dst.can_write_eof():
                        dst.write_eof()
                    return
                await self._flowing.wait()  # a stall holds every byte here
                f = self.faults
                if f.partition or (f.loss and self._rng.random() < f.loss):
                    _abort(dst)
                    _abort(src_writer)
                    return
                if f.delay or f.jitter:
                    await asyncio.sleep(f.delay + self._rng.uniform(0, f.jitter))
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.IncompleteReadError, RuntimeError):
            _abort(dst)
            _abort(src_writer)


def _abort(writer: asyncio.StreamWriter) -> None:
    transport = writer.transport
    if not transport.is_closing():
        transport.abort()
    else:
        with contextlib.suppress(Exception):
            transport.abort()
