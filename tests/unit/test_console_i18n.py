"""Every console label in every language, and every label a template uses in the catalog."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from console._i18n import CATALOGS, DEFAULT, account_language, label, pick_language
from console._pages import _LOGIN_ERRORS

TEMPLATES = Path(__file__).resolve().parents[2] / "console" / "templates"
_USED = re.compile(r"""\bt\(\s*["']([a-z_.]+)["']\s*\)""")


def _used() -> set[str]:
    keys: set[str] = set()
    for page in TEMPLATES.glob("*.html"):
        keys |= set(_USED.findall(page.read_text(encoding="utf-8")))
    return keys


@pytest.mark.parametrize("language", sorted(CATALOGS))
def test_every_label_in_every_language(language: str) -> None:
    assert set(CATALOGS[language]) == set(CATALOGS[DEFAULT])
    assert all(v.strip() for v in CATALOGS[language].values())


def test_every_label_a_template_or_page_uses_exists() -> None:
    used = _used() | set(_LOGIN_ERRORS.values()) | {"login.bad", "login.expired"}
    assert len(used) > 30  # the scan found the templates' labels
    assert used - set(CATALOGS[DEFAULT]) == set()


def test_french_differs_from_english() -> None:
    same = [k for k, v in CATALOGS["fr"].items() if v == CATALOGS["en"][k]]
    # words spelt alike in both languages only
    assert set(same) <= {"msg.title", "anomaly.title", "anomaly.code", "case.anomalies"}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", "en"),
        ("fr", "fr"),
        ("fr-CA,en;q=0.5", "fr"),
        ("en;q=0.4, fr;q=0.9", "fr"),
        ("de, fr;q=0.1", "fr"),
        ("de", "en"),
        ("fr;q=0, en", "en"),
        ("fr;q=abc, en", "en"),
        (",,;;q=", "en"),
        ("FR-fr", "fr"),
    ],
)
def test_accept_language(header: str, expected: str) -> None:
    assert pick_language(header) == expected


def test_account_language_falls_back_to_english() -> None:
    assert account_language("fr") == "fr"
    assert account_language("ar") == "en"
    assert label("ar", "login.submit") == "Log in"
