"""The seq NOTIFY payload (PROTOCOL.md A.7.3 step 2) and how a follower's waiter uses it.

No server needed: the payload is plain text, and a waiter registered after its NOTIFY
was heard is answered from the runs kept of it.
"""

from __future__ import annotations

import pytest

from relay.storage.postgres._notify import SEQ_PAYLOAD_MAX, parse_seq_payload, seq_payload
from relay.storage.postgres.store import PostgresStore


def test_runs_of_consecutive_qids_and_indexes() -> None:
    assigned = {5: 10, 6: 11, 7: 12, 9: 13, 10: 14, 20: 15}
    text = seq_payload(16, assigned)
    assert text == "16;5:10:3,9:13:2,20:15:1"
    size, runs = parse_seq_payload(text)
    assert size == 16
    assert runs is not None
    back = {q + k: i + k for q, i, n in runs for k in range(n)}
    assert back == assigned


def test_too_many_runs_send_the_size_alone() -> None:
    assigned = {2 * k: k for k in range(2000)}  # no two qids consecutive: 2,000 runs
    text = seq_payload(2000, assigned)
    assert text == "2000"
    assert parse_seq_payload(text) == (2000, None)
    fits = seq_payload(300, {2 * k: k for k in range(300)})
    assert len(fits) < SEQ_PAYLOAD_MAX
    assert parse_seq_payload(fits)[1] is not None


@pytest.mark.parametrize("bad", ["", "x", "5;1:2", "5;1:2:0", "5;a:b:c", "5;1:2:3,"])
def test_malformed_payloads_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 -- int() and the run check both say ValueError
        parse_seq_payload(bad)


def test_an_empty_batch_payload_parses() -> None:
    assert parse_seq_payload("7;") == (7, [])


async def test_a_waiter_registered_after_its_notify_is_answered() -> None:
    store = PostgresStore("postgresql://unused", schema="unused")  # never started
    store._heard_seq(None, 0, "seq", "13;10:5:3")
    early = store._expect(11)  # its NOTIFY came before the batch's writer got here
    assert early.result() == 6
    late = store._expect(40)
    assert not late.done()
    store._heard_seq(None, 0, "seq", "14;40:13:1")
    assert late.result() == 13
    assert store._waiters == {}
    store._heard_seq(None, 0, "seq", "garbage")  # refused: the watcher looks instead
    assert store._seq_event.is_set()
