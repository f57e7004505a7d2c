"""The case actions an officer may take, which side and state each belongs to, and how a
posted form becomes the values ``node.replies`` builds the body from (the kinds beyond the
preservation flow are built in ``console/_actions_kinds.py``).

Which actions are shown follows the case machine of ``protocol/_cases_apply.py``
(PROTOCOL.md §10.11): the requested side answers (taken in charge, preserved, 29(6)
warning, refusal, impossible to execute, the Art. 30(1) traffic data, the answer to an
emergency request under CETS 224 Art. 9, the answer to an ETS 185 Art. 35 request for
assistance, the decision on a CETS 224 Art. 14(10)(a) onward transfer), the requester
follows up (the 29(6) decision, extension, withdrawal, MLA submitted), and either side
asks or answers a follow-up or notifies a security incident (CETS 224 Art. 14(7)(b)). A
posted action is checked again against the real machine (:func:`allowed_now`), so a stale
page or a forged form is refused, never sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from console._security import Form, FormError, one
from node.officers import Officer, Permission
from protocol import cases as pc
from schemas._bodies_dataprot import IncidentType, OnwardDecision, RiskLevel
from schemas._bodies_other import (
    AssistanceOutcome,
    EmergencyDecision,
    FollowUpRole,
    FollowUpTopic,
)
from schemas._bodies_request import MlaStatus, WarningDecision, WithdrawalReason
from schemas._bodies_response import ImpossibilityReason, RefusalGround, WarningReason
from schemas.messages import Body

S = pc.CaseState
_OPEN: Final = frozenset(S) - pc.TERMINAL_STATES - {S.NEW, S.EXPIRED}
_ANSWERING: Final = _OPEN - {S.SENT}  # the requested side holds a received request
_TALKING: Final = frozenset(S) - {S.NEW}  # a follow-up fits any case that has begun
# A calendar date typed in the form: ASCII digits only (no "٢٠٢٦"), checked before parsing.
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z", re.ASCII)
MAX_TEXT: Final = 4000  # characters of one free-text field (the schemas bound them too)


class ActionInput(Exception):  # noqa: N818  # named for what the officer must fix
    """A field of the action's form has a bad value (shown at the form, 400)."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


@dataclass(frozen=True)
class ActionSpec:
    """One action: its URL name, body kind, side, permission and the states it fits."""

    name: str
    kind: str
    side: pc.Side
    permission: Permission
    states: frozenset[pc.CaseState]
    preservation_only: bool
    #: its selects: (field name, the schema's enum name, its coded values)
    choices: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    #: the one request kind it answers (None: any)
    request_kind: str | None = None
    #: offered on both sides (a follow-up), not only on ``side``
    both_sides: bool = False
    #: the body's top-level field (a prefix of the CLI's JSON path) -> the form field an
    #: error of that path is shown at; the longest prefix wins
    json_fields: tuple[tuple[str, str], ...] = ()

    def coded(self, name: str) -> tuple[str, ...]:
        """The coded values the select ``name`` offers."""
        return next(values for field, _enum, values in self.choices if field == name)


def _values(name: str, enum: Any) -> tuple[str, str, tuple[str, ...]]:
    return name, enum.__name__, tuple(str(m.value) for m in enum)


REQUESTED, REQUESTER = pc.Side.REQUESTED, pc.Side.REQUESTER
#: the security incident form's fields, each named as the body's field it fills
INCIDENT_FIELDS: Final = (
    "incident",
    "discovered_at",
    "occurred_at",
    "description",
    "risk",
    "mitigation",
    "individuals_notified",
    "restrict_further_transmission",
)
ACTIONS: Final = (
    ActionSpec(
        "taken-in-charge",
        "taken_in_charge",
        REQUESTED,
        Permission.REPLY,
        frozenset({S.RECEIVED, S.TAKEN_IN_CHARGE}),
        False,
    ),
    ActionSpec("preserved", "preserved", REQUESTED, Permission.REPLY, _ANSWERING, True),
    ActionSpec(
        "warning",
        "preservation_warning",
        REQUESTED,
        Permission.REPLY,
        _ANSWERING,
        True,
        (_values("reason", WarningReason),),
    ),
    ActionSpec(
        "refused",
        "refusal",
        REQUESTED,
        Permission.REPLY,
        _ANSWERING,
        False,
        (_values("ground", RefusalGround),),
    ),
    ActionSpec(
        "decision",
        "warning_decision",
        REQUESTER,
        Permission.SEND,
        frozenset({S.WARNED}),
        True,
        (_values("decision", WarningDecision),),
    ),
    ActionSpec(
        "extend",
        "preservation_extension",
        REQUESTER,
        Permission.SEND,
        _OPEN,
        True,
        (_values("mla_status", MlaStatus),),
    ),
    ActionSpec(
        "withdraw",
        "preservation_withdrawal",
        REQUESTER,
        Permission.SEND,
        _OPEN,
        True,
        (_values("reason", WithdrawalReason),),
    ),
    ActionSpec("mla-submitted", "mla_submitted", REQUESTER, Permission.SEND, _OPEN, True),
    ActionSpec(
        "impossible",
        "impossible_to_execute",
        REQUESTED,
        Permission.REPLY,
        _ANSWERING,
        False,
        (_values("reason", ImpossibilityReason),),
        json_fields=(
            ("reason", "reason"),
            ("explanation", "explanation"),
            ("redirect_country", "redirect_country"),
        ),
    ),
    ActionSpec(
        "traffic-data",
        "traffic_data_disclosure",
        REQUESTED,
        Permission.REPLY,
        _ANSWERING,
        True,
        json_fields=(
            ("provider", "provider"),
            ("provider.country", "provider_country"),
            ("path", "path"),
            ("traffic_data", "traffic_data"),
        ),
    ),
    ActionSpec(
        "emergency-answer",
        "emergency_disclosure_answer",
        REQUESTED,
        Permission.REPLY,
        _ANSWERING,
        False,
        (_values("decision", EmergencyDecision), _values("refusal_ground", RefusalGround)),
        request_kind="emergency_disclosure_request",
        json_fields=tuple(
            (n, n)
            for n in (
                "decision",
                "data_disclosed",
                "conditions",
                "refusal_ground",
                "explanation",
                "formalisation_required",
                "formalisation_instructions",
            )
        ),
    ),
    ActionSpec(
        "assistance-answer",
        "assistance_answer",
        REQUESTED,
        Permission.REPLY,
        _ANSWERING,
        False,
        (_values("outcome", AssistanceOutcome),),
        request_kind="assistance_request",
        json_fields=(("outcome", "outcome"), ("answer", "answer"), ("redirect_to", "redirect_to")),
    ),
    ActionSpec(
        "follow-up",
        "follow_up",
        REQUESTED,
        Permission.REPLY,
        _TALKING,
        False,
        (_values("role", FollowUpRole), _values("topic", FollowUpTopic)),
        both_sides=True,
        json_fields=(
            ("role", "role"),
            ("in_reply_to", "role"),
            ("topic", "topic"),
            ("text", "text"),
        ),
    ),
    ActionSpec(
        "onward-answer",
        "onward_transfer_answer",
        REQUESTED,
        Permission.REPLY,
        _ANSWERING,
        False,
        (_values("decision", OnwardDecision),),
        request_kind="onward_transfer_request",
        json_fields=tuple((n, n) for n in ("decision", "conditions", "explanation")),
    ),
    # CETS 224 Art. 14(7)(b): the Party that received data notifies the one that sent it;
    # in a case both sides have received personal data, so both may notify
    ActionSpec(
        "security-incident",
        "security_incident_notice",
        REQUESTED,
        Permission.REPLY,
        _TALKING,
        False,
        (_values("incident", IncidentType), _values("risk", RiskLevel)),
        both_sides=True,
        json_fields=(
            *((n, n) for n in INCIDENT_FIELDS),
            ("contact", "officer_email"),
            ("contact.email", "officer_email"),
            ("contact.phone", "officer_phone"),
        ),
    ),
)
BY_NAME: Final = {a.name: a for a in ACTIONS}


def fits(spec: ActionSpec, case: pc.Case) -> bool:
    """Whether the case's side, request kind and state admit ``spec`` (what is shown)."""
    if case.side is not spec.side and not spec.both_sides:
        return False
    if case.state not in spec.states:
        return False
    if spec.request_kind is not None and case.request_kind != spec.request_kind:
        return False
    return not spec.preservation_only or case.request_kind == "preservation_request"


def offered(case: pc.Case, officer: Officer, may: Any) -> list[ActionSpec]:
    """The actions shown on the case page: they fit the case and the officer may."""
    return [a for a in ACTIONS if fits(a, case) and may(officer.roles, a.permission)]


def allowed_now(case: pc.Case, body: Body, now: datetime) -> bool:
    """Replay ``body`` as our next message on the real case machine: no anomaly, no
    refusal (PROTOCOL.md §10.11); a stale page cannot send what the state forbids."""
    trial = pc.MessageEvent(msg_id="console-trial", at=now, outgoing=True, body=body)
    after = pc.apply(case, trial)
    return bool(after.timeline) and after.timeline[-1].anomaly is None


def optional(form: Form, name: str) -> str | None:
    """A field that may be absent or empty; sent twice (or as a file) is a FormError."""
    values = form.getall(name, [])
    if not values:
        return None
    if len(values) != 1 or not isinstance(values[0], str):
        raise FormError(name)
    text = values[0].strip()
    if len(text) > MAX_TEXT:
        raise ActionInput(name)
    return text or None


def required(form: Form, name: str) -> str:
    """A field that must be there and not empty."""
    value = optional(form, name)
    if value is None:
        raise ActionInput(name)
    return value


def date_field(form: Form, name: str, *, needed: bool = False) -> str | None:
    """A ``YYYY-MM-DD`` field in ASCII digits (``<input type=date>`` sends that)."""
    value = required(form, name) if needed else optional(form, name)
    if value is not None and not _DATE.match(value):
        raise ActionInput(name)
    return value


def choice(form: Form, spec: ActionSpec, name: str) -> str:
    """One value of the action's select, which must be one of its coded values."""
    value = one(form, name)
    if value not in spec.coded(name):
        raise ActionInput(name)
    return value


def maybe_choice(form: Form, spec: ActionSpec, name: str) -> str | None:
    """An optional select: absent or "(choose)" is None, else one of its coded values."""
    value = optional(form, name)
    if value is not None and value not in spec.coded(name):
        raise ActionInput(name)
    return value


def at_field(spec: ActionSpec, message: str) -> str | None:
    """The form field a ``$.path: problem`` error of ``spec``'s body is shown at."""
    path = message.partition(":")[0].removeprefix("$.")
    fitting = [
        (len(prefix), field)
        for prefix, field in spec.json_fields
        if path == prefix or path.startswith((prefix + ".", prefix + "["))
    ]
    return max(fitting)[1] if fitting else None


def choices(form: Form, spec: ActionSpec, name: str) -> tuple[str, ...]:
    """The checked boxes of a multiple choice (at least one, each once, each coded)."""
    values = form.getall(name, [])
    allowed = spec.coded(name)
    if not values or len(set(values)) != len(values):
        raise ActionInput(name)
    if any(not isinstance(v, str) or v not in allowed for v in values):
        raise ActionInput(name)
    return tuple(str(v) for v in values)


def given(**values: Any) -> dict[str, Any]:
    """The values the officer filled (``node.replies`` takes only those)."""
    return {k: v for k, v in values.items() if v is not None}
