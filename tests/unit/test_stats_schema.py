"""The statistics' wire shapes (PROTOCOL.md §20): no identifier of a person, account or
address can be carried; the ``statistics_report`` body round-trips and refuses hostile
input (repeated keys, non-ASCII digits, oversized tables); S15, E14 and the secretariat
rule (T1)."""

from __future__ import annotations

import datetime
import enum
import json
import types
import typing
from typing import Any

import msgspec
import pytest

from node.cases import SECRETARIAT, refuse_not_secretariat, secretariats
from node.cases.stats import nearest_rank
from protocol.body import member_binding_errors
from protocol.codec import decode
from protocol.errors import MalformedError, TooLargeError
from schemas import _stats as st
from schemas.examples import example
from schemas.messages import BODY_DECODER, encode_body, semantic_errors
from schemas.types import MemberId
from tests.support.network import member_keys

#: The one string type a figure may hold besides coded values: a member code.
_MEMBER_META = typing.get_args(MemberId)[1]


def _leaks(tp: Any, where: str, seen: set[type]) -> list[str]:
    """Every path under ``tp`` whose type could carry free text or an identifier."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, *metas = typing.get_args(tp)
        if base is str:
            return [] if _MEMBER_META in metas else [where]
        return _leaks(base, where, seen)
    if origin in (typing.Union, types.UnionType, tuple):
        return [p for a in typing.get_args(tp) if a is not Ellipsis
                for p in _leaks(a, where, seen)]  # fmt: skip
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return []
    if tp in (int, bool, type(None), datetime.date, datetime.datetime):
        return []
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        if tp in seen:
            return []
        seen.add(tp)
        hints = typing.get_type_hints(tp, include_extras=True)
        return [p for f in tp.__struct_fields__ for p in _leaks(hints[f], f"{where}.{f}", seen)]
    return [where]  # str, bytes, dict, list, Any, anything new: refused until reviewed


@pytest.mark.parametrize(
    "tp", [st.Statistics, st.NetworkStatistics, st.ReceivedReports], ids=lambda t: t.__name__
)
def test_the_figures_hold_only_counts_durations_dates_codes_and_member_codes(tp: type) -> None:
    assert _leaks(tp, tp.__name__, set()) == []


def test_the_walker_refuses_free_text_and_other_strings() -> None:
    class Leaky(msgspec.Struct):
        member: MemberId
        officer: str
        account: typing.Annotated[str, msgspec.Meta(max_length=64)]
        notes: dict[str, int]

    assert _leaks(Leaky, "Leaky", set()) == ["Leaky.officer", "Leaky.account", "Leaky.notes"]


def test_the_report_body_adds_only_the_body_head() -> None:
    # case_id and sender_ref are the body head every kind has (a random case of its own
    # and the sender's reference for the report); the rest is the figures.
    fields = set(st.StatisticsReport.__struct_fields__)
    assert fields - {"v", "case_id", "in_reply_to", "sender_ref", "attachments", "links"} == {
        "figures"
    }


# -- codec ----------------------------------------------------------------------------------


def _wire() -> dict[str, Any]:
    value: dict[str, Any] = json.loads(encode_body(example("statistics_report")))
    return value


def _decode(raw: bytes) -> Any:
    return decode(BODY_DECODER, raw, "body", limit=2 << 20)


def test_round_trip_keeps_the_exact_bytes() -> None:
    body = example("statistics_report")
    raw = encode_body(body)
    again = _decode(raw)
    assert again == body
    assert encode_body(again) == raw
    assert semantic_errors(again) == []


def test_repeated_keys_are_refused() -> None:
    raw = encode_body(example("statistics_report"))
    twice = raw.replace(b'"count":41', b'"count":41,"count":1', 1)
    assert twice != raw
    with pytest.raises(MalformedError):
        _decode(twice)


@pytest.mark.parametrize(
    "count", ["\u0664\u0661", '"41"', "\uff14\uff11", "-1", "41.0", "1e3", "1000000001"]
)
def test_counts_are_ascii_json_integers_in_range(count: str) -> None:
    text = encode_body(example("statistics_report")).decode()
    bad = text.replace('"count":41', f'"count":{count}', 1)
    with pytest.raises(MalformedError):
        _decode(bad.encode())


def test_oversized_tables_and_bodies_are_refused() -> None:
    obj = _wire()
    row = obj["figures"]["requests"][0]
    obj["figures"]["requests"] = [row] * 16_385
    with pytest.raises(MalformedError):
        _decode(json.dumps(obj).encode())
    with pytest.raises(TooLargeError):
        decode(BODY_DECODER, json.dumps(obj).encode(), "body", limit=1 << 20)


def test_unknown_fields_and_free_text_are_refused() -> None:
    for where, extra in (("figures", {"officer": "Capitaine Martin"}),
                         ("row", {"account": "alice@example.org"})):  # fmt: skip
        obj = _wire()
        target = obj["figures"] if where == "figures" else obj["figures"]["requests"][0]
        target.update(extra)
        with pytest.raises(MalformedError):
            _decode(json.dumps(obj).encode())
    obj = _wire()
    obj["figures"]["requests"][0]["peer"] = "alice@example.org"  # not a member code
    with pytest.raises(MalformedError):
        _decode(json.dumps(obj).encode())


# -- S15, E14, T1 ---------------------------------------------------------------------------


def _with(**changes: Any) -> st.StatisticsReport:
    body = example("statistics_report")
    assert isinstance(body, st.StatisticsReport)
    return msgspec.structs.replace(body, figures=msgspec.structs.replace(body.figures, **changes))


def test_s15_consistent_figures() -> None:
    body = example("statistics_report")
    assert isinstance(body, st.StatisticsReport)
    t = body.figures.timings[0]
    cases = {
        "$.figures.period_to": _with(period_to=datetime.date(2025, 12, 31)),
        "$.figures.timings[0].median_s": _with(
            timings=(msgspec.structs.replace(t, median_s=t.p90_s + 1),)
        ),
        "$.figures.timings[0].count": _with(timings=(msgspec.structs.replace(t, count=0),)),
        "$.figures.requests[1]": _with(requests=(body.figures.requests[0],) * 2),
    }
    for path, bad in cases.items():
        assert path in [p for p, _ in semantic_errors(bad)], path


def test_e14_the_figures_are_the_senders_own() -> None:
    body = example("statistics_report")
    assert member_binding_errors(body, sender="FR", recipient="DE") == []
    (problem,) = member_binding_errors(body, sender="US", recipient="DE")
    assert problem[0] == "$.figures.member"


def test_t1_reports_go_only_to_the_secretariat() -> None:
    plain = member_keys("DE").member()
    secretariat = msgspec.structs.replace(plain, capabilities=(SECRETARIAT,))
    assert secretariats((plain, secretariat)) == ["DE"]
    refuse_not_secretariat(example("statistics_report"), secretariat)
    refuse_not_secretariat(example("statistics_report"), None)  # the sealer refuses it
    refuse_not_secretariat(example("refusal"), plain)  # other kinds: no rule
    with pytest.raises(MalformedError) as refused:
        refuse_not_secretariat(example("statistics_report"), plain)
    assert refused.value.field == "$.kind"


def test_nearest_rank_percentiles() -> None:
    assert nearest_rank([5], 50) == nearest_rank([5], 90) == 5
    assert nearest_rank([4, 1, 3, 2], 50) == 2  # rank ceil(2.0) = 2
    assert nearest_rank(list(range(1, 11)), 90) == 9
    assert nearest_rank(list(range(1, 12)), 90) == 10  # rank ceil(9.9) = 10
