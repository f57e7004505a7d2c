"""The node's services beside delivery: cases, legal clocks and alerts, witness duty, the
local API and case export. :class:`Services` starts and stops them with the node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import structlog

from node._tasks import stop_tasks
from node._wallclock import unix_clock
from node.alerts import AlertsConfig, AlertSender, SmtpTarget
from node.api import ApiContext, ApiServer, NodeView, OfficerGate
from node.cases import (
    NOT_COSIGNED,
    CasesService,
    CaseStore,
    Clocks,
    ClockSettings,
    DutyAlerts,
    DutySettings,
    EmergencyWatch,
    RetentionPolicy,
    RetentionService,
    build_ladder,
    export_case,
    linked_case_ids,
    load_periods,
    load_procedures,
)
from node.config import NodeConfig, alerts_config, escalate_after
from node.events import EventHub
from node.keyfile import NodeKeys
from node.messaging import RelayClients, read_trust_root
from node.officers import EmergencyDesk, LogSigner, OfficerDb, Roster, open_db
from node.witness import AuditTransport, LogIdentity, WitnessDuty, log_identity
from protocol.cases import PeriodTable
from protocol.directory import TrustRoot, VerifiedDirectory
from protocol.errors import Relay247Error, TransportError
from schemas.errors import ErrorCode
from serving import ConnectionLimits

log = structlog.get_logger("relay247.node")


@dataclass(frozen=True)
class ServiceSettings:
    """The settings of the services (from ``[api]``, ``[alerts]``, ``[clocks]``, ``[witness]``).

    Attributes:
        data_dir: the node's data directory (token, port file, evidence).
        database: the node's SQLite file.
        api_host, api_port: where the local API listens; ``api_enabled`` false: nowhere.
        api_token: the token file, relative to ``data_dir``.
        alerts: alert targets and the reminder and escalation delays.
        clock_interval: seconds between clock ticks.
        witness_enabled, witness_interval: the witness duty and its period (seconds).
        witness_log_key: a pinned log key when the directory lists none for the relay.
        request_timeout: seconds per audit request to the relay.
        api_limits: the local API's connection bounds (serving/guard.py defaults).
    """

    data_dir: Path
    database: Path
    api_host: str = "127.0.0.1"
    api_port: int = 0
    api_enabled: bool = True
    api_token: str = "api.token"  # noqa: S105  # a file name, not a secret
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    clock_interval: float = 60.0
    witness_enabled: bool = True
    witness_interval: float = 10.0
    witness_log_key: str | None = None
    request_timeout: float = 10.0
    api_limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    #: the duty roster's escalation ([roster]); None: no duty alerts
    duty: DutySettings | None = None
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)  # [retention]


@dataclass
class NodeParts:
    """What the services use of the node (``node.daemon.Node`` provides each)."""

    view: NodeView
    keys: NodeKeys
    hub: EventHub
    clock: Callable[[], datetime]
    directory: Callable[[], VerifiedDirectory | None]
    relays: Callable[[], tuple[str, ...]]
    trust_root: TrustRoot
    table: PeriodTable


class Services:
    """Cases, clocks, witness duty, export and the local API of one node.

    Args:
        parts: the node's parts.
        settings: the services' settings.
    """

    def __init__(self, parts: NodeParts, settings: ServiceSettings) -> None:
        self.parts = parts
        self.settings = settings
        self.case_store = CaseStore(settings.database, parts.view.store.sealer)
        self.cases = CasesService(parts.view.store, self.case_store, parts.hub, parts.table)
        self.alerts = AlertSender(settings.alerts, clock=unix_clock(parts.clock))
        a = settings.alerts
        self.clocks = Clocks(
            self.case_store,
            self.alerts,
            member=parts.view.member,
            table=parts.table,
            settings=ClockSettings(
                remind_before=timedelta(hours=a.remind_before_hours),
                escalate_after=timedelta(minutes=a.escalate_after_minutes),
                interval=settings.clock_interval,
            ),
            clock=parts.clock,
            zone=lambda: member_zone(parts.directory(), parts.view.member),
        )
        self.witness = WitnessDuty(
            self.case_store,
            member=parts.view.member,
            signing_key=parts.keys.signing,
            evidence_dir=settings.data_dir / "evidence",
            hub=parts.hub,
            alert=self.clocks.send_now,
            clock=parts.clock,
        )
        self.retention = RetentionService(
            settings.database, settings.data_dir, member=parts.view.member,
            signing=parts.keys.signing, policy=settings.retention, clock=parts.clock,
            sealer=self.case_store.sealer, fold=self.cases.refresh,
        )  # fmt: skip
        self.api: ApiServer | None = None
        if settings.api_enabled:
            context = ApiContext(
                node=parts.view,
                cases=self.cases,
                table=parts.table,
                clock=parts.clock,
                relays=parts.relays,
                export=self.export,
                witness_size=lambda: self.witness.size,
                alert_targets=len(settings.alerts.webhooks) + len(settings.alerts.smtp),
                officers=OfficerGate(
                    settings.database, parts.view.member, parts.keys.signing, parts.clock
                ),
                retention=self.retention,
            )
            self.api = ApiServer(
                context,
                settings.data_dir,
                settings.api_host,
                settings.api_port,
                token_file=settings.data_dir / settings.api_token,
                limits=settings.api_limits,
            )
        #: the signed client of a relay URL, for audit reads and cosignatures
        self.client = RelayClients(
            parts.keys.transport, timeout=settings.request_timeout, clock=parts.clock
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._undo: list[Callable[[], None]] = []  # at stop: hub subscriptions, duty's db
        self.duty: DutyAlerts | None = None
        self.emergency: EmergencyWatch | None = None

    async def _start_duty(self, duty: DutySettings) -> None:
        parts = self.parts
        conn = await asyncio.to_thread(open_db, self.settings.database)
        signer = LogSigner(parts.view.member, parts.keys.signing)
        sealer = parts.view.store.sealer
        officers = OfficerDb(
            conn, parts.clock, member=parts.view.member, signer=signer, sealer=sealer
        )
        zone = lambda: member_zone(parts.directory(), parts.view.member)  # noqa: E731
        self.duty = DutyAlerts(
            self.case_store,
            Roster(officers, parts.clock, signer),
            member=parts.view.member,
            settings=duty,
            clock=parts.clock,
            zone=zone,
            refresh=self.cases.refresh,
            desk=EmergencyDesk(officers, parts.clock, signer),
        )
        if duty.ladder is not None:
            self.emergency = EmergencyWatch(
                self.duty,
                self.case_store,
                self.clocks.deliver,
                ladder=duty.ladder,
                member=parts.view.member,
                zone=zone,
            )
            self.duty.extra_ticks.append(self.emergency.tick)
        unsubscribe = self.duty.subscribe(parts.hub)
        self.clocks.acknowledged = self.duty.acknowledged

        def stop() -> None:
            unsubscribe()
            conn.close()

        self._undo.append(stop)
        self._tasks.append(asyncio.create_task(self.duty.run(), name="node-duty"))

    async def start(self) -> None:
        """Open the case tables, rebuild the stale cases, start the clocks and the witness.

        The local API is started apart (:meth:`start_api`): only the serving daemon binds
        its port.

        Raises:
            StorageError: the case tables cannot be opened.
        """
        await self.case_store.open()
        await self.cases.start()
        self._undo.append(self.parts.hub.subscribe(self.clocks.on_event))  # given up
        loops: list[tuple[str, Coroutine[Any, Any, None]]] = [
            ("clocks", self.clocks.run()),
            ("retention", self.retention.run()),
        ]
        if self.settings.witness_enabled:
            loops.append(("witness", self.witness.run(self.relay, self.settings.witness_interval)))
        for name, coro in loops:
            self._tasks.append(asyncio.create_task(coro, name=f"node-{name}"))
        if self.settings.duty is not None:
            await self._start_duty(self.settings.duty)

    async def start_api(self) -> None:
        """Serve the local API (after :meth:`start`); nothing if ``api_enabled`` is false.

        Raises:
            ConfigError: the API token or address is unusable.
        """
        if self.api is not None:
            await self.api.start()

    async def stop(self) -> None:
        """Stop the API and the loops, close the sessions and the case tables."""
        if self.api is not None:
            await self.api.stop()
        await stop_tasks(self._tasks)
        self._tasks.clear()
        if self.duty is not None:
            await self.duty.close()
        while self._undo:
            self._undo.pop()()
        await self.cases.stop()
        await self.retention.close()
        await self.alerts.close()
        await self.client.close()
        await self.case_store.close()

    def relay(self) -> tuple[AuditTransport, LogIdentity] | None:
        """The first relay in use and its pinned log identity, or None if not pinned."""
        urls = self.parts.relays()
        if not urls:
            return None
        log_id = log_identity(self.parts.directory(), urls[0], self.settings.witness_log_key)
        return None if log_id is None else (self.client(urls[0]), log_id)

    async def export(self, case_id: str, *, with_linked: bool = False) -> bytes | None:
        """The evidence bundle of a case (None: unknown case); cosigns the latest
        checkpoint first, so the bundle carries at least this node's cosignature.
        ``with_linked``: the cases linked to it (PROTOCOL.md §17.5) are included.

        Raises:
            TransportError: ``unavailable``: no relay with a pinned log key, or the latest
                checkpoint does not cover the case yet.
            PeerError, NoteError, StorageError: see :func:`node.cases.export.export_case`.
        """
        row = await self.case_store.case(case_id)
        if row is None:
            return None
        linked = (
            await linked_case_ids(row, self.cases.links, self.case_store) if with_linked else ()
        )
        urls = self.parts.relays()
        log_id = (
            log_identity(self.parts.directory(), urls[0], self.settings.witness_log_key)
            if urls
            else None
        )
        if log_id is None:
            raise TransportError(
                "no relay with a pinned log key: cannot export", code=ErrorCode.UNAVAILABLE
            )
        client = self.client(urls[0])
        # The relay may sign a newer checkpoint between our cosignature and the export's
        # read of the latest one; a bundle must carry at least our own cosignature, so
        # cosign and export again (a few times) until the checkpoint read is one we signed.
        cosigner = self.parts.view.member if self.settings.witness_enabled else None
        attempts = _EXPORT_ATTEMPTS if cosigner is not None else 1
        for attempt in range(1, attempts + 1):
            if cosigner is not None:
                try:
                    await self.witness.round(client, log_id)
                except Relay247Error as exc:
                    log.info("witness round before export failed", error=exc.diagnostics())
            try:
                return await export_case(
                    case_id,
                    store=self.parts.view.store,
                    cases=self.case_store,
                    keys=self.parts.keys,
                    source=client,
                    log=log_id,
                    trust_root=self.parts.trust_root,
                    now=self.parts.clock(),
                    require_cosigner=cosigner,
                    linked=linked,
                )
            except TransportError as exc:
                if attempt == attempts or exc.detail != NOT_COSIGNED:
                    raise
        return None  # not reached: the last attempt returns or raises


_EXPORT_ATTEMPTS = 3


def member_zone(directory: VerifiedDirectory | None, member: str) -> tzinfo | None:
    """The time zone of ``member``'s directory entry (None when unknown or invalid)."""
    if directory is None:
        return None
    entry = next((m for m in directory.directory.members if m.id == member), None)
    try:
        return None if entry is None else ZoneInfo(entry.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def build_services(
    config: NodeConfig,
    *,
    view: NodeView,
    keys: NodeKeys,
    hub: EventHub,
    clock: Callable[[], datetime],
    directory: Callable[[], VerifiedDirectory | None],
    relays: Callable[[], tuple[str, ...]],
) -> Services:
    """The services of a node, from its configuration (``node.daemon.Node`` calls this).

    Raises:
        ConfigError: the trust root, the period table or an alert secret is unusable.
    """
    periods = config.clocks.periods_file
    procedures_file = config.escalation.procedures_file
    procedures = load_procedures(config.path(procedures_file) if procedures_file else None)
    ladder = build_ladder(procedures, config.escalation.after_minutes, config.escalation.procedures)
    parts = NodeParts(
        view=view,
        keys=keys,
        hub=hub,
        clock=clock,
        directory=directory,
        relays=relays,
        trust_root=read_trust_root(config.path(config.directory.trust_root)),
        table=load_periods(config.path(periods) if periods else None),
    )
    settings = ServiceSettings(
        data_dir=config.path("."),
        database=config.path(config.node.database),
        api_host=config.api.host,
        api_port=config.api.port,
        api_enabled=config.api.enabled,
        api_token=config.api.token_file,
        alerts=alerts_config(config),
        clock_interval=config.clocks.interval,
        witness_enabled=config.witness.enabled,
        witness_interval=config.witness.interval,
        witness_log_key=config.witness.log_key or None,
        request_timeout=config.relays.request_timeout,
        duty=DutySettings(
            escalate_after=timedelta(minutes=escalate_after(config)),
            ladder=ladder,
            last_level=config.roster.last_level,
            smtp=settings_smtp(config),
            interval=config.clocks.interval,
        ),
        retention=RetentionPolicy(**msgspec.structs.asdict(config.retention)),
    )
    return Services(parts, settings)


def settings_smtp(config: NodeConfig) -> SmtpTarget | None:
    """The mail server officers' e-mail channels go through: the first ``[[alerts.smtp]]``."""
    return config.alerts.smtp[0] if config.alerts.smtp else None
