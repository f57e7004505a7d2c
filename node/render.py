"""Render message bodies and case timelines as label/value rows in the reader's language.

Labels come from the catalogs ``node/i18n/<lang>.json``: one label per body field (a
``Struct.field`` override where one name means different things, e.g. an IP ``address``
versus a postal one), per coded value (every enum member) and per kind, case state and
deadline kind. Coded values are translated; free text is shown exactly as written;
instants are shown in the reader's zone when one is given (the node's own, from its
directory entry), always with the UTC offset, so "03:10 +02:00" never loses its offset.
The CLI, the local API and the e-mail alerts all render through here.
"""

from __future__ import annotations

import enum
import functools
import re
from datetime import date, datetime, tzinfo
from importlib import resources
from typing import Any, Final, NamedTuple

import msgspec

from protocol.cases import TimelineEntry
from protocol.codec import decode_as
from protocol.errors import ConfigError, MalformedError
from schemas._identifiers import IdentifierType
from schemas.messages import Body, kind_of

#: Languages with a catalog, in the order offered to users.
LANGUAGES: Final = ("en", "fr")


_MAX_CATALOG: Final = 4 << 20  # bytes: a catalog is ~20 KiB


class Catalog(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One language's labels (the shape of ``node/i18n/<lang>.json``)."""

    lang: str
    kinds: dict[str, str]
    fields: dict[str, str]
    field_overrides: dict[str, str]
    enums: dict[str, dict[str, str]]
    ui: dict[str, str]

    def field(self, struct: str, name: str) -> str:
        """Label of field ``name`` of struct ``struct`` (falls back to the raw name)."""
        return self.field_overrides.get(f"{struct}.{name}") or self.fields.get(name) or name

    def enum(self, value: enum.Enum) -> str:
        """Label of a coded value (falls back to the code itself)."""
        label = self.enums.get(type(value).__name__, {}).get(str(value.value))
        return label or str(value.value)

    def kind(self, kind: str) -> str:
        """Label of a body kind or ``delivery_receipt``."""
        return self.kinds.get(kind) or kind

    def text(self, key: str) -> str:
        """A user-interface string (``yes``, ``alert_footer``, ...)."""
        return self.ui.get(key) or key


@functools.cache
def load_catalog(lang: str) -> Catalog:
    """Load and validate the catalog of ``lang`` from the installed package.

    Args:
        lang: one of :data:`LANGUAGES`.

    Returns:
        The catalog (cached).

    Raises:
        ConfigError: unknown language, or a catalog file that does not validate.
    """
    if lang not in LANGUAGES:
        raise ConfigError(f"language {lang!r} has no catalog; choose one of {LANGUAGES}")
    resource = resources.files("node").joinpath("i18n", f"{lang}.json")
    try:
        return decode_as(Catalog, resource.read_bytes(), "catalog", limit=_MAX_CATALOG)
    except (OSError, MalformedError) as exc:
        raise ConfigError(f"node/i18n/{lang}.json: {exc}") from exc


class Row(NamedTuple):
    """One line of a rendered form; ``depth`` > 0 for fields of a sub-object."""

    label: str
    value: str
    depth: int = 0


def format_time(value: datetime, tz: tzinfo | None = None) -> str:
    """An instant as ``YYYY-MM-DD HH:MM:SS +HH:MM``: in zone ``tz`` (the reader's node)
    when given, else keeping the offset it was written with. The offset is always shown.
    """
    if tz is not None and value.tzinfo is not None:
        value = value.astimezone(tz)
    text = value.isoformat(sep=" ", timespec="seconds")
    offset = value.strftime("%z")
    if not offset:
        return text
    # isoformat glues the offset to the time; a space reads better in a table
    return f"{text[: -len('+00:00')]} {offset[:3]}:{offset[3:]}"


def until_text(value: datetime, lang: str, tz: tzinfo | None = None) -> str:
    """A "preserved until" instant: in ``tz``, and, when it is the end of a day in the
    zone it was written in (23:59 or later), which day and whose zone that is, so the
    reader knows it is "end of that day in the requested party's zone".
    """
    text = format_time(value, tz)
    local = value.timetz()
    if (local.hour, local.minute) < (23, 59) or value.tzinfo is None:
        return text
    cat = load_catalog(lang)
    zone = f"{cat.text('until_requested_zone')}, UTC{format_time(value)[-6:]}"
    return f"{text} ({cat.text('until_end_of_day').format(day=value.date(), zone=zone)})"


_UNTIL_FIELDS: Final = frozenset({"preserved_until"})


# Text in a body is the sender's: a member can put terminal control sequences in it
# (ESC clears the screen, retitles the window or writes the clipboard through OSC 52; CR
# overwrites a line; bidi overrides reorder what the officer reads). Shown as \uXXXX;
# tabs and line breaks stay (free text has paragraphs).
_UNSAFE: Final = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def printable(text: str) -> str:
    """``text`` with control and bidi-override characters shown as ``\\uXXXX``."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


def _scalar(value: Any, cat: Catalog, tz: tzinfo | None = None) -> str:
    if isinstance(value, enum.Enum):
        return cat.enum(value)
    if isinstance(value, bool):
        return cat.text("yes" if value else "no")
    if isinstance(value, datetime):
        return format_time(value, tz)
    if isinstance(value, date):
        return value.isoformat()
    return printable(str(value))


def _heading(value: msgspec.Struct, cat: Catalog) -> str:
    """The value shown beside a sub-object's label: its identifier type, if tagged."""
    config = value.__struct_config__
    if config.tag_field == "type" and isinstance(config.tag, str):
        return cat.enum(IdentifierType(config.tag))
    return ""


def _value_rows(label: str, value: Any, cat: Catalog, depth: int, tz: tzinfo | None) -> list[Row]:
    if isinstance(value, msgspec.Struct):
        return [Row(label, _heading(value, cat), depth), *_struct_rows(value, cat, depth + 1, tz)]
    if isinstance(value, tuple):
        if not any(isinstance(v, msgspec.Struct) for v in value):
            return [Row(label, ", ".join(_scalar(v, cat, tz) for v in value), depth)]
        rows: list[Row] = []
        for i, item in enumerate(value, start=1):
            rows += _value_rows(f"{label} {i}", item, cat, depth, tz)
        return rows
    return [Row(label, _scalar(value, cat, tz), depth)]


def _struct_rows(obj: msgspec.Struct, cat: Catalog, depth: int, tz: tzinfo | None) -> list[Row]:
    name = type(obj).__name__
    rows: list[Row] = []
    for field in obj.__struct_fields__:
        value = getattr(obj, field)
        # Absent optional fields are not shown, nor empty text (a label with nothing after).
        unset = value is None or value is msgspec.UNSET or value == ()
        if unset or (isinstance(value, str) and not value.strip()):
            continue
        if field in _UNTIL_FIELDS and isinstance(value, datetime):
            rows.append(Row(cat.field(name, field), until_text(value, cat.lang, tz), depth))
            continue
        rows += _value_rows(cat.field(name, field), value, cat, depth, tz)
    return rows


def render_body(body: Body, lang: str, tz: tzinfo | None = None) -> list[Row]:
    """Render a body: its kind, then every present field, sub-objects indented.

    Args:
        body: a verified, decoded body.
        lang: one of :data:`LANGUAGES`.
        tz: the reader's zone for instants (each keeps its offset when ``None``).

    Returns:
        The rows, in the order of the schema's fields.

    Raises:
        ConfigError: unknown language.
    """
    cat = load_catalog(lang)
    return [Row(cat.text("kind"), cat.kind(kind_of(body))), *_struct_rows(body, cat, 0, tz)]


def render_timeline_entry(entry: TimelineEntry, lang: str) -> list[Row]:
    """Render one timeline entry of a case (no message content: kind, state, receipt).

    Args:
        entry: an entry of ``Case.timeline``.
        lang: one of :data:`LANGUAGES`.

    Returns:
        Rows for time, direction, kind, state, then receipt status and anomaly if any.

    Raises:
        ConfigError: unknown language.
    """
    cat = load_catalog(lang)
    rows = [
        Row(cat.text("at"), format_time(entry.at)),
        Row(cat.text("direction"), cat.text("outgoing" if entry.outgoing else "incoming")),
        Row(cat.text("kind"), cat.kind(entry.kind)),
        Row(cat.text("state"), cat.enum(entry.state)),
        Row(cat.text("msg_id"), entry.msg_id),
    ]
    if entry.receipt_status is not None:
        rows.append(Row(cat.text("receipt_status"), cat.enum(entry.receipt_status)))
    if entry.anomaly is not None:
        rows.append(Row(cat.text("anomaly"), cat.enum(entry.anomaly)))
    return rows
