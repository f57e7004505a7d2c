"""bench_peers' shared parts: the systems, one round's measures, the table, a process's CPU.

The table is what the README shows. Every ratio is **relay247 ÷ the row's system**, so the
issue's targets read directly: accepts/s, drain/s and the sustained end-to-end rate want
a ratio >= 1 (0.8 for the end-to-end rate); server CPU per message and the end-to-end p50
want a ratio <= 1 (<= 2 for CPU against JetStream with ``sync_interval: always``).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, fields
from pathlib import Path

from bench.bench_relay import MEMBERS
from tests.support.network import Network
from tests.support.relay import envelope

RELAY = "relay247"
JS_ALWAYS = "JetStream, sync_interval: always"
JS_DEFAULT = "JetStream, default sync"
JS_ALWAYS_VERIFY = "JetStream always + consumer verifies"
JS_DEFAULT_VERIFY = "JetStream default + consumer verifies"
GPG = "GnuPG, one gpg per message"
ORDER = (RELAY, JS_ALWAYS, JS_DEFAULT, JS_ALWAYS_VERIFY, JS_DEFAULT_VERIFY, GPG)

#: (field, column title, unit format, True when higher is better)
COLUMNS = (
    ("accepts", "accepts/s at saturation", "{:,.0f}", True),
    ("cpu_us", "server CPU µs/msg", "{:,.0f}", False),
    ("drain", "drain (pull + ack)/s", "{:,.0f}", True),
    ("e2e_p50_ms", "end to end p50 at 20/s, ms", "{:.1f}", False),
    ("e2e_rate", "end to end, sustained/s", "{:,.0f}", True),
)


@dataclass(frozen=True)
class Measures:
    """One system's figures in one round (None: not measured for that system)."""

    accepts: float | None = None
    cpu_us: float | None = None
    drain: float | None = None
    e2e_p50_ms: float | None = None
    e2e_rate: float | None = None


def medians(rounds: list[dict[str, Measures]]) -> dict[str, Measures]:
    """Per system and per measure, the median over the rounds that measured it."""
    out: dict[str, Measures] = {}
    for name in ORDER:
        values: dict[str, float | None] = {}
        for f in fields(Measures):
            got = [v for r in rounds if name in r and (v := getattr(r[name], f.name)) is not None]
            values[f.name] = statistics.median(got) if got else None
        if any(v is not None for v in values.values()):
            out[name] = Measures(**values)
    return out


def ratios(rounds: list[dict[str, Measures]]) -> dict[str, Measures]:
    """Per system and measure, the median over the rounds of relay247 ÷ the system, each
    ratio taken within one round (the systems ran back to back, so load that came and
    went between rounds cancels out better than in a ratio of medians)."""
    out: dict[str, Measures] = {}
    for name in ORDER:
        values: dict[str, float | None] = {}
        for f in fields(Measures):
            got = []
            for r in rounds:
                relay, other = r.get(RELAY), r.get(name)
                mine = None if relay is None else getattr(relay, f.name)
                theirs = None if other is None else getattr(other, f.name)
                if mine is not None and theirs:
                    got.append(mine / theirs)
            values[f.name] = statistics.median(got) if got else None
        out[name] = Measures(**values)
    return out


def _cell(value: float | None, ratio: float | None, fmt: str, is_relay: bool) -> str:
    if value is None:
        return "—"
    text = fmt.format(value)
    return text if is_relay or ratio is None else f"{text} ({ratio:.2f})"


def table(results: dict[str, Measures], within: dict[str, Measures] | None = None) -> str:
    """The markdown table: each cell ``value (relay247 ÷ value)``.

    ``within``: the ratios to show (:func:`ratios`, taken round by round); by default
    relay247's value in ``results`` divided by the cell's.
    """
    relay = results.get(RELAY, Measures())
    head = "| system | " + " | ".join(title for _, title, _, _ in COLUMNS) + " |"
    lines = [head, "|---" * (len(COLUMNS) + 1) + "|"]
    for name in ORDER:
        if name not in results:
            continue
        m = results[name]
        cells = []
        for f, _, fmt, _ in COLUMNS:
            value, mine = getattr(m, f), getattr(relay, f)
            if within is not None:
                ratio = getattr(within.get(name, Measures()), f)
            else:
                ratio = mine / value if mine is not None and value else None
            cells.append(_cell(value, ratio, fmt, name == RELAY))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (``/proc/PID/stat``)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    rest = stat[stat.rindex(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def envelopes(net: Network, n: int) -> list[tuple[str, bytes]]:
    """``n`` sealed envelopes between the bench members, with each one's recipient."""
    out = []
    for i in range(n):
        sender, to = MEMBERS[i % len(MEMBERS)], MEMBERS[(i + 1) % len(MEMBERS)]
        out.append((to, envelope(net, sender, to, seq=i // len(MEMBERS) + 1)))
    return out


def sender_of(i: int) -> str:
    """The member that sent envelope ``i`` of :func:`envelopes`."""
    return MEMBERS[i % len(MEMBERS)]


def fsync_ms(directory: Path, n: int = 100) -> float:
    """Milliseconds for one 4 KiB append + ``fsync`` in ``directory``: the floor of one
    fsync per message (JetStream ``sync_interval: always`` writes and syncs each one)."""
    path = directory / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        t0 = time.perf_counter()
        for _ in range(n):
            os.write(fd, bytes(4096))
            os.fsync(fd)
        return (time.perf_counter() - t0) / n * 1e3
    finally:
        os.close(fd)
        path.unlink()


def describe(m: Measures) -> str:
    """One line of a system's figures, for the per-round log."""
    return ", ".join(
        f"{title} {fmt.format(v)}"
        for f, title, fmt, _ in COLUMNS
        if (v := getattr(m, f)) is not None
    )


def spread(rounds: list[dict[str, Measures]]) -> str:
    """Per system, each measure's lowest and highest value over the rounds, and of the
    ratio relay247 ÷ the system taken within each round."""
    lines = []
    for name in ORDER:
        parts = []
        for f, title, fmt, _ in COLUMNS:
            got = [v for r in rounds if name in r and (v := getattr(r[name], f)) is not None]
            if got:
                part = f"{title} {fmt.format(min(got))}–{fmt.format(max(got))}"
                within = [
                    mine / theirs
                    for r in rounds
                    if name != RELAY and RELAY in r and name in r
                    and (mine := getattr(r[RELAY], f)) is not None
                    and (theirs := getattr(r[name], f))
                ]  # fmt: skip
                if within:
                    part += f" (relay247 ÷ it {min(within):.2f}–{max(within):.2f})"
                parts.append(part)
        if parts:
            lines.append(f"  {name}: " + "; ".join(parts))
    return "\n".join(lines)
