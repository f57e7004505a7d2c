"""Free text typed by officers: one rule for every field, on the node and in the console.

Hold reasons, link notes, emergency records (caller, what was asked), display names,
job titles and security-key names are shown on pages, in terminals and in exports. Each
field refused a different set of characters before (C0 only, C0 and C1, or also the
format characters): link notes took NUL and U+202E RIGHT-TO-LEFT OVERRIDE, which then
reversed the text around them on a case page. Now every such field refuses the
characters of the Unicode general categories in :data:`REFUSED`: controls (Cc: C0, DEL,
C1), format characters (Cf: bidi overrides and isolates, zero-width characters), lone
surrogates (Cs), private-use characters (Co) and the line and paragraph separators
(Zl, Zp). A multi-line field (what was asked) also takes newlines and tabs, a browser's
CRLF read as one newline.
"""

from __future__ import annotations

import unicodedata
from typing import Final

REFUSED: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
_LINES: Final = frozenset("\n\t")


def refused_char(text: str, *, lines: bool = False) -> str | None:
    """The first character of ``text`` the rule refuses, as ``U+XXXX``, or None."""
    for ch in text:
        if lines and ch in _LINES:
            continue
        if unicodedata.category(ch) in REFUSED:
            return f"U+{ord(ch):04X}"
    return None


def refusal(field: str, text: str, *, lines: bool = False) -> str | None:
    """Why ``text`` cannot be the value of ``field`` (a message naming both), or None."""
    found = refused_char(text.replace("\r\n", "\n") if lines else text, lines=lines)
    if found is None:
        return None
    return f"{field}: no control or format character ({found}), e.g. no bidi override"
