"""`relay247 node roster ...` and `relay247 node officer channels` on a real data directory
(real `network init` and `node init`, Europe/Paris zone); each change is in the access log
and `audit access-log` still verifies it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import cli

PASS = "roster cli test passphrase"


def invoke(*args: str | Path) -> Result:
    env = {"RELAY247_PASSPHRASE": PASS, "RELAY247_NODE_DATA": None}
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def ok_json(*args: str | Path) -> Any:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("roster")
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


def test_add_list_remove_a_shift_in_the_node_zone(data: Path) -> None:
    # the autumn DST night: 22:00 to 06:00 in Paris is 9 hours
    shift = ok_json("node", "roster", "add-shift", "alice", "--from", "2099-10-24 22:00",
                    "--to", "2099-10-25 06:00", "--data", data)  # fmt: skip
    assert shift["from"] == "2099-10-24T22:00:00+02:00"
    assert shift["to"] == "2099-10-25T06:00:00+01:00"
    listed = ok_json("node", "roster", "list", "--days", "62", "--data", data)
    assert listed["zone"] == "Europe/Paris"
    assert listed["shifts"] == []  # 2099 is beyond the listed days
    result = invoke("node", "roster", "remove", str(shift["id"]), "--data", data)
    assert result.exit_code == 0, result.output
    assert f"shift {shift['id']} of alice removed" in result.output
    again = invoke("node", "roster", "remove", str(shift["id"]), "--data", data)
    assert again.exit_code == 2
    assert "not_found" in again.output


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("2099-03-29 02:30", "2099-03-29 06:00", "--from"),  # skipped by the spring DST change
        ("2099-01-01 ٠٨:00", "2099-01-01 10:00", "--from"),  # non-ASCII digits
        ("2099-01-01 08:00", "tomorrow", "--to"),
        ("2099-01-01 08:00", "2099-01-01 07:00", "to"),
    ],
)
def test_bad_shift_bounds_are_named(data: Path, start: str, end: str, field: str) -> None:
    result = invoke("node", "roster", "add-shift", "alice", "--from", start, "--to", end,
                    "--data", data)  # fmt: skip
    assert result.exit_code == 2, result.output
    assert f"invalid: {field}" in result.output


def test_channels_print_the_secret_once_and_are_logged(data: Path) -> None:
    first = ok_json("node", "officer", "channels", "sue", "--webhook",
                    "https://duty.example.org/sue", "--data", data)  # fmt: skip
    assert len(first["webhook_secret"]) >= 32
    second = ok_json("node", "officer", "channels", "sue", "--email", "sue@police.example",
                     "--data", data)  # fmt: skip
    assert second == {
        "login": "sue",
        "webhook": "https://duty.example.org/sue",
        "email": "sue@police.example",
    }
    bad = invoke("node", "officer", "channels", "sue", "--webhook", "http://example.org/x",
                 "--data", data)  # fmt: skip
    assert bad.exit_code == 2
    assert "invalid: webhook" in bad.output
    report = invoke("audit", "access-log", "--data", data)
    assert report.exit_code == 0, report.output
