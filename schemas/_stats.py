"""Statistics on the use of a 24/7 point, and the body that reports them (PROTOCOL.md §20).

Every field is a count, a duration in whole seconds, a calendar date, a member code or a
coded value: the figures name no person, account, address or case (a test walks this
type tree and refuses any other string). :class:`Statistics` is what
``relay247 node stats`` exports; :class:`StatisticsReport` carries the same figures to
the network's secretariat as a signed message body.
"""

from __future__ import annotations

import enum
from typing import Annotated, Final

import msgspec

from schemas._bodies_base import BodyBase
from schemas._bodies_response import RefusalGround
from schemas._parts import CalendarDate
from schemas.types import MemberId, Timestamp, Version

#: A number of requests or cases (non-negative; JSON digits only, like every integer).
Count = Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)]
#: A duration in whole seconds (at most about 317 years).
Seconds = Annotated[int, msgspec.Meta(ge=0, le=10_000_000_000)]
#: Most rows of one table: 1,024 members x 4 kinds x 2 flows, and room to spare.
_MAX_ROWS = 16_384


#: The directory capability of the network's statistics secretariat (PROTOCOL.md §20.5).
SECRETARIAT: Final = "statistics_secretariat"


class Flow(enum.StrEnum):
    """Which way the request went, seen from the member that counts."""

    SENT = "sent"
    RECEIVED = "received"


class RequestKind(enum.StrEnum):
    """The kinds that open a case (PROTOCOL.md §10.11)."""

    PRESERVATION = "preservation_request"
    EMERGENCY = "emergency_disclosure_request"
    ASSISTANCE = "assistance_request"
    ONWARD_TRANSFER = "onward_transfer_request"


class Outcome(enum.StrEnum):
    """Where a request stood at the end of the period (PROTOCOL.md §20.2, first rule wins)."""

    REJECTED = "rejected"  # the recipient's node signed a "rejected" receipt
    REFUSED = "refused"
    IMPOSSIBLE = "impossible"
    WITHDRAWN = "withdrawn"
    ANSWERED = "answered"  # an emergency, assistance or onward-transfer answer
    EXPIRED = "expired"  # preserved until a date in the period, no MLA notice before it
    MLA_PENDING = "mla_pending"
    PRESERVED = "preserved"
    TAKEN_IN_CHARGE = "taken_in_charge"
    DELIVERED = "delivered"  # an "accepted" delivery receipt, nothing more yet
    PENDING = "pending"  # not even a receipt


class Measure(enum.StrEnum):
    """A delay measured from the request's signed creation time (PROTOCOL.md §20.3)."""

    DELIVERY_RECEIPT = "delivery_receipt"
    TAKEN_IN_CHARGE = "taken_in_charge"
    PRESERVED = "preserved"
    EMERGENCY_RESPONSE = "emergency_response"


class _Row(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every table row: immutable, strict, keyword-only."""


class RequestCount(_Row, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Requests of one kind, with one peer, that ended the period with one outcome."""

    flow: Flow
    peer: MemberId
    kind: RequestKind
    outcome: Outcome
    count: Count


class Timing(_Row, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Median and 90th percentile (nearest rank) of one delay; ``peer`` unset: all peers."""

    flow: Flow
    measure: Measure
    peer: MemberId | None = None
    count: Count
    median_s: Seconds
    p90_s: Seconds


class RefusalCount(_Row, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Requests refused on one coded ground."""

    flow: Flow
    peer: MemberId
    ground: RefusalGround
    count: Count


class PeerCount(_Row, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A count per flow and peer (cases expired before an MLA request, emergencies)."""

    flow: Flow
    peer: MemberId
    count: Count


class Statistics(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One member's figures for the days ``period_from`` to ``period_to`` (UTC, inclusive).

    ``requests`` holds every counted request once; the other tables break some of them
    down. ``emergencies`` counts the emergency disclosure requests, their response times
    are the ``emergency_response`` rows of ``timings``.
    """

    v: Version = 1
    member: MemberId
    period_from: CalendarDate
    period_to: CalendarDate
    requests: Annotated[tuple[RequestCount, ...], msgspec.Meta(max_length=_MAX_ROWS)] = ()
    timings: Annotated[tuple[Timing, ...], msgspec.Meta(max_length=_MAX_ROWS)] = ()
    refusals: Annotated[tuple[RefusalCount, ...], msgspec.Meta(max_length=_MAX_ROWS)] = ()
    expired_before_mla: Annotated[tuple[PeerCount, ...], msgspec.Meta(max_length=_MAX_ROWS)] = ()
    emergencies: Annotated[tuple[PeerCount, ...], msgspec.Meta(max_length=_MAX_ROWS)] = ()


class StatisticsReport(
    BodyBase,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="kind",
    tag="statistics_report",
):
    """A member's figures sent to the network's secretariat (PROTOCOL.md §20.5).

    Sent only to a member whose directory entry lists the ``statistics_secretariat``
    capability, each report in a case of its own; ``figures.member`` is the sender.
    """

    figures: Statistics


def figure_problems(figures: Statistics, at: str = "$.figures") -> list[tuple[str, str]]:
    """S15 (PROTOCOL.md §20.4): the rules of the figures that field constraints cannot say.

    The period does not end before it starts, no percentile row summarises zero delays,
    a median never exceeds its 90th percentile, and no row repeats another's key.
    """
    out: list[tuple[str, str]] = []
    if figures.period_to < figures.period_from:
        out.append((f"{at}.period_to", "the period ends before it starts"))
    for i, t in enumerate(figures.timings):
        if t.count == 0:
            out.append((f"{at}.timings[{i}].count", "a timing row needs at least one delay"))
        if t.median_s > t.p90_s:
            out.append((f"{at}.timings[{i}].median_s", "the median exceeds the 90th percentile"))
    tables: tuple[tuple[str, tuple[_Row, ...]], ...] = (
        ("requests", figures.requests),
        ("timings", figures.timings),
        ("refusals", figures.refusals),
        ("expired_before_mla", figures.expired_before_mla),
        ("emergencies", figures.emergencies),
    )
    for name, rows in tables:
        seen: set[tuple[object, ...]] = set()
        for i, row in enumerate(rows):
            key = row_key(row)
            if key in seen:
                out.append((f"{at}.{name}[{i}]", "the same row twice"))
            seen.add(key)
    return out


def row_key(row: _Row) -> tuple[object, ...]:
    """A row's identity: every field but its figures (``count``, ``median_s``, ``p90_s``)."""
    return tuple(
        getattr(row, f) for f in row.__struct_fields__ if f not in ("count", "median_s", "p90_s")
    )


class ReceivedReport(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A statistics report the secretariat's node received: the signed sender and time."""

    sender: MemberId
    created: Timestamp
    figures: Statistics


class ReceivedReports(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``GET /v1/stats/reports``: the reports received, oldest first (PROTOCOL.md §20.6)."""

    reports: Annotated[tuple[ReceivedReport, ...], msgspec.Meta(max_length=_MAX_ROWS)] = ()


class KindTotal(_Row, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Requests of one kind and outcome, summed over the members' ``sent`` rows."""

    kind: RequestKind
    outcome: Outcome
    count: Count


class GroundTotal(_Row, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Refusals on one coded ground, summed over the members' ``sent`` rows."""

    ground: RefusalGround
    count: Count


class NetworkStatistics(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``relay247 network stats``: each member's latest report and the network's totals.

    Totals add up the ``sent`` rows only, so a request two reporting members exchanged is
    counted once; percentiles are not additive and stay per member (PROTOCOL.md §20.6).
    """

    reports: Annotated[tuple[Statistics, ...], msgspec.Meta(max_length=1024)] = ()
    requests: Annotated[tuple[KindTotal, ...], msgspec.Meta(max_length=_MAX_ROWS)] = ()
    refusals: Annotated[tuple[GroundTotal, ...], msgspec.Meta(max_length=_MAX_ROWS)] = ()
    expired_before_mla: Count = 0
    emergencies: Count = 0
