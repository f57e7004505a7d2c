"""The ``delivery_failed`` alerts a restart owes: envelopes given up whose alert no target took.

The outbox records when it gave an envelope up (node.db ``messages.given_up_at``, written
in the same transaction that marks the message ``failed``); the alert is recorded in
``alerts_sent`` once a target took it. What lies between (a node stopped while every
target refused, or a crash right after the give-up) is read back once at start-up, in the
alerts the clocks then send (:class:`node.cases.clocks.Clocks`), with the ids they had.

The bound (docs/PROTOCOL.md §10): a give-up is owed for :data:`OWED_FOR` after it (the
longest envelope lifetime a relay accepts), and one recorded before ``given_up_at``
existed is never owed (an upgraded node does not alert its history). An e-mail the bridge
gave up has no ``given_up_at``: the bridge alerts it itself, with its own kind.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from node.alerts import Alert, given_up_alert
from node.cases.store import CaseStore
from protocol.envelope import DEFAULT_WINDOW
from schemas.errors import ErrorCode

#: How long after its give-up a message's alert is still owed at a restart.
OWED_FOR: Final[timedelta] = DEFAULT_WINDOW.max_lifetime
_GIVEN_UP_SQL: Final = (
    "SELECT msg_id, case_id, peer, reason, given_up_at FROM messages"
    " INDEXED BY messages_given_up"  # the few give-ups, not every message sent
    " WHERE given_up_at >= ? AND given_up_at IS NOT NULL AND direction = 'out'"
    " AND status = 'failed' ORDER BY given_up_at, msg_id"
)
_CODES: Final = frozenset(c.value for c in ErrorCode)


async def owed_alerts(cases: CaseStore, *, member: str, now: datetime) -> list[Alert]:
    """The ``delivery_failed`` alerts of the envelopes given up since ``now - OWED_FOR``
    that no target took (nor were recorded with none configured).

    Raises:
        StorageError: the store failed (a node.db its node store has not opened yet
            lacks ``given_up_at``).
    """
    since = (now - OWED_FOR).astimezone(UTC).isoformat()
    rows = await cases._run(cases._select, _GIVEN_UP_SQL, (since,))
    owed = []
    for msg_id, case_id, peer, reason, at in rows:
        alert = given_up_alert(
            case_id=case_id, msg_id=msg_id, recipient=peer, code=_code(reason),
            member=member, now=datetime.fromisoformat(at),
        )  # fmt: skip
        if not await cases.alert_sent(alert.alert_id):
            owed.append(alert)
    return owed


def _code(reason: str | None) -> str:
    # The outbox's reason is "<code>: <relay's words>"; only the code reaches an alert.
    code = (reason or "").split(":", 1)[0]
    return code if code in _CODES else ErrorCode.INTERNAL.value
