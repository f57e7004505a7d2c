"""The bodies an officer's answers and follow-ups become, from the case and a few fields.

One implementation for every front end: ``relay247 node reply/extend/withdraw/
mla-submitted`` (cli/_node_replies.py) and the console's case actions
(console/_actions.py) both call :func:`reply_body` or :func:`sequel_body`, so the same
values give the same bytes. A calendar date typed for an "until" instant means the end of
that day (23:59:59) in the node's own zone: the requested party keeps the data there.
"Now" is always passed in (the node reads the clock only through its injected clock).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, tzinfo
from typing import Any, Final

import msgspec

from protocol.codec import decode, missing_field
from protocol.errors import MalformedError
from schemas.messages import BODY_DECODER, BODY_TYPES, KINDS, Body, semantic_errors
from schemas.node_api import CaseDetail, TimelineEntry


class ReplyError(Exception):
    """The values do not make a valid body for this case (the message says which field)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


#: kind -> the names of its fields
FIELDS: Final = {k: frozenset(c.__struct_fields__) for k, c in zip(KINDS, BODY_TYPES, strict=True)}

#: Request kinds (the requester starts a case with one of these).
REQUEST_KINDS: Final = frozenset(
    {
        "preservation_request",
        "emergency_disclosure_request",
        "assistance_request",
        "onward_transfer_request",
    }
)

#: `reply --kind` value -> body kind (``answer`` depends on the request, see below).
REPLY_KINDS: Final = {
    "taken-in-charge": "taken_in_charge",
    "preserved": "preserved",
    "warning": "preservation_warning",
    "refused": "refusal",
    "impossible": "impossible_to_execute",
    "traffic-data": "traffic_data_disclosure",
    "answer": "",
}
_ANSWERS: Final = {
    "assistance_request": "assistance_answer",
    "emergency_disclosure_request": "emergency_disclosure_answer",
    "onward_transfer_request": "onward_transfer_answer",
}

#: Field -> the option that fills it, quoted in "missing field" errors.
FIELD_OPTIONS: Final = {
    "officer": "--officer-name with --officer-email or --officer-phone",
    "preserved_until": "--until",
    "reasons": "--reason",
    "reason": "--reason",
    "ground": "--ground",
    "explanation": "--explanation",
    "outcome": "--outcome",
    "answer": "--text",
    "mla_status": "--mla-status",
    "mla_reference": "--mla-ref",
    "sent_to": "--sent-to",
    "provider": "--file",
    "path": "--file",
    "decision": "--file",
}

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
_INSTANTS: Final = ("until", "preserved_at", "expected_by", "decision_by")


def field_error(exc: MalformedError, hints: Mapping[str, str] | None = None) -> str:
    """Turn the codec's schema error into ``path: problem`` (plus the option to use).

    Args:
        exc: what :func:`protocol.codec.decode` raised for a body of the wrong shape
            (its ``field`` and ``problem`` are set).
        hints: field name -> the option that sets it (default :data:`FIELD_OPTIONS`).

    Returns:
        E.g. ``$.data.identifiers[0].port: Expected `int` <= 65535, got 70000``.
    """
    path, text = exc.field or "$", exc.problem
    name = missing_field(exc)
    if name is not None:
        path = f"{path}.{name}"
        option = (FIELD_OPTIONS if hints is None else hints).get(name)
        text = "required field is missing" + (f" (give {option})" if option else "")
    return f"{path}: {text}"


def check(body: Body) -> list[str]:
    """Return the semantic problems of ``body`` as ``path: problem`` lines (empty if valid)."""
    return [f"{path}: {text}" for path, text in semantic_errors(body)]


def body_from_fields(raw: Mapping[str, Any]) -> Body:
    """Build a body from JSON-ready fields through the wire decoder, then check its rules.

    Raises:
        ReplyError: a field is missing or invalid (named with its path and option).
    """
    data = msgspec.json.encode(raw)
    try:  # our own encoding: J1 has nothing to find
        body = decode(BODY_DECODER, data, "fields", limit=len(data), unique_keys=False)
    except MalformedError as exc:
        raise ReplyError(field_error(exc)) from None
    problems = check(body)
    if problems:
        raise ReplyError("; ".join(problems))
    return body


def first_request(case: CaseDetail, direction: str) -> TimelineEntry | None:
    """The case's first request (a kind of :data:`REQUEST_KINDS`) going ``direction``."""
    for entry in case.timeline:
        if entry.direction == direction and entry.kind in REQUEST_KINDS:
            return entry
    return None


def _own_ref(case: CaseDetail, default: str) -> str:
    for entry in case.timeline:
        if entry.direction == "out" and entry.body is not None:
            return entry.body.sender_ref
    return default


def _peer_ref(case: CaseDetail, default: str) -> str:
    # The other side's latest reference: what a sequel quotes as previous_ref.
    for entry in reversed(case.timeline):
        if entry.direction == "in" and entry.body is not None:
            return entry.body.sender_ref
    return default


def reply_head(case: CaseDetail, kind_option: str, ref: str | None) -> dict[str, Any]:
    """The head of a reply in ``case``: kind, case, the request it answers, our reference.

    Args:
        case: the case as the node reports it.
        kind_option: a key of :data:`REPLY_KINDS`.
        ref: our reference; default the one of our earlier messages in the case, else
            ``relay247-`` and the start of the case id.

    Raises:
        ReplyError: the case has no incoming request, or ``answer`` does not fit it.
    """
    request = first_request(case, "in")
    case_id = case.summary.case_id
    if request is None:
        raise ReplyError(f"case {case_id}: no incoming request to reply to")
    kind = REPLY_KINDS[kind_option] or _ANSWERS.get(request.kind, "")
    if not kind:
        raise ReplyError(f"case {case_id}: a {request.kind} has no 'answer'; choose a --kind")
    return {
        "kind": kind,
        "case_id": case_id,
        "in_reply_to": request.msg_id,
        "sender_ref": ref or _own_ref(case, f"relay247-{case_id[:12]}"),
    }


def sequel_head(case: CaseDetail, kind: str, ref: str | None) -> tuple[dict[str, Any], Body]:
    """The head of a requester's sequel (extension, withdrawal, MLA notice) in ``case``.

    Returns:
        The fields (``kind``, ``case_id``, ``sender_ref``, ``previous_ref``) and our
        original request, whose languages and priority a sequel repeats.

    Raises:
        ReplyError: this node did not send a request in this case.
    """
    request = first_request(case, "out")
    case_id = case.summary.case_id
    if request is None or request.body is None:
        raise ReplyError(f"case {case_id}: this node sent no request in this case")
    own = ref or request.body.sender_ref
    head = {
        "kind": kind,
        "case_id": case_id,
        "sender_ref": own,
        "previous_ref": _peer_ref(case, request.body.sender_ref),
    }
    return head, request.body


def _option_name(key: str) -> str:
    return "--" + key.replace("_", "-")


def instant(value: str, option: str, tz: tzinfo | None) -> str:
    """Parse an instant: a full RFC 3339 time with offset, or a date (the end of that
    day in zone ``tz``).

    Raises:
        ReplyError: neither form, or a time without offset.
    """
    try:
        if len(value) == 10:
            # with a ZoneInfo, the offset in force on that day (DST), not today's
            end = datetime.combine(date.fromisoformat(value), time(23, 59, 59), tzinfo=tz)
            return end.isoformat()
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ReplyError(f"{option}: {value!r} is not a date or an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise ReplyError(f"{option}: {value!r} needs its UTC offset, e.g. +02:00")
    return moment.isoformat()


def day(value: str, option: str) -> str:
    """Parse a calendar date (``YYYY-MM-DD``).

    Raises:
        ReplyError: not a date.
    """
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ReplyError(f"{option}: {value!r} is not a date (YYYY-MM-DD)") from None


def reply_fields(
    kind: str, opts: Mapping[str, Any], request: Any, now: datetime, tz: tzinfo | None = None
) -> dict[str, Any]:
    """Map the officer's values (named as the ``reply`` options) to fields of ``kind``.

    Args:
        kind: the body kind being built.
        opts: option name -> value, only the values the officer gave.
        request: the request body being answered (for defaults), or None.
        now: the current time, aware (default of ``preserved_at``).
        tz: the node's zone, for dates typed without a time (None: ``now``'s zone).

    Raises:
        ReplyError: a value that does not apply to this kind, or a bad value.
    """
    zone = tz or now.tzinfo
    simple = SIMPLE_FIELDS.get(kind, {})
    fields: dict[str, Any] = {}
    for key, value in opts.items():
        if key in _OFFICER and kind == "taken_in_charge":
            continue
        if key not in simple:
            raise ReplyError(f"{_option_name(key)} does not apply to a {kind} reply")
        fields[simple[key]] = _convert(kind, key, value, zone)
    if kind == "taken_in_charge" and any(k in opts for k in _OFFICER):
        officer = {"name": opts.get("officer_name")}
        officer.update(email=opts.get("officer_email"), phone=opts.get("officer_phone"))
        fields["officer"] = {k: v for k, v in officer.items() if v is not None}
    if kind == "preserved":
        fields.setdefault("preserved_at", now.astimezone(zone).isoformat())
        categories = getattr(getattr(request, "data", None), "categories", None)
        if categories:
            fields.setdefault("categories", [str(c) for c in categories])
    return fields


def _convert(kind: str, key: str, value: Any, tz: tzinfo | None) -> Any:
    option = _option_name(key)
    if key in _INSTANTS:
        return instant(value, option, tz)
    if key == "categories":
        return [c.strip() for c in value.split(",") if c.strip()]
    if key == "reason":
        if kind == "preservation_warning":
            return list(value)
        if len(value) != 1:
            raise ReplyError(f"--reason: a {kind} has exactly one reason")
        return value[0]
    return value


def reply_body(
    case: CaseDetail,
    kind_option: str,
    opts: Mapping[str, Any],
    *,
    now: datetime,
    tz: tzinfo | None,
    ref: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Body:
    """The requested side's answer in ``case`` (``relay247 node reply`` and the console).

    ``opts`` are the officer's values named as the ``reply`` options; ``extra`` fields
    given as JSON (a ``--file``), which ``opts`` win over; ``ref`` as :func:`reply_head`.

    Raises:
        ReplyError: the body would not be valid (the message names the field).
    """
    more = dict(extra or {})
    head = reply_head(case, kind_option, ref or more.get("sender_ref"))
    request = next((e.body for e in case.timeline if e.msg_id == head["in_reply_to"]), None)
    fields = reply_fields(head["kind"], opts, request, now, tz)
    return body_from_fields({**more, **fields, **head})


def extend_fields(*, until: str | None, mla_status: str, reason: str) -> dict[str, Any]:
    """The fields of a ``preservation_extension`` from the officer's values."""
    fields: dict[str, Any] = {"mla_status": mla_status, "reason": reason}
    if until is not None:
        fields["requested_until"] = day(until, "--until")
    return fields


def withdraw_fields(*, reason: str, explanation: str | None = None) -> dict[str, Any]:
    """The fields of a ``preservation_withdrawal`` from the officer's values."""
    return {"reason": reason, **({} if explanation is None else {"explanation": explanation})}


def mla_fields(
    *, mla_ref: str, sent_to: str, on: str | None, channel: str | None, today: date
) -> dict[str, Any]:
    """The fields of an ``mla_submitted`` notice (``on`` defaults to ``today``)."""
    submitted = day(on, "--on") if on else today.isoformat()
    given = {"mla_reference": mla_ref, "sent_to": sent_to, "submitted_on": submitted}
    return {**given, **({} if channel is None else {"channel": channel})}


def sequel_body(case: CaseDetail, kind: str, fields: Mapping[str, Any], ref: str | None) -> Body:
    """The requester's follow-up of ``kind`` in ``case`` (extension, withdrawal, MLA
    notice); it repeats the request's languages and priority where its kind has them.

    Raises:
        ReplyError: this node sent no request in the case, or the body would be invalid.
    """
    head, request = sequel_head(case, kind, ref)
    wanted = {"languages", "priority"} & FIELDS[kind]
    repeated = {k: getattr(request, k) for k in wanted if hasattr(request, k)}
    # a warning decision answers the warning and quotes no previous_ref of its own
    head = {k: v for k, v in head.items() if k == "kind" or k in FIELDS[kind]}
    return body_from_fields({**repeated, **fields, **head})


def decision_fields(
    case: CaseDetail, *, decision: str, explanation: str | None = None
) -> dict[str, Any]:
    """The fields of the requester's ``warning_decision`` (Art. 29(6)): it answers the
    latest warning received in the case (an answer names what it answers, S12).

    Raises:
        ReplyError: no warning was received in this case.
    """
    warnings = [
        e.msg_id for e in case.timeline if e.direction == "in" and e.kind == "preservation_warning"
    ]
    if not warnings:
        raise ReplyError(f"case {case.summary.case_id}: no Art. 29(6) warning to decide on")
    fields = {"decision": decision, "in_reply_to": warnings[-1]}
    return {**fields, **({} if explanation is None else {"explanation": explanation})}
