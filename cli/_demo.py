"""``relay247 demo``: a relay and three country nodes, each its own process, handle a request.

Every step is the real software: the network is made with ``relay247 network``, the
members with ``relay247 node init`` (encrypted keystores), the relay and the nodes run
as ``relay247 relay serve`` / ``relay247 node serve`` on free loopback ports, and the
officers act through the nodes' local API, as a case-management system would. The
auditor's verification and the evidence bundle check are ``relay247 audit`` runs.

Every process the demo starts is stopped when it ends, fails or is interrupted
(SIGTERM, then SIGKILL after a grace period), unless ``--keep`` is given and it succeeded.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import aiohttp
import click

from cli import _demo_audit as da
from cli import _node_client as ncl
from cli import _node_render as nr
from cli._demo_bodies import COUNTRIES, HOST, US_OFFICER, fr_request, preserved, taken_in_charge
from cli._demo_console import Login, add_officers, logins
from cli._demo_procs import Children, DemoError, free_port, set_toml, until
from cli._demo_text import Transcript, explore
from cli._program import program
from client import PublicClient
from node.api import NodeApiClient
from node.render import format_time, render_body, until_text
from protocol.errors import PeerError, Relay247Error
from schemas.errors import ErrorCode
from schemas.node_api import CaseDetail, TimelineEntry

PASSPHRASE = "demo passphrase (temporary network)"  # noqa: S105  # throwaway keys
WITNESS_WAIT = 15.0  # seconds for the nodes' witness duty to cosign the final checkpoint


class Demo:
    """One run of the demo in the working directory ``home``."""

    def __init__(self, home: Path, t: Transcript) -> None:
        self.home = home
        self.t = t
        self.kids = Children(PASSPHRASE)
        self.net = home / "network"
        self.url = ""
        self.api: dict[str, NodeApiClient] = {}
        self.session: aiohttp.ClientSession  # set by main()
        self.origin = self.log_key = ""
        self.creds: dict[str, dict[str, str]] = {}
        self.consoles: list[Login] = []

    def data(self, member: str) -> Path:
        """The data directory of a member's node."""
        return self.home / member.lower()

    async def run(self, args: list[str | Path], *, show: bool = True) -> str:
        """Run a ``relay247`` command (and show it)."""
        if show:
            self.t.cmd(args)
        return await self.kids.run(args)

    # -- 1. the network --------------------------------------------------------------

    async def setup(self) -> None:
        """Coordinators, three members, the relay and the three nodes, all started."""
        t, trust = self.t, self.net / "trust.json"
        t.part("1. A network of three 24/7 points of contact: FR, US, DE")
        await self.run(["network", "init", "--dir", self.net, "--name", "demo-net",
                        "--coordinators", "3", "--threshold", "2"])  # fmt: skip
        t.ok("3 coordinators created; any 2 of them together sign the list of members")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        inits = []
        for c in COUNTRIES:
            args: list[str | Path] = [
                "node", "init", "--member", c.member, "--data", self.data(c.member),
                "--authority", c.authority, "--languages", c.languages,
                "--time-zone", c.time_zone, "--relay", self.url, "--trust-root", trust,
            ]  # fmt: skip
            inits.append(self.run(args, show=c.member == "FR"))
        await asyncio.gather(*inits)
        for c in COUNTRIES:
            # Three nodes on one machine: each API takes a free port (written to api.port).
            set_toml(self.data(c.member) / "node.toml", "api", "port", "0")
        t.ok("FR, US and DE each created their own keys, kept encrypted under a passphrase")
        await self.run(["relay", "init", "--data", self.home / "relay", "--id", "demo-relay",
                        "--public-url", self.url, "--port", str(port),
                        "--trust-root", trust])  # fmt: skip
        # Sign checkpoints every half second so the demo need not wait for the default 5 s.
        set_toml(self.home / "relay" / "relay.toml", "audit", "checkpoint_interval", "0.5")
        for i, c in enumerate(COUNTRIES):
            member = self.data(c.member) / "member.json"
            await self.run(["network", "add-member", "--dir", self.net, member], show=i == 0)
        t.ok("the coordinators enrolled FR, US and DE (public keys, authority, time zone)")
        await self._start_relay()
        out = await self.run(["network", "publish", "--dir", self.net, "--relay", self.url,
                              "--json"])  # fmt: skip
        leaf = json.loads(out)["leaf_index"]
        t.ok(f"directory version 1 signed by 2 of the 3 coordinators and published; the relay "
             f"recorded it in its audit log at position #{leaf}")  # fmt: skip
        info = await PublicClient(self.url, self.session).info()
        self.origin, self.log_key = info.log_origin, info.log_key
        for c in COUNTRIES:
            # Each node witnesses the relay's log: pin its key, cosign every second.
            toml = self.data(c.member) / "node.toml"
            set_toml(toml, "witness", "log_key", json.dumps(self.log_key))
            set_toml(toml, "witness", "interval", "1.0")
        zones = {c.member: c.time_zone for c in COUNTRIES}
        self.creds = await add_officers(self, zones)
        t.ok("each node has an officer account: password (Argon2id) and a TOTP second factor")
        await self._start_nodes()
        self.consoles = await logins(self, self.creds)

    async def _start_relay(self) -> None:
        cfg = self.home / "relay" / "relay.toml"
        args: list[str | Path] = ["relay", "serve", "--config", cfg]
        self.t.cmd(args)
        server = self.kids.start("relay", [str(a) for a in args], cfg.parent / "relay.log")

        async def healthy() -> bool:
            try:
                async with aiohttp.ClientSession() as s, s.get(self.url + "/healthz") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        await until(healthy, "the relay to start", self.kids)
        self.t.ok(f"relay running at {self.url} (process {server.proc.pid}); it stores and "
                  "forwards messages but cannot read them")  # fmt: skip

    async def _start_nodes(self) -> None:
        pids = []
        for c in COUNTRIES:
            cfg = self.data(c.member) / "node.toml"
            args: list[str | Path] = ["node", "serve", "--config", cfg]
            if c.member == "FR":
                self.t.cmd(args)
            server = self.kids.start(
                f"node {c.member}", [str(a) for a in args], cfg.parent / "node.log"
            )
            pids.append(f"{c.member} {server.proc.pid}")
        session = self.session

        for c in COUNTRIES:

            async def ready(member: str = c.member) -> bool:
                try:
                    client = NodeApiClient.from_data_dir(self.data(member), session)
                    status = await client.status()
                except Relay247Error:
                    return False
                self.api[member] = client
                return status.directory_version is not None

            await until(ready, f"node {c.member} to start", self.kids, limit=30)
        self.t.ok(f"nodes running (processes {', '.join(pids)}); each checked the coordinators' "
                  "signatures on the directory before using it")  # fmt: skip

    # -- 2. and 3. the exchange --------------------------------------------------------

    async def _case(self, member: str, case_id: str) -> CaseDetail | None:
        try:
            return await self.api[member].case(case_id)
        except PeerError as exc:
            if exc.code is ErrorCode.NOT_FOUND:
                return None
            raise

    async def _entry(self, member: str, case_id: str, msg_id: str) -> TimelineEntry | None:
        case = await self._case(member, case_id)
        if case is None:
            return None
        return next((e for e in case.timeline if e.msg_id == msg_id), None)

    async def _wait_entry(
        self, member: str, case_id: str, msg_id: str, what: str, *, receipt: bool = False
    ) -> TimelineEntry:
        found: list[TimelineEntry] = []

        async def check() -> bool:
            e = await self._entry(member, case_id, msg_id)
            if e is None or (receipt and e.receipt is None):
                return False
            if e.direction == "out" and e.leaf_index is None:
                return False
            found.append(e)
            return True

        await until(check, what, self.kids)
        return found[-1]

    async def exchange(self) -> str:
        """FR asks, US's node receipts, the US officer answers twice; returns the case id."""
        t = self.t
        t.part("2. France asks the US to preserve data, urgently (Art. 29)")
        request = fr_request(now=_now())
        sent = await self.api["FR"].send("US", request)
        case = sent.case_id
        officer = request.requesting.officer.name
        n = len(request.data.identifiers)
        t.ok(
            f"FR's officer ({officer}) sends request {request.sender_ref}: keep the data of "
            f"{n} identifiers (domain, URL, mailbox, IP addresses) held by {HOST.name}"
        )
        out = await self._wait_entry("FR", case, sent.msg_id, "FR's request to reach the relay")
        t.ok(
            "FR's node signed it, sealed it so that only US can read it, and handed it to "
            f"the relay, which recorded it in its audit log at position #{out.leaf_index}"
        )
        got = await self._wait_entry("US", case, sent.msg_id, "US's node to receive the request")
        status = nr.status_word(got.status, got.direction, "en")
        t.ok(f"US's node received it and ran the 13 opening checks (steps E1-E13 of "
             f"docs/PROTOCOL.md §4.4: size, both of FR's signatures, FR's keys in the signed "
             f"directory, not expired, not a replay, addressed and sealed to US, the "
             f"content unchanged and well-formed), then stored it: {status}")  # fmt: skip
        out = await self._wait_entry("FR", case, sent.msg_id, "US's receipt", receipt=True)
        assert out.receipt is not None  # _wait_entry waited for it
        when = format_time(out.receipt.received_at, ncl.node_zone(self.data("FR")))
        t.ok(
            "US's node sent back a signed delivery receipt on its own; FR's node verified "
            f"its signature: {nr.receipt_word(out.receipt.status, 'en')} at {when}"
        )
        t.part("3. The US officer on duty answers")
        kept = preserved(request, sent.msg_id, _now())
        answers = (
            ("taken in charge", taken_in_charge(request, sent.msg_id)),
            ("data preserved", kept),
        )
        for label, body in answers:
            res = await self.api["US"].send("FR", body)
            e = await self._wait_entry(
                "US", case, res.msg_id, f"FR's receipt ({label})", receipt=True
            )
            await self._wait_entry("FR", case, res.msg_id, f"FR to store '{label}'")
            assert e.receipt is not None
            word = nr.receipt_word(e.receipt.status, "en")
            t.ok(f"US: {label} ({body.sender_ref}), audit log #{e.leaf_index}; FR's node verified "
                 f"it and sent a signed receipt: {word}")  # fmt: skip
        until = until_text(kept.preserved_until, "en", ncl.node_zone(self.data("FR")))
        t.ok(f"{US_OFFICER.name} confirms: preserved until {until}")
        return case

    async def show_case(self, case_id: str) -> None:
        """FR's timeline of the case, as `relay247 node show` prints it."""
        self.t.part("4. The case as France sees it")
        self.t.cmd(["node", "show", case_id[:12], "--data", self.data("FR")])
        detail = await self.api["FR"].case(case_id)
        tz = ncl.node_zone(self.data("FR"))
        nr.print_case(detail, "en", brief=True, out=self.t.out, tz=tz)
        last = next(e for e in reversed(detail.timeline) if e.kind == "preserved")
        if last.body is not None:
            for label, value in nr.body_lines(render_body(last.body, "en", tz)[1:]):
                self.t.out.print(f"    {label}{value}", markup=False)

    # -- 5. independent checks ---------------------------------------------------------

    async def audit(self, case_id: str) -> None:
        """Cosigned checkpoint, the auditor's run, the evidence bundle checked offline."""
        t = self.t
        t.part("5. Independent checks: audit log, auditor, evidence bundle")
        t.ok("the witnesses are the three national nodes FR, US and DE: each checks that the "
             "relay's log only ever grows and cosigns its checkpoints, so the relay cannot "
             "show one history to one country and another to the next")  # fmt: skip
        relay, origin, log_key = PublicClient(self.url, self.session), self.origin, self.log_key
        wfile = self.home / "witnesses.txt"
        members = [self.data(c.member) / "member.json" for c in COUNTRIES]
        keys = da.witness_keys(members)
        trust = self.net / "trust.json"
        # The auditor's witnesses file, from the signed directory checked against trust.json.
        wfile.write_text(await self.run(["audit", "witnesses", "--trust-root", trust,
                                         "--directory", self.net / "directory-1.json"],
                                        show=False))  # fmt: skip
        t.cmd(["audit", "witnesses", "--trust-root", trust, "--directory",
               self.net / "directory-1.json"], out=wfile)  # fmt: skip
        cos = await da.wait_cosigned(relay, log_key, origin, keys, self.kids, limit=WITNESS_WAIT)
        if cos is None:  # fail closed: the auditor would refuse it too
            raise DemoError("no checkpoint was cosigned by 2 of the 3 nodes within the time")
        cp = cos.checkpoint
        names = ", ".join(cos.witnesses)
        t.ok(
            f"checkpoint: the relay signed that its log holds {cp.size} entries with root "
            f"hash {cp.root_hash.hex()[:16]}…, cosigned by the witnesses {names}"
        )
        out = await self.run(["audit", "verify", "--relay", self.url, "--log-key", log_key,
                              "--witnesses", wfile, "--quorum", str(da.QUORUM),
                              "--state", self.home / "auditor",
                              "--trust-root", self.net / "trust.json"])  # fmt: skip
        t.block(out)
        t.ok("auditor: every entry re-verified and the log's root recomputed; it matches")
        bundle = self.home / f"case-{case_id[:12]}.json"
        self.t.cmd(
            ["node", "export-case", case_id[:12], "--out", bundle, "--data", self.data("FR")]
        )
        bundle.write_bytes(await self._export(case_id))
        t.ok(f"FR exported the case as an evidence bundle ({bundle.stat().st_size:,} bytes)")
        out = await self.run(["audit", "verify-bundle", bundle, "--trust-root",
                              self.net / "trust.json", "--log-key", log_key, "--witnesses",
                              wfile, "--quorum", str(da.QUORUM)])  # fmt: skip
        t.block(out)
        t.ok("the bundle verifies offline: anyone holding it can check every signature above")

    async def _export(self, case_id: str) -> bytes:
        data: list[bytes] = []

        async def check() -> bool:
            try:
                data.append(await self.api["FR"].export_case(case_id))
            except PeerError as exc:
                if exc.code is ErrorCode.UNAVAILABLE:  # checkpoint not covering it yet
                    return False
                raise
            return True

        await until(check, "the evidence bundle", self.kids)
        return data[-1]

    async def main(self) -> str:
        """The whole story; returns the case id."""
        async with aiohttp.ClientSession() as session:
            self.session = session
            await self.setup()
            case = await self.exchange()
            await self.show_case(case)
            await self.audit(case)
        return case


def _now() -> datetime:
    return datetime.now(UTC)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM is handled like Ctrl-C, so that the cleanup below always runs.
    raise KeyboardInterrupt


@click.command("demo")
@click.option(
    "--keep", is_flag=True, help="Leave the network running and its files in place, to explore."
)
def demo(keep: bool) -> None:
    """Run a relay and three country nodes exchanging a preservation request."""
    home = Path(tempfile.mkdtemp(prefix="relay247-demo-"))
    t = Transcript(home)
    d = Demo(home, t)
    started = time.monotonic()
    case: str | None = None
    previous = signal.signal(signal.SIGTERM, _interrupt)
    t.out.print(f"relay247 demo - working directory $DEMO = {home}", markup=False)
    try:
        case = asyncio.run(d.main())
    except KeyboardInterrupt:
        t.out.print("[red]interrupted[/red]")
        raise SystemExit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        _finish(t, d, case, keep=keep)
    t.out.print(f"[bold green]demo finished in {time.monotonic() - started:.1f} s[/bold green]")


def _finish(t: Transcript, d: Demo, case: str | None, *, keep: bool) -> None:
    if case is not None and keep:
        explore(
            t, d.home, case, [s.proc.pid for s in d.kids.servers], d.log_key, consoles=d.consoles
        )
        return
    codes = d.kids.stop_all()
    if case is not None:
        clean = all(code == 0 for _, code in codes)
        t.ok("relay and nodes stopped" + (" cleanly" if clean else f": {codes}"))
    if keep:
        t.out.print(f"files kept in {d.home}", markup=False)
    else:
        shutil.rmtree(d.home, ignore_errors=True)
        t.out.print(
            f"the demo's files, the evidence bundle among them, were removed with {d.home}; "
            f"`{program()} demo --keep` keeps them and leaves the network running",
            markup=False,
            soft_wrap=True,
        )
