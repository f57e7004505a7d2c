"""One realistic, valid example body per kind, with fixed ids and dates.

Scenario: the French 24/7 point (FR) asks the German one (DE-BKA) to preserve the data of
a phishing kit's hosting and mail accounts. Everything is fictitious: names, references,
reserved example domains (RFC 2606), documentation IP ranges (RFC 5737, RFC 3849) and
numbers from the French fiction range (+33 1 99 00 ...).

Used by the tests, the documentation and ``relay247 node template``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Final

from schemas import _bodies_dataprot as dp
from schemas import _bodies_other as ot
from schemas import _bodies_request as rq
from schemas import _bodies_response as rs
from schemas import _identifiers as ids
from schemas import _parts as pt
from schemas import _stats as st
from schemas._bodies_base import DataSpec
from schemas.messages import Body, kind_of
from schemas.types import Priority

CASE_ID: Final = "4f0c2a9e6b1d4e7f8a3c5b2d1e0f9a8b"
REQUEST_MSG_ID: Final = "9b1e4c7a2d5f4a8e9c3b6d1f0e2a7c4b"
EMERGENCY_MSG_ID: Final = "1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6"
WARNING_MSG_ID: Final = "7c3e1a5b9d2f4c6e8a0b1d3f5e7a9c2b"
_FR_REF: Final = "OFAC-2026-00412"
_DE_REF: Final = "SO4-247-2026-0815"
_PARIS = timezone(timedelta(hours=2))
_BERLIN = timezone(timedelta(hours=2))
_T0 = datetime(2026, 5, 12, 3, 10, tzinfo=_PARIS)

_FR_OFFICER = pt.Contact(
    name="Capitaine Claire Martin",
    job_title="Duty officer",
    function="24/7 point of contact",
    phone="+33199000123",
    mobile="+33639980123",
    email="permanence-247@ofac.example.org",
)
_FR = pt.RequestingAuthority(
    member="FR",
    organisation="Office anti-cybercriminalité (OFAC), 24/7 point",
    officer=_FR_OFFICER,
    address="1 rue de l'Exemple, 92000 Nanterre, France",
    office_hours="24/7",
    time_zone="Europe/Paris",
)
_DE = pt.RequestedAuthority(member="DE-BKA", organisation="Bundeskriminalamt, SO 4 24/7")
_DE_OFFICER = pt.Contact(
    name="KHK Jonas Weber", function="24/7 duty desk", email="247@bka.example.net"
)
_OFFENCE = pt.Offence(
    name="Organised fraud by phishing; illegal access",
    legal_provisions="Code pénal art. 313-1, 313-2, 323-1",
    max_penalty="10 years' imprisonment",
    convention_articles=(2, 8),
    summary_of_facts=(
        "Since March 2026 a phishing kit imitating a French bank has collected the "
        "credentials of about 4,000 customers; stolen funds were moved within hours. "
        "The kit is hosted by a German provider and mails its harvest to two accounts."
    ),
)
_HOSTER = pt.Custodian(
    name="Example Hosting GmbH",
    country="DE",
    address="Musterstraße 1, 10115 Berlin, Germany",
    website="https://hosting.example.com/",
)
_DATA = DataSpec(
    identifiers=(
        ids.DomainId(domain="secure-login-bank.example.com"),
        ids.UrlId(url="https://secure-login-bank.example.com/fr/connexion.php"),
        ids.EmailId(address="drop.box.2026@mail.example.net"),
        ids.IpId(
            address="198.51.100.23",
            port=51234,
            seen_at=datetime(2026, 5, 10, 22, 41, 7, tzinfo=UTC),
            note="kit administrator login",
        ),
        ids.IpId(
            address="2001:db8:4:2::17",
            role=ids.IpRole.DESTINATION,
            seen_at=datetime(2026, 5, 10, 22, 41, 7, tzinfo=UTC),
        ),
    ),
    categories=(pt.DataCategory.SUBSCRIBER, pt.DataCategory.TRAFFIC, pt.DataCategory.CONTENT),
    date_range=pt.DataRange(
        start=datetime(2026, 3, 1, tzinfo=_PARIS), end=datetime(2026, 5, 12, tzinfo=_PARIS)
    ),
    relation_to_offence=(
        "The domain and URL host the phishing kit; the mailbox receives the stolen "
        "credentials; the IPv4 address administered the kit."
    ),
)


def _examples() -> dict[str, Body]:
    bodies: list[Body] = [
        rq.PreservationRequest(
            case_id=CASE_ID,
            sender_ref=_FR_REF,
            issued_at=_T0,
            status=rq.RequestStatus.NEW,
            requested=_DE,
            requesting=_FR,
            confirmation_contact=pt.Contact(
                name="Commandant Paul Durand", function="Head of unit", phone="+33199000124"
            ),
            other_authorities=(
                pt.OtherAuthority(
                    role=pt.AuthorityRole.PROSECUTOR,
                    organisation="Parquet de Paris, J3 cybercriminalité",
                    case_number="26/123/456",
                ),
            ),
            offence=_OFFENCE,
            data=_DATA,
            custodian=_HOSTER,
            necessity="Phishing kits are typically removed within days and logs rotate weekly.",
            mla_intent=True,
            mla_expected_by=date(2026, 6, 30),
            art30_disclosure=True,
            priority=Priority.HIGH,
            languages=("fr", "en"),
        ),
        rq.PreservationExtension(
            case_id=CASE_ID,
            sender_ref=_FR_REF,
            previous_ref=_DE_REF,
            requested_until=date(2026, 10, 31),
            mla_status=rq.MlaStatus.IN_PREPARATION,
            reason="The MLA request awaits the translation of the annexes.",
            languages=("fr", "en"),
        ),
        rq.PreservationWithdrawal(
            case_id=CASE_ID,
            sender_ref=_FR_REF,
            previous_ref=_DE_REF,
            reason=rq.WithdrawalReason.DATA_OBTAINED_OTHERWISE,
        ),
        rq.MlaSubmitted(
            case_id=CASE_ID,
            sender_ref=_FR_REF,
            previous_ref=_DE_REF,
            submitted_on=date(2026, 6, 24),
            mla_reference="BEPI-2026-DE-0042",
            sent_to="Bundesamt für Justiz, Bonn",
            channel="diplomatic channel, advance copy by e-mail",
        ),
        rs.TakenInCharge(
            case_id=CASE_ID,
            in_reply_to=REQUEST_MSG_ID,
            sender_ref=_DE_REF,
            officer=_DE_OFFICER,
            note="Provider contacted.",
        ),
        rs.Preserved(
            case_id=CASE_ID,
            in_reply_to=REQUEST_MSG_ID,
            sender_ref=_DE_REF,
            preserved_at=datetime(2026, 5, 12, 9, 30, tzinfo=_BERLIN),
            preserved_until=datetime(2026, 8, 10, 23, 59, tzinfo=_BERLIN),
            categories=(pt.DataCategory.SUBSCRIBER, pt.DataCategory.TRAFFIC),
            scope=rs.PreservationScope.PARTIAL,
            scope_note="Mailbox content is held by a provider outside Germany.",
            custodian=_HOSTER,
            custodian_ref="EXH-LE-2026-3321",
            national_basis="StPO § 100g, 90 days, renewable",
        ),
        rs.PreservationWarning(
            case_id=CASE_ID,
            in_reply_to=REQUEST_MSG_ID,
            sender_ref=_DE_REF,
            reasons=(rs.WarningReason.THREATENS_CONFIDENTIALITY,),
            explanation="The provider's policy is to notify the customer of any order.",
            decision_needed_by=datetime(2026, 5, 13, 12, 0, tzinfo=_BERLIN),
        ),
        rq.WarningDecisionBody(
            case_id=CASE_ID,
            in_reply_to=WARNING_MSG_ID,
            sender_ref=_FR_REF,
            decision=rq.WarningDecision.PROCEED,
            explanation="Proceed: the suspects already know of the investigation.",
        ),
        rs.Refusal(
            case_id=CASE_ID,
            in_reply_to=REQUEST_MSG_ID,
            sender_ref=_DE_REF,
            ground=rs.RefusalGround.DUAL_CRIMINALITY,
            explanation="Reservation under Art. 29(4); the conduct is not an offence here.",
            legal_basis="Declaration of 2009 under Art. 29(4)",
        ),
        rs.ImpossibleToExecute(
            case_id=CASE_ID,
            in_reply_to=REQUEST_MSG_ID,
            sender_ref=_DE_REF,
            reason=rs.ImpossibilityReason.DATA_IN_OTHER_COUNTRY,
            explanation="The mailbox provider only has a reseller in Germany.",
            redirect_country="NL",
        ),
        rs.TrafficDataDisclosure(
            case_id=CASE_ID,
            in_reply_to=REQUEST_MSG_ID,
            sender_ref=_DE_REF,
            provider=pt.Custodian(name="Example Mail B.V.", country="NL"),
            path=(
                rs.PathHop(provider="Example Hosting GmbH", country="DE"),
                rs.PathHop(
                    provider="Example Mail B.V.",
                    country="NL",
                    identifiers=(
                        ids.IpId(
                            address="203.0.113.77",
                            port=25,
                            role=ids.IpRole.DESTINATION,
                            seen_at=datetime(2026, 5, 10, 22, 43, tzinfo=UTC),
                        ),
                    ),
                ),
            ),
            traffic_data="SMTP delivery to 203.0.113.77:25 at 2026-05-10T22:43Z.",
        ),
        ot.EmergencyDisclosureRequest(
            case_id=CASE_ID,
            sender_ref="OFAC-2026-00413",
            issued_at=_T0,
            requested=_DE,
            requesting=_FR,
            protocol_statement=True,
            providers=(_HOSTER,),
            offence=pt.Offence(
                name="Threat to kill",
                legal_provisions="Code pénal art. 222-17",
                max_penalty="5 years' imprisonment",
                summary_of_facts="A user announced a school attack for tomorrow 08:00.",
            ),
            emergency_facts="Specific time and place; the author posted photos of weapons.",
            data=DataSpec(
                identifiers=(ids.AccountId(service="forum.example.com", account="nightfall_77"),),
                categories=(pt.DataCategory.SUBSCRIBER, pt.DataCategory.TRAFFIC),
                relation_to_offence="The account posted the threat.",
            ),
            procedural_instructions="Phone the duty officer before disclosure.",
            languages=("fr", "en"),
        ),
        ot.EmergencyDisclosureAnswer(
            case_id=CASE_ID,
            in_reply_to=EMERGENCY_MSG_ID,
            sender_ref=_DE_REF,
            decision=ot.EmergencyDecision.DISCLOSED_WITH_CONDITIONS,
            data_disclosed="Subscriber: registered 2026-04-02; last login IP 192.0.2.44.",
            conditions=("Use only to prevent the announced attack until an MLA request.",),
            formalisation_required=True,
            formalisation_instructions="Send an MLA request to the Bundesamt für Justiz.",
        ),
        ot.AssistanceRequest(
            case_id=CASE_ID,
            sender_ref=_FR_REF,
            assistance=ot.AssistanceType.LEGAL_INFORMATION,
            requesting=_FR,
            subject="Retention period for IP logs of German hosting providers",
            details="How long may a hosting provider keep IP logs under German law?",
            languages=("fr", "en"),
        ),
        ot.AssistanceAnswer(
            case_id=CASE_ID,
            in_reply_to=REQUEST_MSG_ID,
            sender_ref=_DE_REF,
            outcome=ot.AssistanceOutcome.ANSWERED,
            answer="No general retention duty applies; providers usually keep 7 days.",
        ),
        ot.FollowUp(
            case_id=CASE_ID,
            sender_ref=_FR_REF,
            role=ot.FollowUpRole.QUESTION,
            topic=ot.FollowUpTopic.STATUS,
            text="Could you confirm whether the provider acknowledged the order?",
        ),
        dp.SecurityIncidentNotice(
            case_id=CASE_ID,
            sender_ref=_FR_REF,
            incident=dp.IncidentType.MISDIRECTED_TRANSMISSION,
            discovered_at=datetime(2026, 5, 20, 10, 0, tzinfo=_PARIS),
            occurred_at=datetime(2026, 5, 19, 16, 5, tzinfo=_PARIS),
            description="A printout of the disclosed subscriber data was sent to a wrong unit.",
            categories=(pt.DataCategory.SUBSCRIBER,),
            risk=dp.RiskLevel.LOW,
            mitigation="Recovered the same day; the recipient unit confirmed destruction.",
            contact=_FR_OFFICER,
        ),
        dp.OnwardTransferRequest(
            case_id=CASE_ID,
            sender_ref=_FR_REF,
            recipient_kind=dp.RecipientKind.STATE,
            recipient="Belgian Federal Computer Crime Unit",
            recipient_country="BE",
            data_description="Subscriber data disclosed on 2026-05-12.",
            purpose="A Belgian accomplice is under investigation for the same fraud.",
            languages=("fr", "en"),
        ),
        dp.OnwardTransferAnswer(
            case_id=CASE_ID,
            in_reply_to=REQUEST_MSG_ID,
            sender_ref=_DE_REF,
            decision=dp.OnwardDecision.AUTHORISED_WITH_CONDITIONS,
            conditions=("Only for the Belgian fraud investigation.",),
        ),
        _statistics_report(),
    ]
    return {kind_of(b): b for b in bodies}


def _statistics_report() -> st.StatisticsReport:
    # FR's figures for 2026, sent to the secretariat in a case of its own (§20.5).
    sent, preserved = st.Flow.SENT, st.Outcome.PRESERVED
    return st.StatisticsReport(
        case_id="0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a",
        sender_ref="STATS-2026",
        figures=st.Statistics(
            member="FR",
            period_from=date(2026, 1, 1),
            period_to=date(2026, 12, 31),
            requests=(
                st.RequestCount(
                    flow=sent,
                    peer="DE-BKA",
                    kind=st.RequestKind.PRESERVATION,
                    outcome=preserved,
                    count=41,
                ),
                st.RequestCount(
                    flow=sent,
                    peer="DE-BKA",
                    kind=st.RequestKind.PRESERVATION,
                    outcome=st.Outcome.REFUSED,
                    count=2,
                ),
            ),
            timings=(
                st.Timing(
                    flow=sent, measure=st.Measure.DELIVERY_RECEIPT, count=43, median_s=2, p90_s=5
                ),
                st.Timing(
                    flow=sent,
                    measure=st.Measure.PRESERVED,
                    count=41,
                    median_s=14_400,
                    p90_s=86_400,
                ),
            ),
            refusals=(
                st.RefusalCount(
                    flow=sent, peer="DE-BKA", ground=rs.RefusalGround.DUAL_CRIMINALITY, count=2
                ),
            ),
        ),
    )


#: kind -> example body, one per kind, read-only.
EXAMPLES: Final = MappingProxyType(_examples())


def example(kind: str) -> Body:
    """Return the example body of ``kind``.

    Args:
        kind: a body kind, e.g. ``"preservation_request"``.

    Returns:
        The fixed example body.

    Raises:
        KeyError: unknown kind.
    """
    return EXAMPLES[kind]
