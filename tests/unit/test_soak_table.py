"""The soak's printed table says why a process crashed.

Stop 26's CI run failed with only ``Unexpected process exits: US 2``: CI keeps no run
directory, so the crash's last log line (``…/node.db: cannot use the node database: disk
full``, exit 2) could only be read by reproducing the run. The supervisor now keeps the
exit code and that line, and the table prints them.
"""

from __future__ import annotations

from collections import Counter

from tests.faults.checker import Report
from tests.faults.soak import Result


def test_a_crash_is_printed_with_its_exit_code_and_last_line() -> None:
    line = "Error: /x/us/node.db: cannot use the node database: disk full"
    result = Result(
        minutes=3,
        seed=1,
        counts=Counter({"disk full": 1}),
        skipped={},
        ops=Counter(),
        report=Report(),
        crashes=Counter({"US": 2}),
        notes=Counter({f"crash: US exit 2: {line}": 2, "disk full: us": 1}),
    )
    table = result.table()
    assert "Unexpected process exits: US 2" in table
    assert f"  crash: US exit 2: {line} (x2)" in table
    assert "disk full: us" not in table  # the other notes stay out of the table
    assert result.failed == ["crash of US"]
