"""The data-protection case actions over HTTP, against a relay and two real nodes
(console/_actions_kinds.py): the decision on an onward transfer (CETS 224 Art. 14(10)(a))
and the notice of a security incident (Art. 14(7)(b)). Each arrives at the other node with
its kind, moves the case as protocol/cases says, shows a bad value at its field with the
CLI's JSON path, is refused without the form's CSRF token, and to an auditor."""

from __future__ import annotations

from pathlib import Path

import msgspec

from console._limits import ACTION
from node.render import load_catalog
from schemas.examples import example
from tests.integration._console_live import desks, http_session, log_in
from tests.integration.test_console_actions_kinds import (
    _auditor_refused,
    _post,
    _state,
    arrived,
    field_error,
)
from tests.support.console import fresh_case

_DATAPROT = ("onward-answer", "security-incident")


def _offered(page: str, case_id: str) -> set[str]:
    return {n for n in _DATAPROT if f'action="/cases/{case_id}/actions/{n}"' in page}


async def test_onward_transfer_answer(tmp_path: Path) -> None:
    async with desks(tmp_path, with_case=False) as d, http_session() as us:
        body = msgspec.structs.replace(example("onward_transfer_request"), case_id=fresh_case())
        await d.peers["FR"].api.send("US", body)
        case_id = body.case_id
        await d.wait_case("US", case_id)
        await _auditor_refused(d, case_id, "onward-answer")
        csrf = await log_in(us, d.us, "duty")
        async with us.get(f"{d.us.url}/cases/{case_id}") as resp:
            assert _offered(await resp.text(), case_id) == set(_DATAPROT)
        # without the form's CSRF token: 403, nothing sent
        form = {"decision": "authorised_with_conditions", "explanation": "x"}
        status, _page = await _post(us, d.us, case_id, "onward-answer", form)
        assert status == 403
        # "with conditions" needs the conditions: the schema's rule, at that field
        form["csrf"] = csrf
        status, page = await _post(us, d.us, case_id, "onward-answer", form)
        assert status == 400
        assert "$.conditions" in field_error(page, "onward-answer", "conditions")
        assert '<option value="authorised_with_conditions" selected>' in page
        # a refusal needs its reason, at the explanation field
        refused = {"csrf": csrf, "decision": "refused"}
        status, page = await _post(us, d.us, case_id, "onward-answer", refused)
        assert status == 400
        assert "$.explanation" in field_error(page, "onward-answer", "explanation")
        # a decision outside the schema's list (Arabic-Indic digit), too many conditions
        for bad, where in (
            ({"decision": "\u0661"}, "decision"),
            ({"conditions": "\n".join(f"c{i}" for i in range(21))}, "conditions"),
        ):
            status, page = await _post(us, d.us, case_id, "onward-answer", {**form, **bad})
            assert (status, bool(field_error(page, "onward-answer", where))) == (400, True)
        # an oversized form: 413 before any handler
        status, _page = await _post(
            us, d.us, case_id, "onward-answer", {**form, "explanation": "x" * ACTION}
        )
        assert status == 413
        assert [a for a in d.us.actions() if a[0] == "replied"] == []
        form["conditions"] = "Only to the prosecutor of Lyon\nNo further transfer"
        status, page = await _post(us, d.us, case_id, "onward-answer", form)
        assert status == 200, page
        assert d.us.actions()[-1] == ("replied", "duty", case_id)
        (answer,) = await arrived(d, "FR", case_id, "onward_transfer_answer")
        assert getattr(answer, "decision").value == "authorised_with_conditions"  # noqa: B009
        assert list(getattr(answer, "conditions"))[1] == "No further transfer"  # noqa: B009
        await d.wait_case("FR", case_id, "closed")
        assert await _state(d, "US", case_id) == "closed"
        async with us.get(f"{d.us.url}/cases/{case_id}") as resp:
            assert _offered(await resp.text(), case_id) == {"security-incident"}


async def test_security_incident_notice_from_either_side(tmp_path: Path) -> None:
    async with desks(tmp_path) as d, http_session() as fr, http_session() as us:
        await _auditor_refused(d, d.case_id, "security-incident")
        fr_csrf = await log_in(fr, d.fr, "agent")
        us_csrf = await log_in(us, d.us, "duty")
        # the requester (FR) sees it, the onward answer it has nothing to answer
        async with fr.get(f"{d.fr.url}/cases/{d.case_id}") as resp:
            page = await resp.text()
        assert _offered(page, d.case_id) == {"security-incident"}
        # in the officer's language (French), options included
        assert "un incident de sécurité (STCE 224" in page
        assert f">{load_catalog('fr').enums['IncidentType']['key_compromise']}</option>" in page
        good = {
            "csrf": fr_csrf,
            "officer_email": "agent@police.example.fr",
            "incident": "misdirected_transmission",
            "discovered_at": "2026-05-20T10:00:00+02:00",
            "occurred_at": "2026-05-20T09:00:00+02:00",
            "description": "The traffic data were e-mailed to a wrong internal address.",
            "risk": "low",
            "mitigation": "The copy was deleted the same hour.",
            "restrict_further_transmission": "yes",
        }
        cases = (
            ({"discovered_at": "٢٠٢٦-٠٥-٢٠T10:00:00+02:00"}, "discovered_at", "$.discovered_at"),
            ({"discovered_at": "2026-05-20T10:00:00"}, "discovered_at", "$.discovered_at"),
            ({"occurred_at": "2026-05-21T09:00:00+02:00"}, "occurred_at", "$.occurred_at"),
            ({"officer_email": ""}, "officer_email", "$.contact"),
            ({"officer_email": "not an address"}, "officer_email", "$.contact.email"),
            ({"incident": "hacked"}, "incident", ""),
            ({"risk": ""}, "risk", ""),
            ({"individuals_notified": "no"}, "individuals_notified", ""),
            ({"mitigation": ""}, "mitigation", ""),
        )
        for bad, field, path in cases:
            status, page = await _post(fr, d.fr, d.case_id, "security-incident", {**good, **bad})
            assert status == 400, bad
            assert path in field_error(page, "security-incident", field), (bad, page[-2000:])
            assert field_error(page, "security-incident", field), bad
        assert [a for a in d.fr.actions() if a[0] in ("replied", "sent")] == []
        status, page = await _post(fr, d.fr, d.case_id, "security-incident", good)
        assert status == 200, page
        assert d.fr.actions()[-1] == ("replied", "agent", d.case_id)
        (notice,) = await arrived(d, "US", d.case_id, "security_incident_notice")
        wire = msgspec.to_builtins(notice)
        contact = {k: v for k, v in wire["contact"].items() if v is not None}
        assert contact == {"name": "Agente de permanence", "email": good["officer_email"]}
        assert (wire["restrict_further_transmission"], wire["individuals_notified"]) == (
            True,
            False,
        )
        assert wire["incident"] == "misdirected_transmission"
        # a notice moves no state (protocol/_cases_apply.py: timeline only)
        assert await _state(d, "US", d.case_id) == "received"
        # the requested side (US) may notify too
        back = {**good, "csrf": us_csrf, "officer_phone": "+12025550100"}
        back |= {"officer_email": "", "restrict_further_transmission": ""}
        status, page = await _post(us, d.us, d.case_id, "security-incident", back)
        assert status == 200, page
        assert d.us.actions()[-1] == ("replied", "duty", d.case_id)
        (from_us,) = await arrived(d, "FR", d.case_id, "security_incident_notice")
        assert msgspec.to_builtins(getattr(from_us, "contact"))["phone"] == "+12025550100"  # noqa: B009
