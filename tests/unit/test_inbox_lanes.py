"""node/messaging/_lanes.py on its own: order per sender, retry, the saved-cursor floor,
and a defect that stops one lane loudly without moving the cursor past its envelopes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

from node.events import NodeProblem
from node.messaging._lanes import Lanes
from node.messaging.inbox import Inbox
from node.messaging.shared import Shared
from node.messaging.transport_api import Transport
from protocol.errors import TransportError
from schemas.errors import ErrorCode
from schemas.relay_api import MailboxItem

URL = "http://relay.test"


def _item(seq: int, sender: str) -> MailboxItem:
    return MailboxItem(
        seq=seq,
        sender=sender,
        msg_id=f"{seq:032x}",
        leaf_index=seq,
        received_at=datetime(2026, 12, 3, 23, tzinfo=UTC),
        envelope=b"{}",
    )


class _Inbox:
    def __init__(self, fail: dict[int, list[BaseException]]) -> None:
        self.fail = fail
        self.handled: list[int] = []

    async def handle(self, item: MailboxItem, transport: Any) -> bool:
        errors = self.fail.get(item.seq)
        if errors:
            raise errors.pop(0)
        self.handled.append(item.seq)
        return True


def _lanes(inbox: _Inbox) -> tuple[Lanes, list[object]]:
    seen: list[object] = []
    shared = SimpleNamespace(hub=SimpleNamespace(publish=seen.append))
    return Lanes(cast(Shared, shared), cast(Inbox, inbox), lambda attempt: 0.0), seen


async def _idle(lanes: Lanes, *senders: str) -> None:
    async with asyncio.timeout(5):
        while any(lanes.busy(s) for s in senders):  # noqa: ASYNC110 - polls public state
            await asyncio.sleep(0.01)


async def test_one_sender_in_order_retried_and_the_floor_follows() -> None:
    inbox = _Inbox({2: [TransportError("relay down")]})
    lanes, seen = _lanes(inbox)
    transport = cast(Transport, SimpleNamespace(base_url=URL))
    for seq in (2, 3, 5):
        lanes.add(_item(seq, "FR"), transport)
    assert lanes.floor(URL, 9) == 1  # before the first held envelope
    await _idle(lanes, "FR")
    assert inbox.handled == [2, 3, 5]  # the retry kept the order
    assert [type(e) for e in seen] == [NodeProblem]
    assert lanes.floor(URL, 9) == 9
    assert lanes.done == 3


async def test_a_defect_stops_the_lane_and_keeps_its_envelopes_held() -> None:
    inbox = _Inbox({4: [RuntimeError("bug")]})
    lanes, seen = _lanes(inbox)
    transport = cast(Transport, SimpleNamespace(base_url=URL))
    lanes.add(_item(4, "FR"), transport)
    lanes.add(_item(6, "FR"), transport)
    await _idle(lanes, "FR")
    assert inbox.handled == []
    (problem,) = seen
    assert isinstance(problem, NodeProblem)
    assert problem.code is ErrorCode.INTERNAL
    assert lanes.floor(URL, 9) == 3  # the relay delivers them again after a restart
    await lanes.close()
