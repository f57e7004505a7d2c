"""The new-request form as an emergency request (CETS 224 Art. 9), from the same inputs.

The officer chooses the kind on the form. An ``emergency_disclosure_request`` shares the
requesting and requested sides, the offence, the data and the case with a preservation
request; it names the ``providers`` instead of one custodian (the custodian inputs),
states that it is made under the Protocol (Art. 9(3)(b)), describes the emergency
(Art. 9(3)(e), a significant and imminent risk to a person's life or safety, Art. 3(2)(c))
and may give procedural instructions (Art. 9(3)(g)); it has no 29(2) grounds, MLA intent
or priority (it is always urgent). Art. 9(3)(d) asks for the legal provisions and the
applicable penalty: the penalty input serves both kinds (optional for a preservation).

The reshaped tree is then decoded and checked as any other (``console/_send_form.py``
``check``), so each error keeps the CLI's JSON path and lands at its input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from console import _send_assistance as sa
from console import _send_onward as so

PRESERVATION: Final = "preservation_request"
EMERGENCY: Final = "emergency_disclosure_request"
KINDS: Final = (PRESERVATION, EMERGENCY, sa.ASSISTANCE, so.ONWARD)
#: inputs the kinds add to the form (text values; the checkbox "yes" or "")
TEXTS: Final = ("offence_penalty", "emergency_facts", "procedural_instructions")
CHECK: Final = "protocol_statement"
INPUTS: Final = ("kind", *TEXTS, CHECK)
#: fields of a preservation request an emergency request does not have
_PRESERVATION_ONLY: Final = (
    "status",
    "necessity",
    "mla_intent",
    "mla_expected_by",
    "art30_disclosure",
    "priority",
    "custodian",
)


def reshape(tree: dict[str, Any], values: Mapping[str, Any], at: dict[str, str]) -> None:
    """Turn the assembled preservation tree into the chosen kind's (in place), and say
    which input each of the kind's JSON paths comes from."""
    at["$.offence.max_penalty"] = "offence_penalty"
    if values.get("offence_penalty"):
        tree.setdefault("offence", {})["max_penalty"] = values["offence_penalty"]
    if values.get("kind") == so.ONWARD:
        so.reshape(tree)
        return
    for key in so.ONLY:  # the onward transfer inputs are ignored for the other kinds
        tree.pop(key, None)
    if values.get("kind") == sa.ASSISTANCE:
        sa.reshape(tree, at)
        return
    for key in sa.ONLY:  # the assistance inputs are ignored for the other kinds
        tree.pop(key, None)
    if values.get("kind") != EMERGENCY:
        return
    custodian = tree.get("custodian")
    for key in _PRESERVATION_ONLY:
        tree.pop(key, None)
    tree["kind"] = EMERGENCY
    tree["providers"] = [custodian] if custodian else []
    at |= {
        "$.providers": "custodian_name",
        "$.providers[0]": "custodian_name",
        "$.providers[0].name": "custodian_name",
        "$.providers[0].country": "custodian_country",
        "$.protocol_statement": CHECK,
        "$.emergency_facts": "emergency_facts",
        "$.procedural_instructions": "procedural_instructions",
    }
    tree["protocol_statement"] = values.get(CHECK) == "yes"
    for name in ("emergency_facts", "procedural_instructions"):
        if values.get(name):
            tree[name] = values[name]
