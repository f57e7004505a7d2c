"""Numbers typed on the command line: ASCII digits only (PROTOCOL.md §1, canonical integers).

click's ``IntRange`` and ``FloatRange`` convert with Python's ``int()`` and ``float()``,
which also take other scripts' digits (``٨٠٨٠`` became port 8080), full-width ones,
``_`` separators, surrounding blanks, a ``+`` sign, and for floats ``1e3``, ``inf`` and
``nan``. Every numeric option and argument of the CLI uses these types instead, so a
number is read the one way the protocol writes it.
"""

from __future__ import annotations

import re
from typing import Any

import click

_INT = re.compile(r"-?[0-9]+", re.ASCII)
_FLOAT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?", re.ASCII)


class AsciiIntRange(click.IntRange):
    """``click.IntRange`` that accepts only ``-?[0-9]+``."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not _INT.fullmatch(value):
            self.fail(f"{value!r} is not a whole number in ASCII digits (0-9).", param, ctx)
        return super().convert(value, param, ctx)


class AsciiFloatRange(click.FloatRange):
    """``click.FloatRange`` that accepts only ``-?[0-9]+(.[0-9]+)?``."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not _FLOAT.fullmatch(value):
            self.fail(f"{value!r} is not a number in ASCII digits (0-9, one '.').", param, ctx)
        return super().convert(value, param, ctx)
