"""`relay247 node officer title` on a real data directory (the fixture of
test_officers_cli.py, made again for this module)."""

from __future__ import annotations

from pathlib import Path

from node.officers import open_db
from tests.integration.test_officers_cli import invoke, made, ok_json

__all__ = ["made"]  # the module-scoped fixture, used by name below


def test_title_sets_clears_and_refuses(made: Path) -> None:
    data = made
    out = ok_json("node", "officer", "title", "alice", "Inspectrice, OFAC", "--data", data)
    assert out == {"login": "alice", "job_title": "Inspectrice, OFAC"}
    assert ok_json("node", "officer", "title", "alice", "", "--data", data)["job_title"] is None
    result = invoke("node", "officer", "title", "nobody", "Chief", "--data", data)
    assert result.exit_code != 0
    assert "nobody" in result.output
    result = invoke("node", "officer", "title", "alice", "x" * 101, "--data", data)
    assert result.exit_code != 0
    assert "job title" in result.output
    conn = open_db(next(data.glob("**/node.db")))
    try:
        actions = [r[0] for r in conn.execute("SELECT action FROM access_log ORDER BY idx")]
    finally:
        conn.close()
    assert actions[-2:] == ["title_changed", "title_changed"]
