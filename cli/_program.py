"""How to run this ``relay247`` again from the reader's shell, for the commands we print.

The quick start installs into ``.venv`` and does not put it on PATH, so a hint that says
``relay247 ...`` fails when pasted. Hints use the path the user typed (``.venv/bin/relay247``
works from the same directory), else ``relay247`` when PATH finds this very installation,
else the absolute path of the script beside the running interpreter, else ``python -m cli``.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path


def program() -> str:
    """The shell words that run this relay247 (already quoted for a shell)."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == "relay247":
        if "/" in sys.argv[0]:
            return shlex.quote(sys.argv[0])
        return "relay247"
    script = Path(sys.executable).parent / "relay247"
    found = shutil.which("relay247")
    if found and script.is_file() and Path(found).resolve() == script.resolve():
        return "relay247"
    if script.is_file():
        return shlex.quote(str(script.absolute()))
    return f"{shlex.quote(sys.executable)} -m cli"
