"""The new-request form's parts without a server: the schema's coded values all have
labels and inputs, a form assembles into the body the decoder expects, every error
lands at the input that made it, and drafts stay with their officer."""

from __future__ import annotations

import sqlite3
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from console import _send_form as sf
from console._i18n import CATALOGS
from console._send_drafts import MAX_DRAFTS, DraftStore, TooManyDrafts
from schemas._identifiers import Identifier
from schemas.messages import encode_body

SENDER = sf.Sender(
    member="FR",
    organisation="OFAC",
    time_zone="Europe/Paris",
    languages=("fr", "en"),
    name="Claire Martin",
    email="claire@ofac.example.org",
    phone=None,
)
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _values(**change: Any) -> dict[str, Any]:
    values = sf.blank("0" * 32, "REF-1") | {
        "to": "US",
        "offence_name": "Phishing",
        "offence_summary": "A kit.",
        "id0_type": "ip",
        "id0_value": "198.51.100.23",
        "id0_seen": "2026-11-30T22:41",
        "id0_port": "51234",
        "relation": "It hosts the kit.",
        "necessity": "Logs rotate.",
        "mla_intent": "yes",
        "categories": ["traffic"],
    }
    return values | change


def _check(values: dict[str, Any]) -> sf.Checked:
    tree, at = sf.assemble(values, SENDER, "US 24/7", NOW)
    return sf.check(tree, at, sender="FR", recipient="US")


@pytest.mark.parametrize("language", sorted(CATALOGS))
def test_every_coded_value_has_a_label(language: str) -> None:
    keys = [f"send.priority.{v}" for v in sf.PRIORITIES]
    keys += [f"send.category.{v}" for v in sf.CATEGORIES]
    keys += [f"send.idtype.{v}" for v in sf.ID_TYPES]
    assert [k for k in keys if k not in CATALOGS[language]] == []


def test_every_identifier_type_has_its_value_field() -> None:
    for cls in typing.get_args(Identifier):
        tag = str(cls.__struct_config__.tag)
        assert sf.ID_VALUE[tag] in cls.__struct_fields__, tag
        assert sf.ID_EXTRA.get(tag, "seen_at") in cls.__struct_fields__, tag


def test_a_filled_form_is_a_valid_body_with_the_node_zone() -> None:
    checked = _check(_values())
    assert checked.errors == {}
    assert checked.general == []
    assert checked.body is not None
    data = encode_body(checked.body)
    assert b'"seen_at":"2026-11-30T22:41:00+01:00"' in data  # Paris time in November
    assert b'"officer":{"name":"Claire Martin","job_title":null' in data


@pytest.mark.parametrize(
    ("change", "name", "path"),
    [
        ({"id0_value": "10.0.0.999"}, "id0_value", "$.data.identifiers[0].address"),
        ({"id0_port": "٥١٢٣٤"}, "id0_port", "$.data.identifiers[0].port"),
        ({"id0_port": "70000"}, "id0_port", "$.data.identifiers[0].port"),
        ({"id0_seen": ""}, "id0_seen", "$.data.identifiers[0].seen_at"),
        ({"offence_name": ""}, "offence_name", "$.offence.name"),
        ({"categories": []}, "categories", "$.data.categories"),
        ({"mla_intent": ""}, "mla_intent", "$.mla_intent"),
        ({"id0_value": "", "id0_seen": "", "id0_port": ""}, "id0_value", "$.data.identifiers"),
        (
            {"range_start": "2026-11-30T00:00", "range_end": "2026-11-01T00:00"},
            "range_start",
            "$.data.date_range",
        ),
        ({"to": "DE"}, "to", "$.requested.member"),
        ({"id1_type": "account", "id1_value": "x"}, "id1_extra", "$.data.identifiers[1].service"),
    ],
)
def test_each_error_is_at_its_input(change: dict[str, Any], name: str, path: str) -> None:
    values = _values(**change)
    tree, at = sf.assemble(values, SENDER, None, NOW)
    recipient = "US"
    checked = sf.check(tree, at, sender="FR", recipient=recipient)
    if name == "to":  # E14: the body names DE, the envelope would go to US
        assert checked.errors[name].startswith(path + ": ")
        return
    assert checked.body is None
    assert name in checked.errors, (checked.errors, checked.general)
    assert checked.errors[name].startswith(path), checked.errors


def test_an_error_no_input_made_is_shown_apart() -> None:
    nobody = sf.Sender(**{**SENDER.__dict__, "email": None, "phone": None})
    tree, at = sf.assemble(_values(), nobody, None, NOW)
    checked = sf.check(tree, at, sender="FR", recipient="US")
    assert checked.errors == {}
    assert checked.general[0].startswith("$.requesting.officer")


def test_drafts_belong_to_their_officer(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "node.db", isolation_level=None)
    store = DraftStore(conn, lambda: NOW)
    mine = store.save(1, _values())
    store.set_preview(1, mine, b"{}")
    assert store.get(1, mine) is not None
    assert store.get(2, mine) is None
    with pytest.raises(KeyError):
        store.save(2, _values(), mine)
    assert store.delete(2, mine) is False
    store.save(1, _values(necessity="changed"), mine)
    draft = store.get(1, mine)
    assert draft is not None
    assert draft.preview is None  # a changed form drops the old preview
    assert draft.digest == ""
    for _ in range(MAX_DRAFTS - 1):
        store.save(1, _values())
    with pytest.raises(TooManyDrafts):
        store.save(1, _values())
    assert len(DraftStore(conn, lambda: NOW).list(1)) == MAX_DRAFTS
    conn.close()
