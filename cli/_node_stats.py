"""``relay247 node stats``: this member's figures for a period, from the running node.

The node computes them (``GET /v1/stats``, PROTOCOL.md §20); this prints them as labelled
tables, CSV or JSON, and with ``--send-to`` sends them to the network's secretariat as a
signed ``statistics_report`` (§20.5): running it with that option is the member's opt-in.
"""

from __future__ import annotations

import secrets
from datetime import date
from pathlib import Path

import click

from cli import _node_client as ncl
from cli import _node_options as no
from cli import _stats_render as sr
from cli._passphrase import CliUsageError
from protocol import days
from protocol.errors import MalformedError
from schemas._stats import Statistics, StatisticsReport


def parse_day(value: str, name: str) -> date:
    """A ``YYYY-MM-DD`` day typed on the command line (ASCII digits only, 1970-01-01 to
    9998-12-31: the node's own bound, ``protocol.days``).

    Raises:
        CliUsageError: anything else (exit 2).
    """
    try:
        return days.parse_day(value, name=name)
    except MalformedError:
        raise CliUsageError(
            f"{name} {value!r}: give a day as YYYY-MM-DD, from {days.FIRST_DAY.isoformat()}"
            f" to {days.LAST_DAY.isoformat()}"
        ) from None


def period_options(func: click.decorators.FC) -> click.decorators.FC:
    """``--from DAY`` and ``--to DAY`` (UTC days, both included)."""
    func = click.option("--to", "end", required=True, help="Last day, YYYY-MM-DD (UTC).")(func)
    return click.option("--from", "start", required=True, help="First day, YYYY-MM-DD (UTC).")(func)


@click.command("stats")
@period_options
@click.option(
    "--format", "fmt", type=click.Choice(sr.FORMATS), default="table", show_default=True,
    help="Labelled tables, CSV (coded values) or JSON (docs/schemas/statistics.schema.json).",
)  # fmt: skip
@click.option(
    "--send-to",
    "send_to",
    default=None,
    metavar="MEMBER",
    help="Also send the figures to the network's secretariat (a member listing the"
    " statistics_secretariat capability), as a signed statistics_report.",
)
@no.data_options
@no.lang_option
def stats(
    *,
    start: str,
    end: str,
    fmt: str,
    send_to: str | None,
    data_dir: Path | None,
    config_path: Path | None,
    lang: str,
) -> None:
    """Count requests sent and received, per peer, kind and outcome; delays to the
    delivery receipt, to taken in charge and to preserved (median, 90th percentile);
    refusals by ground; preservations expired before an MLA request; emergencies.

    Every figure comes from what the period's evidence bundles prove (signed times, not
    this node's clock) and names no person, account or address (PROTOCOL.md §20).
    """
    first, last = parse_day(start, "--from"), parse_day(end, "--to")
    if last < first:
        raise CliUsageError("--to: the period ends before it starts")
    where = ncl.data_dir_of(data_dir, config_path)
    figures: Statistics = ncl.call(where, lambda c: c.stats(first, last))
    if fmt == "json":
        click.echo(sr.to_json(figures))
    elif fmt == "csv":
        click.echo(sr.to_csv((figures,)), nl=False)
    else:
        sr.print_statistics(figures, lang)
    if send_to is not None:
        report = StatisticsReport(
            case_id=secrets.token_hex(16),
            sender_ref=f"STATS-{first.isoformat()}-{last.isoformat()}",
            figures=figures,
        )
        result = ncl.call(where, lambda c: c.send(send_to, report))
        click.echo(f"statistics report sent to {send_to}: message {result.msg_id}", err=True)


COMMANDS = (stats,)
