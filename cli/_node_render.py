"""What the operator commands print: tables, case timelines and the words in them.

Labels of fields, coded values, kinds and states come from the node's catalogs
(``node/i18n``, via :mod:`node.render`); the few column headings the catalogs do not
hold are below, in both languages. Free text is printed exactly as written. The
annotated request file is in :mod:`cli._node_template`.
"""

from __future__ import annotations

import os
from datetime import datetime, tzinfo
from typing import Any, Final

import msgspec
from rich.console import Console
from rich.table import Table
from rich.text import Text

from node.alerts import NO_TARGET
from node.render import Catalog, Row, format_time, load_catalog, render_body, until_text
from schemas.node_api import (
    CaseDetail,
    CaseSummary,
    Deadline,
    InboxEntry,
    NodeStatus,
    TimelineEntry,
)

# Headings the catalogs do not have (kept here until they move to node/i18n).
_WORDS: Final = {
    "en": {
        "case": "Case",
        "peer": "Other side",
        "role": "Our side",
        "requester": "requesting",
        "requested": "requested",
        "priority": "Priority",
        "next_deadline": "Next deadline",
        "due": "Due",
        "confirmed": "confirmed",
        "overdue": "OVERDUE",
        "anomalies": "Anomalies",
        "status": "Status",
        "log": "Audit log",
        "from": "From",
        "deadlines": "Deadlines",
        "timeline": "Timeline",
        "opened": "Opened",
        "last": "Last activity",
        "none": "none",
        "end_of_day": "end of day",
    },
    "fr": {
        "case": "Dossier",
        "peer": "Autre partie",
        "role": "Notre rôle",
        "requester": "requérant",
        "requested": "requis",
        "priority": "Priorité",
        "next_deadline": "Prochaine échéance",
        "due": "Échéance",
        "confirmed": "confirmée",
        "overdue": "DÉPASSÉE",
        "anomalies": "Anomalies",
        "status": "Statut",
        "log": "Journal d'audit",
        "from": "De",
        "deadlines": "Échéances",
        "timeline": "Chronologie",
        "opened": "Ouvert le",
        "last": "Dernière activité",
        "none": "aucune",
        "end_of_day": "fin de journée",
    },
}
_JSON = msgspec.json.Encoder()


def console() -> Console:
    """A console for stdout; wide when not a terminal, so ids are never folded."""
    return Console() if os.isatty(1) else Console(width=200, no_color=True)


def emit_json(value: Any) -> None:
    """Print ``value`` (a Struct or builtins) as one line of JSON, for scripts."""
    print(_JSON.encode(value).decode())


def _enum(cat: Catalog, enum_name: str, value: str) -> str:
    return cat.enums.get(enum_name, {}).get(value, value)


def _word(lang: str, key: str) -> str:
    return _WORDS[lang].get(key, key)


def status_word(status: str, direction: str, lang: str) -> str:
    """A message's status in words (``delivered`` -> "remis"), never the bare code."""
    return (
        load_catalog(lang).text(f"status_{direction}_{status}").replace(f"status_{direction}_", "")
    )


def receipt_word(status: str, lang: str) -> str:
    """A delivery receipt's status in words: what it proves (delivered and verified)."""
    return _enum(load_catalog(lang), "ReceiptStatus", status)


def body_lines(rows: list[Row]) -> list[tuple[str, str]]:
    """Rows as (indented label, value) pairs; a sub-object's heading has no colon when it
    has no value of its own, so no label is left with nothing after it."""
    out = []
    for row in rows:
        pad = "  " * row.depth
        out.append((f"{pad}{row.label}: " if row.value else f"{pad}{row.label}", row.value))
    return out


# -- status, inbox, cases ------------------------------------------------------------


def print_status(status: NodeStatus) -> None:
    """Print the node's status (a table on a terminal, else ``key: value`` lines), then a
    warning on stderr about its setup (no alert target)."""
    from cli._network import emit

    version = status.directory_version
    witness = status.witness_size
    rows: dict[str, Any] = {
        "member": status.member,
        "directory": "none yet" if version is None else f"version {version}",
        "relays": ", ".join(status.relays) or "-",
        "inbox": status.inbox_mode,
        "outbox pending": status.outbox_pending,
        "messages in / out": f"{status.messages_in} / {status.messages_out}",
        "last cosigned checkpoint": "-" if witness is None else f"size {witness}",
    }
    if status.alert_targets is not None:
        rows["alert targets"] = status.alert_targets
    emit(rows, as_json=False)
    if status.alert_targets == 0:
        Console(stderr=True).print(
            f"Warning: {NO_TARGET}", style="yellow", markup=False, highlight=False
        )


def _table(**options: Any) -> Table:
    # Piped: no box-drawing characters, so the text greps and pastes cleanly.
    return Table(**options) if os.isatty(1) else Table(box=None, **options)


def print_inbox(messages: tuple[InboxEntry, ...], lang: str, tz: tzinfo | None = None) -> None:
    """Print incoming messages, newest last."""
    cat = load_catalog(lang)
    table = _table()
    for col in ("#", cat.text("at"), _word(lang, "from"), _word(lang, "case"), cat.text("kind")):
        table.add_column(col)
    table.add_column(_word(lang, "status"))
    for m in messages:
        table.add_row(
            str(m.seq),
            format_time(m.at, tz),
            m.peer,
            m.case_id,
            cat.kind(m.kind),
            status_word(m.status, m.direction, lang),
        )
    console().print(table if messages else "inbox is empty")


def _due(d: Deadline, lang: str, tz: tzinfo | None) -> str:
    if d.day is not None:  # a calendar date: the date itself, not the next day at 00:00
        return f"{d.day.isoformat()} ({_word(lang, 'end_of_day')})"
    if d.kind == "preservation_expiry" and d.confirmed:
        return until_text(d.due, lang, tz)
    return format_time(d.due, tz)


def _deadline(summary: CaseSummary, lang: str, tz: tzinfo | None) -> str:
    d = summary.next_deadline
    if d is None:
        return "-"
    cat = load_catalog(lang)
    flag = f" {_word(lang, 'overdue')}" if d.overdue else ""
    return f"{_enum(cat, 'DeadlineKind', d.kind)}: {_due(d, lang, tz)}{flag}"


def print_cases(cases: tuple[CaseSummary, ...], lang: str, tz: tzinfo | None = None) -> None:
    """Print one line per case, most recent activity first."""
    cat = load_catalog(lang)
    table = _table()
    for key in ("case", "peer", "role"):
        table.add_column(_word(lang, key))
    table.add_column(cat.text("state"))
    for key in ("priority", "next_deadline", "anomalies"):
        table.add_column(_word(lang, key))
    for c in cases:
        table.add_row(
            c.case_id,
            c.peer,
            "-" if c.role is None else _word(lang, c.role),
            _enum(cat, "CaseState", c.effective_state),
            _enum(cat, "Priority", c.priority),
            _deadline(c, lang, tz),
            str(c.anomalies) if c.anomalies else "",
        )
    console().print(table if cases else "no cases yet")


# -- one case ------------------------------------------------------------------------


def _entry_title(entry: TimelineEntry, lang: str, tz: tzinfo | None) -> Text:
    cat = load_catalog(lang)
    arrow = "→" if entry.direction == "out" else "←"
    direction = cat.text("outgoing" if entry.direction == "out" else "incoming")
    text = Text(f"{format_time(entry.at, tz)}  {arrow} {direction}: ", style="bold")
    text.append(cat.kind(entry.kind), style="bold cyan")
    text.append(f"  [{status_word(entry.status, entry.direction, lang)}]")
    if entry.leaf_index is not None:
        text.append(f"  {_word(lang, 'log')} #{entry.leaf_index}")
    return text


def _receipt_line(entry: TimelineEntry, lang: str, tz: tzinfo | None) -> str | None:
    r = entry.receipt
    if r is None:
        return None
    cat = load_catalog(lang)
    line = f"{cat.text('receipt_status')}: {receipt_word(r.status, lang)}"
    line += f" ({format_time(r.received_at, tz)})"
    if r.reason:  # in words, then the stable code (what the peer's logs and docs name)
        line += f" - {_enum(cat, 'ErrorCode', r.reason)} ({r.reason})"
    if r.field:
        # Which body field the peer refused (E13, E14): the officer fixes that field.
        line += f" - {cat.text('receipt_field')} {r.field}"
    return line


def print_case(
    detail: CaseDetail,
    lang: str,
    *,
    brief: bool,
    out: Console | None = None,
    tz: tzinfo | None = None,
) -> None:
    """Print a case: its summary, its deadlines, then every message with its receipt.

    Args:
        detail: the case as the node's API returns it.
        lang: ``en`` or ``fr``.
        brief: omit the fields of each message.
        out: where to print (default: standard output).
        tz: the node's zone, in which every instant is shown (with its offset).
    """
    out = out or console()
    cat = load_catalog(lang)
    s = detail.summary
    head = _table(title=f"{_word(lang, 'case')} {s.case_id}", show_header=False)
    head.add_row(_word(lang, "peer"), s.peer)
    head.add_row(_word(lang, "role"), "-" if s.role is None else _word(lang, s.role))
    head.add_row(cat.text("state"), _enum(cat, "CaseState", s.effective_state))
    head.add_row(_word(lang, "priority"), _enum(cat, "Priority", s.priority))
    head.add_row(_word(lang, "opened"), format_time(s.opened_at, tz))
    head.add_row(_word(lang, "last"), format_time(s.last_activity, tz))
    out.print(head)
    if detail.deadlines:
        table = _table(title=_word(lang, "deadlines"))
        for col in ("", _word(lang, "due"), _word(lang, "status")):
            table.add_column(col)
        for d in detail.deadlines:
            flags = [_word(lang, "confirmed")] if d.confirmed else []
            flags += [_word(lang, "overdue")] if d.overdue else []
            table.add_row(_enum(cat, "DeadlineKind", d.kind), _due(d, lang, tz), ", ".join(flags))
        out.print(table)
    if out.is_terminal:
        out.rule(_word(lang, "timeline"))
    else:  # piped: no box-drawing characters (OPERATIONS.md, "Output conventions")
        out.print(_word(lang, "timeline"), markup=False, highlight=False)
    for entry in detail.timeline:
        out.print(_entry_title(entry, lang, tz))
        receipt = _receipt_line(entry, lang, tz)
        if receipt:
            out.print(f"    {receipt}", style="green", markup=False)
        if entry.body is not None and not brief:
            for label, value in body_lines(render_body(entry.body, lang, tz)[1:]):
                out.print(f"    {label}", end="", style="dim", markup=False)
                out.print(value, markup=False, highlight=False, soft_wrap=True)
    for a in detail.anomalies:
        label = _enum(cat, "AnomalyCode", a.code)
        out.print(f"{cat.text('anomaly')}: {label} ({a.kind}, {a.msg_id})", style="red")


def now_local() -> datetime:
    """The current time with this computer's UTC offset, to the second."""
    return datetime.now().astimezone().replace(microsecond=0)
