"""One rule for free text typed by officers (protocol/free_text.py), on every field.

An outside probe: link notes took NUL and U+202E and showed them raw on case pages,
emergency records took U+202E and C1 U+0085, display names and job titles took U+202E
and U+2067, while hold reasons refused them all. Each field now refuses controls,
format characters, surrogates, private use and line/paragraph separators, with a
message naming the field.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from node.cases.hold import check_reason
from node.officers import OfficerError
from node.officers._emergency import _text
from node.officers._keys import check_name
from node.officers._validate import display_name, job_title
from protocol.errors import MalformedError
from protocol.free_text import refusal, refused_char

BAD = ("a\x00b", "Caller \u202eevil", "x\u2067y", "C1\x85x", "zw\u200bx", "\ue000", "l\u2028l")
CHECKS: dict[str, Callable[[str], object]] = {
    "reason": check_reason,
    "name": display_name,
    "job title": job_title,
    "key name": check_name,
    "caller": lambda v: _text(v, "caller", 200),
    "asked": lambda v: _text(v, "asked", 4000, lines=True),
}


@pytest.mark.parametrize("field", CHECKS)
@pytest.mark.parametrize("text", BAD)
def test_every_officer_field_refuses_controls_and_format_characters(field: str, text: str) -> None:
    with pytest.raises((OfficerError, MalformedError)) as exc:
        CHECKS[field](text)
    message = exc.value.message if isinstance(exc.value, OfficerError) else str(exc.value)
    assert message.startswith(f"{field}: no control or format character"), message


@pytest.mark.parametrize("field", CHECKS)
def test_plain_text_in_any_script_passes(field: str) -> None:
    for text in ("Mr Caller", "Agente de permanence", "ضابط المناوبة", "Jean-Luc O'Brien"):
        assert CHECKS[field](text) is not None


def test_only_a_multi_line_field_takes_newlines_and_a_browsers_crlf() -> None:
    assert _text("first line\r\nsecond\tline", "asked", 4000, lines=True) == (
        "first line\nsecond\tline"
    )
    with pytest.raises(OfficerError):
        _text("a\r\nb", "caller", 200)
    with pytest.raises(OfficerError):
        _text("a\rb", "asked", 4000, lines=True)  # a lone CR is no line break
    assert refused_char("a\nb") == "U+000A"
    assert refused_char("a\nb", lines=True) is None
    assert refusal("note", "ok") is None
