"""Emergencies taken by phone and the escalation ladder (PROTOCOL.md §16).

- :class:`Ladder`: the delays before level 2 (supervisor) and level 3 (head of unit) of
  one procedure: ``[escalation.procedures]`` in node.toml, else ``[escalation]
  after_minutes``, else the procedure's ``escalation_minutes`` in procedures.json, else
  30 and 30 minutes.
- :func:`record_clocks`: an oral record's clocks, started at the call.
- :func:`candidates`: written cases that may follow an oral record (same member,
  received within the window after the call, not linked yet): a suggestion only; the
  officer chooses.
- :func:`reconcile`: what the written request says differently from the oral record.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final

from node.cases.procedures import DueClock, ProcedureTable, due_clocks, in_zone
from node.officers import OralRecord
from protocol.errors import ConfigError
from schemas.node_api import CaseDetail, CaseSummary, TimelineEntry

DEFAULT_STEP: Final = timedelta(minutes=30)
#: written requests received this long after the call are suggested for linking
CANDIDATE_WINDOW: Final = timedelta(days=3)
OPENING_KINDS: Final = frozenset(
    {
        "preservation_request",
        "emergency_disclosure_request",
        "assistance_request",
        "onward_transfer_request",
    }
)
Steps = tuple[timedelta, timedelta]


@dataclass(frozen=True)
class Ladder:
    """The escalation delays of every procedure.

    Attributes:
        table: the procedures file.
        after: ``[escalation] after_minutes`` (or the deprecated keys), when given.
        overrides: ``[escalation.procedures]``, by procedure id.
    """

    table: ProcedureTable
    after: Steps | None = None
    overrides: Mapping[str, Steps] = field(default_factory=dict)

    def steps(self, procedure: str | None) -> Steps:
        """The delays before level 2 and before level 3 for ``procedure``."""
        if procedure is not None and procedure in self.overrides:
            return self.overrides[procedure]
        if self.after is not None:
            return self.after
        found = self.table.procedures.get(procedure or "")
        if found is not None:
            m2, m3 = found.escalation_minutes
            return timedelta(minutes=m2), timedelta(minutes=m3)
        return DEFAULT_STEP, DEFAULT_STEP

    def steps_for_kind(self, kind: str | None) -> Steps:
        """The delays for a case whose request is of body kind ``kind``."""
        return self.steps(self.table.for_kind(kind))


def build_ladder(
    table: ProcedureTable,
    after_minutes: Sequence[float],
    overrides: Mapping[str, Sequence[float]],
) -> Ladder:
    """The ladder from node.toml's ``[escalation]`` values.

    Raises:
        ConfigError: ``[escalation.procedures]`` names a procedure the file does not have.
    """
    for pid in overrides:
        if pid not in table.procedures:
            known = ", ".join(sorted(table.procedures))
            raise ConfigError(f"escalation.procedures.{pid}: no such procedure (known: {known})")

    def steps(values: Sequence[float]) -> Steps:
        return timedelta(minutes=values[0]), timedelta(minutes=values[1])

    return Ladder(
        table=table,
        after=steps(after_minutes) if len(after_minutes) == 2 else None,
        overrides={pid: steps(v) for pid, v in overrides.items()},
    )


def level_at(start: datetime, steps: Steps, level: int) -> datetime:
    """When ``level`` (1, 2 or 3) is due for a case whose clock started at ``start``."""
    return start.astimezone(UTC) + sum(steps[: max(0, level - 1)], timedelta(0))


def reached_levels(start: datetime, steps: Steps, now: datetime) -> list[int]:
    """The levels due at ``now`` (ascending; none before ``start``)."""
    return [n for n in (1, 2, 3) if start <= now and level_at(start, steps, n) <= now]


def record_clocks(record: OralRecord, table: ProcedureTable) -> list[DueClock]:
    """The clocks of an oral record, started at the call (none for an unknown procedure)."""
    found = table.procedures.get(record.procedure)
    return [] if found is None else due_clocks(found, record.called_at)


def confirmation_due(record: OralRecord, table: ProcedureTable) -> datetime | None:
    """When the written request must have arrived, if the procedure sets a period."""
    found = table.procedures.get(record.procedure)
    if found is None or found.confirmation is None:
        return None
    return found.confirmation.due(record.called_at)


def candidates_since(record: OralRecord) -> datetime:
    """The earliest opening :func:`candidates` takes (its cases' last activity is later):
    a reader of the case list most recent first stops at the first case older than it."""
    return record.called_at - timedelta(minutes=10)


def candidates(
    record: OralRecord, cases: Iterable[CaseSummary], linked: Iterable[str]
) -> list[CaseSummary]:
    """Cases from the record's member opened from the call to ``CANDIDATE_WINDOW`` after
    it (a few minutes before too: the two clocks differ), not linked yet; nearest first."""
    taken = set(linked)
    low = candidates_since(record)
    high = record.called_at + CANDIDATE_WINDOW
    found = [
        c
        for c in cases
        if c.peer == record.member and low <= c.opened_at <= high and c.case_id not in taken
    ]
    return sorted(found, key=lambda c: abs(c.opened_at - record.called_at))


@dataclass(frozen=True)
class Difference:
    """One point the oral record and the written request compare on.

    ``same`` False is a difference the officer should look at; the times are shown
    whatever they say (how long the written request took).
    """

    name: str
    oral: str
    written: str
    same: bool


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def written_request(detail: CaseDetail) -> TimelineEntry | None:
    """The first request of the case that has a body (the written request)."""
    for entry in detail.timeline:
        if entry.kind in OPENING_KINDS and entry.body is not None:
            return entry
    return None


def reconcile(record: OralRecord, detail: CaseDetail, table: ProcedureTable) -> list[Difference]:
    """Compare the oral record with the written request of ``detail``.

    Points: the member, the procedure (from the body's kind), the caller (the
    requesting officer's name), what was asked (the data description and its relation
    to the offence), and the times (call, written request, confirmation deadline).
    """
    entry = written_request(detail)
    out = [
        Difference(
            "member", record.member, detail.summary.peer, record.member == detail.summary.peer
        )
    ]
    if entry is None:
        return [*out, Difference("request", record.asked, "", False)]
    body = entry.body
    pid = table.for_kind(entry.kind) or entry.kind
    out.append(Difference("procedure", record.procedure, pid, pid == record.procedure))
    requesting = getattr(body, "requesting", None)
    name = getattr(getattr(requesting, "officer", None), "name", "") or ""
    out.append(
        Difference(
            "caller", record.caller, name, _fold(name) in _fold(record.caller) if name else False
        )
    )
    data = getattr(body, "data", None)
    written = " / ".join(
        t
        for t in (getattr(data, "description", None), getattr(data, "relation_to_offence", None))
        if t
    )
    out.append(Difference("asked", record.asked, written, _fold(written) == _fold(record.asked)))
    due = confirmation_due(record, table)
    late = due is not None and entry.at > due
    out.append(Difference("time", record.called_at.isoformat(), entry.at.isoformat(), not late))
    return out


def clock_rows(
    clocks: Iterable[DueClock], node_zone: tzinfo | None, peer_zone: tzinfo | None
) -> list[dict[str, object]]:
    """Each clock as the CLI and the console show it: due in UTC, in the node's zone and
    in the peer's zone (None: unknown), with its legal source and whether it is checked."""
    return [
        {
            "name": c.name,
            "label": c.label,
            "due_utc": in_zone(c.due, None),
            "due_node": in_zone(c.due, node_zone) if node_zone is not None else None,
            "due_peer": in_zone(c.due, peer_zone) if peer_zone is not None else None,
            "who": c.who,
            "source": c.source,
            "url": c.url,
            "checked": c.checked,
        }
        for c in clocks
    ]
