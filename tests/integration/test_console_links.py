"""The case page's linked cases over HTTP (forms work with JavaScript off), against a
relay and two real nodes (PROTOCOL.md §17): shown both ways in the reader's language,
added by an officer (attributed), refused for an auditor and for hostile input."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import msgspec

from console import _labels_links
from console._i18n import CATALOGS
from schemas._links import CASE_LINKS, CaseLink, LinkType
from tests.integration._console_live import Desks, desks, http_session, log_in
from tests.integration._console_scenario import urgent_request
from tests.support.network import make_network


async def _link(
    http: aiohttp.ClientSession, d: Desks, case_id: str, form: dict[str, str]
) -> tuple[int, str]:
    async with http.post(f"{d.us.url}/cases/{case_id}/links", data=form) as resp:
        return resp.status, await resp.text()


async def test_officer_links_two_cases_and_both_pages_show_it(tmp_path: Path) -> None:
    async with desks(tmp_path) as d, http_session() as http, http_session() as audit:
        second, _ = await d.send_request()
        await d.wait_case("US", second)
        csrf = await log_in(http, d.us, "duty")
        async with http.get(f"{d.us.url}/cases/{second}") as resp:
            page = await resp.text()
        assert "No linked case." in page
        assert f'<option value="{d.case_id}">' in page
        form = {"csrf": csrf, "type": "supersedes", "other": d.case_id, "note": "<b>dup</b>"}
        status, page = await _link(http, d, second, form)
        assert status == 200  # after the 303 back to the case page
        assert "Link added." in page
        assert "→ Supersedes the case" in page
        assert "&lt;b&gt;dup&lt;/b&gt;" in page  # escaped, as every free text
        assert ">duty<" in page  # attributed to the officer
        row = (await d.peers["US"].services.cases.links.of_case(second))[0]
        assert (row.officer, row.origin.value) == ("duty", "local")
        assert ("case_linked", "duty", second) in d.us.actions()  # L6: in the access log
        # The other case shows it from its side, in French for a French officer.
        async with http_session() as agent:
            await log_in(agent, d.us, "agent")
            async with agent.get(f"{d.us.url}/cases/{d.case_id}") as resp:
                page = await resp.text()
        assert "← Remplacée par" in page
        assert "Affaires liées" in page
        # Refusals: the same link twice, itself, unknown case, bad type, note too long.
        bad = [
            (form, 409, "already linked"),
            ({**form, "other": second}, 400, "cannot be linked to itself"),
            ({**form, "other": "0" * 32}, 404, "not a case of this node"),
            ({**form, "type": "follows"}, 400, "Choose a relation"),
            ({**form, "other": "\u0661" * 32}, 400, "Choose a relation"),
            ({**form, "note": "x" * 257}, 400, "Choose a relation"),
            # NUL, a bidi override, a C1 control: shown raw on case pages before
            ({**form, "note": "a\u0000b"}, 400, "control or format characters"),
            ({**form, "note": "evil \u202e"}, 400, "control or format characters"),
            ({**form, "note": "x\u0085y"}, 400, "control or format characters"),
        ]
        for data, want, text in bad:
            status, page = await _link(http, d, second, data)
            assert (status, text in page) == (want, True), (data, status)
        # An auditor sees the links but may not add one (and is logged as denied).
        await log_in(audit, d.us, "auditor")
        async with audit.get(f"{d.us.url}/cases/{second}") as resp:
            page = await resp.text()
        assert "→ Supersedes the case" in page
        assert 'action="/cases/' + second + '/links"' not in page
        audit_csrf = await log_in(audit, d.us, "auditor")
        status, _page = await _link(audit, d, second, {**form, "csrf": audit_csrf})
        assert status == 403
        assert d.us.actions()[-1] == ("denied", "auditor", second)


async def test_words_of_a_received_link_only_to_readers_of_bodies(tmp_path: Path) -> None:
    net = make_network()
    net.overrides["US"] = {"capabilities": (CASE_LINKS,)}
    async with desks(tmp_path, net=net) as d, http_session() as http, http_session() as audit:
        link = CaseLink(
            type=LinkType.RELATED, case_id=d.case_id, sender_ref="OFAC-77", note="same gang"
        )
        body = msgspec.structs.replace(urgent_request(), links=(link,))
        await d.peers["FR"].api.send("US", body)
        await d.wait_case("US", body.case_id)
        await log_in(http, d.us, "duty")
        async with http.get(f"{d.us.url}/cases/{body.case_id}") as resp:
            page = await resp.text()
        assert "OFAC-77" in page
        assert "same gang" in page
        assert d.us.actions()[-1] == ("body_viewed", "duty", body.case_id)
        # An auditor sees that the cases are linked, not the sender's words (§14.4).
        await log_in(audit, d.us, "auditor")
        before = len(d.us.actions())
        async with audit.get(f"{d.us.url}/cases/{body.case_id}") as resp:
            page = await resp.text()
        assert f'href="/cases/{d.case_id}"' in page
        assert "OFAC-77" not in page
        assert "same gang" not in page
        assert d.us.actions()[before:] == []


def test_link_labels_exist_in_every_language_and_legal_terms_are_flagged() -> None:
    keys = set(_labels_links.LABELS["en"])
    for language, labels in _labels_links.LABELS.items():
        assert set(labels) == keys, language
        assert keys <= set(CATALOGS[language])
    doc = (Path(__file__).resolve().parents[2] / "docs" / "OPERATIONS.md").read_text("utf-8")
    for language, flagged in _labels_links.LEGAL_REVIEW.items():
        assert flagged <= keys, language
        for key in flagged:
            assert f"`{key}`" in doc, key
