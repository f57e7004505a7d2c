"""The fuzz targets inside the test suite: every committed corpus file replays, and each
target runs a few seconds under hypothesis (mutated seeds and random bytes).

The rule is each target's: only the project's own errors may escape (see
``tests/fuzz/__init__.py``). Coverage-guided runs: ``python -m tests.fuzz TARGET``.
``RELAY247_FUZZ_EXAMPLES`` sets the hypothesis examples per target (default 200, a few
seconds each).
"""

from __future__ import annotations

import os
from datetime import UTC

import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import MultiMapping

from console import _admin
from tests.fuzz._harness import TARGETS, load, seeds

EXAMPLES = int(os.environ.get("RELAY247_FUZZ_EXAMPLES", "200"))
_CASES = [(name, file) for name in sorted(TARGETS) for file, _ in seeds(name)]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_target_has_seeds(name: str) -> None:
    assert len(seeds(name)) >= 3, f"tests/fuzz/corpus/{name}/ needs seeds"


@pytest.mark.parametrize(("name", "file"), _CASES)
def test_corpus_replays(name: str, file: str) -> None:
    data = dict(seeds(name))[file]
    load(name).one(data)


def _mutated(seed: bytes, data: st.DataObject) -> bytes:
    """One of a few byte-level mutations of ``seed`` (a cheap stand-in for libFuzzer's)."""
    if not seed:
        return data.draw(st.binary(max_size=64))
    how = data.draw(st.integers(0, 4))
    at = data.draw(st.integers(0, len(seed) - 1))
    if how == 0:  # flip a byte
        return seed[:at] + bytes([seed[at] ^ data.draw(st.integers(1, 255))]) + seed[at + 1 :]
    if how == 1:  # cut
        return seed[:at]
    if how == 2:  # insert
        return seed[:at] + data.draw(st.binary(min_size=1, max_size=16)) + seed[at:]
    if how == 3:  # drop a span
        return seed[:at] + seed[at + data.draw(st.integers(1, 64)) :]
    return seed[:1] + data.draw(st.binary(max_size=256))  # same selector, random bytes


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_under_hypothesis(name: str) -> None:
    target = load(name)
    corpus = [data for _, data in seeds(name)]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        seed = data.draw(st.sampled_from(corpus))
        target.one(_mutated(seed, data))

    run()


def test_f1_access_log_last_day_is_refused() -> None:
    """Fuzz finding F1: ``to=9999-12-31`` raised OverflowError (the day after it)."""
    with pytest.raises(_admin.QueryError):
        _admin.parse(_query("to=9999-12-31"), UTC)


def _query(text: str) -> MultiMapping[str]:
    return make_mocked_request("GET", "/x?" + text).query
