"""Reading a server's TOML configuration file: the relay's ``relay.toml``, the node's ``node.toml``.

Both servers read their file the same way and report problems the same way (the file,
then the config path). Here rather than in :mod:`protocol.config_toml` because it reads
a file (protocol does no I/O), and here rather than in relay/ or node/ because each may
import serving but not the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, TypeVar

import msgspec

from protocol.config_toml import decode_config
from protocol.errors import ConfigError
from serving.files import read_file

T = TypeVar("T")

#: A path in a config file (data_dir, sqlite_path, keys_file, ...): no NUL (which the OS
#: refuses with a ValueError traceback far from the config) and no control character.
ConfigPath = Annotated[str, msgspec.Meta(pattern=r"^[^\x00-\x1f\x7f]*\Z", max_length=4096)]

#: An address to listen on: a host name or an IP literal (an IPv6 zone after ``%``),
#: without brackets. Before, any text was taken and failed only at bind time, quoting it.
#: An IPv6 literal may start with ``:`` (``::``, every address; ``::1``, the loopback).
ListenHost = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Za-z0-9_:][A-Za-z0-9._:%-]{0,252}\Z", max_length=253)
]


def read_config(path: Path, kind: type[T]) -> T:
    """Decode the TOML file at ``path`` into ``kind``; its relative paths resolve against
    the file's directory (passed as ``base_dir``).

    Raises:
        ConfigError: unreadable, not UTF-8, not TOML, an unknown key or a bad value; the
            message starts with ``path``.
    """
    base_dir = str(path.parent.resolve())
    return decode_config(_read(path), kind, source=str(path), base_dir=base_dir)


def resolve(base_dir: str, data_dir: str, value: str) -> Path:
    """A configured path: absolute as given, else relative to ``data_dir``, which is
    itself relative to the config file's directory ``base_dir``."""
    return Path(value) if Path(value).is_absolute() else Path(base_dir) / data_dir / value


MAX_CONFIG_BYTES = 1 << 20  # a relay.toml is ~5 KB; a MiB is far more than any real one


def _read(path: Path) -> str:
    try:
        return read_file(path, MAX_CONFIG_BYTES).decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
