"""docs/PROTOCOL.md and the code agree on every number and code both define (issue 11, §6).

An independent client found PROTOCOL.md saying ``max_skew`` 30 s where the relay allowed
60 s. These tests read the values from the document's tables and prose and compare them
with the constants in code, so that the two cannot drift apart again.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from protocol import httpsig
from protocol.envelope import DEFAULT_WINDOW
from schemas.errors import HTTP_STATUS, ErrorCode

DOC = (Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = DOC.index(f"\n## {title}\n")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end >= 0 else len(DOC)]


def _rows(text: str, columns: int) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == columns and not set(cells[0]) <= {"-"}:
            rows.append(cells)
    return rows[1:]  # the header row


def _resolve(path: str) -> Any:
    """The value a dotted path names: a module constant, a Struct or dataclass default."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
            break
        except ModuleNotFoundError:
            continue
    else:
        raise AssertionError(f"no module in {path}")
    for name in parts[cut:]:
        if isinstance(obj, type) and issubclass(obj, msgspec.Struct):
            obj = {f.name: f.default for f in msgspec.structs.fields(obj)}[name]
        elif isinstance(obj, type) and dataclasses.is_dataclass(obj):
            obj = {f.name: f.default for f in dataclasses.fields(obj)}[name]
        else:
            obj = getattr(obj, name)
    return obj.total_seconds() if isinstance(obj, timedelta) else obj


def test_error_codes_and_statuses_match_section_12() -> None:
    rows = _rows(_section("12. Error codes"), 3)
    documented = {code.strip("`"): int(status) for code, status, _ in rows}
    assert documented == {code.value: status for code, status in HTTP_STATUS.items()}
    assert set(documented) == {code.value for code in ErrorCode}


LIMITS = _rows(_section("13. Limits"), 4)


def test_limits_table_is_not_empty() -> None:
    assert len(LIMITS) >= 10


@pytest.mark.parametrize(("limit", "value", "code"), [(r[0], r[1], r[3]) for r in LIMITS])
def test_each_limit_matches_the_code(limit: str, value: str, code: str) -> None:
    paths = re.findall(r"`([a-z_][\w.]*)`", code)
    assert paths, limit
    for path in paths:
        assert _resolve(path) == int(value), f"{limit}: {path} != {value}"


def test_numbers_in_the_prose_match_the_code() -> None:
    skew, lifetime = httpsig.MAX_SKEW, httpsig.MAX_LIFETIME
    flat = re.sub(r"\s+", " ", DOC)
    # §8.5 step 6 inputs, the profile table, §4.4's limits, Appendix B's windows.
    assert f"`max_skew` ({skew} s:" in flat
    assert f"`max_lifetime` ({lifetime} s:" in flat
    assert f"verifiers accept at most {lifetime} s" in flat
    assert f"clock skew {skew} s, lifetime ≤ 7 days" in flat
    assert DEFAULT_WINDOW.max_lifetime == timedelta(days=7)
    assert f"`max_skew_seconds` = {skew}" in flat
    assert f"`max_lifetime_seconds` = {int(DEFAULT_WINDOW.max_lifetime.total_seconds())}" in flat
    # A stale number anywhere in a sentence about the skew is caught too.
    for stale in re.findall(r"max_skew`? \((\d+) s", flat):
        assert int(stale) == skew


def test_every_audit_leaf_kind_is_in_section_7() -> None:
    """A leaf kind added to the code (issue 18: ``email_recorded``) is in §7's table."""
    from typing import get_args

    from schemas.audit import AuditEntry

    kinds = {str(t.__struct_config__.tag) for t in get_args(AuditEntry)}
    # The first cell of each row (a row may hold a `|` inside a cell: relay_event's).
    table = set(re.findall(r"^\| `([a-z_]+)` \|", _section("7. Audit-log entries"), re.M))
    assert kinds <= table, kinds - table
    assert "email_recorded" in kinds


def test_the_email_record_endpoint_and_prefix_are_documented() -> None:
    from protocol import domains

    endpoints = {row[0] for row in _rows(_section("8. The relay's HTTP API"), 4)}
    assert "`POST /v1/email-records`" in endpoints
    prefix = domains.EMAIL_RECORD.decode().replace("\n", "\\n")
    assert f"| `{prefix}` |" in _section("2. Keys, fingerprints, domain separation")
