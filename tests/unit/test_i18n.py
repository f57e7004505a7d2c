"""Catalogs: every field, coded value, kind, state and deadline kind has a label in both
languages (found by introspection, so a new field without a label fails here), and the
renderer translates codes, keeps free text and keeps UTC offsets."""

from __future__ import annotations

import enum
import importlib
import json
import pkgutil
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest

import schemas
from node.render import (
    LANGUAGES,
    Catalog,
    format_time,
    load_catalog,
    render_body,
    render_timeline_entry,
)
from protocol import cases
from protocol.cases import AnomalyCode, CaseState, TimelineEntry
from protocol.errors import ConfigError
from schemas.envelope import ReceiptStatus
from schemas.examples import EXAMPLES
from schemas.messages import BODY_TYPES, KINDS

I18N = Path(__file__).resolve().parents[2] / "node" / "i18n"


def _structs(tp: Any, seen: dict[type, list[str]]) -> None:
    """Collect every Struct reachable from ``tp`` with its field names."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        _structs(typing.get_args(tp)[0], seen)
    elif origin in (typing.Union, types.UnionType, tuple, list, dict):
        for arg in typing.get_args(tp):
            if arg is not Ellipsis:
                _structs(arg, seen)
    elif isinstance(tp, type) and issubclass(tp, msgspec.Struct) and tp not in seen:
        seen[tp] = list(tp.__struct_fields__)
        hints = typing.get_type_hints(tp, include_extras=True)
        for name in tp.__struct_fields__:
            _structs(hints[name], seen)


def _all_fields() -> list[tuple[str, str]]:
    seen: dict[type, list[str]] = {}
    for body in BODY_TYPES:
        _structs(body, seen)
    return sorted((t.__name__, f) for t, fields in seen.items() for f in fields)


def _all_enums() -> list[type[enum.Enum]]:
    found: set[type[enum.Enum]] = set()
    modules = [
        importlib.import_module(f"schemas.{m.name}") for m in pkgutil.iter_modules(schemas.__path__)
    ]
    for mod in [*modules, cases]:
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, enum.Enum) and obj is not enum.StrEnum:
                found.add(obj)
    return sorted(found, key=lambda e: e.__name__)


FIELDS = _all_fields()
ENUMS = _all_enums()


def test_introspection_finds_the_known_shapes() -> None:
    # guards the walker itself: nested sub-structs and union members are reached
    names = {s for s, _ in FIELDS}
    assert {"Contact", "IpId", "PathHop", "DataRange", "DataSpec", "Offence"} <= names
    assert {e.__name__ for e in ENUMS} >= {"RefusalGround", "CaseState", "DeadlineKind", "Side"}
    assert len(FIELDS) > 200


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_field_has_a_label(lang: str) -> None:
    cat = load_catalog(lang)
    missing = [
        f"{s}.{f}"
        for s, f in FIELDS
        if not (cat.field_overrides.get(f"{s}.{f}") or cat.fields.get(f) or "").strip()
    ]
    assert missing == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_coded_value_has_a_label(lang: str) -> None:
    cat = load_catalog(lang)
    missing = [
        f"{e.__name__}.{m.value}"
        for e in ENUMS
        for m in e
        if not cat.enums.get(e.__name__, {}).get(str(m.value), "").strip()
    ]
    assert missing == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_kind_has_a_label(lang: str) -> None:
    cat = load_catalog(lang)
    missing = [k for k in (*KINDS, "delivery_receipt") if not cat.kinds.get(k, "").strip()]
    assert missing == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_stale_labels(lang: str) -> None:
    cat = load_catalog(lang)
    names = {f for _, f in FIELDS}
    pairs = {f"{s}.{f}" for s, f in FIELDS}
    assert set(cat.fields) - names == set()
    assert set(cat.field_overrides) - pairs == set()
    assert set(cat.enums) - {e.__name__ for e in ENUMS} == set()
    assert set(cat.kinds) - {*KINDS, "delivery_receipt"} == set()


def _keys(obj: Any, prefix: str = "") -> set[str]:
    if not isinstance(obj, dict):
        return {prefix}
    return set().union(*(_keys(v, f"{prefix}.{k}") for k, v in obj.items()))


def test_both_catalogs_have_the_same_keys_and_no_empty_value() -> None:
    en, fr = (json.loads((I18N / f"{lang}.json").read_text("utf-8")) for lang in ("en", "fr"))
    assert _keys(en) == _keys(fr)
    for cat in (load_catalog("en"), load_catalog("fr")):
        assert all(v.strip() for v in cat.ui.values())


@pytest.mark.parametrize(
    ("path", "term"),
    [
        (("kinds", "preservation_request"), "conservation rapide"),
        (("kinds", "mla_submitted"), "entraide judiciaire"),
        (("kinds", "traffic_data_disclosure"), "données relatives au trafic"),
        (("fields", "ground"), "Motif de refus"),
        (("fields", "requesting"), "Autorité requérante"),
        (("fields", "requested"), "Autorité requise"),
        (("enums", "RefusalGround", "political_offence"), "Infraction politique"),
        (("enums", "RefusalGround", "ordre_public"), "Ordre public"),
        (("enums", "RefusalGround", "dual_criminality"), "Double incrimination"),
        (("enums", "DataCategory", "subscriber"), "relatives aux abonnés"),
        (("enums", "Side", "requested"), "Partie requise"),
    ],
)
def test_french_uses_the_legal_terminology(path: tuple[str, ...], term: str) -> None:
    node: Any = json.loads((I18N / "fr.json").read_text("utf-8"))
    for key in path:
        node = node[key]
    assert term in node


def test_french_differs_from_english_for_legal_terms() -> None:
    en, fr = load_catalog("en"), load_catalog("fr")
    same = [k for k in en.kinds if en.kinds[k] == fr.kinds[k]]
    assert same == []


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ConfigError, match="no catalog"):
        load_catalog("de")


# --- rendering ---------------------------------------------------------------------------


def _rows(kind: str, lang: str) -> dict[str, str]:
    return {r.label: r.value for r in render_body(EXAMPLES[kind], lang)}


def test_render_translates_codes_and_keeps_free_text() -> None:
    fr = _rows("preservation_request", "fr")
    body = EXAMPLES["preservation_request"]
    assert fr["Message"] == "Demande de conservation rapide (art. 29)"
    assert fr["Priorité"] == "Haute"
    assert fr["Nature de la demande"] == "Nouvelle demande"
    assert fr["Nécessité de la conservation"] == body.necessity  # type: ignore[union-attr]
    assert fr["Demande d'entraide judiciaire à suivre"] == "Oui"
    assert fr["Demande d'entraide judiciaire attendue pour le"] == "2026-06-30"
    assert fr["Date de la demande"] == "2026-05-12 03:10:00 +02:00"
    en = _rows("refusal", "en")
    assert en["Ground for refusal"] == "Dual criminality not met (Art. 29(4) reservation)"


def test_render_nested_identifiers_and_lists() -> None:
    rows = render_body(EXAMPLES["preservation_request"], "en")
    ip = [r for r in rows if r.label == "IP address"]
    assert ip[0].depth == 2  # data (0) > "Identifiers 4" (1) > IP address (2)
    headings = [r for r in rows if r.label.startswith("Identifiers ")]
    assert headings[0].value == "Domain name"
    cats = next(r for r in rows if r.label == "Data categories")
    assert cats.value == "Subscriber information, Traffic data, Content data"


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_example_renders_with_labels_only(kind: str, lang: str) -> None:
    rows = render_body(EXAMPLES[kind], lang)
    raw = {f for _, f in FIELDS if "_" in f}
    assert not [r.label for r in rows if r.label.split(" ")[0] in raw]
    assert all(r.label for r in rows)


def test_absent_optional_fields_are_not_shown() -> None:
    en = _rows("preservation_withdrawal", "en")
    assert "Explanation" not in en
    assert "In reply to message" not in en


def test_format_time_keeps_the_offset() -> None:
    paris = timezone(timedelta(hours=2))
    assert format_time(datetime(2026, 5, 12, 3, 10, tzinfo=paris)) == "2026-05-12 03:10:00 +02:00"
    assert format_time(datetime(2026, 5, 12, 1, 10, tzinfo=UTC)) == "2026-05-12 01:10:00 +00:00"
    india = timezone(timedelta(hours=-3, minutes=-30))
    assert format_time(datetime(2026, 1, 1, tzinfo=india)).endswith(" -03:30")
    assert format_time(datetime(2026, 1, 1)) == "2026-01-01 00:00:00"  # naive: shown as is


def test_render_timeline_entry() -> None:
    entry = TimelineEntry(
        at=datetime(2026, 5, 12, 1, 10, tzinfo=UTC),
        msg_id="a" * 32,
        outgoing=False,
        kind="delivery_receipt",
        state=CaseState.RECEIVED,
        receipt_status=ReceiptStatus.ACCEPTED,
        anomaly=AnomalyCode.UNKNOWN_MESSAGE,
    )
    fr = {r.label: r.value for r in render_timeline_entry(entry, "fr")}
    assert fr["Sens"] == "Reçu"
    assert fr["Message"] == "Accusé de réception"
    assert fr["État"] == "Reçu"
    assert fr["Anomalie"] == "Accusé de réception d'un message inconnu"
    plain = msgspec.structs.replace(entry, receipt_status=None, anomaly=None, outgoing=True)
    en = {r.label: r.value for r in render_timeline_entry(plain, "en")}
    assert en["Direction"] == "Sent"
    assert "Anomaly" not in en


def test_catalog_falls_back_to_the_code_for_unknown_keys() -> None:
    cat = Catalog(lang="xx", kinds={}, fields={}, field_overrides={}, enums={}, ui={})
    assert cat.field("Contact", "name") == "name"
    assert cat.kind("preserved") == "preserved"
    assert cat.enum(CaseState.NEW) == "new"
    assert cat.text("yes") == "yes"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_message_status_has_words(lang: str) -> None:
    # `node show` / `node inbox` print these; a bare code ("[delivered]") is not French.
    from cli._node_render import receipt_word, status_word

    statuses = [("out", s) for s in ("queued", "sent", "delivered", "rejected", "failed")]
    statuses += [("in", "accepted"), ("in", "rejected")]
    for direction, status in statuses:
        assert f"status_{direction}_{status}" in load_catalog(lang).ui, (direction, status)
        if lang != "en":  # in English a code may be its own word ("delivered")
            assert status_word(status, direction, lang) != status
    assert receipt_word("accepted", lang) not in ("accepted", "Accepted", "Accepté")
