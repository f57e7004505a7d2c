"""The new-request form as a request for assistance (ETS 185 Art. 35), from its inputs.

A 24/7 point gives immediate assistance: technical advice, legal information, the
collection of evidence, locating suspects (Art. 35(1)). The body names the requesting
side, the kind of assistance, a subject and the details, and may carry identifiers
(the form's identifier rows) and the time an answer is needed by; it names no requested
authority (the recipient is the member chosen on the form) and has no offence or data
description. The reshaped tree is decoded and checked as any other, each error at its
input with the CLI's JSON path.
"""

from __future__ import annotations

from typing import Any, Final

ASSISTANCE: Final = "assistance_request"
#: the inputs only a request for assistance uses (JSON fields of the same names)
ONLY: Final = ("assistance", "subject", "details", "answer_needed_by")
#: fields of the assembled preservation tree a request for assistance does not have
_NOT_HERE: Final = (
    "issued_at",
    "requested",
    "status",
    "offence",
    "custodian",
    "necessity",
    "mla_intent",
    "mla_expected_by",
    "art30_disclosure",
)
_FROM, _TO = "$.data.identifiers", "$.identifiers"


def reshape(tree: dict[str, Any], at: dict[str, str]) -> None:
    """Turn the assembled preservation tree into a request for assistance (in place)."""
    for key in _NOT_HERE:
        tree.pop(key, None)
    data = tree.pop("data", {})
    if data.get("identifiers"):
        tree["identifiers"] = data["identifiers"]
    tree["kind"] = ASSISTANCE
    for path, name in list(at.items()):
        if path.startswith(_FROM):
            at[_TO + path[len(_FROM) :]] = name
