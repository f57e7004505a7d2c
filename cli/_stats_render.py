"""Statistics as a table, CSV or JSON (``relay247 node stats``, ``relay247 network stats``).

The table's headings and coded values are labelled in the officer's language (the CLI
catalogs, ``node/i18n``); CSV and JSON keep the codes, for spreadsheets and scripts.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Final

import msgspec
from rich.table import Table

from cli._node_render import console
from node.render import Catalog, load_catalog
from schemas._stats import NetworkStatistics, Statistics

FORMATS: Final = ("table", "csv", "json")
#: CSV columns, the same for every table of the figures (empty where a row has none).
COLUMNS: Final = (
    "member", "table", "flow", "peer", "kind", "outcome", "measure", "ground",
    "count", "median_s", "p90_s",
)  # fmt: skip
_ALL_PEERS: Final = "*"


def duration(seconds: int) -> str:
    """Whole seconds as ``[D d ]HH:MM:SS``, the same in every language."""
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    text = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{days} d {text}" if days else text


def flat_rows(s: Statistics) -> Iterator[dict[str, str]]:
    """Every row of the figures, as CSV cells (coded values, counts, seconds)."""
    base = {"member": s.member}
    for r in s.requests:
        yield base | {"table": "requests", "flow": r.flow, "peer": r.peer, "kind": r.kind,
                      "outcome": r.outcome, "count": str(r.count)}  # fmt: skip
    for t in s.timings:
        yield base | {
            "table": "timings", "flow": t.flow, "peer": t.peer or _ALL_PEERS,
            "measure": t.measure, "count": str(t.count), "median_s": str(t.median_s),
            "p90_s": str(t.p90_s),
        }  # fmt: skip
    for g in s.refusals:
        yield base | {"table": "refusals", "flow": g.flow, "peer": g.peer, "ground": g.ground,
                      "count": str(g.count)}  # fmt: skip
    for name, rows in (
        ("expired_before_mla", s.expired_before_mla),
        ("emergencies", s.emergencies),
    ):
        for p in rows:
            yield base | {"table": name, "flow": p.flow, "peer": p.peer, "count": str(p.count)}


def to_csv(reports: tuple[Statistics, ...]) -> str:
    """One CSV of every report's rows, header first (RFC 4180, CRLF line ends)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, restval="")
    writer.writeheader()
    for s in reports:
        writer.writerows(flat_rows(s))
    return out.getvalue()


def to_json(value: Statistics | NetworkStatistics) -> str:
    """The figures as indented JSON (the shape of ``docs/schemas``)."""
    return msgspec.json.format(msgspec.json.encode(value), indent=2).decode()


def _table(title: str, *headings: str) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for h in headings:
        table.add_column(h)
    return table


def _code(cat: Catalog, enum_name: str, value: str) -> str:
    return cat.enums.get(enum_name, {}).get(value, value)


def tables(s: Statistics, lang: str, *, with_member: bool = False) -> list[Table]:
    """The figures as labelled tables (empty ones left out)."""
    cat = load_catalog(lang)
    f = cat.field
    lead = (f("Statistics", "member"),) if with_member else ()
    who = (s.member,) if with_member else ()
    flow, peer, count = f("RequestCount", "flow"), f("RequestCount", "peer"), f("", "count")
    out = []
    if s.requests:
        t = _table(f("", "requests"), *lead, flow, peer, f("RequestCount", "kind"),
                   f("", "outcome"), count)  # fmt: skip
        for r in s.requests:
            t.add_row(*who, _code(cat, "Flow", r.flow), r.peer,
                      _code(cat, "RequestKind", r.kind), _code(cat, "Outcome", r.outcome),
                      str(r.count))  # fmt: skip
        out.append(t)
    if s.timings:
        t = _table(f("", "timings"), *lead, flow, f("", "measure"), peer, count,
                   f("", "median_s"), f("", "p90_s"))  # fmt: skip
        for m in s.timings:
            t.add_row(*who, _code(cat, "Flow", m.flow), _code(cat, "Measure", m.measure),
                      m.peer or _ALL_PEERS, str(m.count), duration(m.median_s),
                      duration(m.p90_s))  # fmt: skip
        out.append(t)
    if s.refusals:
        t = _table(f("", "refusals"), *lead, flow, peer, f("", "ground"), count)
        for g in s.refusals:
            t.add_row(*who, _code(cat, "Flow", g.flow), g.peer,
                      _code(cat, "RefusalGround", g.ground), str(g.count))  # fmt: skip
        out.append(t)
    for name, rows in (
        ("expired_before_mla", s.expired_before_mla),
        ("emergencies", s.emergencies),
    ):
        if rows:
            t = _table(f("", name), *lead, flow, peer, count)
            for p in rows:
                t.add_row(*who, _code(cat, "Flow", p.flow), p.peer, str(p.count))
            out.append(t)
    return out


def print_statistics(s: Statistics, lang: str) -> None:
    """Print one member's figures as tables, with the period first."""
    cat = load_catalog(lang)
    head = (
        f"{s.member}: {cat.field('', 'period_from')} {s.period_from.isoformat()}, "
        f"{cat.field('', 'period_to')} {s.period_to.isoformat()}"
    )
    console().print(head)
    for t in tables(s, lang):
        console().print(t)


def print_network(n: NetworkStatistics, lang: str) -> None:
    """Print the network's totals, then each member's figures."""
    cat = load_catalog(lang)
    f = cat.field
    totals = _table(f("", "requests"), f("RequestCount", "kind"), f("", "outcome"), f("", "count"))
    for k in n.requests:
        totals.add_row(_code(cat, "RequestKind", k.kind), _code(cat, "Outcome", k.outcome),
                       str(k.count))  # fmt: skip
    console().print(totals)
    grounds = _table(f("", "refusals"), f("", "ground"), f("", "count"))
    for g in n.refusals:
        grounds.add_row(_code(cat, "RefusalGround", g.ground), str(g.count))
    console().print(grounds)
    console().print(f"{f('', 'expired_before_mla')}: {n.expired_before_mla}")
    console().print(f"{f('', 'emergencies')}: {n.emergencies}")
    for s in n.reports:
        print_statistics(s, lang)
