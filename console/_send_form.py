"""The new-request form: its inputs, the body they assemble into, and errors at fields.

The form is read into the JSON-ready shape of ``schemas.PreservationRequest`` (or, as the
officer chose, an emergency request: ``console/_send_emergency.py``) and then
decoded by the same strict decoder as a body from the network (``BODY_DECODER``) and
checked by the same rules ``Node.send`` applies before sealing (``semantic_errors``,
then E14's member binding, PROTOCOL.md §4.4). Nothing here re-derives a rule: each
error keeps the JSON path the CLI shows (``$.data.identifiers[0].address``) and is
placed at the input that produced that path.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from console import _send_emergency as se
from console import _send_onward as so
from console._security import Form, FormError
from protocol.body import member_binding_errors
from protocol.codec import decode, missing_field
from protocol.errors import MalformedError
from schemas._identifiers import Identifier
from schemas._parts import DataCategory
from schemas.messages import BODY_DECODER, Body, semantic_errors
from schemas.types import Priority

ROWS: Final = 5  # identifier rows on the form (a request naming more uses the CLI)
MAX_VALUES: Final = 8  # a multi-valued input (categories) sent more often is not our form
PRIORITIES: Final = tuple(p.value for p in Priority)
CATEGORIES: Final = tuple(c.value for c in DataCategory)
#: identifier ``type`` tags, in the schema's order (the tagged union's members)
ID_TYPES: Final = tuple(str(c.__struct_config__.tag) for c in typing.get_args(Identifier))
#: the identifier's own value, and the second text some types need, by ``type``
ID_VALUE: Final = {
    "account": "account",
    "email": "address",
    "phone": "number",
    "domain": "domain",
    "url": "url",
    "ip": "address",
    "imei": "imei",
    "imsi": "imsi",
    "crypto_address": "address",
    "other": "value",
}
ID_EXTRA: Final = {"account": "service", "crypto_address": "currency", "other": "label"}

#: single-valued inputs: name -> JSON path segments in the body
TEXTS: Final[dict[str, tuple[str, ...]]] = {
    "sender_ref": ("sender_ref",),
    "priority": ("priority",),
    "offence_name": ("offence", "name"),
    "offence_provisions": ("offence", "legal_provisions"),
    "offence_summary": ("offence", "summary_of_facts"),
    "relation": ("data", "relation_to_offence"),
    "range_start": ("data", "date_range", "start"),
    "range_end": ("data", "date_range", "end"),
    "custodian_name": ("custodian", "name"),
    "custodian_country": ("custodian", "country"),
    "necessity": ("necessity",),
    "mla_expected_by": ("mla_expected_by",),
    # a request for assistance (console/_send_assistance.py)
    "assistance": ("assistance",),
    "subject": ("subject",),
    "details": ("details",),
    "answer_needed_by": ("answer_needed_by",),
    # an onward transfer request (console/_send_onward.py)
    **{name: (name,) for name in so.ONLY},
}
INSTANTS: Final = frozenset({"range_start", "range_end", "answer_needed_by"})
CHECKS: Final = {"mla_intent": "mla_intent", "art30": "art30_disclosure"}
#: every input a draft keeps (text values; checkboxes "yes" or "")
_ROW_PARTS: Final = ("type", "value", "extra", "seen", "port")
INPUTS: Final = (
    "to",
    "case_id",
    *TEXTS,
    *se.INPUTS,
    "confidential",
    *CHECKS,
    *(f"id{i}_{part}" for i in range(ROWS) for part in _ROW_PARTS),
)


@dataclass(frozen=True)
class Sender:
    """What the form fills in itself: the logged-in officer and the node's own entry."""

    member: str
    organisation: str
    time_zone: str
    languages: tuple[str, ...]
    name: str
    email: str | None
    phone: str | None
    job_title: str | None = None  # the account's (node.officers job titles)


@dataclass
class Checked:
    """The outcome of checking a filled form: the body, or errors by input name."""

    body: Body | None = None
    errors: dict[str, str] = field(default_factory=dict)  # input -> "path: problem"
    general: list[str] = field(default_factory=list)  # errors no input produced


def _opt(form: Form, name: str) -> str:
    values = form.getall(name, [])
    if len(values) > 1 or any(not isinstance(v, str) for v in values):
        raise FormError(name)
    return str(values[0]).strip() if values else ""


def read_form(form: Form) -> dict[str, Any]:
    """The form's inputs as a draft keeps them (every name once; categories a list).

    Raises:
        FormError: an input sent twice, a file upload, or too many categories.
    """
    values: dict[str, Any] = {name: _opt(form, name) for name in INPUTS}
    for name in ("confidential", se.CHECK, *CHECKS):
        values[name] = "yes" if values[name] else ""
    values["kind"] = values["kind"] or se.PRESERVATION  # a form from before the choice
    if values["kind"] not in se.KINDS:  # a select's value that is none of its options
        raise FormError("kind")
    categories = form.getall("categories", [])
    if len(categories) > MAX_VALUES or any(not isinstance(c, str) for c in categories):
        raise FormError("categories")
    values["categories"] = [str(c) for c in categories]
    return values


def blank(case_id: str, sender_ref: str) -> dict[str, Any]:
    """A new form's values: a fresh case id, normal priority, confidential."""
    values: dict[str, Any] = dict.fromkeys(INPUTS, "")
    values |= {"case_id": case_id, "sender_ref": sender_ref, "priority": "normal"}
    values |= {"kind": se.PRESERVATION}
    values |= {"confidential": "yes", "categories": []}
    return values


def _instant(text: str, zone: str) -> str:
    """A ``datetime-local`` value (no offset) as RFC 3339 in the officer's zone; any
    other text goes on unchanged for the decoder to name the problem at its path."""
    if not text.isascii():
        return text
    try:
        when = datetime.fromisoformat(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=ZoneInfo(zone))
    except (ValueError, ZoneInfoNotFoundError):
        return text
    return when.isoformat()


def _number(text: str) -> int | str:
    # int() would take Arabic-Indic or full-width digits; the wire takes ASCII only.
    return int(text) if text.isascii() and text.isdigit() else text


def _put(tree: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _identifiers(values: Mapping[str, Any], zone: str, at: dict[str, str]) -> list[Any]:
    found: list[Any] = []
    at["$.data.identifiers"] = "id0_value"
    for i in range(ROWS):
        kind, value = values[f"id{i}_type"], values[f"id{i}_value"]
        extra, seen, port = values[f"id{i}_extra"], values[f"id{i}_seen"], values[f"id{i}_port"]
        if not (value or extra or seen or port):
            continue  # an empty row
        path = f"$.data.identifiers[{len(found)}]"
        at[path] = f"id{i}_type"
        item: dict[str, Any] = {"type": kind}
        if value:
            item[ID_VALUE.get(kind, "value")] = value
        at[f"{path}.{ID_VALUE.get(kind, 'value')}"] = f"id{i}_value"
        if kind in ID_EXTRA:
            at[f"{path}.{ID_EXTRA[kind]}"] = f"id{i}_extra"
            if extra:
                item[ID_EXTRA[kind]] = extra
        if seen:
            item["seen_at"] = _instant(seen, zone)
        at[f"{path}.seen_at"] = f"id{i}_seen"
        if port:
            item["port"] = _number(port)
        at[f"{path}.port"] = f"id{i}_port"
        found.append(item)
    return found


def assemble(
    values: Mapping[str, Any], sender: Sender, organisation: str | None, issued_at: datetime
) -> tuple[dict[str, Any], dict[str, str]]:
    """The body's JSON-ready fields, and which input each JSON path came from.

    Args:
        values: the form's inputs (:func:`read_form`, or a draft).
        sender: the officer and node the form fills in.
        organisation: the recipient's authority from the verified directory.
        issued_at: now, on the node's clock, in the officer's zone.
    """
    at: dict[str, str] = {"$.requested.member": "to", "$.case_id": "case_id"}
    officer = {
        "name": sender.name,
        "job_title": sender.job_title,
        "phone": sender.phone,
        "email": sender.email,
    }
    tree: dict[str, Any] = {
        "kind": "preservation_request",
        "case_id": values["case_id"],
        "issued_at": issued_at.isoformat(),
        "status": "new",
        "requested": {"member": values["to"], "organisation": organisation},
        "requesting": {
            "member": sender.member,
            "organisation": sender.organisation,
            "officer": {k: v for k, v in officer.items() if v},
            "time_zone": sender.time_zone,
        },
    }
    for name, path in TEXTS.items():
        at["$." + ".".join(path)] = name
        text = values[name]
        if text:
            _put(tree, path, _instant(text, sender.time_zone) if name in INSTANTS else text)
    identifiers = _identifiers(values, sender.time_zone, at)
    if identifiers:
        _put(tree, ("data", "identifiers"), identifiers)
    at["$.data.categories"] = "categories"
    if values["categories"]:
        _put(tree, ("data", "categories"), list(values["categories"]))
    for name, key in CHECKS.items():
        at[f"$.{key}"] = name
        tree[key] = values[name] == "yes"
    at["$.confidential"] = "confidential"
    tree["confidential"] = values["confidential"] == "yes"
    tree["languages"] = list(sender.languages)
    at["$.data.date_range"] = "range_start"
    se.reshape(tree, values, at)
    return tree, at


def _missing(exc: MalformedError) -> str:
    # msgspec names a missing field at its parent; the CLI names the field itself.
    path, name = exc.field or "$", missing_field(exc)
    return path if name is None else f"{path}.{name}"


def place(checked: Checked, path: str, problem: str, at: Mapping[str, str]) -> None:
    """Put ``path: problem`` at the input that made ``path`` (or the nearest parent's)."""
    probe = path
    while probe:
        name = at.get(probe)
        if name is not None:
            checked.errors.setdefault(name, f"{path}: {problem}")
            return
        cut = max(probe.rfind("."), probe.rfind("["))
        probe = probe[:cut] if cut > 1 else ""
    checked.general.append(f"{path}: {problem}")


def check(
    tree: Mapping[str, Any], at: Mapping[str, str], *, sender: str, recipient: str
) -> Checked:
    """Decode ``tree`` as the wire decoder would, then run ``Node.send``'s checks.

    The shape (types, patterns, required fields) is the decoder's; the cross-field
    rules are ``semantic_errors`` (S1-S12) and E14 (PROTOCOL.md §4.4) on the sending
    side, exactly as :meth:`node.daemon.Node.send` runs them before sealing.
    """
    checked = Checked()
    data = msgspec.json.encode(tree)
    try:  # our own encoding: no key repeats, J1 has nothing to find
        body = decode(BODY_DECODER, data, "form", limit=len(data), unique_keys=False)
    except MalformedError as exc:
        problem = exc.problem or exc.message
        if missing_field(exc) is not None:
            problem = "required field is missing"  # the CLI's words, without its option
        place(checked, _missing(exc), problem, at)
        return checked
    problems = semantic_errors(body) or member_binding_errors(
        body, sender=sender, recipient=recipient
    )
    for path, text in problems:
        place(checked, path, text, at)
    if not problems:
        checked.body = body
    return checked


def choices(values: Iterable[str], label: Callable[[str], str]) -> list[tuple[str, str]]:
    """(value, label) pairs for a select or a group of checkboxes."""
    return [(v, label(v)) for v in values]
