"""Example bodies addressed to the members a test actually uses (step E14).

The examples of ``schemas.examples`` tell one story, FR asking DE-BKA; a body's
``requesting.member`` and ``requested.member`` must name the envelope's sender and
recipient, so a test sending an example elsewhere rebinds them first.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec

from schemas._parts import RequestedAuthority, RequestingAuthority

B = TypeVar("B", bound=msgspec.Struct)


def addressed(body: B, sender: str, recipient: str) -> B:
    """``body`` with every ``requesting.member`` set to ``sender`` and every
    ``requested.member`` to ``recipient`` (top-level parts: where bodies have them)."""
    changes: dict[str, object] = {}
    for name in body.__struct_fields__:
        part = getattr(body, name)
        if isinstance(part, RequestingAuthority):
            changes[name] = msgspec.structs.replace(part, member=sender)
        elif isinstance(part, RequestedAuthority):
            changes[name] = msgspec.structs.replace(part, member=recipient)
    return msgspec.structs.replace(body, **changes) if changes else body
