"""What the emergency commands share: the desk, the procedures, zones, and printing a
record with its clocks, escalations and differences (PROTOCOL.md §16).

``relay247 node emergency`` and ``relay247 node escalation`` work on node.db directly,
like ``node roster``; recording, linking and acknowledging append an access-log entry,
so they need the keystore passphrase. Reading needs none.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli._officers_common import node_config, officer_db
from cli._passphrase import ENV_VAR, CliError, fail_from
from protocol.errors import ConfigError

if TYPE_CHECKING:
    from node.cases import Difference, ProcedureTable
    from node.officers import Ack, EmergencyDesk, EscalationRecord, OfficerDb, OralRecord

UNCHECKED = "[UNCHECKED: not confirmed from a primary text]"


def procedures_of(data_dir: Path | None, config_path: Path | None) -> ProcedureTable:
    """The node's procedures file ([escalation] procedures_file, else the packaged one).

    Raises:
        CliUsageError: the file does not load (exit 2).
    """
    from node.cases import load_procedures

    config = node_config(data_dir, config_path)
    name = config.escalation.procedures_file
    try:
        return load_procedures(config.path(name) if name else None)
    except ConfigError as exc:
        raise fail_from(exc) from None


def desk_of(db: OfficerDb) -> EmergencyDesk:
    from node._wallclock import system_clock
    from node.officers import EmergencyDesk

    return EmergencyDesk(db, system_clock, db.signer)


def peer_zone(db: OfficerDb, member: str) -> tzinfo | None:
    """``member``'s zone from the newest directory the node verified and kept (node.db)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from protocol.codec import decode_as
    from protocol.errors import MalformedError
    from schemas.directory import Directory, SignedDirectory

    try:
        row = db.connection.execute(
            "SELECT signed FROM directories ORDER BY version DESC LIMIT 1"
        ).fetchone()
    except sqlite3.Error:
        return None
    if row is None:
        return None
    try:
        raw = bytes(row[0])
        signed = decode_as(SignedDirectory, raw, "directory", limit=len(raw))
        inner = decode_as(Directory, signed.directory, "directory", limit=len(signed.directory))
        entry = next((m for m in inner.members if m.id == member), None)
        return None if entry is None else ZoneInfo(entry.time_zone)
    except (MalformedError, ZoneInfoNotFoundError, ValueError):
        return None


def record_dict(
    rec: OralRecord,
    table: ProcedureTable,
    *,
    node_tz: tzinfo | None,
    peer_tz: tzinfo | None,
    escalations: list[EscalationRecord],
    acks: list[Ack],
) -> dict[str, Any]:
    from node.cases import clock_rows, record_clocks

    procedure = table.procedures.get(rec.procedure)
    return {
        "record": rec.record_id,
        "from": rec.member,
        "caller": rec.caller,
        "at": rec.called_at.isoformat(),
        "asked": rec.asked,
        "procedure": rec.procedure,
        "procedure_name": procedure.name if procedure else None,
        "procedure_checked": procedure.checked if procedure else False,
        "recorded_by": rec.recorded_by,
        "linked_case": rec.case_id,
        "linked_by": rec.linked_by,
        "linked_at": rec.linked_at.isoformat() if rec.linked_at else None,
        "clocks": clock_rows(record_clocks(rec, table), node_tz, peer_tz),
        "escalations": ladder_rows(escalations, acks),
    }


def ladder_rows(escalations: list[EscalationRecord], acks: list[Ack]) -> list[dict[str, Any]]:
    """Each escalation level sent, oldest first, with who acknowledged it."""
    by_level = {a.level: a for a in acks}
    rows = []
    for e in sorted(escalations, key=lambda e: e.level):
        ack = by_level.get(e.level)
        rows.append(
            {
                "level": e.level,
                "at": e.at.isoformat(),
                "recipients": list(e.recipients),
                "acknowledged_by": ack.login if ack else None,
                "acknowledged_at": ack.at.isoformat() if ack else None,
            }
        )
    return rows


def print_clocks(clocks: list[dict[str, Any]]) -> None:
    for c in clocks:
        zones = [f"{c['due_utc']} (UTC)"]
        if c["due_node"]:
            zones.append(f"{c['due_node']} (node)")
        if c["due_peer"]:
            zones.append(f"{c['due_peer']} (peer)")
        who = f" [{c['who']}]" if c["who"] else ""
        mark = "" if c["checked"] else f" {UNCHECKED}"
        click.echo(f"  {c['name']}: {c['label']}{who}: {'; '.join(zones)}")
        click.echo(f"    source: {c['source']}{mark}")


def print_ladder(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        who = ", ".join(r["recipients"]) or "nobody"
        line = f"  escalated to level {r['level']} at {r['at']} ({who})"
        if r["acknowledged_by"]:
            line += f", acknowledged by {r['acknowledged_by']} at {r['acknowledged_at']}"
        click.echo(line)


def _p(value: object) -> str:
    """Free text for the terminal: control and bidi-override characters as ``\\uXXXX``."""
    from node.render import printable

    return printable(str(value))


def print_record(d: dict[str, Any]) -> None:
    mark = "" if d["procedure_checked"] else f" {UNCHECKED}"
    click.echo(f"oral emergency {d['record']} from {d['from']} at {d['at']}")
    click.echo(f"  caller: {_p(d['caller'])}")
    click.echo(f"  asked: {_p(d['asked'])}")
    click.echo(f"  procedure: {d['procedure']} ({d['procedure_name']}){mark}")
    if d["linked_case"]:
        click.echo(f"  written request: case {d['linked_case']} (linked by {d['linked_by']})")
    else:
        click.echo("  written request: not linked yet")
    print_clocks(d["clocks"])
    print_ladder(d["escalations"])


def difference_rows(diffs: list[Difference]) -> list[dict[str, Any]]:
    return [{"name": x.name, "oral": x.oral, "written": x.written, "same": x.same} for x in diffs]


def print_differences(rows: list[dict[str, Any]]) -> None:
    click.echo("Oral record and written request")
    for r in rows:
        flag = "same" if r["same"] else "DIFFERS"
        click.echo(f"  {r['name']} [{flag}]")
        click.echo(f"    oral:    {_p(r['oral']) or '-'}")
        click.echo(f"    written: {_p(r['written']) or '-'}")


_PEER_ZONE: dict[str, str] = {
    "en": "Deadlines in the peer's zone",
    "fr": "Échéances dans le fuseau du correspondant",
}
_ESCALATIONS: dict[str, str] = {"en": "Escalations", "fr": "Escalades"}


def print_case_section(
    data_dir: Path | None, config_path: Path | None, detail: Any, lang: str = "en"
) -> None:
    """``node show``'s emergency part: the escalations of the case (with who took them)
    and, when the case is the written follow-up of an oral record, the record and the
    differences. Nothing when node.db has none (or cannot be read)."""
    from node.cases import reconcile
    from node.officers import Roster
    from protocol.errors import StorageError

    case_id = detail.summary.case_id
    try:
        # the records' caller and asked are sealed (PROTOCOL.md §18): opened when the
        # passphrase is in the environment; else the part is left out (no prompt here)
        unlock = bool(os.environ.get(ENV_VAR))
        with officer_db(data_dir, config_path, None, write=False, sealed=unlock) as db:
            desk = desk_of(db)
            rec = desk.for_case(case_id)
            peer = peer_zone(db, detail.summary.peer)
            rows = ladder_rows(
                Roster(db, desk_clock(), None).escalations(case_id=case_id), desk.acks(case_id)
            )
    except (StorageError, sqlite3.Error, CliError):  # node.db unreadable: the case alone
        return
    if peer is not None and detail.deadlines:
        from node.cases import in_zone
        from node.render import load_catalog

        kinds = load_catalog(lang).enums["DeadlineKind"]
        click.echo(f"{_PEER_ZONE.get(lang, _PEER_ZONE['en'])} ({peer})")
        for d in detail.deadlines:
            click.echo(f"  {kinds.get(d.kind, d.kind)} · {in_zone(d.due, peer)} · {d.source}")
    if rows:
        click.echo(_ESCALATIONS.get(lang, _ESCALATIONS["en"]))
        print_ladder(rows)
    if rec is None:
        return
    table = procedures_of(data_dir, config_path)
    click.echo(f"written follow-up of oral emergency {rec.record_id} ({rec.procedure})")
    print_differences(difference_rows(reconcile(rec, detail, table)))


def desk_clock() -> Any:
    from node._wallclock import system_clock

    return system_clock
