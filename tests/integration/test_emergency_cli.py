"""`relay247 node emergency record / list / show`, `node escalation ack` and `node procedures`
on a real data directory (real `network init` and `node init`, Europe/Paris zone).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import cli

PASS = "emergency cli test passphrase"


def invoke(*args: str | Path) -> Result:
    env = {"RELAY247_PASSPHRASE": PASS, "RELAY247_NODE_DATA": None}
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def ok_json(*args: str | Path) -> Any:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("emergency")
    assert invoke("network", "init", "--dir", root / "net", "--name", "t").exit_code == 0
    data = root / "fr"
    result = invoke(
        "node", "init", "--member", "FR", "--data", data, "--authority", "FR 24/7",
        "--time-zone", "Europe/Paris", "--trust-root", root / "net" / "trust.json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for login, role in (("alice", "officer"), ("sue", "supervisor")):
        ok_json("node", "officer", "add", login, "--name", login, "--role", role, "--data", data)
    return data


def test_record_opens_with_clocks_and_is_listed(data: Path) -> None:
    rec = ok_json(
        "node", "emergency", "record", "--from", "DE-BKA", "--caller", "KOK Weber, +49 611 0",
        "--at", "now", "--asked", "Disclose subscriber of the account", "--procedure",
        "eu_epoc_emergency", "--data", data,
    )  # fmt: skip
    clocks = {c["name"]: c for c in rec["clocks"]}
    assert set(clocks) == {"response", "confirmation", "objection"}
    assert clocks["response"]["checked"] is True
    assert "Regulation (EU) 2023/1543 Art. 10(4)" in clocks["response"]["source"]
    assert clocks["confirmation"]["checked"] is False
    assert clocks["response"]["due_node"].endswith(("+01:00", "+02:00"))  # Paris
    listed = ok_json("node", "emergency", "list", "--data", data)
    assert [r["record"] for r in listed["records"]] == [rec["record"]]
    shown = invoke("node", "emergency", "show", rec["record"][:8], "--data", data)
    assert shown.exit_code == 0, shown.output
    assert "[UNCHECKED" in shown.output  # the confirmation clock is a local default
    assert "written request: not linked yet" in shown.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "DE-BKA", "--at", "2026-01-01 ٠٨:00"), "invalid: --at"),  # non-ASCII digits
        (("--from", "de", "--at", "now"), "invalid: from"),
        (("--from", "FR", "--at", "2999-01-01 08:00"), "invalid: at: in the future"),
        (("--from", "FR", "--at", "now", "--procedure", "nope"), "invalid: --procedure"),
    ],
)
def test_bad_records_are_refused_with_a_code(
    data: Path, args: tuple[str, ...], message: str
) -> None:
    base = {"--caller": "x", "--asked": "y", "--procedure": "cets224_art9"}
    given = dict(zip(args[::2], args[1::2], strict=True))
    flat = [v for k, val in (base | given).items() for v in (k, val)]
    result = invoke("node", "emergency", "record", *flat, "--data", data)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_ack_without_escalation_and_unknown_record(data: Path) -> None:
    result = invoke("node", "escalation", "ack", "0" * 32, "--officer", "sue", "--data", data)
    assert result.exit_code == 2
    assert "not_found: no escalation sent" in result.output
    result = invoke("node", "escalation", "ack", "٠" * 32, "--officer", "sue", "--data", data)
    assert result.exit_code == 2
    assert "invalid: case" in result.output
    result = invoke("node", "emergency", "show", "ffff", "--data", data)
    assert result.exit_code == 2
    assert "not_found" in result.output


def test_procedures_lists_sources_and_unchecked(data: Path) -> None:
    result = invoke("node", "procedures", "--data", data)
    assert result.exit_code == 0, result.output
    assert "eu_epoc_emergency" in result.output
    assert "Regulation (EU) 2023/1543 Art. 10(4)" in result.output
    assert "[UNCHECKED" in result.output
    table = ok_json("node", "procedures", "--data", data)
    assert table["procedures"]["eu_epoc"]["response"]["days"] == 10
