"""``python -m tests.faults --minutes N``: the fault-injection soak (issue 17 item 5).

Prints the table (faults injected per kind, operations, properties checked, violations)
and exits 1 when a property was violated, a process crashed, or a fault kind that
``RELAY247_REQUIRE_TOOLS`` requires could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from tests.faults.soak import soak
from tests.faults.tools import Missing, required


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__)
    parser.add_argument("--minutes", type=float, default=3.0, help="minutes of faults")
    parser.add_argument(
        "--faults-per-kind",
        type=int,
        default=None,
        help="faults of each kind to aim for (default: 4.5 a minute, at least 8)",
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep the run's files here")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    per_kind = args.faults_per_kind or max(8, round(args.minutes * 4.5))
    seed = args.seed if args.seed is not None else int(time.time())
    try:
        result = asyncio.run(soak(args.minutes, per_kind, seed, args.keep))
    except Missing as exc:
        # The soak needs a PostgreSQL cluster of its own to restart and kill.
        print(f"fault suite skipped: {exc}")
        return 1 if required(exc.tool) else 0
    table = result.table()
    print(table)
    if args.out is not None:
        args.out.write_text(table + "\n")
    if result.failed:
        print("FAILED: " + "; ".join(result.failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
