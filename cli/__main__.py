"""``python -m cli``: the ``relay247`` command without the installed entry point."""

from __future__ import annotations

import sys

from cli.main import main

if __name__ == "__main__":
    sys.exit(main())
