"""``relay247 node hold / release / retention`` and how ``node show`` prints a case's
hold and removed bodies (PROTOCOL.md §19).

Through the running node's local API with the node's own token: the hold and its lifting
are recorded on the case and in the access log (client ``api:127.0.0.1``, no officer).
``node retention --dry-run`` lists what a pass would remove now; without it the pass
runs now (the scheduled task runs the same pass every ``[retention] interval``).
"""

from __future__ import annotations

from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli import _node_client as ncl
from cli import _node_options as no
from cli import _node_render as nr
from cli._numbers import AsciiIntRange
from node.render import format_time, load_catalog, printable
from schemas.node_api import CaseDetail
from schemas.node_api_retention import PassView, RetentionView

if TYPE_CHECKING:
    from node.api import NodeApiClient


def retention_lines(view: RetentionView, lang: str, tz: tzinfo | None) -> list[str]:
    """A case's hold history and removed bodies, one line each, in ``lang``."""
    ui = load_catalog(lang).ui

    def words(key: str) -> str:
        return ui["retention." + key]

    out = []
    for e in view.history:
        who = printable(e.officer) if e.officer else words("node")
        key = "hold_put" if e.action == "held" else "hold_lifted"
        reason = printable(e.reason or "")
        out.append(words(key).format(at=format_time(e.at, tz), who=who, reason=reason))
    if view.hold is not None:
        who = printable(view.hold.officer) if view.hold.officer else words("node")
        at = format_time(view.hold.at, tz)
        out.append(words("held").format(at=at, who=who, reason=printable(view.hold.reason or "")))
    for r in view.removed:
        out.append(
            words("removed").format(
                msg=r.msg_id, date=r.removed_at.date().isoformat(), policy=r.policy,
                days=r.policy_days,
            )
        )  # fmt: skip
    return out


def print_retention(where: Path, detail: CaseDetail, lang: str, tz: tzinfo | None) -> None:
    """Print the case's hold and removals after ``node show`` (nothing if none)."""
    case_id = detail.summary.case_id
    view = ncl.call(where, lambda c: c.retention(case_id))
    out = nr.console()
    for line in retention_lines(view, lang, tz):
        out.print(line, markup=False, highlight=False)


def _set_hold(case: str, reason: str | None, where: Path) -> RetentionView:
    """Put CASE (an id or unique prefix) on hold with ``reason``, or lift it (None)."""

    async def go(client: NodeApiClient) -> RetentionView:
        this = (await ncl.find_case(client, case)).summary.case_id
        return await client.set_hold(this, reason)

    return ncl.call(where, go)


@click.command("hold")
@click.argument("case")
@click.option("--reason", required=True, help="Why the case must be kept (≤ 500 characters).")
@no.data_options
@no.json_option
def hold(
    *, case: str, reason: str, data_dir: Path | None, config_path: Path | None, as_json: bool
) -> None:
    """Put CASE (an id or unique prefix) on legal hold: retention leaves it alone."""
    view = _set_hold(case, reason, ncl.data_dir_of(data_dir, config_path))
    if as_json:
        nr.emit_json(view)
    elif view.changed:
        click.echo(f"case {view.case_id} is on legal hold")
    else:
        click.echo(f"case {view.case_id} was already on legal hold (unchanged)")


@click.command("release")
@click.argument("case")
@no.data_options
@no.json_option
def release(*, case: str, data_dir: Path | None, config_path: Path | None, as_json: bool) -> None:
    """Lift the legal hold of CASE (an id or unique prefix)."""
    view = _set_hold(case, None, ncl.data_dir_of(data_dir, config_path))
    if as_json:
        nr.emit_json(view)
    elif view.changed:
        click.echo(f"legal hold of case {view.case_id} lifted")
    else:
        click.echo(f"case {view.case_id} was not on legal hold (unchanged)")


@click.command("retention")
@click.option("--dry-run", is_flag=True, help="Only list what a pass would remove now.")
@click.option("--limit", default=100, show_default=True, type=AsciiIntRange(0, 10_000),
              help="Cases listed (the counts cover all of them).")  # fmt: skip
@no.data_options
@no.json_option
def retention(
    *, dry_run: bool, limit: int, data_dir: Path | None, config_path: Path | None, as_json: bool
) -> None:
    """Apply the retention policy now ([retention] in node.toml), or with --dry-run show
    what it would remove. Cases on legal hold are never touched."""
    where = ncl.data_dir_of(data_dir, config_path)
    view: PassView = ncl.call(where, lambda c: c.retention_pass(dry_run=dry_run, limit=limit))
    if as_json:
        nr.emit_json(view)
        return
    if view.cutoff is None and view.metadata_cutoff is None and view.access_log_cutoff is None:
        click.echo(
            "retention removes nothing: [retention] closed_case_bodies_days,"
            " closed_case_metadata_years and access_log_days are 0"
        )
        return
    verb = "would remove" if view.dry_run else "removed"
    if view.cutoff is not None:
        click.echo(
            f"{verb} the bodies of {view.bodies} message(s) in {view.cases} case(s) closed"
            f" before {view.cutoff.isoformat()} (policy {view.policy}, {view.policy_days} days)"
        )
        for d in view.due:
            click.echo(f"  {d.case_id}  closed {d.closed.isoformat()}  {d.bodies} body(ies)")
        if len(view.due) < view.cases:
            click.echo(f"  … and {view.cases - len(view.due)} more (--limit)")
    if view.metadata_cutoff is not None:
        click.echo(
            f"{verb} {view.removed_cases} whole case(s) closed before"
            f" {view.metadata_cutoff.isoformat()} (policy closed_case_metadata,"
            f" {view.metadata_years} years), each leaving a signed case tombstone"
        )
        for c in view.removed_due:
            click.echo(f"  {c.case_id}  closed {c.closed.isoformat()}  {c.messages} message(s)")
        if len(view.removed_due) < view.removed_cases:
            click.echo(f"  … and {view.removed_cases - len(view.removed_due)} more (--limit)")
    if view.access_log_cutoff is not None:
        click.echo(
            f"{verb} the content of {view.log_entries} access-log entry(ies) made before"
            f" {view.access_log_cutoff.isoformat()} (policy access_log,"
            f" {view.access_log_days} days; their leaf hashes stay)"
        )
    if not view.dry_run and not view.wal_truncated:
        click.echo("warning: a reader kept the WAL busy; the next pass truncates it")


COMMANDS = (hold, release, retention)
