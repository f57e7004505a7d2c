"""The Spanish and Arabic written for the other console areas (console/_labels_es_ar_extra):
complete in both languages, new keys only, legal terms flagged and listed in the docs."""

from __future__ import annotations

from pathlib import Path

from console import _labels_es_ar_extra as extra
from console._i18n import CATALOGS


def test_both_languages_hold_the_same_keys_all_worded() -> None:
    assert set(extra.LABELS) == {"es", "ar"}
    assert set(extra.LABELS["es"]) == set(extra.LABELS["ar"])
    assert frozenset().union(*extra.AREAS.values()) == set(extra.LABELS["es"])
    for labels in extra.LABELS.values():
        assert all(v.strip() for v in labels.values())
    unworded = [
        k
        for k, v in extra.LABELS["ar"].items()
        if not any("\u0600" <= c <= "\u06ff" for c in v)
        and k not in {"send.sha256"}  # a name, written alike in every language
    ]
    assert unworded == []


def test_keys_translate_labels_that_exist() -> None:
    # each is the es/ar of an English label another area defines (a key repeated in one
    # language across parts is refused when the catalog is built, console/_i18n.py)
    assert set(extra.LABELS["es"]) <= set(CATALOGS["en"])
    assert set(extra.LABELS["es"]) <= set(CATALOGS["es"])


def test_legal_terms_are_flagged_and_listed() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "OPERATIONS.md").read_text("utf-8")
    for language, keys in extra.LEGAL_REVIEW.items():
        assert keys <= set(extra.LABELS[language])
        for key in keys:
            assert f"`{key}`" in doc, key


def test_placeholders_agree_between_languages() -> None:
    import re

    es, ar = extra.LABELS["es"], extra.LABELS["ar"]
    fields = {k: re.findall(r"\{\w+\}", v) for k, v in es.items()}
    assert fields["send.duplicate"] == ["{days}"]
    for key, wanted in fields.items():
        assert re.findall(r"\{\w+\}", ar[key]) == wanted, key
