"""Procedures with a clock, as data (issue 14 §2 "Procedures as data"; PROTOCOL.md §16).

``node/data/procedures.json`` beside ``preservation_periods.json`` describes each
procedure: its response deadline, the written confirmation that must follow an oral
request, who may object and by when, a period (a preservation's length) and the
escalation ladder. Every clock carries its own ``source`` (instrument, article,
paragraph, URL) and a ``checked`` flag: true only when that paragraph's wording was read.
A procedure marked checked with an unchecked clock is refused, so the flag never claims
more than its parts. The file is decoded strictly with msgspec at start-up; a bad file
stops the node with the file name and the JSON path of the problem.

Deadlines are instants: ``start`` (UTC) plus a fixed number of hours or days, so a
deadline never moves with a zone's daylight-saving rules; :func:`in_zone` only shows it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from importlib import resources
from pathlib import Path
from typing import Annotated, Final

import msgspec

from protocol.codec import decode_as, shape_text
from protocol.errors import ConfigError, MalformedError
from serving.files import read_file

PACKAGED_FILE: Final = ("data", "procedures.json")
_MAX_BYTES: Final = 1_000_000
_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
_Id = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{1,63}\Z")]
_Minutes = Annotated[float, msgspec.Meta(gt=0, le=24 * 60)]


class Source(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Where a clock comes from: instrument, article, paragraph and, if known, a URL."""

    instrument: _Text
    article: _Text
    paragraph: _Text
    url: Annotated[str, msgspec.Meta(max_length=500)] = ""

    def cite(self) -> str:
        """``"Regulation (EU) 2023/1543 Art. 10(4)"`` (no article: the instrument alone)."""
        if self.article == "none":
            return self.instrument
        return f"{self.instrument} Art. {self.article}({self.paragraph})"


class Clock(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One period: exactly one of ``hours`` and ``days``, counted from ``from_``."""

    hours: Annotated[int, msgspec.Meta(ge=1, le=24 * 366)] | None = None
    days: Annotated[int, msgspec.Meta(ge=1, le=3660)] | None = None
    from_: Annotated[str, msgspec.Meta(pattern=r"^[a-z_]{1,32}\Z")] = msgspec.field(name="from")
    label: _Text
    source: Source
    checked: bool
    #: what was read to check it (or why it is not checked)
    read: _Text

    @property
    def length(self) -> timedelta:
        """The period as a fixed duration (days are 24-hour days, counted in UTC)."""
        return (
            timedelta(hours=self.hours)
            if self.hours is not None
            else timedelta(days=self.days or 0)
        )

    def due(self, start: datetime) -> datetime:
        """The instant the period ends, ``start`` (aware) plus its length, in UTC.

        Raises:
            ValueError: ``start`` is naive.
        """
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError("start: a time zone is required")
        # in UTC first: aware arithmetic in a zone adds wall-clock time, which a DST
        # change would stretch or shrink by an hour
        return start.astimezone(UTC) + self.length


class Objection(Clock, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Who may object to the request or to the use of the data, and by when."""

    who: _Text


class Procedure(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One procedure with its clocks (any may be null: the instrument fixes none)."""

    name: _Text
    emergency: bool
    #: body kinds that follow this procedure (the first procedure listing a kind wins)
    kinds: Annotated[tuple[_Id, ...], msgspec.Meta(max_length=8)]
    response: Clock | None
    confirmation: Clock | None
    objection: Objection | None
    period: Clock | None
    extension_days: Annotated[int, msgspec.Meta(ge=1, le=3660)] | None = None
    escalation_minutes: Annotated[tuple[_Minutes, ...], msgspec.Meta(min_length=2, max_length=2)]
    source: Source
    checked: bool
    note: Annotated[str, msgspec.Meta(max_length=1000)] = ""

    def clocks(self) -> list[tuple[str, Clock]]:
        """``(name, clock)`` of every clock this procedure has, in a fixed order."""
        named = [
            ("response", self.response),
            ("confirmation", self.confirmation),
            ("objection", self.objection),
            ("period", self.period),
        ]
        return [(n, c) for n, c in named if c is not None]


class ProcedureTable(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The whole file."""

    v: Annotated[int, msgspec.Meta(ge=1, le=1)]
    note: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    procedures: Annotated[dict[_Id, Procedure], msgspec.Meta(min_length=1, max_length=200)]

    def get(self, procedure_id: str) -> Procedure:
        """The procedure ``procedure_id``.

        Raises:
            ConfigError: no such procedure (the message lists the known ones).
        """
        found = self.procedures.get(procedure_id)
        if found is None:
            known = ", ".join(sorted(self.procedures))
            raise ConfigError(f"unknown procedure {procedure_id!r} (known: {known})")
        return found

    def for_kind(self, kind: str | None) -> str | None:
        """The id of the procedure a body kind follows, or None."""
        for pid, p in self.procedures.items():
            if kind is not None and kind in p.kinds:
                return pid
        return None


class _Entries(msgspec.Struct, frozen=True):
    """The file's procedures as raw JSON, to name the entry that does not decode."""

    procedures: dict[str, msgspec.Raw]


class DueClock(msgspec.Struct, frozen=True, kw_only=True):
    """A clock applied to a start instant: what the case timeline shows."""

    name: str
    label: str
    due: datetime
    source: str
    url: str
    checked: bool
    who: str | None = None


def due_clocks(procedure: Procedure, start: datetime) -> list[DueClock]:
    """Every clock of ``procedure`` started at ``start`` (aware), earliest first.

    Raises:
        ValueError: ``start`` is naive.
    """
    out = [
        DueClock(
            name=name,
            label=clock.label,
            due=clock.due(start),
            source=clock.source.cite(),
            url=clock.source.url,
            checked=clock.checked,
            who=clock.who if isinstance(clock, Objection) else None,
        )
        for name, clock in procedure.clocks()
    ]
    return sorted(out, key=lambda c: (c.due, c.name))


def in_zone(instant: datetime, zone: tzinfo | None) -> str:
    """``instant`` in ``zone`` (UTC when None) as ``YYYY-MM-DD HH:MM ±hh:mm``."""
    shown = instant.astimezone(zone or UTC)
    return shown.isoformat(sep=" ", timespec="minutes")


def _check(table: ProcedureTable, origin: str) -> ProcedureTable:
    for pid, p in table.procedures.items():
        for name, clock in p.clocks():
            if (clock.hours is None) == (clock.days is None):
                raise ConfigError(f"{origin}: $.procedures.{pid}.{name}: give hours or days")
            if p.checked and not clock.checked:
                raise ConfigError(
                    f"{origin}: $.procedures.{pid}.checked: true, but its {name} clock is"
                    " not checked"
                )
    return table


def decode_procedures(data: bytes, *, origin: str = "procedures.json") -> ProcedureTable:
    """Decode and validate a procedures file.

    Raises:
        ConfigError: too large, not JSON, a repeated key, not the table's shape, a clock
            with both or neither of hours and days, or a procedure marked checked with an
            unchecked clock; the message names ``origin`` and the JSON path.
    """
    if len(data) > _MAX_BYTES:
        raise ConfigError(f"{origin}: larger than {_MAX_BYTES} bytes")
    try:
        table = decode_as(ProcedureTable, data, "procedures", limit=_MAX_BYTES)
    except MalformedError as exc:
        if exc.problem:
            raise ConfigError(f"{origin}: {_entry_problem(data) or shape_text(exc)}") from exc
        raise ConfigError(f"{origin}: {exc.message} ({exc.detail})") from exc
    return _check(table, origin)


def _entry_problem(data: bytes) -> str | None:
    """The first entry that does not decode, named by its id (msgspec writes a dict key
    as ``[...]``): ``... - at `$.procedures.eu_epoc.response` ``."""
    try:  # the JSON itself was read once already; only its shape was wrong
        top = decode_as(_Entries, data, "procedures", limit=_MAX_BYTES)
    except MalformedError:
        return None
    for pid, raw in top.procedures.items():
        try:
            decode_as(Procedure, bytes(raw), "procedure", limit=_MAX_BYTES)
        except MalformedError as exc:
            text = shape_text(exc)
            if "`$" not in text:
                return f"{text} - at `$.procedures.{pid}`"
            return text.replace("`$", f"`$.procedures.{pid}", 1)
    return None


def load_procedures(path: Path | None = None) -> ProcedureTable:
    """Load ``path``, or the file shipped in the package when None.

    Raises:
        ConfigError: unreadable or invalid (the message names the file).
    """
    if path is None:
        origin = "node/" + "/".join(PACKAGED_FILE)
        try:
            data = resources.files("node").joinpath(*PACKAGED_FILE).read_bytes()
        except OSError as exc:
            raise ConfigError(f"{origin}: cannot read the packaged table ({exc})") from exc
        return decode_procedures(data, origin=origin)
    data = read_file(path, _MAX_BYTES)
    return decode_procedures(data, origin=str(path))
