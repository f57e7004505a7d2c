"""Decoding a TOML configuration text into a strict, frozen Struct (pure: text in).

The relay and the node read their files themselves and call :func:`decode_config`, so a
typo or a bad value is reported the same way everywhere: the file, then the config path
(``relay.toml: limits.mailbox_quota: Expected `int` >= 1``).
"""

from __future__ import annotations

import tomllib
from typing import TypeVar

import msgspec

from protocol.errors import ConfigError

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
    if "base_dir" in raw:
        raise ConfigError(f"{source}: unknown key 'base_dir'")
    raw["base_dir"] = base_dir
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {config_path(str(exc))}") from None


def config_path(message: str) -> str:
    """Rewrite a msgspec validation message as ``path.to.key: problem``."""
    # msgspec says "... - at `$.limits.mailbox_quota`"; show "limits.mailbox_quota: ...".
    text, sep, where = message.rpartition(" - at `$.")
    if not sep:
        return message
    return f"{where.rstrip('`')}: {text}"
