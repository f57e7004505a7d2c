"""Every console label in every language, and every label a template uses in the catalog."""

from __future__ import annotations

import enum
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import schemas
from console import _actions_spec as sp
from console import _labels_admin, _labels_emergency
from console._actions import coded_labels
from console._i18n import (
    CATALOGS,
    DEFAULT,
    LEGAL_REVIEW,
    account_language,
    label,
    pick_language,
)
from console._pages import _LOGIN_ERRORS
from node.officers import LANGUAGES, Role
from protocol import cases

TEMPLATES = Path(__file__).resolve().parents[2] / "console" / "templates"
_USED = re.compile(r"""\bt\(\s*["']([a-z_.]+)["']\s*\)""")


#: Coded values written alike in every language: algorithm names and the product's name.
_TECHNICAL_CODES = {"code.KeyAlg.ed25519", "code.KeyAlg.x25519", "code.ReplyChannel.relay247"}


def _used() -> set[str]:
    keys: set[str] = set()
    for page in TEMPLATES.glob("*.html"):
        keys |= set(_USED.findall(page.read_text(encoding="utf-8")))
    return keys


@pytest.mark.parametrize("language", sorted(CATALOGS))
def test_every_label_in_every_language(language: str) -> None:
    assert set(CATALOGS[language]) == set(CATALOGS[DEFAULT])
    assert all(v.strip() for v in CATALOGS[language].values())


def test_the_console_speaks_every_account_language() -> None:
    # issue 13 §3: English, French, Spanish and Arabic, INTERPOL's working languages
    assert set(CATALOGS) == set(LANGUAGES) == {"en", "fr", "es", "ar"}


def _dynamic() -> set[str]:
    """Labels the pages name by code, not as a literal in a template."""
    from console._admin_accounts import _ERRORS
    from console._keys_pages import _DONE
    from console._keys_pages import _ERRORS as _KEY_ERRORS

    changes = {f"accounts.{c}_done" for c in ("disable", "enable", "roles", "reset", "title")}
    return (
        {f"role.{r.value}" for r in Role}
        | {f"lang.{code}" for code in LANGUAGES}
        | set(_ERRORS.values())
        | changes
        | {"accounts.added", "accounts.error.self", "access.bad_query", "access.bad_date"}
        | set(_KEY_ERRORS.values())
        | set(_DONE.values())
        | {"keys.error.expired", "keys.login_expired", "keys.login_bad"}
        | {"emergency.bad_procedure", "emergency.no_case"}
        | {f"emergency.point_{p}" for p in ("member", "procedure", "caller", "asked", "time")}
        | {"emergency.point_request"}
    )


def test_every_label_a_template_or_page_uses_exists() -> None:
    used = _used() | set(_LOGIN_ERRORS.values()) | {"login.bad", "login.expired"} | _dynamic()
    assert len(used) > 30  # the scan found the templates' labels
    assert used - set(CATALOGS[DEFAULT]) == set()


def test_french_differs_from_english() -> None:
    same = [k for k, v in CATALOGS["fr"].items() if v == CATALOGS["en"][k]]
    # words spelt alike in both languages only
    assert set(same) <= {
        "msg.title",
        "anomaly.title",
        "anomaly.code",
        "case.anomalies",
        "access.action",
        "access.pages",
        "accounts.actions",
        # search, directory and print pages (console/_labels_pages.py)
        "age.minutes",
        "dir.contacts",
        "dir.version",
        "file.what",
        "search.page",
        "code.KeyUse.transport",
        "code.IdentifierType.imei",
        "code.IdentifierType.imsi",
        "code.IdentifierType.url",
        # message field labels, from the CLI's catalogs (the same word in both)
        *(f"field.{n}" for n in ("conditions", "contact", "description", "incident")),
        *(f"field.{n}" for n in ("imei", "imsi", "port", "service", "url", "sha256")),
        # coded values of console/_labels_codes_es_ar.py, from the CLI's catalogs
        *("code.FollowUpRole.question", "code.FollowUpTopic.conditions"),
        *("code.IncidentType.destruction", "code.IpRole.destination", "code.IpRole.source"),
        *_TECHNICAL_CODES,
    }


@pytest.mark.parametrize("language", ["es", "ar"])
def test_spanish_and_arabic_are_translated(language: str) -> None:
    same = {k for k, v in CATALOGS[language].items() if v == CATALOGS["en"][k]}
    # technical names kept as written in every language (SHA-256, IMEI, IMSI, URL)
    technical = {"send.sha256", "send.idtype.imei", "send.idtype.imsi", "send.idtype.url"}
    technical |= {f"code.IdentifierType.{t}" for t in ("imei", "imsi", "url")}
    technical |= {f"field.{t}" for t in ("imei", "imsi", "url", "sha256")}
    technical |= _TECHNICAL_CODES
    # words spelt alike in English and Spanish; Arabic shares none
    alike = {"error.title", "no", "role.supervisor", "role.auditor", "send.priority.normal"}
    alike |= {"code.Priority.normal", "field.fax", "code.ReplyChannel.fax"}
    alike.add("live.days")  # "d" for días as for days
    allowed = technical | (alike if language == "es" else set())
    assert same <= allowed
    if language == "ar":
        arabic = [k for k, v in CATALOGS["ar"].items() if any("\u0600" <= c <= "\u06ff" for c in v)]
        assert set(arabic) | technical == set(CATALOGS["ar"])


def _enums() -> list[type[enum.Enum]]:
    """Every enum of a message body or a case (schemas/ and protocol.cases), found by
    introspection as tests/unit/test_i18n.py finds them for the CLI's catalogs."""
    modules = [
        importlib.import_module(f"schemas.{m.name}") for m in pkgutil.iter_modules(schemas.__path__)
    ]
    found = {
        obj
        for mod in [*modules, cases]
        for obj in vars(mod).values()
        if isinstance(obj, type) and issubclass(obj, enum.Enum) and obj is not enum.StrEnum
    }
    return sorted(found, key=lambda e: e.__name__)


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_coded_value_has_a_label(language: str) -> None:
    """A select of a case action, a timeline or a foreign request side by side never shows
    a bare code nor falls back to English (issue 13 §3): every value of every enum."""
    enums = _enums()
    assert {"WarningReason", "ImpossibilityReason", "AuthorityRole", "IpRole"} <= {
        e.__name__ for e in enums
    }
    missing = [
        f"code.{e.__name__}.{m.value}"
        for e in enums
        for m in e
        if not CATALOGS[language].get(f"code.{e.__name__}.{m.value}", "").strip()
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("language", "enum_name", "value", "expected"),
    [
        ("es", "WarningReason", "threatens_confidentiality", "confidencialidad"),
        ("ar", "ImpossibilityReason", "data_not_retained", "البيانات غير محتفَظ بها"),
        ("es", "RefusalGround", "sovereignty", "Soberanía"),
        ("ar", "AssistanceOutcome", "redirected", "أُحيل"),
        ("fr", "AuthorityRole", "court", "Juridiction"),
        ("en", "FollowUpTopic", "formalisation", "Formal request"),
    ],
)
def test_case_action_selects_show_the_readers_language(
    language: str, enum_name: str, value: str, expected: str
) -> None:
    # the options of a case action's select (case_actions.html) and of /send
    assert expected in coded_labels(language)(enum_name, value)
    assert coded_labels(language)("NoSuchEnum", "x") == "x"


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_select_of_a_case_action_is_labelled(language: str) -> None:
    """Each option of each case action's select is a label, never the bare code."""
    selects = [(enum_name, v) for a in sp.ACTIONS for _f, enum_name, vs in a.choices for v in vs]
    assert {"WarningReason", "ImpossibilityReason", "AssistanceOutcome"} <= {e for e, _ in selects}
    code = coded_labels(language)
    bare = [(e, v) for e, v in selects if code(e, v) == v]
    assert bare == []


def test_legal_terms_are_flagged_for_review() -> None:
    """Legal terms translated without a legal translator carry a per-key flag (issue 13
    §3); every flagged key exists, and docs/OPERATIONS.md lists each one."""
    flags = {lang: set(keys) for lang, keys in LEGAL_REVIEW.items()}
    for part in (_labels_admin.LEGAL_REVIEW, _labels_emergency.LEGAL_REVIEW):
        for lang, keys in part.items():
            flags.setdefault(lang, set()).update(keys)
    assert set(flags) == {"es", "ar"}
    assert "msg.receipt" in flags["es"]
    doc = (Path(__file__).resolve().parents[2] / "docs" / "OPERATIONS.md").read_text("utf-8")
    for lang, flagged in flags.items():
        assert flagged
        assert flagged <= set(CATALOGS[lang])
        for key in flagged:
            assert f"`{key}`" in doc, key


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
        ("es-ES,en;q=0.5", "es"),
        ("ar-JO", "ar"),
    ],
)
def test_accept_language(header: str, expected: str) -> None:
    assert pick_language(header) == expected


def test_account_language_falls_back_to_english() -> None:
    assert account_language("fr") == "fr"
    assert account_language("es") == "es"
    assert account_language("ar") == "ar"
    assert account_language("de") == "en"
    assert label("de", "login.submit") == "Log in"
    assert label("ar", "login.submit") == "تسجيل الدخول"


def test_a_body_is_flattened_to_every_field() -> None:
    from console._pages import flatten

    rows = flatten({"a": {"b": [1, (None, True)], "c": False}, "d": "<x>"}, ("oui", "non"))
    assert rows == [
        ("a.b[0]", "1"),
        ("a.b[1][0]", ""),
        ("a.b[1][1]", "oui"),
        ("a.c", "non"),
        ("d", "<x>"),
    ]


def test_one_time_formatter_for_every_page() -> None:
    import console._pages as pages

    # the ISO formatter the roster and new-request pages used is gone: every page calls
    # _pages._times, which is the Babel one
    assert not hasattr(pages, "_Times")
    root = Path(__file__).resolve().parents[2] / "console"
    for module in root.glob("*.py"):
        text = module.read_text(encoding="utf-8")
        assert 'strftime("%Y-%m-%d' not in text, module


def test_node_zone_times_in_each_locale() -> None:
    from datetime import UTC, date, datetime
    from zoneinfo import ZoneInfo

    from console._locale import LocalTimes, number

    when = datetime(2026, 7, 1, 22, 30, tzinfo=UTC)
    paris = ZoneInfo("Europe/Paris")
    assert LocalTimes(paris, "en").local(when) == "Jul 2, 2026, 12:30\u202fAM CEST"
    assert LocalTimes(paris, "fr").local(when) == "2 juil. 2026, 00:30 CEST"
    assert LocalTimes(paris, "es").local(when) == "2 jul 2026, 0:30 CEST"
    arabic = LocalTimes(paris, "ar").local(when)
    assert arabic.startswith("\u2068")  # an isolate: a right-to-left line keeps its order
    assert arabic.endswith(" CEST\u2069")
    assert "2026" in arabic
    assert LocalTimes(None, "fr").local(when) == "1 juil. 2026, 22:30 UTC"
    assert LocalTimes(paris, "fr").local(when, date(2026, 7, 3)) == "3 juil. 2026"
    # UTC is worded the same way as the node's zone, in every locale
    assert LocalTimes(paris, "fr").utc(when) == "1 juil. 2026, 22:30 UTC"
    assert LocalTimes(paris, "en").utc(when) == "Jul 1, 2026, 10:30\u202fPM UTC"
    assert LocalTimes(paris, "ar").utc(when).endswith(" UTC\u2069")
    assert LocalTimes(paris, "es").utc(when, date(2026, 7, 3)) == "3 jul 2026"
    assert [number(lang, 12345) for lang in ("en", "es")] == ["12,345", "12.345"]
    assert number("fr", 12345) == "12\u202f345"
