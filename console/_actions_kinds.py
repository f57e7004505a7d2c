"""The case actions beyond the preservation flow, from a posted form to a body.

- ``impossible``: the request cannot be executed (``impossible_to_execute``), with the
  coded reason, an explanation and, for data held elsewhere, the country to ask;
- ``traffic-data``: expedited disclosure of preserved traffic data (ETS 185 Art. 30(1)):
  the provider of the other State and the path the communication took, one hop a line;
- ``emergency-answer``: the determination on an emergency request (CETS 224 Art. 9(6)),
  with its conditions, refusal ground and formalisation (Art. 9(5));
- ``assistance-answer``: the answer to a request for assistance (ETS 185 Art. 35), with
  its coded outcome and, when redirected, to whom;
- ``follow-up``: a question, or the answer to the latest question received, on either side.

The requested side's answers are built by ``node.replies`` (the CLI's ``node reply``, the
same values giving the same body), their structured parts passed as the CLI's ``--file``
JSON would be. A bad value is named by its JSON path (``$.path[1].country: ...``), which
``console/_actions_spec.py`` ``at_field`` turns into the form field it is shown at.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any, Final

from console import _actions_spec as sp
from console._security import Form
from node import replies
from schemas import node_api as api
from schemas.messages import Body

_PORT: Final = re.compile(r"[0-9]{1,5}\Z", re.ASCII)
#: the parts of one hop's line, in order, separated by ";"
HOP_PARTS: Final = ("provider", "country", "address", "seen_at", "port")
MAX_CONDITIONS: Final = 20  # the schema's bound on an emergency answer's conditions


def hop(line: str) -> dict[str, Any]:
    """One line of the path: ``provider; country; IP address; seen at; port`` (all but the
    provider optional; an address needs its time, RFC 3339 with offset).

    Values are passed as typed: the schema judges them and names the hop that is wrong.

    Raises:
        ActionInput: more parts than a hop has.
    """
    parts = [p.strip() for p in line.split(";")]
    if len(parts) > len(HOP_PARTS):
        raise sp.ActionInput("path")
    named = dict(zip(HOP_PARTS, parts, strict=False))
    out: dict[str, Any] = {"provider": named["provider"]}
    if named.get("country"):
        out["country"] = named["country"]
    address, seen, port = named.get("address"), named.get("seen_at"), named.get("port")
    if address:
        ident: dict[str, Any] = {"type": "ip", "address": address}
        if seen:
            ident["seen_at"] = seen
        if port:  # ASCII digits become a number; anything else the schema refuses
            ident["port"] = int(port) if _PORT.match(port) else port
        out["identifiers"] = [ident]
    elif seen or port:
        raise sp.ActionInput("path")
    return out


def _lines(text: str | None) -> list[str]:
    return [] if text is None else [s.strip() for s in text.splitlines() if s.strip()]


def _impossible(spec: sp.ActionSpec, f: Form, detail: api.CaseDetail, **kw: Any) -> Body:
    opts = sp.given(
        reason=(sp.choice(f, spec, "reason"),),
        explanation=sp.required(f, "explanation"),
        redirect_country=sp.optional(f, "redirect_country"),
    )
    return replies.reply_body(detail, "impossible", opts, **kw)


def _traffic(spec: sp.ActionSpec, f: Form, detail: api.CaseDetail, **kw: Any) -> Body:
    provider = {"name": sp.required(f, "provider")}
    country = sp.optional(f, "provider_country")
    if country is not None:
        provider["country"] = country
    path = [hop(line) for line in _lines(sp.required(f, "path"))]
    opts = sp.given(text=sp.optional(f, "traffic_data"))
    extra = {"provider": provider, "path": path}
    return replies.reply_body(detail, "traffic-data", opts, extra=extra, **kw)


def _emergency(spec: sp.ActionSpec, f: Form, detail: api.CaseDetail, **kw: Any) -> Body:
    extra: dict[str, Any] = {"decision": sp.choice(f, spec, "decision")}
    conditions = _lines(sp.optional(f, "conditions"))
    if len(conditions) > MAX_CONDITIONS:
        raise sp.ActionInput("conditions")
    if conditions:
        extra["conditions"] = conditions
    ground = sp.maybe_choice(f, spec, "refusal_ground")
    if ground is not None:
        extra["refusal_ground"] = ground
    required = sp.optional(f, "formalisation_required")
    if required not in (None, "yes"):
        raise sp.ActionInput("formalisation_required")
    if required:
        extra["formalisation_required"] = True
    instructions = sp.optional(f, "formalisation_instructions")
    if instructions is not None:
        extra["formalisation_instructions"] = instructions
    opts = sp.given(
        text=sp.optional(f, "data_disclosed"), explanation=sp.optional(f, "explanation")
    )
    return replies.reply_body(detail, "answer", opts, extra=extra, **kw)


def _assistance(spec: sp.ActionSpec, f: Form, detail: api.CaseDetail, **kw: Any) -> Body:
    opts = sp.given(outcome=sp.choice(f, spec, "outcome"), text=sp.required(f, "answer"))
    redirect = sp.optional(f, "redirect_to")
    extra = {} if redirect is None else {"redirect_to": redirect}
    return replies.reply_body(detail, "answer", opts, extra=extra, **kw)


def own_ref(detail: api.CaseDetail) -> str:
    """Our reference in the case: the one of our first message, else the default a reply
    takes (``relay247-`` and the start of the case id, as ``node.replies``)."""
    for entry in detail.timeline:
        if entry.direction == "out" and entry.body is not None:
            return entry.body.sender_ref
    return f"relay247-{detail.summary.case_id[:12]}"


def latest_question(detail: api.CaseDetail) -> str | None:
    """The message id of the latest follow-up question the other side asked."""
    asked = [
        e.msg_id
        for e in detail.timeline
        if e.direction == "in"
        and e.kind == "follow_up"
        and str(getattr(e.body, "role", "")) == "question"
    ]
    return asked[-1] if asked else None


def _follow_up(spec: sp.ActionSpec, f: Form, detail: api.CaseDetail, **kw: Any) -> Body:
    role = sp.choice(f, spec, "role")
    fields: dict[str, Any] = {
        "kind": "follow_up",
        "case_id": detail.summary.case_id,
        "sender_ref": own_ref(detail),
        "role": role,
        "topic": sp.choice(f, spec, "topic"),
        "text": sp.required(f, "text"),
    }
    if role == "answer":  # an answer names what it answers (S12): the latest question
        question = latest_question(detail)
        if question is None:
            raise sp.ActionInput("role")
        fields["in_reply_to"] = question
    return replies.body_from_fields(fields)


BUILDERS: Final[dict[str, Callable[..., Body]]] = {
    "impossible": _impossible,
    "traffic-data": _traffic,
    "emergency-answer": _emergency,
    "assistance-answer": _assistance,
    "follow-up": _follow_up,
}


def build_kind(
    spec: sp.ActionSpec, form: Form, *, detail: api.CaseDetail, now: datetime, tz: tzinfo | None
) -> Body:
    """The body of one of :data:`BUILDERS`' actions from the posted form.

    Raises:
        ActionInput: a field is missing or has a bad value.
        FormError: a field is sent twice.
        ReplyError: the values do not make a valid body (named by its JSON path).
    """
    builder = BUILDERS[spec.name]
    if spec.name == "follow-up":
        return builder(spec, form, detail)
    return builder(spec, form, detail, now=now, tz=tz)
