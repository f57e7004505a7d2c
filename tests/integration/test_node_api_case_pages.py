"""``GET /v1/cases`` a page at a time (PROTOCOL.md §8.6): keyset cursor, prefix lookup,
every bad parameter refused with 400 — a real relay and real nodes, the cases received
through US's real inbox."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import aiohttp
import msgspec
import pytest

from cli._node_client import find_case
from cli._passphrase import CliUsageError
from console import _send_node
from schemas.errors import ErrorCode
from schemas.examples import example
from schemas.messages import Body
from tests.integration._node_services import lone_fr, peers
from tests.integration.test_node_api import error, raw, until
from tests.support.bodies import addressed
from tests.support.deliver import deliver
from tests.support.network import make_network
from tests.support.relay import running_relay

N = 23


def _bodies() -> list[Body]:
    """Requests DE -> US, one case each; ids pair up on their first 31 digits (…30, …31)."""
    base = example("preservation_request")
    return [
        addressed(msgspec.structs.replace(base, case_id=f"{i // 2:031x}{i % 2}"), "DE", "US")
        for i in range(N)
    ]


async def test_pages_walk_every_case_once_and_prefix_finds_one(tmp_path: Path) -> None:
    net = make_network()
    bodies = _bodies()
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        us = p["US"]
        await deliver(us.node, net, "DE", bodies)
        whole = await until(us.api.cases, lambda c: len(c.cases) == N)  # walks the pages
        assert len(whole.cases) == N
        assert whole.next is None
        order = [(c.last_activity, c.case_id) for c in whole.cases]
        assert order == sorted(order, reverse=True)

        seen: list[str] = []
        page = await us.api.cases_page(limit=5)
        pages = 1
        while True:
            assert len(page.cases) <= 5
            seen.extend(c.case_id for c in page.cases)
            if page.next is None:
                break
            page = await us.api.cases_page(page.next, limit=5)
            pages += 1
        assert seen == [c.case_id for c in whole.cases]
        assert pages == 5  # 5 + 5 + 5 + 5 + 3
        last = await us.api.cases_page(limit=N)
        assert len(last.cases) == N
        assert last.next is None

        target = bodies[7].case_id  # …31, beside …30
        assert [c.case_id for c in (await us.api.cases_page(prefix=target)).cases] == [target]
        pair = await us.api.cases_page(limit=5, prefix=target[:31])
        assert sorted(c.case_id for c in pair.cases) == [bodies[6].case_id, target]
        ten = await us.api.cases_page(limit=5, prefix="0" * 30)  # 00…0, 00…0b here
        assert len(ten.cases) == 5
        assert ten.next is not None
        alone = bodies[N - 1].case_id  # …b0 has no …b1
        assert (await find_case(us.api, alone[:31].upper())).summary.case_id == alone
        with pytest.raises(CliUsageError, match="2 cases starting with"):
            await find_case(us.api, target[:31])
        with pytest.raises(CliUsageError, match="no case starting with"):
            await find_case(us.api, "f" * 20)
        with pytest.raises(CliUsageError, match="no case starting with"):
            await find_case(us.api, "not-hex")
        with pytest.raises(CliUsageError, match="2 cases starting with"):
            await find_case(us.api, "0")


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=501",
        "limit=-1",
        "limit=\u0661\u0660",  # Arabic-Indic digits
        "limit=5&limit=6",
        "after=12-" + "a" * 32 + "&after=13-" + "a" * 32,
        "after=" + "a" * 32,
        "after=\u0661\u0662-" + "a" * 32,
        "after=1-" + "A" * 32,
        "after=1-" + "a" * 32 + "%0A",
        "after=" + "9" * 18 + "-" + "a" * 32,  # beyond year 9999
        "after=" + "1" * 19 + "-" + "a" * 32,
        "prefix=XYZ",
        "prefix=" + "a" * 33,
        "prefix=\u0661",
        "prefix=a&prefix=b",
        "prefix=",
    ],
)
async def test_bad_parameters_are_refused(tmp_path: Path, query: str) -> None:
    net = make_network()
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, members=("FR",)) as p,
    ):
        status, data = await raw(p["FR"], "GET", f"/v1/cases?{query}")
        assert (status, error(data).code) == (400, ErrorCode.MALFORMED), query


#: Every optional query parameter of the local API, given with an empty value (§8.6: an
#: empty value is none of the values a parameter takes, not "no parameter").
EMPTY = (
    ("GET", "/v1/cases?prefix="),  # was 200, every case: a prefix is 1-32 hex digits
    ("GET", "/v1/cases?after="),
    ("GET", "/v1/cases?limit="),
    ("GET", "/v1/inbox?after="),
    ("GET", "/v1/inbox?limit="),
    ("GET", "/v1/cases/" + "a" * 32 + "/export?with_linked="),
    ("DELETE", "/v1/cases/" + "a" * 32 + "/links/" + "b" * 32 + "?type="),
    ("GET", "/v1/retention?limit="),
    ("POST", "/v1/retention?limit="),
    ("GET", "/v1/stats?from=&to=2026-01-01"),
    ("GET", "/v1/stats?from=2026-01-01&to="),
    ("POST", "/v1/attachments?name=a.txt&media_type=text/plain&to="),
    ("POST", "/v1/attachments?name=&media_type=text/plain"),
    ("POST", "/v1/attachments?name=a.txt&media_type="),
)


async def test_an_empty_optional_parameter_is_refused(tmp_path: Path) -> None:
    async with lone_fr(tmp_path) as (fr, token), aiohttp.ClientSession() as s:
        for method, path in EMPTY:
            upload = path.startswith("/v1/attachments")  # its own content type
            kind = "application/octet-stream" if upload else "application/json"
            headers = {"Authorization": f"Bearer {token}", "Content-Type": kind}
            async with s.request(
                method, fr.api.base_url + path, data=b"x" if upload else None, headers=headers
            ) as resp:
                status, data = resp.status, await resp.read()
            assert (status, error(data).code) == (400, ErrorCode.MALFORMED), path


async def test_console_duplicate_scan_walks_pages_and_stops_at_older_cases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The send form's duplicate check (console/_send_node.py) reads the cases active since
    its horizon a page at a time, in order, and no further."""
    monkeypatch.setattr(_send_node, "_SCAN_PAGE", 5)
    net = make_network()
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        us = p["US"]
        await deliver(us.node, net, "DE", _bodies())
        whole = await until(us.api.cases, lambda c: len(c.cases) == N)
        ctx = SimpleNamespace(cases=us.services.cases)
        oldest = whole.cases[-1].last_activity
        walked = [r.case.case_id async for r in _send_node.active_since(ctx, oldest)]  # type: ignore[arg-type]
        assert walked == [c.case_id for c in whole.cases]
        horizon = whole.cases[11].last_activity
        recent = [r.case.case_id async for r in _send_node.active_since(ctx, horizon)]  # type: ignore[arg-type]
        expected = [c.case_id for c in whole.cases if c.last_activity >= horizon]
        assert recent == expected
        assert 12 <= len(recent) < N


async def test_cases_since_reads_pages_only_down_to_the_first_older_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NodeApiClient.cases_since (emergency candidates in the CLI): the cases active since
    a time, most recent first, asking for no page after the first older case."""
    net = make_network()
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        us = p["US"]
        await deliver(us.node, net, "DE", _bodies())
        whole = await until(us.api.cases, lambda c: len(c.cases) == N)
        asked: list[str | None] = []
        page_of = us.api.cases_page

        async def counted(after: str | None = None, limit: int = 5, prefix: str = "") -> object:
            asked.append(after)
            return await page_of(after, limit=5, prefix=prefix)

        monkeypatch.setattr(us.api, "cases_page", counted)
        horizon = whole.cases[6].last_activity
        recent = await us.api.cases_since(horizon)
        assert [c.case_id for c in recent] == [
            c.case_id for c in whole.cases if c.last_activity >= horizon
        ]
        assert 7 <= len(recent) < N
        assert len(asked) == (len(recent) // 5) + 1  # the page holding the first older case
        asked.clear()
        assert len(await us.api.cases_since(whole.cases[-1].last_activity)) == N
        assert len(asked) == 5  # every page: no case is older
