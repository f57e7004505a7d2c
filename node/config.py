"""Node configuration: a TOML file decoded into strict, frozen Structs.

Same rules as the relay's (``relay/config.py``): a typo or an out-of-range value stops
start-up with the config path named (``ConfigError: node.toml: sync.backoff_max: ...``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

import msgspec

from protocol.errors import ConfigError
from schemas._types import MemberId

_Seconds = Annotated[float, msgspec.Meta(gt=0, le=86_400)]
_Url = Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s]{1,2000}$")]


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class NodeSection(_Section, frozen=True):
    """Who this node is."""

    #: the member id in the directory, e.g. "FR"
    member: MemberId
    #: data directory (keys, database); relative paths are relative to the config file
    data_dir: str = "."
    #: key file, relative to data_dir
    keys_file: str = "node.keys"
    #: SQLite database, relative to data_dir
    database: str = "node.db"


class RelaysSection(_Section, frozen=True):
    """Relays to use, in failover order."""

    #: empty: use the relays listed in the directory (the first URL bootstraps it)
    urls: Annotated[tuple[_Url, ...], msgspec.Meta(max_length=16)] = ()
    #: seconds for one HTTP request to a relay
    request_timeout: _Seconds = 10.0


class DirectorySection(_Section, frozen=True):
    """The network's trust root and how often to refresh the directory."""

    #: trust.json from `relay247 network init`, relative to data_dir
    trust_root: str = "trust.json"
    #: seconds between directory refreshes (also refreshed on unknown-key errors)
    refresh_interval: _Seconds = 300.0


class SyncSection(_Section, frozen=True):
    """Inbox push/long-poll and outbox retry settings."""

    #: use the WebSocket push; false forces long-poll
    push: bool = True
    #: long-poll wait per request, seconds (the relay caps it at its max_poll_wait)
    poll_wait: Annotated[int, msgspec.Meta(ge=1, le=300)] = 25
    #: envelopes per mailbox page
    page_size: Annotated[int, msgspec.Meta(ge=1, le=500)] = 100
    #: first retry delay, seconds; doubles per failed attempt up to backoff_max
    backoff_base: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 0.5
    backoff_max: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = 300.0
    #: random extra fraction of each delay, 0..1 (spreads retries of many nodes)
    jitter: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.2
    #: lifetime of the envelopes this node sends, seconds (the relay caps it)
    envelope_lifetime: Annotated[float, msgspec.Meta(gt=60, le=30 * 86_400)] = 3 * 86_400
    #: envelopes submitted concurrently (one recipient's messages stay in order)
    max_in_flight: Annotated[int, msgspec.Meta(ge=1, le=256)] = 16


class LogSection(_Section, frozen=True):
    """Structured logging."""

    level: Annotated[str, msgspec.Meta(pattern="^(debug|info|warning|error)$")] = "info"
    format: Annotated[str, msgspec.Meta(pattern="^(json|console)$")] = "json"


class NodeConfig(_Section, frozen=True):
    """The whole node configuration."""

    node: NodeSection
    relays: RelaysSection = RelaysSection()
    directory: DirectorySection = DirectorySection()
    sync: SyncSection = SyncSection()
    log: LogSection = LogSection()
    #: directory of the config file, for resolving relative paths (not read from TOML)
    base_dir: str = "."

    def path(self, value: str) -> Path:
        """Resolve a configured path: data_dir-relative, data_dir itself file-relative."""
        data = Path(self.base_dir) / self.node.data_dir
        return Path(value) if Path(value).is_absolute() else data / value


def load_config(path: Path) -> NodeConfig:
    """Read and validate a node config file.

    Args:
        path: the TOML file.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: unreadable file, TOML syntax error, unknown key or bad value; the
            message names the file and the config path.
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    if "base_dir" in raw:
        raise ConfigError(f"{path}: unknown key 'base_dir'")
    raw["base_dir"] = str(path.parent.resolve())
    try:
        config = msgspec.convert(raw, NodeConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {_config_path(str(exc))}") from None
    if config.sync.backoff_max < config.sync.backoff_base:
        raise ConfigError(f"{path}: sync.backoff_max: must be >= sync.backoff_base")
    return config


def _config_path(message: str) -> str:
    # msgspec says "... - at `$.sync.jitter`"; show "sync.jitter: ...".
    text, sep, where = message.rpartition(" - at `$.")
    if not sep:
        return message
    return f"{where.rstrip('`')}: {text}"


CONFIG_TEMPLATE = """\
# relay247 node configuration. Every option is shown with its default.
# Unknown keys and out-of-range values stop the node at start-up.

[node]
# This node's member id in the network directory.
member = "{member}"
# Keys and database live here; relative to this file.
data_dir = "."
# Encrypted key file and SQLite database, relative to data_dir.
keys_file = "node.keys"
database = "node.db"

[relays]
# Relays in failover order. Empty: use the relays the signed directory lists.
urls = [{relay_urls}]
# Seconds for one HTTP request to a relay.
request_timeout = 10.0

[directory]
# Coordinators' public keys and threshold (trust.json from `relay247 network init`).
trust_root = "{trust_root}"
# Seconds between directory refreshes (also refreshed when a key is unknown).
refresh_interval = 300.0

[sync]
# WebSocket push from the relay; false forces long-poll.
push = true
# Long-poll wait per request, seconds (the relay caps it).
poll_wait = 25
# Envelopes per mailbox page.
page_size = 100
# Outbox retries: first delay (seconds), doubling up to backoff_max, plus up to
# jitter x delay of random extra so many nodes do not retry in step.
backoff_base = 0.5
backoff_max = 300.0
jitter = 0.2
# Lifetime of the envelopes this node sends, seconds (the relay caps it, 7 days).
envelope_lifetime = 259200.0
# Envelopes submitted concurrently (one recipient's messages always stay in order).
max_in_flight = 16

[log]
# debug | info | warning | error
level = "info"
# json (for collectors) | console (for people)
format = "json"
"""
