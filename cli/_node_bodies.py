"""Request files and the bodies the operator commands build (``relay247 node new/send/reply``).

A request file is the JSON of one message body in which every line whose first
non-blank characters are ``//`` is a comment (``relay247 node template`` writes them).
Comments are blanked rather than removed, so a JSON syntax error still points at the
line the officer sees in their editor.

Every body the CLI builds goes through the same strict decoder as a body received from
the network (``schemas.messages``), then through ``semantic_errors``: an error names the
field path (``$.data.identifiers[0].port``) and, where one exists, the option to fix it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from cli._passphrase import CliUsageError
from protocol.codec import decode, decode_as, missing_field
from protocol.errors import MalformedError
from schemas.messages import BODY_DECODER, BODY_TYPES, KINDS, Body, kind_of, semantic_errors
from schemas.node_api import CaseDetail, TimelineEntry

#: kind -> the names of its fields
FIELDS: Final = {k: frozenset(c.__struct_fields__) for k, c in zip(KINDS, BODY_TYPES, strict=True)}
MAX_FILE: Final = 1 << 20  # bytes: a request file is a form, not an archive
_BYTE = re.compile(r"\(byte (\d+)\)")

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


def strip_comments(text: str) -> str:
    """Blank every ``//`` comment line, keeping line and byte positions."""
    lines = text.split("\n")
    return "\n".join(" " * len(x) if x.lstrip().startswith("//") else x for x in lines)


def _where(message: str, raw: bytes) -> str:
    # msgspec counts bytes; an officer counts lines.
    m = _BYTE.search(message)
    if m is None:
        return message
    offset = int(m.group(1))
    line = raw[:offset].count(b"\n") + 1
    return f"{message[: m.start()].rstrip()} (line {line})"


def _not_json(exc: MalformedError, data: bytes) -> str:
    # Not JSON (the parser's complaint, its byte shown as a line), or a repeated key (J1).
    return exc.message + (f": {_where(exc.detail, data)}" if exc.detail else "")


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


def parse_request_file(raw: bytes, source: str) -> Body:
    """Decode and validate a request file (strict schema, then the semantic rules).

    Args:
        raw: the file's bytes.
        source: the file name, for messages.

    Returns:
        The valid body.

    Raises:
        CliUsageError: too large, not UTF-8, not JSON, wrong shape or a broken rule;
            the message names the field path (or the line of a syntax error).
    """
    if len(raw) > MAX_FILE:
        raise CliUsageError(f"{source}: larger than {MAX_FILE} bytes")
    try:
        text = strip_comments(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise CliUsageError(f"{source}: not UTF-8 text") from None
    data = text.encode("utf-8")
    try:
        body = decode(BODY_DECODER, data, "request file", limit=MAX_FILE)
    except MalformedError as exc:
        if exc.problem:
            raise CliUsageError(f"{source}: {field_error(exc)}") from None
        raise CliUsageError(f"{source}: {_not_json(exc, data)}") from None
    problems = check(body)
    if problems:
        raise CliUsageError(f"{source}: " + "; ".join(problems))
    return body


def parse_fields_file(raw: bytes, source: str) -> dict[str, Any]:
    """Read a ``--file`` of fields for a reply: a JSON object, ``//`` comments allowed.

    Raises:
        CliUsageError: not a JSON object (the line of a syntax error is named).
    """
    if len(raw) > MAX_FILE:
        raise CliUsageError(f"{source}: larger than {MAX_FILE} bytes")
    data = strip_comments(raw.decode("utf-8", "replace")).encode("utf-8")
    try:
        value = decode_as(object, data, "fields file", limit=len(data))
    except MalformedError as exc:
        raise CliUsageError(f"{source}: {_not_json(exc, data)}") from None
    if not isinstance(value, dict):
        raise CliUsageError(f"{source}: $: expected a JSON object of fields")
    return value


def body_from_fields(raw: Mapping[str, Any]) -> Body:
    """Build a body from JSON-ready fields through the wire decoder, then check its rules.

    Raises:
        CliUsageError: a field is missing or invalid (named with its path and option).
    """
    data = msgspec.json.encode(raw)
    try:  # our own encoding: J1 has nothing to find
        body = decode(BODY_DECODER, data, "fields", limit=len(data), unique_keys=False)
    except MalformedError as exc:
        raise CliUsageError(field_error(exc)) from None
    problems = check(body)
    if problems:
        raise CliUsageError("; ".join(problems))
    return body


def _first(case: CaseDetail, direction: str) -> TimelineEntry | None:
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
        ref: ``--ref``; default the reference of our earlier messages in the case, else
            ``relay247-`` and the start of the case id.

    Returns:
        The fields every reply starts with.

    Raises:
        CliUsageError: the case has no incoming request, or ``answer`` does not fit it.
    """
    request = _first(case, "in")
    case_id = case.summary.case_id
    if request is None:
        raise CliUsageError(f"case {case_id}: no incoming request to reply to")
    kind = REPLY_KINDS[kind_option] or _ANSWERS.get(request.kind, "")
    if not kind:
        raise CliUsageError(f"case {case_id}: a {request.kind} has no 'answer'; choose a --kind")
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
        CliUsageError: this node did not send a request in this case.
    """
    request = _first(case, "out")
    case_id = case.summary.case_id
    if request is None or request.body is None:
        raise CliUsageError(f"case {case_id}: this node sent no request in this case")
    own = ref or request.body.sender_ref
    head = {
        "kind": kind,
        "case_id": case_id,
        "sender_ref": own,
        "previous_ref": _peer_ref(case, request.body.sender_ref),
    }
    return head, request.body


def addressee(body: Body) -> str | None:
    """The member a request names as its addressee (``requested.member``), if any."""
    requested = getattr(body, "requested", None)
    member = getattr(requested, "member", None)
    return member if isinstance(member, str) else None


def describe(body: Body) -> str:
    """``kind, case <id>`` for messages."""
    return f"{kind_of(body)}, case {body.case_id}"
