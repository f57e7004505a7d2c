"""A foreign request side by side (issue 13 §3 "its coded values in the reader's language,
its free text as written").

Each field of a body becomes one row: its JSON path (the CLI's, as in field errors), its
label, the value as the sender wrote it, and the value for the reader: a coded value
(an enum member, an identifier's type, a yes/no) in the reader's language, an instant
in the node's zone and UTC, and free text exactly as written, marked as such. Nothing is
escaped here: the templates autoescape every value.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

import msgspec

from console import _i18n
from console._locale import LocalTimes
from node.render import LANGUAGES, Catalog, load_catalog, printable
from schemas._attachment import Attachment
from schemas.messages import Body, kind_of

_SECRET: Final = frozenset({"key"})  # fields of an attachment no page shows


@dataclass(frozen=True)
class SideRow:
    """One field of a body: ``free`` is True for text shown only as written."""

    path: str
    label: str
    written: str
    reader: str
    free: bool
    depth: int


def field_label(language: str) -> Callable[[str, str], str]:
    """``label(struct, field)``: a body field's label in ``language`` (the console's
    ``field.*`` labels, the CLI's own in English and French); its name if none."""
    catalog = _i18n.CATALOGS.get(language, _i18n.CATALOGS[_i18n.DEFAULT])

    def label(struct: str, name: str) -> str:
        return catalog.get(f"field.{struct}.{name}") or catalog.get(f"field.{name}") or name

    return label


def named_error(language: str, text: str) -> str:
    """A field error ``$.path: problem`` with the field's label in ``language`` before it
    (``Domain name — $.data.identifiers[0].domain: ...``): the path stays, so the error
    still names the field as the CLI does; text with no path is returned as it is."""
    path, sep, _problem = text.partition(": ")
    if not sep or not path.startswith("$"):
        return text
    name = path.rsplit(".", 1)[-1].split("[", 1)[0]
    label = field_label(language)("", name) if name and name != "$" else name
    return text if not label or label == name else f"{label} — {text}"


def side_rows(body: Body, language: str, times: LocalTimes) -> list[SideRow]:
    """Every present field of ``body``, in schema order, sub-objects indented."""
    catalog = _i18n.CATALOGS.get(language, _i18n.CATALOGS[_i18n.DEFAULT])
    cli = load_catalog(language if language in LANGUAGES else "en")
    walker = _Walker(catalog, cli, times, language)
    kind = kind_of(body)
    head = SideRow("kind", catalog["msg.kind"], kind, catalog.get(f"kind.{kind}", kind), False, 0)
    return [head, *walker.struct(body, "", 0)]


class _Walker:
    def __init__(
        self, catalog: dict[str, str], cli: Catalog, times: LocalTimes, language: str
    ) -> None:
        self.catalog = catalog
        self.cli = cli  # the CLI's catalog: the enums the console has no label for
        self.label = field_label(language)
        self.times = times

    def struct(self, obj: msgspec.Struct, path: str, depth: int) -> list[SideRow]:
        rows: list[SideRow] = []
        config = obj.__struct_config__
        if config.tag_field == "type" and isinstance(config.tag, str):
            code = f"code.IdentifierType.{config.tag}"
            # the tag is no struct field, so no field label: the send form's own label
            label = self.catalog["send.id_type"]
            tag = config.tag
            rows.append(SideRow(_join(path, "type"), label, tag, self._c(code, tag), False, depth))
        for name in obj.__struct_fields__:
            value = getattr(obj, name)
            if value is None or value is msgspec.UNSET or value == ():
                continue  # an optional field left out (links, attachments) is no row
            if isinstance(value, str) and not value.strip():
                continue
            if isinstance(obj, Attachment) and name in _SECRET:
                continue  # the file key opens the file: never on a page
            label = self.label(type(obj).__name__, name)
            rows += self.value(value, _join(path, name), label, depth)
        return rows

    def value(self, value: Any, path: str, label: str, depth: int) -> list[SideRow]:
        if isinstance(value, msgspec.Struct):
            head = SideRow(path, label, "", "", False, depth)
            return [head, *self.struct(value, path, depth + 1)]
        if isinstance(value, tuple | list):
            rows: list[SideRow] = []
            for i, item in enumerate(value):
                rows += self.value(item, f"{path}[{i}]", f"{label} {i + 1}", depth)
            return rows
        if isinstance(value, enum.Enum):
            code = f"code.{type(value).__name__}.{value.value}"
            written = str(value.value)
            reader = self.catalog.get(code) or self.cli.enum(value)
            return [SideRow(path, label, written, reader, False, depth)]
        if isinstance(value, bool):
            word = self.catalog["yes" if value else "no"]
            return [SideRow(path, label, "true" if value else "false", word, False, depth)]
        if isinstance(value, datetime):
            shown = f"{self.times.local(value)} · {self.times.utc(value)}"
            return [SideRow(path, label, value.isoformat(), shown, False, depth)]
        if isinstance(value, date):
            return [SideRow(path, label, value.isoformat(), self.times.day(value), False, depth)]
        if isinstance(value, int | float):
            return [SideRow(path, label, str(value), str(value), False, depth)]
        # as written, but a bidi override or control character is shown as its code
        # (\u202e): it could otherwise reorder what the officer reads (node.render)
        text = printable(str(value))
        return [SideRow(path, label, text, text, True, depth)]

    def _c(self, key: str, code: str) -> str:
        return self.catalog.get(key, code)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
