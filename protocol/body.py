"""Steps E13–E14: decode a verified body; check it agrees with the signed header and
that every member it names is the authenticated sender or recipient."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from protocol.codec import decode
from protocol.envelope import Opened
from protocol.errors import MalformedError, VerificationError
from schemas._parts import RequestedAuthority, RequestingAuthority
from schemas._stats import Statistics
from schemas.errors import ErrorCode
from schemas.messages import BODY_DECODER, Body, coarse_kind, priority_of, semantic_errors


def decode_opened(opened: Opened) -> Body:
    """Decode the body of a verified envelope (PROTOCOL.md §4.4, step E13).

    Args:
        opened: the result of :func:`protocol.envelope.open_envelope`; the body bytes
            are already authenticated (E12), so decoding them is safe.

    Returns:
        The body, valid against its schema and the semantic rules.

    Raises:
        MalformedError: schema or semantic-rule violation; the message names the field.
        VerificationError: ``case_id``, coarse kind or priority differ from the signed
            header (BINDING_MISMATCH).
    """
    # J1 included: no object of the body repeats a key (the sender signed these bytes).
    # The size was bounded with the whole envelope's (E1).
    body = decode(BODY_DECODER, opened.body, "body", limit=len(opened.body))
    problems = semantic_errors(body)
    if problems:
        path, text = problems[0]
        raise BodyFieldError(f"invalid body: {text} - at `{path}`", path)
    header = opened.header
    if (
        body.case_id != header.case_id
        or coarse_kind(body) is not header.kind
        or priority_of(body) is not header.priority
    ):
        raise VerificationError(
            "body disagrees with the signed header", code=ErrorCode.BINDING_MISMATCH
        )
    # E14: every member the body names is the one the envelope authenticates.
    unbound = member_binding_errors(body, sender=header.sender, recipient=header.recipient)
    if unbound:
        path, text = unbound[0]
        raise MemberBindingError(f"body names another member: {text} - at `{path}`", path)
    return body


class BodyFieldError(MalformedError):
    """E13: the body breaks a semantic rule; ``field`` is the JSON path it names."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message, detail=field)
        self.field = field


class MemberBindingError(VerificationError):
    """E14: a member named in the body is not the envelope's sender or recipient.

    ``field`` is the JSON path of the first such field (``$.requesting.member``); the
    recipient's ``rejected`` receipt carries it (§5.1).
    """

    code = ErrorCode.BINDING_MISMATCH

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message, detail=field)
        self.field = field


def member_binding_errors(body: Body, *, sender: str, recipient: str) -> list[tuple[str, str]]:
    """Every field of ``body`` that names a member other than the one it must name.

    ``requesting.member`` (a :class:`RequestingAuthority`, at any depth) must be the
    sender and ``requested.member`` (a :class:`RequestedAuthority`) the recipient: the
    envelope authenticates both, the body only claims them, and a receiver computes legal
    periods from ``requested.member``. The walk follows the schema, so a body kind added
    later with these parts is bound without a change here.

    Returns:
        ``(JSON path, explanation)`` pairs in field order; empty when all are bound.
    """
    found = []
    for path, part in _parts(body, "$"):
        if isinstance(part, RequestingAuthority) and part.member != sender:
            found.append((f"{path}.member", f"{part.member} is not the sender {sender}"))
        elif isinstance(part, RequestedAuthority) and part.member != recipient:
            found.append((f"{path}.member", f"{part.member} is not the recipient {recipient}"))
        elif isinstance(part, Statistics) and part.member != sender:  # §20.5: own figures
            found.append((f"{path}.member", f"{part.member} is not the sender {sender}"))
    return found


def _parts(value: object, path: str) -> Iterator[tuple[str, object]]:
    if isinstance(value, msgspec.Struct):
        yield path, value
        # No body struct renames a field, so the names are the names on the wire.
        for name in value.__struct_fields__:
            yield from _parts(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            yield from _parts(item, f"{path}[{i}]")
