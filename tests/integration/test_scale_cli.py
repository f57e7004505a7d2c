"""`relay247 audit verify` and `relay247 node inbox` on real-size data, run as documented.

A relay, FR's and US's nodes (witnesses) run as real processes (tests/integration/
_scale_net.py says how the log of over 10,000 entries is filled, with envelopes up to
~97 % of the relay's largest body). The auditor's tool and the officer's inbox listing
then run as subprocesses, exactly as OPERATIONS.md and the README give them. Before
issue 11 both read their answers with one partial read: the audit failed with
"truncated entry bundle" on the first bundle over ~128 KiB, and the inbox listed at
most one page.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration._scale_net import Filled, Plan, ScaleNet

pytestmark = pytest.mark.slow
PLAN = Plan(bulk=4_500, inbox=1_000)  # 9,000 + 1,000 entries, then US's 1,000 receipts
MAX_BODY = 2 << 20  # bytes: the relay's default http.max_body_bytes


@dataclass
class Scale:
    net: ScaleNet
    filled: Filled
    size: int


@pytest.fixture(scope="module")
def scale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scale]:
    n = ScaleNet(tmp_path_factory.mktemp("scale"))
    try:
        n.create()
        n.stop_relay()
        filled = asyncio.run(n.fill(PLAN))
        n.start_relay()
        n.start_witnesses()
        yield Scale(n, filled, n.settle(PLAN.inbox))
    finally:
        n.stop()


def test_audit_verify_passes_on_a_log_of_over_10000_entries(scale: Scale, tmp_path: Path) -> None:
    assert scale.size >= 10_000 + PLAN.inbox  # the fill, the directory, US's receipts
    assert scale.filled.largest > 0.95 * MAX_BODY
    state = tmp_path / "audit-state"
    first = scale.net.audit_verify(state)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "verified" in first.stdout
    assert f"{scale.size:,}" in first.stdout
    # A second run starts from the saved state: the log did not move, nothing to fetch.
    again = scale.net.audit_verify(state)
    assert again.returncode == 0, again.stdout + again.stderr


def test_node_inbox_lists_1000_messages(scale: Scale) -> None:
    us = scale.net.data("US")
    listed = scale.net.cli("node", "inbox", "--data", us, "--json")
    messages = json.loads(listed.stdout)["messages"]
    assert len(messages) == PLAN.inbox
    assert {m["peer"] for m in messages} == {"DE"}
    assert [m["seq"] for m in messages] == sorted(m["seq"] for m in messages)
    table = scale.net.cli("node", "inbox", "--data", us)
    assert sum(1 for line in table.stdout.splitlines() if " DE " in line) == PLAN.inbox
    later = scale.net.cli("node", "inbox", "--data", us, "--after", str(messages[-11]["seq"]),
                          "--json")  # fmt: skip
    assert len(json.loads(later.stdout)["messages"]) == 10


def test_monitor_export_case_and_verify_bundle_on_the_large_log(
    scale: Scale, tmp_path: Path
) -> None:
    n = scale.net
    pins = ("--log-key", n.log_key, "--witnesses", n.witness_file(),
            "--trust-root", n.root / "net" / "trust.json")  # fmt: skip
    monitored = n.cli("audit", "monitor", "--relay", n.url, "--quorum", "2", "--state",
                      tmp_path / "monitor", "--runs", "1", *pins)  # fmt: skip
    assert f"{scale.size:,}" in monitored.stdout
    us = n.data("US")
    listed = json.loads(n.cli("node", "inbox", "--data", us, "--json").stdout)["messages"]
    case = listed[len(listed) // 2]["case_id"]  # one in the middle of the log
    out = tmp_path / "case.json"
    n.cli("node", "export-case", case, "--out", out, "--data", us)
    checked = n.cli("audit", "verify-bundle", out, "--quorum", "2", *pins)
    assert case in checked.stdout
