"""Config decoding shared by the relay and the node: every refusal names file and key."""

from __future__ import annotations

from typing import Annotated

import msgspec
import pytest

from protocol.config_toml import decode_config
from protocol.errors import ConfigError


class _Limits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    quota: Annotated[int, msgspec.Meta(ge=1)] = 10


class _Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    limits: _Limits = _Limits()
    base_dir: str = "."


def _decode(text: str) -> _Config:
    return decode_config(text, _Config, source="x.toml", base_dir="/etc/x")


def test_valid() -> None:
    assert _decode("[limits]\nquota = 3\n") == _Config(_Limits(3), "/etc/x")


def test_syntax_error() -> None:
    with pytest.raises(ConfigError, match=r"^x\.toml: TOML syntax error"):
        _decode("[limits\n")


def test_base_dir_is_not_a_key() -> None:
    with pytest.raises(ConfigError, match="unknown key 'base_dir'"):
        _decode('base_dir = "/"\n')


def test_bad_value_names_the_path() -> None:
    with pytest.raises(ConfigError, match=r"^x\.toml: limits\.quota: Expected `int` >= 1"):
        _decode("[limits]\nquota = 0\n")


def test_typo_names_the_section() -> None:
    with pytest.raises(ConfigError, match=r"limits: Object contains unknown field `qouta`"):
        _decode("[limits]\nqouta = 2\n")
