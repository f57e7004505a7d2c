"""``relay247 network stats``: the secretariat adds up the members' statistics reports.

Reports come from the secretariat node's received ``statistics_report`` messages
(``--node DIR``, through its local API) and/or from files (a member's
``node stats --format json``, a report body, or a ``GET /v1/stats/reports`` answer).
Each member's latest report for a period counts once; totals add up the ``sent`` rows
only, so a request two reporting members exchanged is counted once (PROTOCOL.md §20.6).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any, Final

import click

from cli import _node_client as ncl
from cli import _stats_render as sr
from cli._files import read_user_file
from cli._node_stats import parse_day
from cli._passphrase import CliUsageError
from node.render import LANGUAGES
from protocol.codec import decode_as
from protocol.errors import MalformedError, TooLargeError
from schemas._bodies_response import RefusalGround
from schemas._stats import (
    Flow,
    GroundTotal,
    KindTotal,
    NetworkStatistics,
    Outcome,
    ReceivedReports,
    RequestKind,
    Statistics,
    StatisticsReport,
)

#: Largest report file read (a member's whole year stays far below).
MAX_FILE: Final = 16 << 20
_SHAPES: Final[tuple[type[Any], ...]] = (Statistics, StatisticsReport, ReceivedReports)


def read_reports(raw: bytes, name: str) -> list[Statistics]:
    """The figures in one file, whichever of the three shapes it has.

    Raises:
        CliUsageError: too large, repeated keys, or none of the shapes (exit 2).
    """
    problems = []
    for shape in _SHAPES:
        try:
            value = decode_as(shape, raw, name, limit=MAX_FILE)
        except TooLargeError as exc:
            raise CliUsageError(f"{name}: {exc.message}") from None
        except MalformedError as exc:
            problems.append(exc.message)
            continue
        if isinstance(value, Statistics):
            return [value]
        if isinstance(value, StatisticsReport):
            return [value.figures]
        return [r.figures for r in value.reports if r.figures.member == r.sender]
    raise CliUsageError(f"{name}: not statistics ({problems[0]})")


def aggregate(
    reports: Iterable[Statistics], start: date | None = None, end: date | None = None
) -> NetworkStatistics:
    """Each member's last report per period inside ``start``..``end``, and the totals."""
    latest: dict[tuple[str, date, date], Statistics] = {}
    for s in reports:
        inside = (start is None or s.period_from >= start) and (end is None or s.period_to <= end)
        if inside:
            latest[(s.member, s.period_from, s.period_to)] = s
    kept = tuple(latest[k] for k in sorted(latest))
    kinds: Counter[tuple[RequestKind, Outcome]] = Counter()
    grounds: Counter[RefusalGround] = Counter()
    expired = emergencies = 0
    for s in kept:
        for r in s.requests:
            if r.flow is Flow.SENT:
                kinds[(r.kind, r.outcome)] += r.count
        for g in s.refusals:
            if g.flow is Flow.SENT:
                grounds[g.ground] += g.count
        expired += sum(p.count for p in s.expired_before_mla if p.flow is Flow.SENT)
        emergencies += sum(p.count for p in s.emergencies if p.flow is Flow.SENT)
    return NetworkStatistics(
        reports=kept,
        requests=tuple(
            KindTotal(kind=k, outcome=o, count=n) for (k, o), n in sorted(kinds.items())
        ),
        refusals=tuple(GroundTotal(ground=g, count=n) for g, n in sorted(grounds.items())),
        expired_before_mla=expired,
        emergencies=emergencies,
    )


@click.command("stats")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--node",
    "node_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The secretariat node's data directory: add the reports it received.",
)
@click.option("--from", "start", default=None, help="Only reports from this day (YYYY-MM-DD).")
@click.option("--to", "end", default=None, help="Only reports up to this day (YYYY-MM-DD).")
@click.option(
    "--format", "fmt", type=click.Choice(sr.FORMATS), default="table", show_default=True,
    help="Labelled tables, CSV (every member's rows) or JSON.",
)  # fmt: skip
@click.option(
    "--lang",
    type=click.Choice(LANGUAGES),
    default="en",
    show_default=True,
    help="Language of the table's labels (CSV and JSON keep the codes).",
)
def stats(
    *, files: tuple[Path, ...], node_dir: Path | None, start: str | None, end: str | None,
    fmt: str, lang: str,
) -> None:  # fmt: skip
    """Add up the statistics reports of the members who opted in (PROTOCOL.md §20.6).

    FILES: reports as files (`node stats --format json`, a statistics_report body, or
    the node API's /v1/stats/reports answer). With --node, the reports the secretariat
    node received are added too.
    """
    if not files and node_dir is None:
        raise CliUsageError("give report FILES, --node DIR, or both")
    first = None if start is None else parse_day(start, "--from")
    last = None if end is None else parse_day(end, "--to")
    found: list[Statistics] = []
    if node_dir is not None:
        answer = ncl.call(node_dir, lambda c: c.stats_reports())
        found.extend(r.figures for r in answer.reports)
    for path in files:
        raw = read_user_file(path, MAX_FILE)
        found.extend(read_reports(raw, str(path)))
    network = aggregate(found, first, last)
    if fmt == "json":
        click.echo(sr.to_json(network))
    elif fmt == "csv":
        click.echo(sr.to_csv(network.reports), nl=False)
    else:
        sr.print_network(network, lang)


COMMANDS = (stats,)
