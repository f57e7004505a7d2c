"""The parts of the search, directory and message pages that need no server: key status,
ages, coded values in the reader's language beside free text as written, field errors
named in the reader's language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from console._directory import EXPIRING, age_text, key_status
from console._locale import LocalTimes
from console._pages import coder
from console._side import named_error, side_rows
from schemas._bodies_request import PreservationRequest
from schemas.directory import KeyAlg, KeyUse, MemberKey
from schemas.examples import example

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _key(
    start: datetime,
    end: datetime,
    *,
    use: KeyUse = KeyUse.SIGNING,
    revoked_at: datetime | None = None,
) -> MemberKey:
    return MemberKey(
        use=use,
        alg=KeyAlg.ED25519,
        public=bytes(32),
        not_before=start,
        not_after=end,
        revoked_at=revoked_at,
    )


def test_each_key_gets_one_status_at_the_clock() -> None:
    old = _key(NOW - 400 * DAY, NOW + 300 * DAY)
    new = _key(NOW - 10 * DAY, NOW + 700 * DAY)
    encryption = _key(NOW - 400 * DAY, NOW + 300 * DAY, use=KeyUse.ENCRYPTION)
    keys = (old, new, encryption)
    assert key_status(old, keys, NOW) == "rotated"  # a newer signing key is valid
    assert key_status(new, keys, NOW) == "valid"
    assert key_status(encryption, keys, NOW) == "valid"  # another use rotates nothing
    soon = _key(NOW - DAY, NOW + EXPIRING - DAY)
    assert key_status(soon, (soon,), NOW) == "expiring"
    assert key_status(_key(NOW - 9 * DAY, NOW - DAY), (), NOW) == "expired"
    assert key_status(_key(NOW + DAY, NOW + 9 * DAY), (), NOW) == "not_yet"
    revoked = _key(NOW - DAY, NOW + 900 * DAY, revoked_at=NOW - timedelta(seconds=1))
    assert key_status(revoked, (revoked,), NOW) == "revoked"
    later = _key(NOW - DAY, NOW + 900 * DAY, revoked_at=NOW + DAY)
    assert key_status(later, (later,), NOW) == "valid"  # revoked from tomorrow only
    # a newer key revoked already replaces nothing
    dead = _key(NOW - DAY, NOW + 900 * DAY, revoked_at=NOW - DAY)
    assert key_status(old, (old, dead), NOW) == "valid"


def test_ages_in_the_largest_whole_unit() -> None:
    words = {"days": "days", "hours": "hours", "minutes": "minutes"}
    assert age_text("en", timedelta(days=12345), words) == "12,345 days"
    assert age_text("fr", timedelta(hours=5, minutes=59), words) == "5 hours"
    assert age_text("en", timedelta(seconds=-5), words) == "0 minutes"


def test_a_foreign_request_side_by_side() -> None:
    body = example("preservation_request")
    assert isinstance(body, PreservationRequest)
    hostile = "<b>as written</b> \u202e"
    body = msgspec.structs.replace(
        body, offence=msgspec.structs.replace(body.offence, summary_of_facts=hostile)
    )
    for lang, state_word in (("fr", "Données relatives au trafic"), ("ar", "بيانات الحركة")):
        rows = {r.path: r for r in side_rows(body, lang, LocalTimes(UTC, lang))}
        summary = rows["offence.summary_of_facts"]
        shown = "<b>as written</b> \\u202e"  # a bidi override is shown, not obeyed
        assert (summary.free, summary.written, summary.reader) == (True, shown, shown)
        categories = [r for p, r in rows.items() if p.startswith("data.categories")]
        assert any(r.reader == state_word for r in categories), lang
        assert not any(r.free for r in categories)
        kind = rows["kind"]
        assert kind.written == "preservation_request"
        assert kind.reader != kind.written
        ident = rows["data.identifiers[0].type"]
        assert not ident.free
        assert rows["confidential"].written in {"true", "false"}
    fr = {r.path: r for r in side_rows(body, "fr", LocalTimes(UTC, "fr"))}
    assert fr["offence.summary_of_facts"].label != "summary_of_facts"  # the CLI's label
    ar = {r.path: r for r in side_rows(body, "ar", LocalTimes(UTC, "ar"))}
    assert ar["offence.summary_of_facts"].label == "ملخّص الوقائع"
    assert ar["offence.name"].label == "اسم الجريمة"  # Offence.name, not any name
    es = {r.path: r for r in side_rows(body, "es", LocalTimes(UTC, "es"))}
    assert es["custodian.name"].label == "Nombre del proveedor o custodio"


def test_coded_values_and_field_errors_in_the_reader_language() -> None:
    code = coder("es")
    assert code("CaseState", "preserved") == "Datos conservados"
    assert code("kind", "refusal") == "Denegación"
    assert code("status_out", "delivered") == "entregado"
    assert code("CaseState", "no-such-state") == "no-such-state"  # never an error
    assert coder("fr")("RefusalGround", "security").startswith("Sécurité")
    text = "$.offence.name: expected a string"
    assert named_error("fr", text).endswith(" — " + text)
    assert named_error("fr", text) != text
    assert named_error("en", "no path here") == "no path here"
    assert named_error("ar", "$.data.identifiers[0].seen_at: required").startswith("رُصد في — ")
