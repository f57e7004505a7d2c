"""``relay247 demo``: a relay and three country nodes exchange a real preservation request.

Everything is real: keys, k-of-n signed directory, RFC 9421 signed HTTP on loopback, the
SQLite-backed relay with its Merkle audit log, sealed envelopes opened with every check,
signed delivery receipts. The node side here is a scripted in-process actor built from the
same protocol functions the node daemon uses (issue 5 replaces it with node processes).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import click
import msgspec
from rich.console import Console
from rich.table import Table

from node.transport import RelayClient
from protocol.body import decode_opened
from protocol.directory import KeyLookup, TrustRoot, sign_directory, verify_directory
from protocol.envelope import Opened, open_envelope, seal_envelope
from protocol.keys import EncryptionKey, SigningKey
from protocol.merkle import leaf_hash, root
from protocol.receipt import make_ack, make_receipt, verify_receipt
from schemas._types import CoarseKind, Priority
from schemas.directory import (
    Coordinator,
    Directory,
    KeyAlg,
    KeyUse,
    Member,
    MemberKey,
    TrustRootFile,
)
from schemas.examples import EXAMPLES
from schemas.messages import (
    Body,
    coarse_kind,
    encode_body,
    priority_of,
    semantic_errors,
)

console = Console()
PASS = b"demo passphrase (temporary network)"


@dataclass
class Actor:
    """One country's keys and what it has seen."""

    id: str
    authority: str
    tz: str
    signing: SigningKey = field(default_factory=SigningKey.generate)
    encryption: EncryptionKey = field(default_factory=EncryptionKey.generate)
    transport: SigningKey = field(default_factory=SigningKey.generate)
    seq: dict[str, int] = field(default_factory=dict)

    def member(self, now: datetime) -> Member:
        start, end = now - timedelta(days=1), now + timedelta(days=730)
        keys = tuple(
            MemberKey(use=u, alg=a, public=k, not_before=start, not_after=end)
            for u, a, k in (
                (KeyUse.SIGNING, KeyAlg.ED25519, self.signing.public),
                (KeyUse.ENCRYPTION, KeyAlg.X25519, self.encryption.public),
                (KeyUse.TRANSPORT, KeyAlg.ED25519, self.transport.public),
            )
        )
        return Member(
            id=self.id,
            authority=self.authority,
            languages=("en", "fr"),
            time_zone=self.tz,
            keys=keys,
        )

    def next_seq(self, to: str) -> int:
        self.seq[to] = self.seq.get(to, 0) + 1
        return self.seq[to]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _step(text: str) -> None:
    console.print(f"  [green]✓[/green] {text}")


async def _run(keep: bool, workdir: Path) -> int:
    from relay._keyfile import create_keys
    from relay._logging import configure
    from relay.app import create_app, open_state, start_background, stop_background

    configure("warning", "console")  # the transcript is the output; relay logs only problems
    from relay.config import CONFIG_TEMPLATE, load_config

    t_start = time.perf_counter()
    now = datetime.now(UTC)
    fr = Actor("FR", "OFAC, Police nationale (24/7 point of contact)", "Europe/Paris")
    de = Actor("DE-BKA", "Bundeskriminalamt SO 4 (24/7 point of contact)", "Europe/Berlin")
    us = Actor("US", "DOJ CCIPS (24/7 point of contact)", "America/New_York")
    actors = {a.id: a for a in (fr, de, us)}

    console.rule("[bold]relay247 demo: an urgent Art. 29 preservation request, FR → DE")
    console.print(f"working directory: {workdir}")
    coordinators = [SigningKey.generate() for _ in range(3)]
    directory = Directory(
        network="demo-net",
        version=1,
        issued_at=now,
        coordinators=tuple(
            Coordinator(id=f"coord-{i}", public=k.public) for i, k in enumerate(coordinators)
        ),
        threshold=2,
        members=tuple(a.member(now) for a in actors.values()),
    )
    signed_dir = sign_directory(directory, coordinators[:2])
    trust = TrustRoot.of(directory)
    verified = verify_directory(signed_dir, trust, current=None, now=now)
    keys = KeyLookup(verified.directory)
    _step("network: 3 coordinators, directory v1 signed 2-of-3, members FR, DE-BKA, US")

    port = _free_port()
    rdir = workdir / "relay"
    rdir.mkdir(parents=True)
    (rdir / "trust.json").write_bytes(
        msgspec.json.encode(
            TrustRootFile(network="demo-net", coordinators=directory.coordinators, threshold=2)
        )
    )
    create_keys(rdir / "relay.keys", "demo-relay", PASS)
    (rdir / "relay.toml").write_text(
        CONFIG_TEMPLATE.format(
            relay_id="demo-relay",
            public_url=f"http://127.0.0.1:{port}",
            host="127.0.0.1",
            port=port,
            trust_root="trust.json",
        )
    )
    state = await open_state(load_config(rdir / "relay.toml"), PASS)
    from aiohttp import web

    runner = web.AppRunner(create_app(state), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    start_background(state)  # the relay signs checkpoints while the demo runs
    url = f"http://127.0.0.1:{port}"
    _step(f"relay listening on {url} (SQLite WAL, keys encrypted at rest)")
    try:
        async with aiohttp.ClientSession() as session:
            client = {a.id: RelayClient(url, a.transport, session) for a in actors.values()}
            pub = await client["FR"].publish_directory(signed_dir)
            _step(
                f"directory v{pub.version} published to the relay, audit-log leaf #{pub.leaf_index}"
            )
            info = await client["FR"].info()
            _step(f"relay log origin {info.log_origin!r}, log key {info.log_key[:40]}…")
            return await _exchange(actors, keys, client, state, t_start)
    finally:
        await runner.cleanup()
        await stop_background(state)
        await state.store.close()
        if keep:
            console.print(f"[yellow]--keep: data left in {workdir}[/yellow]")


async def _send(
    sender: Actor, to: Actor, body: Body, client: RelayClient, lifetime: timedelta
) -> tuple[str, int]:
    errors = semantic_errors(body)
    if errors:
        raise click.ClickException(f"invalid {body.__class__.__name__}: {errors}")
    msg_id = os.urandom(16).hex()
    sealed = seal_envelope(
        encode_body(body),
        msg_id=msg_id,
        case_id=body.case_id,
        kind=coarse_kind(body),
        priority=priority_of(body),
        seq=sender.next_seq(to.id),
        sender=sender.id,
        signing_key=sender.signing,
        recipient=to.id,
        recipient_key=to.encryption.public,
        recipient_key_fp=to.encryption.fingerprint,
        created=datetime.now(UTC),
        lifetime=lifetime,
    )
    res = await client.submit(sealed.envelope)
    return msg_id, res.leaf_index


async def _receive(me: Actor, keys: KeyLookup, client: RelayClient, count: int) -> list[Opened]:
    got: list[Opened] = []
    async for page in client.push():
        for item in page.messages:
            opened = open_envelope(
                item.envelope,
                keys,
                me=me.id,
                my_keys={me.encryption.fingerprint: me.encryption},
                now=datetime.now(UTC),
            )
            ack = make_ack(
                opened.header,
                opened.checked.envelope.header,
                signing_key=me.signing,
                acked_at=datetime.now(UTC),
            )
            res = await client.ack(ack)
            _step(
                f"{me.id}: opened {opened.header.kind.value} from {opened.header.sender} "
                f"(E1–E12 verified), delivery ack logged at leaf #{res.leaf_index}"
            )
            got.append(opened)
        if len(got) >= count:
            return got
    return got


async def _exchange(
    actors: dict[str, Actor],
    keys: KeyLookup,
    client: dict[str, RelayClient],
    state: object,
    t_start: float,
) -> int:
    fr, de = actors["FR"], actors["DE-BKA"]
    request = EXAMPLES["preservation_request"]
    console.rule("FR officer sends the request")
    de_inbox = asyncio.create_task(_receive(de, keys, client["DE-BKA"], 1))
    await asyncio.sleep(0.05)
    t0 = time.perf_counter()
    msg_id, leaf = await _send(fr, de, request, client["FR"], timedelta(days=3))
    _step(
        f"FR: preservation request {msg_id[:12]}… signed, sealed to DE-BKA, "
        f"accepted (202) at leaf #{leaf}"
    )
    [opened] = await asyncio.wait_for(de_inbox, 10)
    body = decode_opened(opened)  # E13: schema, semantic rules, agreement with header
    _step(f"DE-BKA: request decoded: {body.__class__.__name__}, case {body.case_id[:12]}…")
    receipt = make_receipt(opened, signing_key=de.signing, received_at=datetime.now(UTC))
    fr_inbox = asyncio.create_task(_receive(fr, keys, client["FR"], 3))
    sealed = seal_envelope(
        receipt,
        msg_id=os.urandom(16).hex(),
        case_id=opened.header.case_id,
        kind=CoarseKind.RECEIPT,
        priority=Priority.URGENT,
        seq=de.next_seq("FR"),
        sender=de.id,
        signing_key=de.signing,
        recipient="FR",
        recipient_key=fr.encryption.public,
        recipient_key_fp=fr.encryption.fingerprint,
        created=datetime.now(UTC),
        lifetime=timedelta(days=3),
    )
    await client["DE-BKA"].submit(sealed.envelope)
    _step("DE-BKA node: signed delivery receipt sent back automatically")
    console.rule("DE-BKA officer answers")
    for kind in ("taken_in_charge", "preserved"):
        reply = EXAMPLES[kind]
        _, leaf = await _send(de, fr, reply, client["DE-BKA"], timedelta(days=3))
        _step(f"DE-BKA: {kind} sent, accepted at leaf #{leaf}")
    got = await asyncio.wait_for(fr_inbox, 10)
    elapsed_receipt = None
    table = Table(title="FR case timeline", show_lines=False)
    for col in ("message", "from", "what", "verified"):
        table.add_column(col)
    table.add_row(msg_id[:12], "FR", "preservation_request (urgent)", "sent, 202")
    for o in got:
        if o.header.kind is CoarseKind.RECEIPT:
            r = verify_receipt(o.body, keys)
            elapsed_receipt = time.perf_counter() - t0
            table.add_row(
                o.header.msg_id[:12],
                o.header.sender,
                f"delivery receipt: {r.status.value} at {r.received_at:%H:%M:%S}Z",
                "receipt signature ✓",
            )
        else:
            b = decode_opened(o)
            detail = b.__class__.__name__
            until = getattr(b, "preserved_until", None)
            if until is not None:
                detail += f" until {until:%Y-%m-%d}"
            table.add_row(o.header.msg_id[:12], o.header.sender, detail, "signatures + binding ✓")
    console.print(table)
    from relay._state import RelayState

    assert isinstance(state, RelayState)
    size = await state.store.tree_size()
    entries = await state.store.leaf_entries(0, size)
    stored_root = await state.store.root(size)
    ok = stored_root == root([leaf_hash(e) for e in entries])
    _step(
        f"audit log: {size} leaves, root {stored_root.hex()[:16]}…, "
        f"recomputed from entries: {'match' if ok else 'MISMATCH'}"
    )
    if elapsed_receipt is not None:
        _step(f"send → signed receipt back at FR: {elapsed_receipt * 1000:.0f} ms")
    console.print(
        f"[bold green]demo finished in {time.perf_counter() - t_start:.1f} s[/bold green]"
    )
    return 0 if ok else 1


@click.command("demo")
@click.option("--keep", is_flag=True, help="Leave the data directory in place for exploring.")
def demo(keep: bool) -> None:
    """Run a relay and three country nodes exchanging a preservation request."""
    workdir = Path(tempfile.mkdtemp(prefix="relay247-demo-"))
    try:
        code = asyncio.run(_run(keep, workdir))
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    raise SystemExit(code)
