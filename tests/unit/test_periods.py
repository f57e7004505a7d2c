"""The packaged per-country preservation table, and every way a table file is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from node.cases.periods import decode_periods, load_periods
from protocol.cases import period_for
from protocol.errors import ConfigError

PACKAGED = Path(__file__).resolve().parents[2] / "node" / "data" / "preservation_periods.json"


def _table() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PACKAGED.read_text(encoding="utf-8"))
    return data


def test_packaged_table_loads_with_the_documented_values() -> None:
    table = load_periods()
    assert table.default.initial_days == 60
    us = period_for(table, "US")
    assert (us.initial_days, us.extension_days, us.max_extensions) == (90, 90, 1)
    assert period_for(table, "GH").initial_days == 120
    assert period_for(table, "FR") is table.default


def test_every_entry_names_its_source_and_is_flagged_unchecked() -> None:
    table = load_periods()
    for period in (table.default, *table.members.values()):
        assert period.source.strip()
        assert period.basis.strip()
        assert period.checked is False  # flip only after reading the primary text
    assert "checked" in table.note


def test_operator_file_is_loaded(tmp_path: Path) -> None:
    data = _table()
    data["members"]["FR"] = dict(data["default"], initial_days=365)
    path = tmp_path / "periods.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert period_for(load_periods(path), "FR").initial_days == 365


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(ConfigError, match=r"absent\.json: cannot read"):
        load_periods(path)


def test_not_json_is_refused() -> None:
    with pytest.raises(ConfigError, match="not valid JSON"):
        decode_periods(b"{", origin="x.json")


def test_too_large_is_refused() -> None:
    with pytest.raises(ConfigError, match="larger than"):
        decode_periods(b" " * 1_000_001)


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d["members"]["US"].update(initial_days=30), r"\$.members\[...\].initial_days"),
        (lambda d: d["members"].update(usa=d["default"]), r"\$.members"),
        (lambda d: d["default"].update(colour="red"), "colour"),
        (lambda d: d["default"].pop("basis"), "basis"),
        (lambda d: d.update(v=2), r"\$.v"),
        (lambda d: d["default"].update(extension_days=0), "extension_days"),
        (lambda d: d.pop("default"), "default"),
    ],
)
def test_bad_table_fails_naming_the_field(mutate: Any, path: str) -> None:
    data = _table()
    mutate(data)
    with pytest.raises(ConfigError, match=path):
        decode_periods(json.dumps(data).encode(), origin="periods.json")
