"""Relay configuration: a TOML file decoded into strict, frozen Structs.

A typo or an out-of-range value stops start-up with the config path named
(``ConfigError: relay.toml: limits.mailbox_quota: Expected int >= 1``).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import msgspec

from protocol.errors import ConfigError
from relay.storage import BlobLimits, Quotas
from relay.storage.postgres._names import check_dsn, check_schema_name
from serving.config_file import ConfigPath, ListenHost, read_config, resolve
from serving.guard import ConnectionLimits

#: the connection bounds' defaults, shared with the node API (one set of numbers)
_GUARD = ConnectionLimits()

_Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
_Seconds = Annotated[float, msgspec.Meta(gt=0, le=86_400)]
#: who may read /metrics by default: this host and the private networks (RFC 1918, RFC
#: 4193): the metrics name members and when each was last seen (who is on duty)
METRICS_FROM = (
    "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7",
)  # fmt: skip


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class RelaySection(_Section, frozen=True):
    """Who this relay is."""

    id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")]
    #: the public origin nodes sign requests for, e.g. "https://relay.example.org"
    public_url: Annotated[str, msgspec.Meta(pattern=r"^https?://[!-.0-~]+\Z")]
    #: data directory (keys, database); relative paths are relative to the config file
    data_dir: ConfigPath = "."
    #: this instance's own origin when several instances share ``public_url`` (requests
    #: signed for either are accepted; the log origin still comes from ``public_url``)
    instance_url: Annotated[str, msgspec.Meta(pattern=r"^https?://[!-.0-~]+\Z")] | None = None


class HttpSection(_Section, frozen=True):
    """Listening socket and transport limits."""

    host: ListenHost = "127.0.0.1"
    port: _Port = 8247
    tls_cert: ConfigPath | None = None
    tls_key: ConfigPath | None = None
    #: largest request body accepted, bytes
    max_body_bytes: Annotated[int, msgspec.Meta(ge=4096, le=64 << 20)] = 2 << 20
    #: seconds a client may take to send a request
    read_timeout: _Seconds = 30.0
    #: seconds between WebSocket pings
    ws_heartbeat: _Seconds = 20.0
    #: longest long-poll wait, seconds
    max_poll_wait: _Seconds = 30.0
    #: seconds a new connection may take to send its first request line and headers
    header_timeout: Annotated[float, msgspec.Meta(gt=0, le=300)] = _GUARD.header_timeout
    #: seconds an idle connection is kept open after a response (and the bound on the
    #: request line and headers of every later request on it)
    keepalive_timeout: Annotated[float, msgspec.Meta(gt=0, le=300)] = _GUARD.keepalive_timeout
    #: seconds a TLS handshake may take (with tls_cert set)
    tls_handshake_timeout: Annotated[float, msgspec.Meta(gt=0, le=300)] = (
        _GUARD.tls_handshake_timeout
    )
    #: open connections in all; over it a new one is answered 503 and closed
    max_connections: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = _GUARD.max_connections
    #: open connections from one client address (behind a reverse proxy every client
    #: has the proxy's address: set it to max_connections and bound clients there)
    max_connections_per_address: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = (
        _GUARD.max_per_address
    )
    #: client networks (CIDR) that may read /metrics; others are answered 403
    metrics_from: Annotated[tuple[str, ...], msgspec.Meta(max_length=256)] = METRICS_FROM


class LimitsSection(_Section, frozen=True):
    """Per-node and per-message limits."""

    #: undelivered envelopes one recipient may have waiting
    mailbox_quota: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = 100_000
    #: bytes of undelivered envelopes one recipient may have waiting (1 GiB)
    mailbox_quota_bytes: Annotated[int, msgspec.Meta(ge=1 << 20, le=1 << 40)] = 1 << 30
    #: bytes one sender may have waiting in one recipient's mailbox (128 MiB): a sender
    #: that fills its share is refused alone; at least http.max_body_bytes
    sender_quota_bytes: Annotated[int, msgspec.Meta(ge=4096, le=1 << 40)] = 1 << 27
    #: sustained requests per second per node
    rate_per_node: Annotated[float, msgspec.Meta(gt=0, le=1e6)] = 200.0
    #: burst size above the sustained rate
    rate_burst: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 2000
    #: longest envelope lifetime (expires - created), seconds
    max_envelope_lifetime: Annotated[float, msgspec.Meta(gt=0, le=30 * 86_400)] = 7 * 86_400
    #: tolerated clock skew of nodes, seconds
    max_clock_skew: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 60.0
    #: longest RFC 9421 signature lifetime accepted, seconds
    max_signature_lifetime: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 300


class DirectorySection(_Section, frozen=True):
    """The network's trust root, pinned at set-up."""

    #: file with the coordinators' public keys and threshold (from `network init`)
    trust_root: ConfigPath = "trust.json"


class StorageSection(_Section, frozen=True):
    """Where envelopes and the audit log live."""

    backend: Annotated[str, msgspec.Meta(pattern=r"^(sqlite|postgres)\Z")] = "sqlite"
    #: SQLite database file (relative to data_dir)
    sqlite_path: ConfigPath = "relay.db"
    #: PostgreSQL DSN when backend = "postgres"
    postgres_dsn: str | None = None
    #: PostgreSQL schema (namespace) holding the tables; created if missing
    #: (a plain lower-case identifier, not a reserved SQL key word:
    #: relay/storage/postgres/_names.py)
    postgres_schema: str = "relay247"
    #: connections per instance
    postgres_pool_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 8
    #: seconds between attempts of a follower to take the leader lock
    leader_poll: Annotated[float, msgspec.Meta(gt=0, le=60)] = 1.0
    #: seconds a write waits for the leader to give it a leaf index before answering 503
    sequence_timeout: Annotated[float, msgspec.Meta(gt=0, le=600)] = 10.0
    #: seconds between expiry sweeps (the leader drops expired undelivered envelopes)
    expire_interval: _Seconds = 60.0
    #: seconds an acked or expired message's idempotency record is kept; at least
    #: ``limits.max_envelope_lifetime + limits.max_clock_skew``, so that a sender's retry
    #: is never delivered twice
    purge_after: Annotated[float, msgspec.Meta(gt=0, le=10 * 366 * 86_400)] = 2_592_000.0


class BlobsSection(_Section, frozen=True):
    """Attachments' ciphertext (PROTOCOL.md §15.4, OPERATIONS.md "Blob storage")."""

    #: SQLite backend: directory of the chunk files (relative to data_dir)
    dir: ConfigPath = "blobs"
    #: largest blob (ciphertext) accepted, bytes (4 GiB)
    max_blob_bytes: Annotated[int, msgspec.Meta(ge=1, le=1 << 44)] = 4 << 30
    #: bytes of blobs one sender may have stored, committed or not (16 GiB)
    max_bytes_per_sender: Annotated[int, msgspec.Meta(ge=1, le=1 << 48)] = 16 << 30
    #: bytes of blobs stored for one recipient (16 GiB)
    max_bytes_per_recipient: Annotated[int, msgspec.Meta(ge=1, le=1 << 48)] = 16 << 30
    #: seconds a blob no accepted envelope carries is kept after its creation (24 h)
    blob_ttl: Annotated[float, msgspec.Meta(gt=0, le=30 * 86_400)] = 86_400.0
    #: seconds a client may take to send one upload chunk (4 MiB); http.read_timeout
    #: still bounds a pause in it
    chunk_timeout: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 300.0


class AuditSection(_Section, frozen=True):
    """When the relay signs checkpoints of its audit log (PROTOCOL.md §7.2)."""

    #: seconds after the last checkpoint before a grown tree is signed again
    checkpoint_interval: _Seconds = 5.0
    #: entries appended since the last checkpoint that trigger a new one at once
    checkpoint_every: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = 1000


class LogSection(_Section, frozen=True):
    """Structured logging."""

    level: Annotated[str, msgspec.Meta(pattern=r"^(debug|info|warning|error)\Z")] = "info"
    #: "json" for machines, "console" for people
    format: Annotated[str, msgspec.Meta(pattern=r"^(json|console)\Z")] = "json"


class RelayConfig(_Section, frozen=True):
    """The whole relay configuration."""

    relay: RelaySection
    http: HttpSection = HttpSection()
    limits: LimitsSection = LimitsSection()
    directory: DirectorySection = DirectorySection()
    storage: StorageSection = StorageSection()
    blobs: BlobsSection = BlobsSection()
    audit: AuditSection = AuditSection()
    log: LogSection = LogSection()
    #: directory of the config file, for resolving relative paths (not read from TOML)
    base_dir: str = "."

    def path(self, value: str) -> Path:
        """Resolve a configured path: data_dir-relative, data_dir itself file-relative."""
        return resolve(self.base_dir, self.relay.data_dir, value)


def quotas(config: RelayConfig) -> Quotas:
    """The mailbox quotas of ``[limits]``, as the stores take them."""
    limits = config.limits
    return Quotas(
        envelopes=limits.mailbox_quota,
        mailbox_bytes=limits.mailbox_quota_bytes,
        sender_bytes=limits.sender_quota_bytes,
    )


def blob_limits(config: RelayConfig) -> BlobLimits:
    """The blob size and quotas of ``[blobs]``, as the stores take them."""
    blobs = config.blobs
    return BlobLimits(
        max_bytes=blobs.max_blob_bytes,
        sender_bytes=blobs.max_bytes_per_sender,
        recipient_bytes=blobs.max_bytes_per_recipient,
    )


def load_config(path: Path) -> RelayConfig:
    """Read and validate a relay config file.

    Raises:
        ConfigError: unreadable file, TOML syntax error, unknown key or bad value; the
            message names the file and the config path.
    """
    config = read_config(path, RelayConfig)
    storage = config.storage
    if storage.backend == "postgres" and not storage.postgres_dsn:
        raise ConfigError(f'{path}: storage.postgres_dsn: required when backend = "postgres"')
    try:
        # Checked offline, so a name or DSN that PostgreSQL would refuse stops start-up
        # with exit 2 here, not as a connection failure that a service manager retries.
        check_schema_name(storage.postgres_schema)
        if storage.postgres_dsn is not None:
            check_dsn(storage.postgres_dsn)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.message}") from None
    # An envelope may be created up to max_clock_skew in the future, so it can still be
    # retried max_envelope_lifetime + max_clock_skew after the relay received it.
    window = config.limits.max_envelope_lifetime + config.limits.max_clock_skew
    if storage.purge_after < window:
        raise ConfigError(
            f"{path}: storage.purge_after: must be at least limits.max_envelope_lifetime"
            f" + limits.max_clock_skew ({window:g} s): a retried envelope would be"
            " delivered twice"
        )
    limits = config.limits
    if not config.http.max_body_bytes <= limits.sender_quota_bytes <= limits.mailbox_quota_bytes:
        raise ConfigError(
            f"{path}: limits.sender_quota_bytes: must be between http.max_body_bytes"
            f" ({config.http.max_body_bytes}) and limits.mailbox_quota_bytes"
            f" ({limits.mailbox_quota_bytes})"
        )
    blobs = config.blobs
    if blobs.max_blob_bytes > min(blobs.max_bytes_per_sender, blobs.max_bytes_per_recipient):
        raise ConfigError(
            f"{path}: blobs.max_blob_bytes: must be at most blobs.max_bytes_per_sender"
            " and blobs.max_bytes_per_recipient"
        )
    if config.relay.instance_url == config.relay.public_url:
        raise ConfigError(f"{path}: relay.instance_url: must differ from relay.public_url")
    for network in config.http.metrics_from:
        try:
            ipaddress.ip_network(network)
        except ValueError as exc:
            raise ConfigError(f"{path}: http.metrics_from: {exc}") from None
    return config


CONFIG_TEMPLATE = """\
# relay247 relay configuration. Every option is shown with its default.
# Unknown keys and out-of-range values stop the relay at start-up.

[relay]
# Name of this relay instance (letters, digits, . _ -).
id = "{relay_id}"
# Public origin that nodes use; RFC 9421 signatures are checked against it.
public_url = "{public_url}"
# Keys and database live here; relative to this file.
data_dir = "."
# Several instances behind one public_url: this instance's own origin. Requests signed
# for it or for public_url are accepted; the audit log's origin stays public_url's.
# instance_url = "https://relay-1.example.org"

[http]
host = "{host}"
port = {port}
# TLS: set both to serve HTTPS directly (or terminate TLS at a reverse proxy).
# tls_cert = "/etc/relay247/tls/fullchain.pem"
# tls_key = "/etc/relay247/tls/privkey.pem"
# Largest request body, bytes.
max_body_bytes = 2097152
# Seconds a client may take to send a request.
read_timeout = 30.0
# Seconds between WebSocket pings.
ws_heartbeat = 20.0
# Longest long-poll wait, seconds.
max_poll_wait = 30.0
# Seconds a new connection may take to send its request line and headers.
header_timeout = 10.0
# Seconds an idle connection stays open after a response (also bounds the headers of
# each later request on it).
keepalive_timeout = 15.0
# Seconds a TLS handshake may take (with tls_cert set).
tls_handshake_timeout = 10.0
# Open connections in all, and from one client address; over either a new connection
# is answered 503 and closed. Behind a reverse proxy every client has the proxy's
# address: set max_connections_per_address = max_connections and bound clients there.
max_connections = 1024
max_connections_per_address = 256
# Client networks that may read /metrics (it names members and when each was last seen);
# others are answered 403. Behind a reverse proxy on this host every client has its
# address: the proxy must not serve /metrics (deploy/nginx/relay247.conf does not).
metrics_from = [
    "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7",
]

[limits]
# Undelivered envelopes one recipient may have waiting, and their bytes (1 GiB).
mailbox_quota = 100000
mailbox_quota_bytes = 1073741824
# Bytes one sender may have waiting in one recipient's mailbox (128 MiB); a sender over
# it is refused alone (429 mailbox_full), others still reach the recipient.
sender_quota_bytes = 134217728
# Sustained requests per second per node, and burst above it.
rate_per_node = 200.0
rate_burst = 2000
# Longest envelope lifetime (expires - created), seconds.
max_envelope_lifetime = 604800.0
# Tolerated clock skew of nodes, seconds.
max_clock_skew = 60.0
# Longest RFC 9421 signature lifetime, seconds.
max_signature_lifetime = 300

[directory]
# Coordinators' public keys and threshold, from `relay247 network init`.
trust_root = "{trust_root}"

[storage]
# "sqlite" (embedded, one instance) or "postgres" (one or several instances).
backend = "sqlite"
# SQLite database file, relative to data_dir.
sqlite_path = "relay.db"
# PostgreSQL connection (libpq DSN) and the schema (namespace) holding the tables;
# several relays may share one database in distinct schemas.
# postgres_dsn = "postgresql://relay247@db.example.org/relay247"
# postgres_schema = "relay247"
# PostgreSQL connections per instance.
postgres_pool_size = 8
# Seconds between attempts of a follower instance to become the leader (PostgreSQL).
leader_poll = 1.0
# Seconds a write waits for the leader to log it before answering 503 (PostgreSQL).
sequence_timeout = 10.0
# Seconds between sweeps that drop expired undelivered envelopes (leader only).
expire_interval = 60.0
# Seconds an acked or expired message's idempotency record is kept (30 days); at least
# limits.max_envelope_lifetime + limits.max_clock_skew: a retry is never delivered twice.
purge_after = 2592000.0

[blobs]
# Attachments' ciphertext. SQLite: chunk files live here, relative to data_dir
# (PostgreSQL keeps them in the database).
dir = "blobs"
# Largest blob, bytes (4 GiB).
max_blob_bytes = 4294967296
# Bytes of blobs one sender may have stored, and bytes stored for one recipient
# (16 GiB each); over either a new blob is refused (429 quota_exceeded).
max_bytes_per_sender = 17179869184
max_bytes_per_recipient = 17179869184
# Seconds a blob that no accepted envelope carries is kept (24 h); a carried blob goes
# when its envelope is acked or expires.
blob_ttl = 86400.0
# Seconds a client may take to send one 4 MiB upload chunk (a pause in it is bounded
# by http.read_timeout).
chunk_timeout = 300.0

[audit]
# While the log grows, sign a checkpoint this many seconds after the previous one...
checkpoint_interval = 5.0
# ...or as soon as this many entries were appended since it, whichever comes first.
checkpoint_every = 1000

[log]
# debug | info | warning | error
level = "info"
# json (for collectors) | console (for people)
format = "json"
"""
