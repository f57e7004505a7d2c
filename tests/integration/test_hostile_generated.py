"""Generated integers (hypothesis) at every integer query parameter of both servers.

The fixed lists of tests/support/hostile.py cover the forms we thought of; here
hypothesis draws from every Unicode digit-like category, ASCII near-misses and huge
values. Property: the answer is sound (no 5xx, the one error shape, no hang), and a
value the server accepts is a canonical ASCII decimal. Bounded and derandomised, so a
run is quick and repeatable.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration._hostile_servers import (
    hostile_node,
    hostile_relay,
    node_routes,
    relay_routes,
)
from tests.support.hostile import (
    NODE_COVERAGE,
    RELAY_COVERAGE,
    Coverage,
    concrete,
    query_string,
)
from tests.support.raw_http import assert_sound, exchange_blocking, request_bytes

EXAMPLES = 120
_CANONICAL = re.compile(r"0|[1-9][0-9]*")
VALUES = st.one_of(
    st.text(st.characters(categories=("Nd", "No", "Nl")), min_size=1, max_size=6),
    st.text(st.sampled_from("0123456789+-_. \t\nxeE٣²１𝟙"), max_size=24),
    st.integers(-(2**70), 2**70).map(str),
    st.text(max_size=10),
)
Target = tuple[str, Coverage, str]  # path, its coverage, the integer parameter


def _targets(found: list[tuple[str, str]], table: dict[tuple[str, str], Coverage]) -> list[Target]:
    return [
        (path, cov, name)
        for method, path in found
        # A route without an entry fails test_every_route_has_hostile_coverage instead.
        if method == "GET" and (cov := table.get((method, path), Coverage())).ints
        for name in cov.ints
    ]


RELAY_TARGETS = _targets(relay_routes(), RELAY_COVERAGE)
NODE_TARGETS = _targets(node_routes(), NODE_COVERAGE)


def _fuzz(
    url: str,
    targets: list[Target],
    headers: Callable[[str], dict[str, str]],
    params: dict[str, str],
) -> None:
    """Run hypothesis over ``targets`` (blocking: call it in a worker thread)."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(target=st.sampled_from(targets), value=VALUES)
    def run(target: Target, value: str) -> None:
        path, cov, name = target
        full = concrete(path, cov, **params) + query_string({**cov.query, name: value})
        answer = exchange_blocking(url, request_bytes("GET", full, headers(full)))
        error = assert_sound(answer, f"GET {full}")
        if error is None:
            assert _CANONICAL.fullmatch(value), f"GET {full}: {value!r} accepted"

    run()


# The signed routes (mailbox) and the public ones (audit) each get EXAMPLES draws.
@pytest.mark.parametrize("signed", [False, True], ids=["audit", "mailbox"])
async def test_relay_generated_integers(
    signed: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    targets = [t for t in RELAY_TARGETS if t[1].signed == signed]
    assert targets
    async with hostile_relay(tmp_path, monkeypatch) as relay:

        def headers(target: str) -> dict[str, str]:
            return relay.signed("GET", target) if signed else {}

        await asyncio.to_thread(_fuzz, relay.url, targets, headers, {})


async def test_node_api_generated_integers(tmp_path: Path) -> None:
    assert NODE_TARGETS
    async with hostile_node(tmp_path) as node:
        auth = node.auth()
        await asyncio.to_thread(
            _fuzz, node.url, NODE_TARGETS, lambda _: auth, {"case_id": node.case_id}
        )
