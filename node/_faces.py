"""Lazy public faces for the node's rooms (PEP 562 module ``__getattr__``).

A room's ``__init__`` names what the CLI, tests and integrators may use without
importing the room: ``relay247 network publish`` needs ``RelayClient`` but not the inbox,
and the CLI's node client must not load the API server. Type checkers see the names
through the ``__init__``'s ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_face(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """Return a module ``__getattr__`` that imports ``package.<module>`` on first use.

    Args:
        package: the room's ``__name__``.
        where: public name -> the room's module that defines it.
    """

    def attribute(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return attribute
