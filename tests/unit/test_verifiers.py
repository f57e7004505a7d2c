"""The verifier pool (relay/http/_verifiers.py): results, failures, cancellation, batches."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from protocol.errors import VerificationError
from relay.http._verifiers import Verifiers


@pytest.mark.asyncio
async def test_a_job_runs_on_a_worker_and_answers_its_result() -> None:
    pool = Verifiers(2)
    name = await pool.run(lambda: threading.current_thread().name)
    assert name.startswith("relay-verify_")


@pytest.mark.asyncio
async def test_a_failing_job_raises_in_the_waiting_request() -> None:
    pool = Verifiers(1)

    def bad() -> None:
        raise VerificationError("request signature does not verify")

    with pytest.raises(VerificationError, match="does not verify"):
        await pool.run(bad)


@pytest.mark.asyncio
async def test_many_jobs_each_get_their_own_answer_in_batches() -> None:
    pool = Verifiers(2)

    def square(i: int) -> Callable[[], int]:
        return lambda: i * i

    results = await asyncio.gather(*(pool.run(square(i)) for i in range(200)))
    assert results == [i * i for i in range(200)]


@pytest.mark.asyncio
async def test_a_cancelled_request_does_not_break_the_batch() -> None:
    pool = Verifiers(1)
    gate = threading.Event()
    first = pool.run(gate.wait)  # holds the one worker
    cancelled = pool.run(lambda: "never read")
    kept = pool.run(lambda: "kept")
    cancelled.cancel()
    gate.set()
    assert await first is True
    assert await kept == "kept"
