"""The case actions beyond the preservation flow, from a posted form to a body.

- ``impossible``: the request cannot be executed (``impossible_to_execute``), with the
  coded reason, an explanation and, for data held elsewhere, the country to ask;
- ``traffic-data``: expedited disclosure of preserved traffic data (ETS 185 Art. 30(1)):
  the provider of the other State and the path the communication took, one hop a line;
- ``emergency-answer``: the determination on an emergency request (CETS 224 Art. 9(6)),
  with its conditions, refusal ground and formalisation (Art. 9(5));
- ``assistance-answer``: the answer to a request for assistance (ETS 185 Art. 35), with
  its coded outcome and, when redirected, to whom;
- ``follow-up``: a question, or the answer to the latest question received, on either side;
- ``onward-answer``: the transferring Party's decision on an onward transfer of the data
  it gave (CETS 224 Art. 14(10)(a)), with its conditions or the reason for a refusal;
- ``security-incident``: notice of a security incident affecting data received (CETS 224
  Art. 14(7)(b)), on either side, the officer (an e-mail or a phone number the form
  fills from the account) being the contact to call back.

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
from node.officers import Officer
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


def _onward(spec: sp.ActionSpec, f: Form, detail: api.CaseDetail, **kw: Any) -> Body:
    extra: dict[str, Any] = {"decision": sp.choice(f, spec, "decision")}
    conditions = _lines(sp.optional(f, "conditions"))
    if len(conditions) > MAX_CONDITIONS:
        raise sp.ActionInput("conditions")
    if conditions:
        extra["conditions"] = conditions
    opts = sp.given(explanation=sp.optional(f, "explanation"))
    return replies.reply_body(detail, "answer", opts, extra=extra, **kw)


def _checked(f: Form, name: str) -> bool:
    """A checkbox: absent is False, "yes" is True, anything else is the officer's error."""
    value = sp.optional(f, name)
    if value not in (None, "yes"):
        raise sp.ActionInput(name)
    return value == "yes"


def incident_body(spec: sp.ActionSpec, f: Form, detail: api.CaseDetail, officer: Officer) -> Body:
    """The security incident notice; instants are passed as typed (RFC 3339 with an
    offset), for the schema to judge and name by path (``$.discovered_at``)."""
    contact = {"name": officer.display_name}
    email, phone = sp.optional(f, "officer_email"), sp.optional(f, "officer_phone")
    contact |= {k: v for k, v in (("email", email), ("phone", phone)) if v is not None}
    fields: dict[str, Any] = {
        "kind": "security_incident_notice",
        "case_id": detail.summary.case_id,
        "sender_ref": own_ref(detail),
        "incident": sp.choice(f, spec, "incident"),
        "discovered_at": sp.required(f, "discovered_at"),
        "description": sp.required(f, "description"),
        "risk": sp.choice(f, spec, "risk"),
        "mitigation": sp.required(f, "mitigation"),
        "individuals_notified": _checked(f, "individuals_notified"),
        "restrict_further_transmission": _checked(f, "restrict_further_transmission"),
        "contact": contact,
    }
    occurred = sp.optional(f, "occurred_at")
    if occurred is not None:
        fields["occurred_at"] = occurred
    return replies.body_from_fields(fields)


BUILDERS: Final[dict[str, Callable[..., Body]]] = {
    "impossible": _impossible,
    "traffic-data": _traffic,
    "emergency-answer": _emergency,
    "assistance-answer": _assistance,
    "follow-up": _follow_up,
    "onward-answer": _onward,
    "security-incident": incident_body,
}


def build_kind(
    spec: sp.ActionSpec,
    form: Form,
    *,
    detail: api.CaseDetail,
    officer: Officer,
    now: datetime,
    tz: tzinfo | None,
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
    if spec.name == "security-incident":
        return builder(spec, form, detail, officer)
    return builder(spec, form, detail, now=now, tz=tz)
