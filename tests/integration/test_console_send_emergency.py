"""An emergency request (CETS 224 Art. 9) from the new-request page, over HTTP against a
real relay and two real nodes: each missing Art. 9(3) item is shown at its input with the
CLI's JSON path, the preview shows the exact bytes and their SHA-256, the draft is kept
and sending signs those bytes; US receives an ``emergency_disclosure_request``."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from node.cases.service import body_of
from schemas.messages import encode_body
from tests.integration._console_send_scenario import send_scenario
from tests.integration.test_console_send import (
    _session,
    filled,
    form_data,
    login,
    new_case,
    preview_of,
)

_DRAFT = re.compile(r'name="draft" value="([^"]+)"')


def _error(page: str, name: str) -> str:
    found = re.search(rf'<span class="field-error" id="err-{name}">([^<]*)</span>', page)
    return "" if found is None else found.group(1)


async def test_officer_sends_an_emergency_request(tmp_path: Path) -> None:
    async with send_scenario(tmp_path) as s, _session() as http:
        csrf = await login(http, s, "claire")
        async with http.get(f"{s.cut.url}/send") as resp:
            page = await resp.text()
        assert '<option value="emergency_disclosure_request">' in page
        case_id = await new_case(http, s)
        url = f"{s.cut.url}/send"
        values = filled(case_id, id0_value="198.51.100.23", kind="emergency_disclosure_request")
        # the facts of the emergency are required (Art. 9(3)(e)): at their input
        async with http.post(url, data=form_data(csrf, values, "preview")) as r:
            assert r.status == 422
            page = await r.text()
        assert "$.emergency_facts: " in _error(page, "emergency_facts")
        draft = _DRAFT.search(page)
        assert draft is not None
        keep = {"draft": draft.group(1)}
        # the statement (9(3)(b)) and the penalty (9(3)(d)): both at their inputs
        values["emergency_facts"] = "A hostage is held; the kidnappers use this account."
        async with http.post(url, data=form_data(csrf, values, "preview", **keep)) as r:
            assert r.status == 422
            page = await r.text()
        assert "$.protocol_statement: " in _error(page, "protocol_statement")
        assert "$.offence.max_penalty: " in _error(page, "offence_penalty")
        # no provider to ask: at the custodian's input
        values |= {"protocol_statement": "yes", "offence_penalty": "Life imprisonment"}
        no_provider = values | {"custodian_name": "", "custodian_country": ""}
        async with http.post(url, data=form_data(csrf, no_provider, "preview", **keep)) as r:
            assert r.status == 422
            assert "$.providers" in _error(await r.text(), "custodian_name")
        async with http.post(url, data=form_data(csrf, values, "preview", **keep)) as r:
            assert r.status == 200, await r.text()
            data, digest = preview_of(await r.text())
        assert hashlib.sha256(data).hexdigest() == digest
        sent = json.loads(data)
        assert sent["kind"] == "emergency_disclosure_request"
        assert sent["providers"][0]["name"] == "Example Hosting GmbH"
        assert sent["protocol_statement"] is True
        assert "necessity" not in sent
        assert "priority" not in sent
        # the draft keeps the kind: reopened, the form shows the emergency chosen
        async with http.get(f"{s.cut.url}/send?draft={draft.group(1)}") as r:
            assert '<option value="emergency_disclosure_request" selected>' in await r.text()
        send_url = f"{s.cut.url}/send/drafts/{draft.group(1)}/send"
        stale = {"csrf": csrf, "sha256": "0" * 64}
        async with http.post(send_url, data=stale, allow_redirects=False) as r:
            assert r.status == 409
        good = {"csrf": csrf, "sha256": digest}
        async with http.post(send_url, data=good, allow_redirects=False) as r:
            assert r.status == 303
            assert r.headers["Location"] == f"/cases/{case_id}"
        assert ("sent", "claire", case_id) in s.cut.actions()
        await s.received_at_us(case_id)
        records = await s.us.node.store.messages(case_id=case_id, limit=10)
        (received,) = [body_of(r) for r in records if r.coarse_kind != "receipt"]
        assert received is not None
        assert encode_body(received) == data


async def test_a_kind_that_is_none_is_refused(tmp_path: Path) -> None:
    async with send_scenario(tmp_path) as s, _session() as http:
        csrf = await login(http, s, "claire")
        case_id = await new_case(http, s)
        for kind in ("refusal", "emergency_disclosure_request\u0663", "<script>"):
            values = filled(case_id, kind=kind)
            async with http.post(f"{s.cut.url}/send", data=form_data(csrf, values, "save")) as r:
                assert r.status == 400, kind
        assert not [a for a in s.cut.actions() if a[0] == "draft_saved"]


async def test_officer_sends_a_request_for_assistance(tmp_path: Path) -> None:
    async with send_scenario(tmp_path) as s, _session() as http:
        csrf = await login(http, s, "claire")
        case_id = await new_case(http, s)
        url = f"{s.cut.url}/send"
        values = filled(case_id, kind="assistance_request", subject="Botnet C2 takedown")
        values |= {"details": "Which provider hosts this address?", "assistance": ""}
        # no kind of assistance chosen, a wrong IP address: each at its input
        async with http.post(url, data=form_data(csrf, values, "preview")) as r:
            assert r.status == 422
            page = await r.text()
        assert "$.assistance" in _error(page, "assistance")
        draft = _DRAFT.search(page)
        assert draft is not None
        keep = {"draft": draft.group(1)}
        values["assistance"] = "technical_advice"
        async with http.post(url, data=form_data(csrf, values, "preview", **keep)) as r:
            assert r.status == 422
            assert "$.identifiers[0].address" in _error(await r.text(), "id0_value")
        values["id0_value"] = "198.51.100.23"
        async with http.post(url, data=form_data(csrf, values, "preview", **keep)) as r:
            assert r.status == 200, await r.text()
            data, digest = preview_of(await r.text())
        sent = json.loads(data)
        assert sent["kind"] == "assistance_request"
        assert sent["identifiers"][0]["address"] == "198.51.100.23"
        assert "offence" not in sent
        assert "requested" not in sent
        good = {"csrf": csrf, "sha256": digest}
        send_url = f"{s.cut.url}/send/drafts/{draft.group(1)}/send"
        async with http.post(send_url, data=good, allow_redirects=False) as r:
            assert r.status == 303, await r.text()
        assert ("sent", "claire", case_id) in s.cut.actions()
        await s.received_at_us(case_id)
        records = await s.us.node.store.messages(case_id=case_id, limit=10)
        (received,) = [body_of(r) for r in records if r.coarse_kind != "receipt"]
        assert received is not None
        assert encode_body(received) == data


async def test_officer_sends_an_onward_transfer_request(tmp_path: Path) -> None:
    """CETS 224 Art. 14(10)(a): the recipient, the data and the purpose, each error at
    its input with the CLI's JSON path; the other kinds' inputs are left out; the body is
    signed as previewed and logged ``sent``; and a preservation ignores these inputs."""
    async with send_scenario(tmp_path) as s, _session() as http:
        csrf = await login(http, s, "claire")
        async with http.get(f"{s.cut.url}/send") as resp:
            assert '<option value="onward_transfer_request">' in await resp.text()
        case_id = await new_case(http, s)
        url = f"{s.cut.url}/send"
        values = filled(case_id, kind="onward_transfer_request", recipient_kind="state")
        values |= {"recipient": "Parquet de Bruxelles", "purpose": "Prosecution of the gang."}
        values |= {"data_description": "Subscriber data of account drop.box.2026."}
        # a State needs its country (the schema's rule): at that input
        async with http.post(url, data=form_data(csrf, values, "preview")) as r:
            assert r.status == 422
            page = await r.text()
        assert "$.recipient_country" in _error(page, "recipient_country")
        draft = _DRAFT.search(page)
        assert draft is not None
        keep = {"draft": draft.group(1)}
        # a country that is no ISO code, a recipient kind outside the list: at their inputs
        for bad, name in (
            ({"recipient_country": "Belgique"}, "recipient_country"),
            ({"recipient_country": "BE", "recipient_kind": "\u0661"}, "recipient_kind"),
            ({"recipient_country": "BE", "purpose": ""}, "purpose"),
        ):
            async with http.post(url, data=form_data(csrf, values | bad, "preview", **keep)) as r:
                assert r.status == 422, bad
                assert f"$.{name}" in _error(await r.text(), name), bad
        values["recipient_country"] = "BE"
        async with http.post(url, data=form_data(csrf, values, "preview", **keep)) as r:
            assert r.status == 200, await r.text()
            data, digest = preview_of(await r.text())
        sent = json.loads(data)
        assert sent["kind"] == "onward_transfer_request"
        assert (sent["recipient_kind"], sent["recipient_country"]) == ("state", "BE")
        assert not {"offence", "requested", "requesting", "identifiers", "data"} & set(sent)
        good = {"csrf": csrf, "sha256": digest}
        send_url = f"{s.cut.url}/send/drafts/{draft.group(1)}/send"
        async with http.post(send_url, data=good, allow_redirects=False) as r:
            assert r.status == 303, await r.text()
        assert ("sent", "claire", case_id) in s.cut.actions()
        await s.received_at_us(case_id)
        records = await s.us.node.store.messages(case_id=case_id, limit=10)
        (received,) = [body_of(r) for r in records if r.coarse_kind != "receipt"]
        assert received is not None
        assert encode_body(received) == data
        # a preservation with the onward inputs still filled: they are left out
        other = await new_case(http, s)
        pres = values | {"case_id": other, "kind": "preservation_request"}
        pres["id0_value"] = "198.51.100.23"
        async with http.post(url, data=form_data(csrf, pres, "preview")) as r:
            assert r.status == 200, await r.text()
            kept, _digest = preview_of(await r.text())
        assert "recipient" not in json.loads(kept)
