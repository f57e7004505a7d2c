"""Cross-field rules that msgspec constraints cannot express.

Each rule yields ``(path, message)`` with a JSON path in msgspec's own style
(``$.data.identifiers[0].port``). The numbering S1..S14 (S13 is the links rule) matches
docs/PROTOCOL.md §10.8.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgspec

from schemas._attachment import BAD_FILE_NAME, ct_len_for, file_name_refused
from schemas._bodies_base import BodyBase, DataSpec
from schemas._bodies_dataprot import (
    OnwardDecision,
    OnwardTransferAnswer,
    OnwardTransferRequest,
    RecipientKind,
    SecurityIncidentNotice,
)
from schemas._bodies_other import (
    AssistanceAnswer,
    AssistanceOutcome,
    AssistanceRequest,
    EmergencyDecision,
    EmergencyDisclosureAnswer,
    EmergencyDisclosureRequest,
)
from schemas._bodies_request import (
    PreservationRequest,
    PreservationWithdrawal,
    RequestStatus,
    WarningDecision,
    WarningDecisionBody,
    WithdrawalReason,
)
from schemas._bodies_response import (
    ImpossibilityReason,
    ImpossibleToExecute,
    PreservationScope,
    Preserved,
    TrafficDataDisclosure,
)
from schemas._identifiers import Identifier, IpId, IpRole
from schemas._links import link_problems
from schemas._parts import Contact, DataRange, Offence, RequestingAuthority
from schemas._stats import StatisticsReport, figure_problems

Problem = tuple[str, str]
Problems = Iterator[Problem]


def _contact(path: str, c: Contact) -> Problems:
    # S3: a contact nobody can reach is useless at 3 a.m.
    if c.phone is None and c.mobile is None and c.email is None:
        yield path, "contact needs at least one of phone, mobile or email"


def _requesting(path: str, a: RequestingAuthority) -> Problems:
    yield from _contact(f"{path}.officer", a.officer)


def _range(path: str, r: DataRange | None) -> Problems:
    # S4: time runs forwards (also for preserved_until and incident times below).
    if r is not None and r.start > r.end:
        yield f"{path}.start", "date range starts after it ends"


def _identifiers(path: str, idents: tuple[Identifier, ...]) -> Problems:
    for i, ident in enumerate(idents):
        if isinstance(ident, IpId):
            yield from _ip(f"{path}[{i}]", ident)


def _ip(path: str, ip: IpId) -> Problems:
    # S5: exact address syntax; S6: CGNAT makes an IPv4 source without port ambiguous.
    try:
        addr = ipaddress.ip_address(ip.address)
    except ValueError:
        yield f"{path}.address", "not a valid IPv4 or IPv6 address"
        return
    if addr.version == 4 and ip.role is IpRole.SOURCE and ip.port is None:
        yield f"{path}.port", "an IPv4 source address needs its source port (shared by CGNAT)"


def _data(path: str, d: DataSpec) -> Problems:
    yield from _identifiers(f"{path}.identifiers", d.identifiers)
    yield from _range(f"{path}.date_range", d.date_range)
    # S7
    if len(set(d.categories)) != len(d.categories):
        yield f"{path}.categories", "a data category is listed twice"


def _preservation_request(b: PreservationRequest) -> Problems:
    # S1: Art. 29(2)(f) makes the MLA-intent statement mandatory.
    if not b.mla_intent:
        yield "$.mla_intent", "Art. 29(2)(f): the request must state that MLA will follow"
    # S2: an extension must cite the request it extends, a new request must not.
    if b.status is RequestStatus.EXTENSION and b.previous_ref is None:
        yield "$.previous_ref", "an extension must cite the earlier request's reference"
    if b.status is RequestStatus.NEW and b.previous_ref is not None:
        yield "$.previous_ref", "a new request cannot cite a previous request"
    yield from _requesting("$.requesting", b.requesting)
    if b.confirmation_contact is not None:
        yield from _contact("$.confirmation_contact", b.confirmation_contact)
    for i, o in enumerate(b.other_authorities):
        if o.contact is not None:
            yield from _contact(f"$.other_authorities[{i}].contact", o.contact)
    yield from _data("$.data", b.data)


def _offence_for_emergency(o: Offence) -> Problems:
    # S9: CETS 224 Art. 9(3)(d) asks for the legal provisions and applicable penalties.
    if o.legal_provisions is None:
        yield "$.offence.legal_provisions", "Art. 9(3)(d): legal provisions are required"
    if o.max_penalty is None:
        yield "$.offence.max_penalty", "Art. 9(3)(d): the applicable penalty is required"


def _emergency_request(b: EmergencyDisclosureRequest) -> Problems:
    # S8: CETS 224 Art. 9(3)(b) statement that the request is issued under the Protocol.
    if not b.protocol_statement:
        yield "$.protocol_statement", "Art. 9(3)(b): the request must state it is under CETS 224"
    yield from _offence_for_emergency(b.offence)
    yield from _requesting("$.requesting", b.requesting)
    yield from _data("$.data", b.data)


def _emergency_answer(b: EmergencyDisclosureAnswer) -> Problems:
    # S10
    if b.decision is EmergencyDecision.DISCLOSED_WITH_CONDITIONS and not b.conditions:
        yield "$.conditions", "a conditional disclosure must list its conditions"
    if b.decision is EmergencyDecision.REFUSED and b.refusal_ground is None:
        yield "$.refusal_ground", "a refusal needs a coded ground"
    if b.formalisation_required and b.formalisation_instructions is None:
        yield "$.formalisation_instructions", "say how and where to formalise (Art. 9(5))"


def _need(cond: bool, path: str, msg: str) -> Problems:
    if cond:
        yield path, msg


_CHECKS: dict[type[Any], Callable[[Any], Iterable[Problem]]] = {
    PreservationRequest: _preservation_request,
    EmergencyDisclosureRequest: _emergency_request,
    EmergencyDisclosureAnswer: _emergency_answer,
    # S11: a choice that only makes sense with details ("other", "modify", "partial",
    # "redirected", a conditional decision, ...) must carry them.
    PreservationWithdrawal: lambda b: _need(
        b.reason is WithdrawalReason.OTHER and b.explanation is None,
        "$.explanation",
        "reason 'other' needs an explanation",
    ),
    WarningDecisionBody: lambda b: _need(
        b.decision is WarningDecision.MODIFY and b.explanation is None,
        "$.explanation",
        "decision 'modify' must state the modification",
    ),
    Preserved: lambda b: (
        *_need(b.preserved_until <= b.preserved_at, "$.preserved_until", "ends before it starts"),
        *_need(
            b.scope is PreservationScope.PARTIAL and b.scope_note is None,
            "$.scope_note",
            "a partial preservation must say what was not preserved",
        ),
    ),
    ImpossibleToExecute: lambda b: _need(
        b.reason is ImpossibilityReason.DATA_IN_OTHER_COUNTRY and b.redirect_country is None,
        "$.redirect_country",
        "say which country holds the data",
    ),
    TrafficDataDisclosure: lambda b: (
        p
        for i, hop in enumerate(b.path)
        for p in _identifiers(f"$.path[{i}].identifiers", hop.identifiers)
    ),
    AssistanceRequest: lambda b: (
        *_requesting("$.requesting", b.requesting),
        *_identifiers("$.identifiers", b.identifiers),
    ),
    AssistanceAnswer: lambda b: _need(
        b.outcome is AssistanceOutcome.REDIRECTED and b.redirect_to is None,
        "$.redirect_to",
        "say where the request was redirected",
    ),
    SecurityIncidentNotice: lambda b: (
        *_contact("$.contact", b.contact),
        *_need(
            b.occurred_at is not None and b.occurred_at > b.discovered_at,
            "$.occurred_at",
            "an incident cannot be discovered before it occurred",
        ),
    ),
    OnwardTransferRequest: lambda b: _need(
        b.recipient_kind is RecipientKind.STATE and b.recipient_country is None,
        "$.recipient_country",
        "a State recipient needs its country code",
    ),
    OnwardTransferAnswer: lambda b: (
        *_need(
            b.decision is OnwardDecision.AUTHORISED_WITH_CONDITIONS and not b.conditions,
            "$.conditions",
            "a conditional authorisation must list its conditions",
        ),
        *_need(
            b.decision is OnwardDecision.REFUSED and b.explanation is None,
            "$.explanation",
            "a refusal must be explained",
        ),
    ),
    # S15 (PROTOCOL.md §20.4): consistent figures.
    StatisticsReport: lambda b: figure_problems(b.figures),
}


def _attachments(body: BodyBase) -> Problems:
    # S14: file names a receiving officer can save as they are, each blob named once, and
    # a ciphertext length that is the one the format gives for the size (PROTOCOL.md §15.1).
    if isinstance(body.attachments, msgspec.UnsetType):
        return
    seen: set[str] = set()
    for i, a in enumerate(body.attachments):
        path = f"$.attachments[{i}]"
        if file_name_refused(a.name):
            yield f"{path}.name", BAD_FILE_NAME
        if a.blob_id in seen:
            yield f"{path}.blob_id", "blob named twice"
        seen.add(a.blob_id)
        if a.ct_len != ct_len_for(a.size):
            yield f"{path}.ct_len", "ciphertext length does not match the size"


def check(body: BodyBase, *, is_answer: bool) -> list[Problem]:
    """Run the generic rule and the body's own rules; see ``messages.semantic_errors``."""
    problems: list[Problem] = []
    # S12: an answer that does not say what it answers cannot be filed.
    if is_answer and body.in_reply_to is None:
        problems.append(("$.in_reply_to", "an answer must name the message it answers"))
    # S13: links name other cases, each once.
    problems.extend(link_problems(body.case_id, body.links))
    problems.extend(_attachments(body))
    rule = _CHECKS.get(type(body))
    if rule is not None:
        problems.extend(rule(body))
    return problems


__all__ = ["Problem", "check"]
