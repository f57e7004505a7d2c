"""The case actions beyond the preservation flow over HTTP, against a relay and two real
nodes (console/_actions_kinds.py): impossible to execute, Art. 30(1) traffic data,
follow-ups on both sides and the answer to a CETS 224 Art. 9 emergency request. Each
arrives at the other node with its kind, moves the case as protocol/cases says, shows a
bad value at its field with the CLI's JSON path, and is refused to an auditor."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import aiohttp
import msgspec
from click.testing import CliRunner

from cli.main import cli
from schemas.examples import example
from tests.integration._console_live import Desks, desks, http_session, log_in
from tests.support.bodies import addressed
from tests.support.console import ConsoleUnderTest, fresh_case
from tests.support.fake_relay import HANG_GUARD

NEW = ("impossible", "traffic-data", "follow-up", "emergency-answer")


def _offered(page: str, case_id: str) -> set[str]:
    return {n for n in NEW if f'action="/cases/{case_id}/actions/{n}"' in page}


def field_error(page: str, action: str, field: str) -> str:
    """The error shown at ``field`` of ``action``'s form ('' if none)."""
    found = re.search(rf'id="{action}-{field}-error">([^<]*)<', page)
    return "" if found is None else found.group(1)


async def _post(
    http: aiohttp.ClientSession, cut: ConsoleUnderTest, case_id: str, name: str, form: object
) -> tuple[int, str]:
    async with http.post(f"{cut.url}/cases/{case_id}/actions/{name}", data=form) as resp:
        return resp.status, await resp.text()


async def arrived(d: Desks, member: str, case_id: str, kind: str, count: int = 1) -> list[object]:
    """The bodies of ``kind`` that ``member`` received in the case, once ``count`` came."""
    async with asyncio.timeout(HANG_GUARD):
        while True:
            detail = await d.peers[member].api.case(case_id)
            got: list[object] = [
                e.body for e in detail.timeline if (e.kind, e.direction) == (kind, "in")
            ]
            if len(got) >= count:
                return got
            await asyncio.sleep(0.05)


async def _state(d: Desks, member: str, case_id: str) -> str:
    row = await d.peers[member].services.cases.cases.case(case_id)
    assert row is not None
    return row.case.state.value


async def test_traffic_data_follow_ups_and_impossible(tmp_path: Path) -> None:
    async with (
        desks(tmp_path) as d,
        http_session() as us,
        http_session() as fr,
        http_session() as auditor,
    ):
        us_csrf = await log_in(us, d.us, "duty")
        fr_csrf = await log_in(fr, d.fr, "agent")
        async with us.get(f"{d.us.url}/cases/{d.case_id}") as resp:
            assert _offered(await resp.text(), d.case_id) == {
                "impossible",
                "traffic-data",
                "follow-up",
            }
        # the auditor may not answer: 403 and a "denied" entry naming officer and case
        auditor_csrf = await log_in(auditor, d.us, "auditor")
        for name in ("impossible", "traffic-data", "follow-up"):
            status, _page = await _post(auditor, d.us, d.case_id, name, {"csrf": auditor_csrf})
            assert status == 403, name
            assert d.us.actions()[-1] == ("denied", "auditor", d.case_id)

        # Art. 30(1): a hop whose country is no ISO code, a port in Arabic-Indic digits,
        # a hop with too many parts: 400, shown at the path field with the JSON path
        good = {"csrf": us_csrf, "provider": "Hoster GmbH", "provider_country": "DE"}
        for path, where in (
            ("Transit AS; Frankreich", "$.path[0].country"),
            ("Transit AS; NL; 192.0.2.10; 2026-01-05T10:00:00+00:00; ٤٤٣", "port"),
            ("Transit AS; NL\nHoster; DE; 192.0.2.1; 2026-01-05T10:00:00Z; 1; x", ""),
        ):
            status, page = await _post(us, d.us, d.case_id, "traffic-data", {**good, "path": path})
            assert status == 400, path
            assert where in field_error(page, "traffic-data", "path"), (path, page[-3000:])
        status, page = await _post(
            us,
            d.us,
            d.case_id,
            "traffic-data",
            {**good, "provider_country": "Deutschland"} | {"path": "Transit AS"},
        )
        assert status == 400
        assert "$.provider.country" in field_error(page, "traffic-data", "provider_country")
        hops = "Transit AS; NL; 192.0.2.10; 2026-01-05T10:00:00+00:00; 443\nHoster GmbH; DE"
        form = {**good, "path": hops, "traffic_data": "Session of 5 January, 10:00 UTC."}
        status, page = await _post(us, d.us, d.case_id, "traffic-data", form)
        assert status == 200, page
        assert d.us.actions()[-1] == ("replied", "duty", d.case_id)
        (disclosed,) = await arrived(d, "FR", d.case_id, "traffic_data_disclosure")
        wire = msgspec.to_builtins(disclosed)
        assert (wire["provider"]["name"], wire["provider"]["country"]) == ("Hoster GmbH", "DE")
        assert [h["provider"] for h in wire["path"]] == ["Transit AS", "Hoster GmbH"]
        assert wire["path"][0]["identifiers"][0]["port"] == 443
        # the CLI builds the same bytes from the same values (`node reply --file`)
        parts = tmp_path / "hops.json"
        parts.write_text(json.dumps({"provider": wire["provider"], "path": wire["path"]}))
        args = ["node", "reply", d.case_id, "--kind", "traffic-data", "--file", str(parts)]
        args += ["--text", form["traffic_data"], "--dry-run"]
        result = await asyncio.to_thread(
            CliRunner().invoke, cli, [*args, "--data", str(d.peers["US"].data)]
        )
        assert result.exit_code == 0, result.output
        printed = result.output[result.output.index('{\n  "kind"') :]
        printed = printed[: printed.index("\n}") + 2]
        assert printed == msgspec.json.format(msgspec.json.encode(disclosed)).decode()
        # protocol/cases: a disclosure of traffic data does not move the case
        assert await _state(d, "US", d.case_id) == "received"
        assert await _state(d, "FR", d.case_id) == "received"

        # follow-ups: no question yet, so no answer (at the role field); then FR asks, US
        # answers, and the answer names FR's question
        answer = {"role": "answer", "topic": "status", "text": "Being processed."}
        status, page = await _post(fr, d.fr, d.case_id, "follow-up", {"csrf": fr_csrf, **answer})
        assert status == 400
        assert field_error(page, "follow-up", "role")
        question = {"role": "question", "topic": "status", "text": "Any news?"}
        status, page = await _post(fr, d.fr, d.case_id, "follow-up", {"csrf": fr_csrf, **question})
        assert status == 200, page
        assert d.fr.actions()[-1] == ("replied", "agent", d.case_id)
        (asked,) = await arrived(d, "US", d.case_id, "follow_up")
        assert getattr(asked, "text") == "Any news?"  # noqa: B009
        status, page = await _post(us, d.us, d.case_id, "follow-up", {"csrf": us_csrf, **answer})
        assert status == 200, page
        (answered,) = await arrived(d, "FR", d.case_id, "follow_up")
        fr_case = await d.peers["FR"].api.case(d.case_id)
        ours = [
            e.msg_id for e in fr_case.timeline if e.kind == "follow_up" and e.direction == "out"
        ]
        assert getattr(answered, "in_reply_to") == ours[0]  # noqa: B009
        assert getattr(answered, "role").value == "answer"  # noqa: B009
        bad_topic = {"csrf": us_csrf, **answer, "topic": "gossip"}
        status, page = await _post(us, d.us, d.case_id, "follow-up", bad_topic)
        assert status == 400
        assert field_error(page, "follow-up", "topic")

        # impossible to execute: data elsewhere needs the country (a rule of the schema's
        # semantics, named $.redirect_country), a country that is none is refused too
        form = {"csrf": us_csrf, "reason": "data_in_other_country", "explanation": "Held in DE."}
        status, page = await _post(us, d.us, d.case_id, "impossible", form)
        assert status == 400
        assert "$.redirect_country" in field_error(page, "impossible", "redirect_country")
        status, page = await _post(
            us, d.us, d.case_id, "impossible", {**form, "redirect_country": "de"}
        )
        assert status == 400
        assert "$.redirect_country" in field_error(page, "impossible", "redirect_country")
        status, page = await _post(us, d.us, d.case_id, "impossible", {**form, "reason": "nope"})
        assert (status, bool(field_error(page, "impossible", "reason"))) == (400, True)
        status, page = await _post(
            us, d.us, d.case_id, "impossible", {**form, "redirect_country": "DE"}
        )
        assert status == 200, page
        assert d.us.actions()[-1] == ("replied", "duty", d.case_id)
        (impossible,) = await arrived(d, "FR", d.case_id, "impossible_to_execute")
        assert getattr(impossible, "redirect_country") == "DE"  # noqa: B009
        await d.wait_case("FR", d.case_id, "impossible")
        assert await _state(d, "US", d.case_id) == "impossible"
        # the case is over: no more answers offered (a follow-up still is)
        async with us.get(f"{d.us.url}/cases/{d.case_id}") as resp:
            assert _offered(await resp.text(), d.case_id) == {"follow-up"}
        status, _page = await _post(us, d.us, d.case_id, "traffic-data", {**good, "path": hops})
        assert status == 409
        late = {"csrf": us_csrf, "role": "question", "topic": "other", "text": "Did DE answer?"}
        status, page = await _post(us, d.us, d.case_id, "follow-up", late)
        assert status == 200, page
        await arrived(d, "FR", d.case_id, "follow_up", count=2)
        assert await _state(d, "FR", d.case_id) == "impossible"  # a follow-up moves nothing


async def _auditor_refused(d: Desks, case_id: str, name: str) -> None:
    """An auditor posting ``name``: 403 and a "denied" entry naming officer and case."""
    async with http_session() as auditor:
        csrf = await log_in(auditor, d.us, "auditor")
        status, _page = await _post(auditor, d.us, case_id, name, {"csrf": csrf})
    assert status == 403
    assert d.us.actions()[-1] == ("denied", "auditor", case_id)


async def test_emergency_answer(tmp_path: Path) -> None:
    async with desks(tmp_path, with_case=False) as d, http_session() as us:
        body = msgspec.structs.replace(
            example("emergency_disclosure_request"), case_id=fresh_case()
        )
        await d.peers["FR"].api.send("US", addressed(body, "FR", "US"))
        case_id = body.case_id
        await d.wait_case("US", case_id)
        await _auditor_refused(d, case_id, "emergency-answer")
        csrf = await log_in(us, d.us, "duty")
        async with us.get(f"{d.us.url}/cases/{case_id}") as resp:
            assert _offered(await resp.text(), case_id) == {
                "emergency-answer",
                "impossible",
                "follow-up",
            }
        form = {"csrf": csrf, "decision": "disclosed_with_conditions", "data_disclosed": "x"}
        status, page = await _post(us, d.us, case_id, "emergency-answer", form)
        assert status == 400
        assert "$.conditions" in field_error(page, "emergency-answer", "conditions")
        # the form comes back with what was typed: nothing is lost to one bad field
        assert '<option value="disclosed_with_conditions" selected>' in page
        assert 'name="data_disclosed" rows="2" maxlength="4000">x</textarea>' in page
        more = {"formalisation_required": "yes", "conditions": "Police use only"}
        status, page = await _post(us, d.us, case_id, "emergency-answer", {**form, **more})
        assert status == 400
        where = field_error(page, "emergency-answer", "formalisation_instructions")
        assert "$.formalisation_instructions" in where
        bad = {**form, "conditions": "a", "refusal_ground": "because"}
        status, page = await _post(us, d.us, case_id, "emergency-answer", bad)
        assert (status, bool(field_error(page, "emergency-answer", "refusal_ground"))) == (
            400,
            True,
        )
        assert [a for a in d.us.actions() if a[0] == "replied"] == []
        more["formalisation_instructions"] = "Through the central authority within 10 days."
        more["conditions"] = "Police use only\nNo onward transfer"
        status, page = await _post(us, d.us, case_id, "emergency-answer", {**form, **more})
        assert status == 200, page
        assert d.us.actions()[-1] == ("replied", "duty", case_id)
        (answer,) = await arrived(d, "FR", case_id, "emergency_disclosure_answer")
        assert list(getattr(answer, "conditions")) == ["Police use only", "No onward transfer"]  # noqa: B009
        assert getattr(answer, "formalisation_required") is True  # noqa: B009
        await d.wait_case("FR", case_id, "closed")
        assert await _state(d, "US", case_id) == "closed"


async def test_assistance_answer(tmp_path: Path) -> None:
    async with desks(tmp_path, with_case=False) as d, http_session() as us:
        body = msgspec.structs.replace(example("assistance_request"), case_id=fresh_case())
        await d.peers["FR"].api.send("US", addressed(body, "FR", "US"))
        case_id = body.case_id
        await d.wait_case("US", case_id)
        await _auditor_refused(d, case_id, "assistance-answer")
        csrf = await log_in(us, d.us, "duty")
        async with us.get(f"{d.us.url}/cases/{case_id}") as resp:
            page = await resp.text()
        assert f'action="/cases/{case_id}/actions/assistance-answer"' in page
        assert _offered(page, case_id) == {"impossible", "follow-up"}
        # "redirected" needs where to: the schema's rule, at the redirect field
        form = {"csrf": csrf, "outcome": "redirected", "answer": "Ask the DE 24/7 point."}
        status, page = await _post(us, d.us, case_id, "assistance-answer", form)
        assert status == 400
        assert "$.redirect_to" in field_error(page, "assistance-answer", "redirect_to")
        status, page = await _post(
            us, d.us, case_id, "assistance-answer", {**form, "outcome": "\u0661"}
        )
        assert (status, bool(field_error(page, "assistance-answer", "outcome"))) == (400, True)
        assert [a for a in d.us.actions() if a[0] == "replied"] == []
        status, page = await _post(
            us, d.us, case_id, "assistance-answer", {**form, "redirect_to": "DE-BKA"}
        )
        assert status == 200, page
        assert d.us.actions()[-1] == ("replied", "duty", case_id)
        (answer,) = await arrived(d, "FR", case_id, "assistance_answer")
        assert getattr(answer, "redirect_to") == "DE-BKA"  # noqa: B009
        await d.wait_case("FR", case_id, "closed")
        assert await _state(d, "US", case_id) == "closed"
