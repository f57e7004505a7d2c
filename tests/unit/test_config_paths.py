"""A path in relay.toml / node.toml with a NUL or a control character is a config error
naming the field (it was a ``ValueError: embedded null byte`` traceback at first use)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.operator_cli import make_node, make_relay, passphrase, run

__all__ = ["passphrase"]  # the fixture this module uses


@pytest.mark.parametrize(
    ("kind", "line", "field"),
    [
        ("relay", 'data_dir = "."', "relay.data_dir"),
        ("relay", 'sqlite_path = "relay.db"', "storage.sqlite_path"),
        ("node", 'data_dir = "."', "node.data_dir"),
        ("node", 'database = "node.db"', "node.database"),
    ],
)
@pytest.mark.parametrize("bad", ["\\u0000", "\\u001b[31m", "\\n"])
def test_a_control_character_in_a_path_is_refused(
    tmp_path: Path, kind: str, line: str, field: str, bad: str
) -> None:
    data = make_relay(tmp_path) if kind == "relay" else make_node(tmp_path)
    config = data / f"{kind}.toml"
    text = config.read_text(encoding="utf-8")
    key, value = line.split(" = ")
    assert line in text
    config.write_text(text.replace(line, f'{key} = "a{bad}{value[1:]}', 1), encoding="utf-8")
    res = run(kind, "serve", "--config", config)
    assert res.exit_code == 2, res.output
    assert f"{config}: {field}: Expected `str` matching regex" in res.output, res.output
    assert "Traceback" not in res.output
