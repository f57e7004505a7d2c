"""serving.config_file: how the relay and the node read their TOML file (one copy)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from protocol.errors import ConfigError
from serving.config_file import read_config, resolve


class _Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    base_dir: str
    quota: int = 1


def test_reads_and_resolves_against_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text("quota = 3\n", encoding="utf-8")
    assert read_config(path, _Config) == _Config(base_dir=str(tmp_path.resolve()), quota=3)
    assert resolve("/etc/r", "data", "db") == Path("/etc/r/data/db")
    assert resolve("/etc/r", "data", "/var/db") == Path("/var/db")
    assert resolve("/etc/r", "/srv", "db") == Path("/srv/db")


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    with pytest.raises(ConfigError, match=r"x\.toml: cannot read: No such file"):
        read_config(path, _Config)
    path.write_bytes(b"quota = 1 # \xff\n")
    with pytest.raises(ConfigError, match=r"x\.toml: not UTF-8 text"):
        read_config(path, _Config)
    path.write_text("quota = 0.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"x\.toml: quota: Expected `int`, got `float`"):
        read_config(path, _Config)


@pytest.mark.parametrize(
    "text",
    ["x = " + "[" * 100_000 + "]" * 100_000, "x = " + "{a=" * 5000 + "1" + "}" * 5000],
)
def test_deep_nesting_is_a_config_error(tmp_path: Path, text: str) -> None:
    # tomllib recurses per level: this was a RecursionError traceback of 3000 lines.
    path = tmp_path / "x.toml"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"x\.toml: TOML nested too deeply"):
        read_config(path, _Config)
