"""Request files and the bodies the operator commands build (``relay247 node new/send/reply``).

A request file is the JSON of one message body in which every line whose first
non-blank characters are ``//`` is a comment (``relay247 node template`` writes them).
Comments are blanked rather than removed, so a JSON syntax error still points at the
line the officer sees in their editor.

Every body the CLI builds goes through the same strict decoder as a body received from
the network (``schemas.messages``), then through ``semantic_errors``: an error names the
field path (``$.data.identifiers[0].port``) and, where one exists, the option to fix it.
The bodies of replies and follow-ups are built by ``node.replies`` (shared with the console).
"""

from __future__ import annotations

import re
from typing import Any, Final

from cli._passphrase import CliUsageError
from node.replies import check, field_error
from protocol.codec import decode, decode_as
from protocol.errors import MalformedError
from schemas.messages import BODY_DECODER, Body, kind_of

MAX_FILE: Final = 1 << 20  # bytes: a request file is a form, not an archive
_BYTE = re.compile(r"\(byte (\d+)\)")


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


def addressee(body: Body) -> str | None:
    """The member a request names as its addressee (``requested.member``), if any."""
    requested = getattr(body, "requested", None)
    member = getattr(requested, "member", None)
    return member if isinstance(member, str) else None


def describe(body: Body) -> str:
    """``kind, case <id>`` for messages."""
    return f"{kind_of(body)}, case {body.case_id}"
