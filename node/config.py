"""Node configuration: a TOML file decoded into strict, frozen Structs.

Same rules as the relay's (``relay/config.py``): a typo or an out-of-range value stops
start-up with the config path named (``ConfigError: node.toml: sync.backoff_max: ...``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Final

import msgspec

from node._bridge_config import EmailBridgeSection, check_bridge
from node._config_template import CONFIG_TEMPLATE as CONFIG_TEMPLATE  # noqa: PLC0414
from node.alerts import AlertsConfig, SmtpTarget, WebhookTarget
from protocol.codec import convert
from protocol.config_toml import config_path
from protocol.errors import ConfigError, MalformedError
from schemas.types import MemberId
from serving.config_file import ConfigPath, ListenHost, read_config, resolve
from serving.files import read_file

_Seconds = Annotated[float, msgspec.Meta(gt=0, le=86_400)]
_Minutes = Annotated[float, msgspec.Meta(gt=0, le=24 * 60)]
_Ladder = Annotated[tuple[_Minutes, ...], msgspec.Meta(min_length=2, max_length=2)]
_ProcedureId = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{1,63}\Z")]
_Url = Annotated[str, msgspec.Meta(pattern=r"^https?://[!-~]{1,2000}\Z")]


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class NodeSection(_Section, frozen=True):
    """Who this node is."""

    #: the member id in the directory, e.g. "FR"
    member: MemberId
    #: data directory (keys, database); relative paths are relative to the config file
    data_dir: ConfigPath = "."
    #: key file, relative to data_dir
    keys_file: ConfigPath = "node.keys"
    #: SQLite database, relative to data_dir
    database: ConfigPath = "node.db"


class RelaysSection(_Section, frozen=True):
    """Relays to use, in failover order."""

    #: empty: use the relays listed in the directory (the first URL bootstraps it)
    urls: Annotated[tuple[_Url, ...], msgspec.Meta(max_length=16)] = ()
    #: seconds for one HTTP request to a relay
    request_timeout: _Seconds = 10.0


class DirectorySection(_Section, frozen=True):
    """The network's trust root and how often to refresh the directory."""

    #: trust.json from `relay247 network init`, relative to data_dir
    trust_root: ConfigPath = "trust.json"
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

    level: Annotated[str, msgspec.Meta(pattern=r"^(debug|info|warning|error)\Z")] = "info"
    format: Annotated[str, msgspec.Meta(pattern=r"^(json|console)\Z")] = "json"


class ApiSection(_Section, frozen=True):
    """The local API (PROTOCOL.md §8.6), served by `relay247 node serve` only."""

    enabled: bool = True
    #: a loopback address; anything else stops start-up
    host: ListenHost = "127.0.0.1"
    #: 0 picks a free port; the port in use is written to DATA/api.port
    port: Annotated[int, msgspec.Meta(ge=0, le=65_535)] = 0
    #: bearer token file, relative to data_dir; created 0600 at first start
    token_file: ConfigPath = "api.token"  # noqa: S105  # a file name, not a secret


class ConsoleSection(_Section, frozen=True):
    """The officers' web console (issue 13 §3), served by `relay247 node serve` beside the API."""

    enabled: bool = True
    host: ListenHost = "127.0.0.1"
    #: 0 picks a free port; the port in use is written to DATA/console.port
    port: Annotated[int, msgspec.Meta(ge=0, le=65_535)] = 0
    #: TLS certificate chain and key (PEM, relative to data_dir); both or neither
    cert_file: ConfigPath = ""
    key_file: ConfigPath = ""
    idle_minutes: Annotated[float, msgspec.Meta(gt=0, le=24 * 60)] = 15.0
    absolute_hours: Annotated[float, msgspec.Meta(gt=0, le=7 * 24)] = 12.0
    #: failed logins from one client address per window before 429 (beside the lockout)
    login_attempts: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 20
    login_window_minutes: Annotated[float, msgspec.Meta(gt=0, le=24 * 60)] = 15.0
    #: reverse proxies (addresses or CIDR) whose X-Forwarded-For names the client
    trusted_proxies: tuple[str, ...] = ()
    body_timeout: Annotated[float, msgspec.Meta(gt=0, le=300)] = 15.0
    #: WebAuthn security keys (PROTOCOL.md §14.5): the RP ID (a domain, never an IP
    #: address) and the https:// origin officers open; "" derives them (localhost on
    #: loopback), checked at start by console/_keys.py
    rp_id: Annotated[str, msgspec.Meta(max_length=253)] = ""
    origin: Annotated[str, msgspec.Meta(max_length=300)] = ""


class WebhookSection(_Section, frozen=True):
    """One webhook receiver of alerts (node.alerts.WebhookTarget, secret from a file)."""

    url: _Url
    #: file holding the shared HMAC secret (mode 0600), relative to data_dir
    secret_file: ConfigPath | None = None
    #: the secret itself; prefer secret_file so the config can be world-readable
    secret: str | None = None
    timeout: Annotated[float, msgspec.Meta(gt=0, le=300)] = 5.0
    retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 3
    backoff: Annotated[float, msgspec.Meta(ge=0, le=60)] = 1.0


class AlertsSection(_Section, frozen=True):
    """Where alerts go: webhooks and mail servers (node.alerts.SmtpTarget)."""

    webhooks: Annotated[tuple[WebhookSection, ...], msgspec.Meta(max_length=16)] = ()
    smtp: Annotated[tuple[SmtpTarget, ...], msgspec.Meta(max_length=16)] = ()


class ClocksSection(_Section, frozen=True):
    """The legal clocks: reminders before deadlines, escalation of unanswered urgency."""

    #: remind this many hours before a deadline
    remind_before_hours: Annotated[float, msgspec.Meta(ge=0, le=24 * 60)] = 72.0
    #: deprecated: [escalation] after_minutes (accepted with a warning, mapped onto it)
    escalate_after_minutes: _Minutes | None = None
    #: seconds between two checks of every case
    interval: Annotated[float, msgspec.Meta(ge=1, le=3600)] = 60.0
    #: the per-country preservation periods; empty: the table shipped with the node
    periods_file: ConfigPath = ""


class RosterSection(_Section, frozen=True):
    """The duty roster's escalation (issue 13 §1): level 1 the officers on duty, level 2
    the supervisors on duty, level 3 ``last_level``."""

    #: deprecated: [escalation] after_minutes (accepted with a warning, mapped onto it)
    escalate_after_minutes: _Minutes | None = None
    #: the logins alerted at level 3 (the head of unit)
    last_level: Annotated[
        tuple[Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9._-]{1,31}\Z")], ...],
        msgspec.Meta(max_length=20),
    ] = ()


class EscalationSection(_Section, frozen=True):
    """The escalation ladder (PROTOCOL.md §16): minutes before level 2 and level 3."""

    #: empty: each procedure's ladder from the procedures file (30, 30 without one)
    after_minutes: Annotated[tuple[_Minutes, ...], msgspec.Meta(max_length=2)] = ()
    #: procedure id -> [minutes before level 2, minutes before level 3]
    procedures: Annotated[dict[_ProcedureId, _Ladder], msgspec.Meta(max_length=200)] = (
        msgspec.field(default_factory=dict)
    )
    #: the procedures file; empty: the one shipped with the node
    procedures_file: ConfigPath = ""


class WitnessSection(_Section, frozen=True):
    """The node's duty as a witness of its relay's audit log."""

    enabled: bool = True
    #: seconds between two witness rounds
    interval: Annotated[float, msgspec.Meta(ge=1, le=86_400)] = 10.0
    #: the log's verifier key, when the directory lists none for the relay
    log_key: str = ""


class RetentionSection(_Section, frozen=True):
    """Retention of case data and its schedule (PROTOCOL.md §19)."""

    #: days after a case closed before its bodies are removed; 0: never (the default)
    closed_case_bodies_days: Annotated[int, msgspec.Meta(ge=0, le=36_500)] = 0
    #: seconds between two scheduled retention passes
    interval: Annotated[float, msgspec.Meta(ge=1, le=7 * 86_400)] = 3600.0
    #: cases removed between two pauses that let the node's other writes through
    batch: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 200
    #: VACUUM node.db after a pass that removed something (secure_delete already zeroes)
    vacuum: bool = False
    #: calendar years after a case closed before it is removed whole, leaving a signed
    #: case tombstone (PROTOCOL.md §19.6); 0: never (the default)
    closed_case_metadata_years: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 0
    #: days an access-log entry is kept before its content is redacted (§14.6); 0: never
    access_log_days: Annotated[int, msgspec.Meta(ge=0, le=365_000)] = 0


class NodeConfig(_Section, frozen=True):
    """The whole node configuration."""

    node: NodeSection
    relays: RelaysSection = RelaysSection()
    directory: DirectorySection = DirectorySection()
    sync: SyncSection = SyncSection()
    log: LogSection = LogSection()
    api: ApiSection = ApiSection()
    console: ConsoleSection = ConsoleSection()
    alerts: AlertsSection = AlertsSection()
    clocks: ClocksSection = ClocksSection()
    roster: RosterSection = RosterSection()
    escalation: EscalationSection = EscalationSection()
    witness: WitnessSection = WitnessSection()
    retention: RetentionSection = RetentionSection()
    email_bridge: EmailBridgeSection = EmailBridgeSection()  # PROTOCOL.md §22
    #: directory of the config file, for resolving relative paths (not read from TOML)
    base_dir: str = "."

    def path(self, value: str) -> Path:
        """Resolve a configured path: data_dir-relative, data_dir itself file-relative."""
        return resolve(self.base_dir, self.node.data_dir, value)


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
    config = _map_deprecated(read_config(path, NodeConfig))
    if len(config.escalation.after_minutes) == 1:
        raise ConfigError(f"{path}: escalation.after_minutes: give two values or none")
    if config.sync.backoff_max < config.sync.backoff_base:
        raise ConfigError(f"{path}: sync.backoff_max: must be >= sync.backoff_base")
    try:
        alerts_config(config)  # secret files are read at start-up, not at the first alert
        check_bridge(config.email_bridge, config.path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.message}") from None
    return config


def alerts_config(config: NodeConfig) -> AlertsConfig:
    """The alert targets and delays, with each webhook secret read from its file.

    Raises:
        ConfigError: a webhook has no secret or two, or its secret file is unreadable,
            readable by others than its owner, or too short; the message names the
            config path.
    """
    hooks = []
    for n, w in enumerate(config.alerts.webhooks):
        where = f"alerts.webhooks[{n}]"
        if (w.secret is None) == (w.secret_file is None):
            raise ConfigError(f"{where}: give exactly one of secret_file and secret")
        secret = w.secret if w.secret is not None else _secret(config, where, w.secret_file)
        try:
            hooks.append(
                convert(
                    {"url": w.url, "secret": secret, "timeout": w.timeout}
                    | {"retries": w.retries, "backoff": w.backoff},
                    WebhookTarget,
                    where,
                )
            )
        except MalformedError as exc:
            raise ConfigError(f"{where}: {config_path(exc)}") from None
    c = config.clocks
    return AlertsConfig(
        webhooks=tuple(hooks),
        smtp=config.alerts.smtp,
        remind_before_hours=c.remind_before_hours,
        escalate_after_minutes=escalate_after(config),
    )


#: The delay between two levels for a case that follows no procedure (and the default
#: of the node-wide escalation alert) when [escalation] after_minutes is empty.
DEFAULT_ESCALATION_MINUTES = 30.0


def escalate_after(config: NodeConfig) -> float:
    """Minutes before level 2 for a case with no procedure ladder (the node-wide alert)."""
    after = config.escalation.after_minutes
    return after[0] if after else DEFAULT_ESCALATION_MINUTES


def _old_keys(config: NodeConfig) -> dict[str, float | None]:
    return {
        "roster.escalate_after_minutes": config.roster.escalate_after_minutes,
        "clocks.escalate_after_minutes": config.clocks.escalate_after_minutes,
    }


def deprecated_keys(config: NodeConfig) -> list[str]:
    """The deprecated keys ``config`` still sets (each maps onto ``[escalation]
    after_minutes``); the node logs each when it starts."""
    return [k for k, v in _old_keys(config).items() if v is not None]


#: what the old templates wrote for both ``escalate_after_minutes`` (minutes)
_OLD_DEFAULT: Final = 30.0


def _map_deprecated(config: NodeConfig) -> NodeConfig:
    """Map the two old ``escalate_after_minutes`` onto ``[escalation] after_minutes``.

    When ``after_minutes`` is empty, the old value becomes both of its delays ([roster]
    wins over [clocks]: it is the one that alerted people). The loader prints nothing
    (a command's ``--json`` stays JSON); the node logs :func:`deprecated_keys` at start.
    """
    # The templates before [escalation] wrote both keys uncommented at their default,
    # 30: that value says nothing an operator chose, and mapping it would override every
    # procedure's own ladder (an EPOC emergency escalates after 10 minutes, not 30).
    given = [v for v in _old_keys(config).values() if v is not None and v != _OLD_DEFAULT]
    if not given or config.escalation.after_minutes:
        return config
    ladder = msgspec.structs.replace(config.escalation, after_minutes=(given[0], given[0]))
    return msgspec.structs.replace(config, escalation=ladder)


def _secret(config: NodeConfig, where: str, name: str | None) -> str:
    path = config.path(name or "")
    try:
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{where}.secret_file: {path} must be readable by its owner only")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}.secret_file: cannot read {path}: {exc}") from None
    try:
        return read_file(path, 4096).decode("utf-8").strip()
    except ConfigError as exc:  # not a regular file, too large
        raise ConfigError(f"{where}.secret_file: {exc.message}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}.secret_file: cannot read {path}: {exc}") from None
