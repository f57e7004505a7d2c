"""Property tests of the procedure clocks (issue 14 §2 "Clocks that are right"): a deadline
is an instant, start + a fixed duration in UTC, whatever the zone it was typed in or is
shown in. Daylight-saving changes in both directions (Europe and America), leap days,
two sides 25 and 26 hours apart (Pacific/Kiritimati UTC+14 with Pacific/Pago_Pago
UTC-11 and Etc/GMT+12), and a request sent just before midnight.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from node.cases import due_clocks, in_zone, load_procedures, reached_levels

TABLE = load_procedures()
ZONES = [
    ZoneInfo(z)
    for z in (
        "Europe/Paris", "Europe/London", "America/New_York", "America/Los_Angeles",
        "Pacific/Kiritimati", "Pacific/Pago_Pago", "Etc/GMT+12", "Australia/Lord_Howe", "UTC",
    )
]  # fmt: skip
# The DST changes (UTC instants): spring forward and fall back, Europe and America.
TRANSITIONS = [
    datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # Europe: 02:00 CET -> 03:00 CEST
    datetime(2026, 10, 25, 1, 0, tzinfo=UTC),  # Europe: 03:00 CEST -> 02:00 CET
    datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # New York: 02:00 EST -> 03:00 EDT
    datetime(2026, 11, 1, 6, 0, tzinfo=UTC),  # New York: 02:00 EDT -> 01:00 EST
]
PROCEDURES = sorted(TABLE.procedures)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)


def _check(start: datetime, pid: str) -> None:
    for clock in due_clocks(TABLE.get(pid), start):
        c = dict(TABLE.get(pid).clocks())[clock.name]
        assert clock.due.utcoffset() == timedelta(0)
        assert clock.due - start == c.length  # elapsed time, not wall-clock time
        for zone in ZONES:  # every side shows the same instant
            assert datetime.fromisoformat(in_zone(clock.due, zone)) == clock.due.replace(
                second=0, microsecond=0
            )


@settings(max_examples=200, deadline=None)
@given(instants, st.sampled_from(ZONES), st.sampled_from(PROCEDURES))
def test_due_is_start_plus_the_period_in_any_zone(at: datetime, zone: ZoneInfo, pid: str) -> None:
    _check(at.astimezone(zone), pid)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(TRANSITIONS),
    st.integers(min_value=-48 * 3600, max_value=48 * 3600),
    st.sampled_from(PROCEDURES),
)
def test_across_dst_changes_both_directions(edge: datetime, offset: int, pid: str) -> None:
    start = edge + timedelta(seconds=offset)
    zone = ZoneInfo(
        "Europe/Paris" if edge.month in (3, 10) and edge.hour == 1 else "America/New_York"
    )
    local = start.astimezone(zone)
    _check(local, pid)
    for clock in due_clocks(TABLE.get(pid), local):
        # the wall clock moves by the period plus the change of offset, never less
        shown = clock.due.astimezone(zone)
        wall = shown.replace(tzinfo=None) - local.replace(tzinfo=None)
        offsets = shown.utcoffset() - local.utcoffset()  # type: ignore[operator]
        assert wall == dict(TABLE.get(pid).clocks())[clock.name].length + offsets


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=72 * 3600), st.sampled_from([2000, 2024, 2028, 2096]))
def test_leap_days_count(seconds: int, year: int) -> None:
    start = datetime(year, 2, 27, tzinfo=UTC) + timedelta(seconds=seconds)
    for clock in due_clocks(TABLE.get("eu_epoc"), start):  # 10 days
        assert clock.due - start == timedelta(days=10)
        assert clock.due.date() == (start + timedelta(hours=240)).date()
    if start.date() == datetime(year, 2, 28).date():  # 28 Feb + 1 day is 29 Feb in a leap year
        assert (start + timedelta(days=1)).day == 29


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1)),
    st.sampled_from(
        [("Pacific/Kiritimati", "Pacific/Pago_Pago"), ("Pacific/Kiritimati", "Etc/GMT+12")]
    ),
    st.sampled_from(PROCEDURES),
)
def test_two_sides_a_day_apart(naive: datetime, pair: tuple[str, str], pid: str) -> None:
    east, west = (ZoneInfo(z) for z in pair)
    start = naive.replace(tzinfo=east)
    apart = start.utcoffset() - start.astimezone(west).utcoffset()  # type: ignore[operator]
    assert apart in (timedelta(hours=25), timedelta(hours=26))
    for clock in due_clocks(TABLE.get(pid), start):
        here, there = clock.due.astimezone(east), clock.due.astimezone(west)
        assert here == there  # one instant
        # the calendar dates differ by one day, or two around local midnight
        assert (here.date() - there.date()).days in (0, 1, 2)
        assert here.replace(tzinfo=None) - there.replace(tzinfo=None) == apart


@settings(max_examples=200, deadline=None)
@given(
    st.dates(min_value=datetime(2020, 1, 1).date(), max_value=datetime(2040, 1, 1).date()),
    st.integers(min_value=0, max_value=59),
    st.sampled_from(ZONES),
)
def test_a_request_sent_just_before_midnight(day: object, second: int, zone: ZoneInfo) -> None:
    start = datetime(day.year, day.month, day.day, 23, 59, second, tzinfo=zone)  # type: ignore[attr-defined]
    (response,) = [
        c for c in due_clocks(TABLE.get("eu_epoc_emergency"), start) if c.name == "response"
    ]
    assert response.due == start.astimezone(UTC) + timedelta(hours=8)  # not wall time
    # shown in the sending zone, it is the next calendar day (8 h after 23:59 local)
    assert response.due.astimezone(zone).date() > start.date()


@settings(max_examples=200, deadline=None)
@given(
    instants,
    st.integers(min_value=1, max_value=600),
    st.integers(min_value=1, max_value=600),
    st.integers(min_value=-3600, max_value=30 * 3600),
)
def test_ladder_levels_follow_the_delays(start: datetime, m2: int, m3: int, after: int) -> None:
    steps = (timedelta(minutes=m2), timedelta(minutes=m3))
    now = start + timedelta(seconds=after)
    levels = reached_levels(start, steps, now)
    assert levels == [1, 2, 3][: len(levels)]  # a prefix: never level 3 without 2
    assert (1 in levels) == (now >= start)
    assert (2 in levels) == (now >= start + steps[0])
    assert (3 in levels) == (now >= start + steps[0] + steps[1])
