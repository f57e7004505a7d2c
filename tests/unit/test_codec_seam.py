"""protocol.codec is the one msgspec seam (issue 12 item 4, STYLE.md rule 7).

No product module but the codec catches a msgspec error or decodes with msgspec itself;
the codec's helpers map every failure to the project's errors, naming the field and
never the value.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Annotated

import msgspec
import pytest

from protocol.codec import convert, decode, decode_as, shape_text
from protocol.config_toml import config_path, decode_config
from protocol.errors import ConfigError, MalformedError, TooLargeError
from schemas.types import Priority

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("schemas", "protocol", "client", "serving", "relay", "node", "console", "audit", "cli")
SEAM = Path("protocol/codec.py")
_ERRORS = {"DecodeError", "ValidationError", "MsgspecError", "EncodeError"}
_RAW_CALLS = {("json", "decode"), ("msgspec", "convert"), ("toml", "decode")}
# Rewritten on other branches of issue 12: the relay client (h12-client) and the header
# hash stored at accept (h12-relay). Once merged the entries are stale and the test
# below says so.
_PENDING: set[str] = set()


def _offences(path: Path, root: Path = ROOT) -> list[str]:
    where = path.relative_to(root)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.ExceptHandler) and n.type is not None:
            names = {a.attr for a in ast.walk(n.type) if isinstance(a, ast.Attribute)}
            names |= {a.id for a in ast.walk(n.type) if isinstance(a, ast.Name)}
            if names & _ERRORS:
                found.append(f"{where}:{n.lineno} catches a msgspec error")
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute):
            owner = n.func.value
            owner_name = owner.attr if isinstance(owner, ast.Attribute) else ""
            owner_name = owner_name or (owner.id if isinstance(owner, ast.Name) else "")
            if (owner_name, n.func.attr) in _RAW_CALLS or _prebuilt_decode(n.func):
                found.append(f"{where}:{n.lineno} decodes outside the codec")
    return found


def _prebuilt_decode(func: ast.Attribute) -> bool:
    """``_DECODER.decode(...)``: a module-level msgspec decoder run without the codec."""
    owner = func.value
    return (
        func.attr == "decode"
        and isinstance(owner, ast.Name)
        and re.fullmatch(r"_?[A-Z][A-Z0-9_]*", owner.id) is not None
    )


def _product_files() -> list[Path]:
    return [f for p in PRODUCT for f in sorted((ROOT / p).rglob("*.py"))]


def test_only_the_codec_touches_msgspec_errors() -> None:
    bad = [
        o
        for f in _product_files()
        if f.relative_to(ROOT) != SEAM and str(f.relative_to(ROOT)) not in _PENDING
        for o in _offences(f)
    ]
    assert bad == []


def test_pending_exceptions_are_not_stale() -> None:
    """Each allowed file still offends; when it no longer does, drop it from _PENDING."""
    stale = [p for p in sorted(_PENDING) if (ROOT / p).exists() and not _offences(ROOT / p)]
    assert stale == []


def test_the_scan_sees_an_offence(tmp_path: Path) -> None:
    f = tmp_path / "probe.py"
    f.write_text(
        "import msgspec\ntry:\n    msgspec.json.decode(b'1')\n"
        "except (OSError, msgspec.ValidationError):\n    msgspec.convert(1, int)\n"
        "_D.decode(b'1')\nb'x'.decode()\n"
    )
    assert sorted(_offences(f, tmp_path)) == [
        "probe.py:3 decodes outside the codec",
        "probe.py:4 catches a msgspec error",
        "probe.py:5 decodes outside the codec",
        "probe.py:6 decodes outside the codec",
    ]


class _Limits(msgspec.Struct, forbid_unknown_fields=True):
    quota: Annotated[int, msgspec.Meta(ge=1)]
    priority: Priority = Priority.NORMAL


def test_decode_as_maps_shape_errors_with_the_path_not_the_value() -> None:
    with pytest.raises(MalformedError) as info:
        decode_as(_Limits, b'{"quota": 1, "priority": "secret-text"}', "limits", limit=100)
    err = info.value
    assert type(err) is MalformedError  # the vectors name the exact public class
    assert err.field == "$.priority"
    assert err.problem == "Invalid enum value (not shown)"
    assert err.message == "invalid limits: Invalid enum value (not shown) - at `$.priority`"
    assert "secret-text" not in err.diagnostics()


def test_decode_as_maps_syntax_size_utf8_and_repeated_keys() -> None:
    with pytest.raises(MalformedError) as info:
        decode_as(_Limits, b'{"quota": 1,,}', "limits", limit=100)
    assert info.value.message == "limits is not valid JSON"
    assert "(byte 12)" in info.value.detail
    assert (info.value.field, info.value.problem) == ("", "")
    with pytest.raises(TooLargeError):
        decode_as(_Limits, b'{"quota": 1}', "limits", limit=5)
    with pytest.raises(MalformedError, match="not valid UTF-8"):
        decode_as(dict[str, str], b'{"a": "\xff"}', "limits", limit=100)
    with pytest.raises(MalformedError, match="repeats an object key"):
        decode_as(_Limits, b'{"quota": 1, "quota": 2}', "limits", limit=100)
    assert (
        decode_as(_Limits, b'{"quota": 1, "quota": 2}', "x", limit=99, unique_keys=False).quota == 2
    )


def test_decode_and_decode_as_agree() -> None:
    data = b'{"quota": 3, "priority": "urgent"}'
    assert decode(msgspec.json.Decoder(_Limits), data, "l", limit=99) == decode_as(
        _Limits, data, "l", limit=99
    )


def test_convert_maps_validation_errors() -> None:
    assert convert({"quota": 2}, _Limits, "limits") == _Limits(quota=2)
    with pytest.raises(MalformedError) as info:
        convert({"quota": 0}, _Limits, "limits")
    assert (info.value.field, info.value.problem) == ("$.quota", "Expected `int` >= 1")
    assert shape_text(info.value) == "Expected `int` >= 1 - at `$.quota`"
    with pytest.raises(MalformedError) as top:
        convert([1], _Limits, "limits")
    assert (top.value.field, shape_text(top.value)) == ("", "Expected `object`, got `array`")


def test_config_errors_name_the_file_and_the_config_path() -> None:
    class _Config(msgspec.Struct, forbid_unknown_fields=True):
        base_dir: str
        limits: _Limits

    with pytest.raises(ConfigError) as info:
        decode_config("[limits]\nquota = 0\n", _Config, source="relay.toml", base_dir="/x")
    assert info.value.message == "relay.toml: limits.quota: Expected `int` >= 1"
    err = MalformedError("invalid list", field="$[0]", problem="Expected `int`")
    assert config_path(err) == "Expected `int` - at `$[0]`"
