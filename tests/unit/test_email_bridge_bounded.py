"""M4's forked decryption: bounded in memory and time, answers framed (PROTOCOL.md §22.4)."""

from __future__ import annotations

import time

import pytest

from node.email_bridge import _bounded
from node.email_bridge._bounded import run_bounded
from node.email_bridge.errors import BridgeRefusedError


def test_result_comes_back_exactly() -> None:
    data = bytes(range(256)) * 1000
    assert run_bounded(lambda: data) == data


def test_refusal_in_the_child_keeps_its_reason() -> None:
    def refuse() -> bytes:
        raise BridgeRefusedError("bad_signature", "détail")

    with pytest.raises(BridgeRefusedError) as caught:
        run_bounded(refuse)
    assert (caught.value.reason, caught.value.detail) == ("bad_signature", "détail")


def test_memory_over_the_bound_is_refused() -> None:
    def hog() -> bytes:
        return bytes(_bounded.EXTRA_MEMORY * 2)

    with pytest.raises(BridgeRefusedError) as caught:
        run_bounded(hog)
    assert caught.value.reason == "too_large"


def test_time_over_the_bound_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_bounded, "TIMEOUT", 0.3)

    def slow() -> bytes:
        time.sleep(5)
        return b"late"

    start = time.monotonic()
    with pytest.raises(BridgeRefusedError) as caught:
        run_bounded(slow)
    assert caught.value.reason == "too_large"
    assert time.monotonic() - start < 3  # killed, not waited for


def test_an_answer_over_its_bound_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_bounded, "MAX_ANSWER", 1 << 16)
    with pytest.raises(BridgeRefusedError) as caught:
        run_bounded(lambda: bytes(1 << 20))
    assert caught.value.reason == "too_large"


def test_a_child_that_crashes_is_refused() -> None:
    def crash() -> bytes:
        raise RuntimeError("boom")

    with pytest.raises(BridgeRefusedError) as caught:
        run_bounded(crash)
    assert caught.value.reason == "too_large"
