"""Decoding a TOML configuration text into a strict, frozen Struct (pure: text in).

The relay and the node read their files themselves and call :func:`decode_config`, so a
typo or a bad value is reported the same way everywhere: the file, then the config path
(``relay.toml: limits.mailbox_quota: Expected `int` >= 1``).
"""

from __future__ import annotations

import tomllib
from typing import TypeVar

from protocol.codec import convert
from protocol.errors import ConfigError, MalformedError

T = TypeVar("T")


def decode_config(text: str, kind: type[T], *, source: str, base_dir: str) -> T:
    """Decode ``text`` into ``kind``, naming ``source`` and the config path on errors.

    Args:
        text: the TOML text.
        kind: the config Struct; it has a ``base_dir`` field not read from TOML.
        source: the file name to put in messages.
        base_dir: the file's directory, for resolving relative paths.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: TOML syntax error, unknown key or bad value.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: TOML syntax error: {exc}") from None
    except RecursionError:  # tomllib recurses per nesting level: [[[[...]]]] or {a={a=...}}
        raise ConfigError(f"{source}: TOML nested too deeply") from None
    if "base_dir" in raw:
        raise ConfigError(f"{source}: unknown key 'base_dir'")
    raw["base_dir"] = base_dir
    try:
        return convert(raw, kind, source)
    except MalformedError as exc:
        raise ConfigError(f"{source}: {config_path(exc)}") from None


def config_path(exc: MalformedError) -> str:
    """The codec's shape error as ``path.to.key: problem`` (how config files are named)."""
    # The codec says field `$.limits.mailbox_quota`; show "limits.mailbox_quota: ...".
    if not exc.field:
        return exc.problem
    if not exc.field.startswith("$."):
        return f"{exc.problem} - at `{exc.field}`"
    return f"{exc.field[2:]}: {exc.problem}"


def toml_escape(value: str) -> str:
    """``value`` as the inside of a TOML basic string (toml.io/en/v1.0.0#string).

    For the config templates (``id = "{relay_id}"``): an option value put in unescaped
    could close the string and write more TOML (``--id 'ok" # '`` gave a relay whose
    config said ``ok`` and whose keys said ``ok" #``). Backslash and quote are escaped,
    and every control character TOML forbids in a basic string (all but tab) as ``\\uXXXX``.
    """
    out = []
    for ch in value:
        if ch in {'"', "\\"}:
            out.append("\\" + ch)
        elif (ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string, quotes included."""
    return f'"{toml_escape(value)}"'
