"""Hostile input to ``GET /v1/stats`` (PROTOCOL.md §20.4): every refusal is ``malformed``
(HTTP 400), and the empty node answers zero rows."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from schemas._stats import ReceivedReports, Statistics
from schemas.errors import ErrorCode
from tests.integration._node_services import peers
from tests.integration.test_node_api import error, raw
from tests.support.network import make_network
from tests.support.relay import running_relay

BAD = (
    "/v1/stats",  # neither day
    "/v1/stats?from=2026-01-01",  # no `to`
    "/v1/stats?from=2026-01-01&from=2026-01-02&to=2026-12-31",  # repeated
    "/v1/stats?from=%D9%A2%D9%A0%D9%A2%D9%A6-01-01&to=2026-12-31",  # Arabic-Indic digits
    "/v1/stats?from=%EF%BC%92026-01-01&to=2026-12-31",  # a full-width digit
    "/v1/stats?from=2026-01-01%0A&to=2026-12-31",  # a final newline
    "/v1/stats?from=2026-02-30&to=2026-12-31",  # not a calendar day
    "/v1/stats?from=26-01-01&to=2026-12-31",  # not YYYY-MM-DD
    "/v1/stats?from=2026-01-01T00:00:00Z&to=2026-12-31",  # an instant, not a day
    "/v1/stats?from=2026-12-31&to=2026-01-01",  # ends before it starts
    "/v1/stats?from=2000-01-01&to=2026-12-31",  # more than ten years
    "/v1/stats?from=" + "9" * 5000 + "&to=2026-12-31",  # oversized
    "/v1/stats?from=2026-01-01&to=2026-12-31&to=2026-12-31",  # `to` repeated, same value
    "/v1/stats?from=&to=2026-12-31",  # empty
    "/v1/stats?from=2026-%D9%A0%D9%A1-01&to=2026-12-31",  # a non-ASCII month
    "/v1/stats?from=2026-01-0%D9%A1&to=2026-12-31",  # one non-ASCII digit in the day
    "/v1/stats?from=2026-01-01%00&to=2026-12-31",  # a NUL
    "/v1/stats?from=%2B2026-01-01&to=2026-12-31",  # a sign
    "/v1/stats?from=2026-01-01&to=2026-12-31&from=2026-01-01",  # `from` twice, apart
    # outside 1970-01-01..9998-12-31 (protocol.days): Python's last and first days were 500s
    "/v1/stats?from=9999-12-31&to=9999-12-31",
    "/v1/stats?from=0001-01-01&to=0001-01-01",
    "/v1/stats?from=1969-12-31&to=1970-01-01",
    "/v1/stats?from=9998-12-31&to=9999-01-01",
)
#: A query longer than the server reads at all: refused by the HTTP layer, never a 500.
HUGE = "/v1/stats?from=2026-01-01&to=2026-12-31&pad=" + "x" * 20_000


async def test_bad_periods_are_refused_and_an_empty_node_counts_nothing(tmp_path: Path) -> None:
    net = make_network()
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, members=("FR",)) as p,
    ):
        fr = p["FR"]
        for path in BAD:
            status, data = await raw(fr, "GET", path)
            assert status == 400, path
            assert error(data).code is ErrorCode.MALFORMED, path
        status, _ = await raw(fr, "GET", HUGE)
        assert 400 <= status < 500
        for edges in ("from=1970-01-01&to=1970-01-01", "from=9998-12-31&to=9998-12-31"):
            status, data = await raw(fr, "GET", f"/v1/stats?{edges}")
            assert status == 200, edges
        status, data = await raw(fr, "GET", "/v1/stats?from=2026-01-01&to=2026-12-31")
        assert status == 200
        empty = msgspec.json.decode(data, type=Statistics)
        assert (empty.member, empty.requests, empty.timings) == ("FR", (), ())
        status, data = await raw(fr, "GET", "/v1/stats/reports")
        assert msgspec.json.decode(data, type=ReceivedReports).reports == ()
        status, _ = await raw(fr, "GET", "/v1/stats?from=2026-01-01&to=2026-12-31", token=None)
        assert status == 401


@pytest.mark.parametrize("route", ["/v1/stats", "/v1/stats/reports"])
def test_the_openapi_document_lists_the_routes(route: str) -> None:
    from node.api.openapi import build_openapi

    assert "get" in build_openapi()["paths"][route]
