"""Step E13: decode a verified body and check it agrees with the signed header."""

from __future__ import annotations

import msgspec

from protocol._codec import reject_duplicate_keys
from protocol.envelope import Opened
from protocol.errors import MalformedError, VerificationError
from schemas.errors import ErrorCode
from schemas.messages import Body, coarse_kind, decode_body, priority_of, semantic_errors


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
    try:
        body = decode_body(opened.body)
    except msgspec.ValidationError as exc:
        raise MalformedError(f"invalid body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise MalformedError("body is not valid JSON", detail=str(exc)) from None
    except UnicodeDecodeError:
        raise MalformedError("body is not valid UTF-8") from None
    # J1: no object of the body repeats a key (the sender signed these exact bytes).
    reject_duplicate_keys(opened.body, "body")
    problems = semantic_errors(body)
    if problems:
        path, text = problems[0]
        raise MalformedError(
            f"invalid body: {text} - at `{path}`", detail=f"{len(problems)} problems"
        )
    header = opened.header
    if (
        body.case_id != header.case_id
        or coarse_kind(body) is not header.kind
        or priority_of(body) is not header.priority
    ):
        raise VerificationError(
            "body disagrees with the signed header", code=ErrorCode.BINDING_MISMATCH
        )
    return body
