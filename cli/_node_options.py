"""Options shared by the operator commands, and how they turn into body fields.

Dates typed by an officer: a calendar date ``2026-08-10`` for a "until" instant means
the end of that day (23:59:59) in the node's own time zone (the ``time_zone`` of its
member entry; this computer's when unknown): the officer answering a request is the
requested party, so "preserved until 2026-08-10" is the end of that day where the data
is kept. Instants may also be given in full with their offset
(``2026-08-10T18:00:00+02:00``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, tzinfo
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from cli._passphrase import CliUsageError
from node.render import LANGUAGES

F = TypeVar("F", bound=Callable[..., Any])

CONFIG: Final = "node.toml"  # a node's config file, in its data directory

#: Reply kinds -> {option: field} for the options that map one to one.
SIMPLE_FIELDS: Final[dict[str, dict[str, str]]] = {
    "taken_in_charge": {"expected_by": "expected_answer_by", "note": "note"},
    "preserved": {
        "preserved_at": "preserved_at",
        "until": "preserved_until",
        "scope": "scope",
        "note": "scope_note",
        "custodian_ref": "custodian_ref",
        "national_basis": "national_basis",
        "categories": "categories",
    },
    "preservation_warning": {
        "reason": "reasons",
        "explanation": "explanation",
        "decision_by": "decision_needed_by",
    },
    "refusal": {
        "ground": "ground",
        "explanation": "explanation",
        "legal_basis": "legal_basis",
        "alternatives": "alternatives",
    },
    "impossible_to_execute": {
        "reason": "reason",
        "explanation": "explanation",
        "redirect_country": "redirect_country",
    },
    "traffic_data_disclosure": {"text": "traffic_data"},
    "assistance_answer": {"outcome": "outcome", "text": "answer"},
    "emergency_disclosure_answer": {"text": "data_disclosed", "explanation": "explanation"},
    "onward_transfer_answer": {"explanation": "explanation"},
}
_OFFICER: Final = ("officer_name", "officer_email", "officer_phone")


def _option_name(key: str) -> str:
    return "--" + key.replace("_", "-")


def instant(value: str, option: str, tz: tzinfo | None = None) -> str:
    """Parse an instant option: a full RFC 3339 time with offset, or a date (the end of
    that day in zone ``tz``, default this computer's).

    Returns:
        The instant in RFC 3339 form, ready for a body.

    Raises:
        CliUsageError: neither form, or a time without offset.
    """
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            if tz is None:
                tz = datetime.now().astimezone().tzinfo
            # with a ZoneInfo, the offset in force on that day (DST), not today's
            end = datetime.combine(day, time(23, 59, 59), tzinfo=tz)
            return end.isoformat()
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CliUsageError(f"{option}: {value!r} is not a date or an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise CliUsageError(f"{option}: {value!r} needs its UTC offset, e.g. +02:00")
    return moment.isoformat()


def day(value: str, option: str) -> str:
    """Parse a calendar-date option (``YYYY-MM-DD``).

    Raises:
        CliUsageError: not a date.
    """
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise CliUsageError(f"{option}: {value!r} is not a date (YYYY-MM-DD)") from None


def reply_fields(
    kind: str, opts: dict[str, Any], request: Any, tz: tzinfo | None = None
) -> dict[str, Any]:
    """Map the ``reply`` options given to the fields of a body of ``kind``.

    Args:
        kind: the body kind being built.
        opts: option name -> value, only the options the officer gave.
        request: the request body being answered (for defaults), or None.
        tz: the node's zone, for dates typed without a time.

    Returns:
        Field -> JSON-ready value.

    Raises:
        CliUsageError: an option that does not apply to this kind, or a bad value.
    """
    simple = SIMPLE_FIELDS.get(kind, {})
    fields: dict[str, Any] = {}
    for key, value in opts.items():
        if key in _OFFICER and kind == "taken_in_charge":
            continue
        if key not in simple:
            raise CliUsageError(f"{_option_name(key)} does not apply to a {kind} reply")
        fields[simple[key]] = _convert(kind, key, value, tz)
    if kind == "taken_in_charge" and any(k in opts for k in _OFFICER):
        officer = {"name": opts.get("officer_name")}
        officer.update(email=opts.get("officer_email"), phone=opts.get("officer_phone"))
        fields["officer"] = {k: v for k, v in officer.items() if v is not None}
    if kind == "preserved":
        now = datetime.now(tz) if tz is not None else datetime.now().astimezone()
        fields.setdefault("preserved_at", now.isoformat())
        categories = getattr(getattr(request, "data", None), "categories", None)
        if categories:
            fields.setdefault("categories", [str(c) for c in categories])
    return fields


def _convert(kind: str, key: str, value: Any, tz: tzinfo | None) -> Any:
    option = _option_name(key)
    if key in ("until", "preserved_at", "expected_by", "decision_by"):
        return instant(value, option, tz)
    if key == "categories":
        return [c.strip() for c in value.split(",") if c.strip()]
    if key == "reason":
        if kind == "preservation_warning":
            return list(value)
        if len(value) != 1:
            raise CliUsageError(f"--reason: a {kind} has exactly one reason")
        return value[0]
    return value


def data_options(func: F) -> F:
    """Add ``--data DIR`` / ``--config FILE`` (which node) to a command."""
    func = click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The node's node.toml (instead of --data).",
    )(func)
    return click.option(
        "--data",
        "data_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        envvar="RELAY247_NODE_DATA",
        help="The node's data directory (default: $RELAY247_NODE_DATA, else .).",
    )(func)


def json_option(func: F) -> F:
    """Add ``--json`` (print machine-readable JSON instead of tables)."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)


def lang_option(func: F) -> F:
    """Add ``--lang en|fr`` (labels of fields, coded values and states)."""
    return click.option(
        "--lang",
        type=click.Choice(LANGUAGES),
        default="en",
        show_default=True,
        help="Language of labels (free text is shown as written).",
    )(func)


def dry_run_option(func: F) -> F:
    """Add ``--dry-run`` (print the body that would be sent, send nothing)."""
    return click.option(
        "--dry-run", is_flag=True, help="Print the message as JSON and do not send it."
    )(func)
