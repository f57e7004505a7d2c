"""The new-request form as an onward transfer request (CETS 224 Art. 14(10)(a)).

A Party that received personal data under the Protocol asks the transferring authority
before passing them on to another State or an international organisation. The body
names the recipient (a State needs its country), describes the data and the purpose,
may give the safeguards and the time an answer is needed by (the assistance input of
that name), and has none of the other kinds' parts: no requesting or requested
authority (the recipient is the member chosen on the form), offence, identifiers or
data range. The reshaped tree is decoded and checked as any other, each error at its
input with the CLI's JSON path.
"""

from __future__ import annotations

from typing import Any, Final

ONWARD: Final = "onward_transfer_request"
#: the inputs only an onward transfer request uses (JSON fields of the same names)
ONLY: Final = (
    "recipient_kind",
    "recipient",
    "recipient_country",
    "data_description",
    "purpose",
    "safeguards",
)
#: the fields of the assembled tree it keeps
_KEEP: Final = ("case_id", "sender_ref", "languages", "answer_needed_by")


def reshape(tree: dict[str, Any]) -> None:
    """Turn the assembled preservation tree into an onward transfer request (in place)."""
    kept: dict[str, Any] = {k: tree[k] for k in (*_KEEP, *ONLY) if k in tree}
    tree.clear()
    tree.update({"kind": ONWARD, **kept})
