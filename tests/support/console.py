"""A real console on a real node (tests/integration/_node_services.py peers), with
officers created through ``node.officers`` and a clock the test moves."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from console import Console, ConsoleContext, ConsoleSettings
from node.officers import (
    AccessLog,
    Credentials,
    LogSigner,
    OfficerDb,
    SecurityKeys,
    code_at,
    open_db,
)
from node.services import member_zone
from tests.integration._node_services import Peer

PASSWORD = "correct horse battery staple 24/7"  # a test account's password
CSRF_RE = re.compile(rb'name="csrf" value="([^"]+)"')


@dataclass
class MovableClock:
    """The wall clock plus an offset the test moves (sessions, lockout, TOTP steps)."""

    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def move(self, by: timedelta) -> None:
        self.offset += by


@dataclass
class ConsoleUnderTest:
    """The served console, its officers' credentials and its clock."""

    console: Console
    url: str
    clock: MovableClock
    officers: dict[str, Credentials]
    db: OfficerDb
    access: AccessLog
    console_member: str
    signing_public: bytes

    def code(self, login: str) -> str:
        """A TOTP code of ``login`` never used before: each call moves the clock one
        30-second step first, since ``node.officers`` accepts each step once."""
        self.clock.move(timedelta(seconds=30))
        return code_at(self.officers[login].totp_secret, self.clock())

    @property
    def keys(self) -> SecurityKeys:
        """The officers' security keys (read and changed as the console does)."""
        return SecurityKeys(self.db, self.clock, self.db.signer)

    def actions(self) -> list[tuple[str, str | None, str | None]]:
        """The access log as (action, officer, case) rows, oldest first."""
        from node.officers._access_log import ENTRY_DECODER

        rows = self.db.connection.execute("SELECT entry FROM access_log ORDER BY idx").fetchall()
        out = []
        for (raw,) in rows:
            entry = ENTRY_DECODER.decode(bytes(raw))
            out.append((entry.action.value, entry.officer, entry.case))
        return out


OFFICERS = (
    ("duty", "Duty Officer", ("officer",), "en"),
    ("agent", "Agente de permanence", ("officer",), "fr"),
    ("auditor", "Internal Auditor", ("auditor",), "en"),
)


@asynccontextmanager
async def running_console(
    peer: Peer,
    *,
    idle: timedelta = timedelta(minutes=15),
    settings: ConsoleSettings | None = None,
) -> AsyncIterator[ConsoleUnderTest]:
    """Serve ``peer``'s console on a free loopback port with three officers
    (``settings``: other than the defaults with ``idle``)."""
    clock = MovableClock()
    node = peer.node
    conn = open_db(node.config.path(node.config.node.database))
    signer = LogSigner(node.member, peer.services.parts.keys.signing)
    db = OfficerDb(conn, clock, member=node.member, signer=signer, sealer=node.store.sealer)
    creds = {
        login: db.add(login, display_name=name, roles=roles, language=lang, password=PASSWORD)
        for login, name, roles, lang in OFFICERS
    }
    access = AccessLog(conn, signer, clock)
    context = ConsoleContext(
        member=node.member,
        clock=clock,
        store=node.store,
        cases=peer.services.cases,
        table=peer.services.parts.table,
        zone=lambda: member_zone(node.directory, node.member),
        officers=db,
        access=access,
        node=node,
    )
    console = Console(
        context, settings or ConsoleSettings(idle=idle), port_file=peer.data / "console.port"
    )
    await console.start()
    try:
        public = peer.services.parts.keys.signing.public
        yield ConsoleUnderTest(console, console.url, clock, creds, db, access, node.member, public)
    finally:
        await console.stop()
        conn.close()


def fresh_case() -> str:
    return os.urandom(16).hex()
