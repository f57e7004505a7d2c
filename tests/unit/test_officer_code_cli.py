"""`relay247 node officer code --secret S`: the code an authenticator app shows now
(the demo prints it for each country's officer, issue 13 §4)."""

from __future__ import annotations

from datetime import UTC, datetime

from click.testing import CliRunner

from cli.main import cli
from node.officers import code_at

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # 160 bits, as node.officers makes them


def test_prints_the_current_code() -> None:
    before = datetime.now(UTC)
    result = CliRunner().invoke(cli, ["node", "officer", "code", "--secret", SECRET])
    after = datetime.now(UTC)
    assert result.exit_code == 0, result.output
    printed = result.stdout.strip()
    assert printed in {code_at(SECRET, before), code_at(SECRET, after)}
    assert len(printed) == 6


def test_lower_case_and_spaces_are_the_same_secret() -> None:
    spaced = " ".join(SECRET[i : i + 4].lower() for i in range(0, len(SECRET), 4))
    a = CliRunner().invoke(cli, ["node", "officer", "code", "--secret", spaced])
    b = CliRunner().invoke(cli, ["node", "officer", "code", "--secret", SECRET])
    assert a.exit_code == 0, a.output
    assert a.stdout == b.stdout


def test_a_bad_secret_is_a_usage_error() -> None:
    for bad in ("not base32!", "ABCD", ""):
        result = CliRunner().invoke(cli, ["node", "officer", "code", "--secret", bad])
        assert result.exit_code == 2, (bad, result.output)
        assert "invalid" in result.output
