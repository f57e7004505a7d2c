"""A network of real processes holding a real-size log, for the scale test and bench.

Built the way OPERATIONS.md says, with the `relay247` commands: `network init`, `node init`
for FR, US, DE and IT, `network add-member`, `relay init`, `relay serve`, `network
publish`. FR and US run `relay247 node serve` and witness the relay's log; DE and IT
have no node running: this module speaks for them.

Filling the log quickly and honestly: while the relay is stopped, real sealed envelopes
(signed by the member's own key file, sealed to the recipient's published key) and real
signed acks are written through the relay's own store API (``relay.app.make_store``,
``Store.accept`` and ``Store.ack``, group-committed), with exactly the audit-log entries
the relay's handlers write (``EnvelopeAccepted`` / ``DeliveryAcked``). The relay then
restarts on that database, signs checkpoints, the witnesses cosign them, and the
auditor's tool checks every signature of every entry: nothing in the log is trusted
because of how it was written. What this skips is only the HTTP round trip per envelope
(timed by bench_relay).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from cli._demo_procs import Children, free_port, set_toml
from node.keyfile import NodeKeys, load_keys
from protocol.codec import encode
from protocol.cosignature import cosignature_verifier_key
from protocol.envelope import Sealed, seal_envelope
from protocol.receipt import make_ack
from relay.app import make_store
from relay.config import load_config
from relay.http._envelopes import submission
from schemas._bodies_request import PreservationRequest
from schemas.audit import DeliveryAcked
from schemas.envelope import Envelope, SignedAck
from schemas.examples import EXAMPLES
from schemas.messages import coarse_kind, encode_body, priority_of
from schemas.types import CoarseKind, Priority

PASS = "scale test passphrase"
MEMBERS = ("FR", "US", "DE", "IT")
WITNESSES = ("FR", "US")
WAIT = 120.0  # seconds: bound for other processes on a loaded 2-core CI box
_ENVELOPE = msgspec.json.Decoder(Envelope)
_ACK = msgspec.json.Decoder(SignedAck)


@dataclass(frozen=True)
class Plan:
    """What to write into the log.

    Attributes:
        bulk: envelopes DE -> IT, each acked by IT (two log entries each).
        inbox: preservation requests DE -> US, each in its own case, that US's node
            processes (verifies, stores, answers with a signed receipt).
        body: plaintext bytes of a bulk envelope.
        big_every: every this many bulk envelopes, one close to the relay's largest body.
        big_body: plaintext bytes of those (their envelope is ~97 % of max_body_bytes).
    """

    bulk: int
    inbox: int
    body: int = 8 * 1024
    big_every: int = 250
    big_body: int = 1_530_000


@dataclass
class Filled:
    """What :func:`ScaleNet.fill` wrote and how long it took."""

    entries: int = 0
    envelope_bytes: int = 0
    largest: int = 0
    seconds: float = 0.0


def _wait(cond: object, what: str, limit: float = WAIT) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if callable(cond) and cond():
            return
        time.sleep(0.1)  # polling other processes' state
    raise AssertionError(f"timed out after {limit:.0f} s waiting for {what}")


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return bytes(r.read())


def _healthy(url: str) -> bool:
    try:
        _get(url + "/healthz")
    except OSError:
        return False
    return True


@dataclass
class ScaleNet:
    """The network's directories, its processes, and the CLI commands run against it."""

    root: Path
    relay_kids: Children = field(default_factory=lambda: Children(PASS))
    node_kids: Children = field(default_factory=lambda: Children(PASS))
    url: str = ""
    log_key: str = ""
    keys: dict[str, NodeKeys] = field(default_factory=dict)

    def data(self, member: str) -> Path:
        return self.root / member.lower()

    @property
    def relay_config(self) -> Path:
        return self.root / "relay" / "relay.toml"

    def cli(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``relay247 ARGS`` in a subprocess, as an operator or auditor would."""
        done = subprocess.run(
            [sys.executable, "-m", "cli", *(str(a) for a in args)],
            capture_output=True,
            text=True,
            env={**self.relay_kids.env, "COLUMNS": "200"},
            check=False,
            timeout=WAIT,
        )
        if check:
            assert done.returncode == 0, f"relay247 {args[:2]}: {done.stderr}{done.stdout}"
        return done

    # -- set up ----------------------------------------------------------------------

    def create(self) -> None:
        """The network, four members, the relay; the relay runs and has the directory."""
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        net, trust = self.root / "net", self.root / "net" / "trust.json"
        self.cli("network", "init", "--dir", net, "--name", "scale-net")

        # The four inits side by side: each spends most of its time in Argon2id.
        def init(member: str) -> subprocess.Popen[bytes]:
            args = ["node", "init", "--member", member, "--data", str(self.data(member)),
                    "--authority", f"24/7 point {member}", "--languages", "en",
                    "--relay", self.url, "--trust-root", str(trust)]  # fmt: skip
            return subprocess.Popen(
                [sys.executable, "-m", "cli", *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self.relay_kids.env,
            )

        inits = [init(member) for member in MEMBERS]
        for proc in inits:
            out, _ = proc.communicate(timeout=WAIT)
            assert proc.returncode == 0, out.decode(errors="replace")
        for member in MEMBERS:
            set_toml(self.data(member) / "node.toml", "api", "port", "0")
            self.cli("network", "add-member", "--dir", net, self.data(member) / "member.json")
        self.cli("relay", "init", "--data", self.root / "relay", "--id", "scale-relay",
                 "--public-url", self.url, "--port", str(port), "--trust-root", trust)  # fmt: skip
        set_toml(self.relay_config, "audit", "checkpoint_interval", "1.0")
        self.start_relay()
        self.cli("network", "publish", "--dir", net, "--relay", self.url)
        self.log_key = json.loads(_get(self.url + "/v1/info"))["log_key"]
        for member in MEMBERS:
            self.keys[member] = load_keys(self.data(member) / "node.keys", PASS.encode())

    def start_relay(self) -> None:
        cfg = self.relay_config
        self.relay_kids.start("relay", ["relay", "serve", "--config", str(cfg)],
                              self.root / "relay.log")  # fmt: skip
        _wait(lambda: _healthy(self.url), "the relay")

    def stop_relay(self) -> None:
        codes = self.relay_kids.stop_all()
        assert codes == [("relay", 0)], codes

    def start_witnesses(self) -> None:
        """FR's and US's nodes: each witnesses the log and processes its inbox."""
        for member in WITNESSES:
            cfg = self.data(member) / "node.toml"
            set_toml(cfg, "witness", "log_key", json.dumps(self.log_key))
            set_toml(cfg, "witness", "interval", "1.0")
            log = self.data(member) / "node.log"
            self.node_kids.start(member, ["node", "serve", "--config", str(cfg)], log)

    def stop(self) -> None:
        self.node_kids.stop_all()
        self.relay_kids.stop_all()

    def witness_file(self) -> Path:
        """The auditor's --witnesses file: the witnesses' cosignature verifier keys."""
        path = self.root / "witnesses.txt"
        lines = [cosignature_verifier_key(m, self.keys[m].signing.public) for m in WITNESSES]
        path.write_text("\n".join(lines) + "\n")
        return path

    # -- filling the log -----------------------------------------------------------

    def _seal(
        self,
        frm: str,
        to: str,
        body: bytes,
        seq: int,
        case_id: str,
        kind: CoarseKind = CoarseKind.REQUEST,
        priority: Priority = Priority.URGENT,
    ) -> Sealed:
        r = self.keys[to]
        return seal_envelope(
            body,
            msg_id=os.urandom(16).hex(),
            case_id=case_id,
            kind=kind,
            priority=priority,
            seq=seq,
            sender=frm,
            signing_key=self.keys[frm].signing,
            recipient=to,
            recipient_key=r.encryption.public,
            recipient_key_fp=r.encryption.fingerprint,
            created=datetime.now(UTC),
            lifetime=timedelta(hours=2),
        )

    async def fill(self, plan: Plan) -> Filled:
        """Write ``plan`` into the stopped relay's store (see the module docstring)."""
        config = load_config(self.relay_config)
        max_body = config.http.max_body_bytes
        store = make_store(config)
        await store.start()
        out = Filled()
        started = time.perf_counter()
        request = EXAMPLES["preservation_request"]
        assert isinstance(request, PreservationRequest)
        try:
            batch: list[tuple[Sealed, bool]] = []
            for i in range(plan.bulk):
                size = plan.big_body if (i + 1) % plan.big_every == 0 else plan.body
                body = hashlib.shake_256(b"%d" % i).digest(size)
                batch.append((self._seal("DE", "IT", body, i + 1, os.urandom(16).hex()), True))
                if len(batch) == 500:
                    await self._write(store, batch, out, max_body)
                    batch = []
            for i in range(plan.inbox):
                req = msgspec.structs.replace(
                    request,
                    case_id=os.urandom(16).hex(),
                    requested=msgspec.structs.replace(request.requested, member="US"),
                    requesting=msgspec.structs.replace(request.requesting, member="DE"),
                )
                sealed = self._seal(
                    "DE", "US", encode_body(req), i + 1, req.case_id,
                    coarse_kind(req), priority_of(req),
                )  # fmt: skip
                batch.append((sealed, False))
                if len(batch) == 500:
                    await self._write(store, batch, out, max_body)
                    batch = []
            await self._write(store, batch, out, max_body)
        finally:
            await store.close()
        out.seconds = time.perf_counter() - started
        return out

    async def _write(
        self, store: object, batch: list[tuple[Sealed, bool]], out: Filled, max_body: int
    ) -> None:
        from relay.storage import Store

        assert isinstance(store, Store)

        async def one(sealed: Sealed, acked: bool) -> None:
            env = sealed.envelope
            assert len(env) <= max_body  # what the relay would take (http.max_body_bytes)
            h = sealed.header
            # The handler's own construction (relay/http/_envelopes.py), minus the HTTP trip.
            await store.accept(submission(_ENVELOPE.decode(env), h, env, datetime.now(UTC)))
            out.entries += 1
            out.envelope_bytes += len(env)
            out.largest = max(out.largest, len(env))
            if acked:
                signed = _ACK.decode(
                    make_ack(
                        h,
                        sealed.header_bytes,
                        signing_key=self.keys[h.recipient].signing,
                        acked_at=datetime.now(UTC),
                    )
                )
                ack_entry = encode(
                    DeliveryAcked(received_at=datetime.now(UTC), ack=signed.ack, sig=signed.sig)
                )
                await store.ack(h.recipient, h.sender, h.msg_id, ack_entry)
                out.entries += 1

        await asyncio.gather(*(one(s, a) for s, a in batch))

    # -- what the test and the bench read ------------------------------------------

    def node_status(self, member: str) -> dict[str, object]:
        """GET /v1/status of a running node's API ({} while it does not answer).

        Polled often, so over HTTP rather than a `relay247 node status` process each time.
        """
        data = self.data(member)
        try:
            port = (data / "api.port").read_text().strip()
            token = (data / "api.token").read_text().strip()
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/status", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(req, timeout=10) as r:
                return dict(json.loads(r.read()))
        except OSError:
            return {}

    def cosigned_size(self) -> tuple[int, int]:
        """(size of the relay's latest checkpoint, how many witnesses cosigned it)."""
        note = _get(self.url + "/v1/audit/checkpoint").decode()
        size = int(note.split("\n")[1])
        cosigners = sum(1 for m in WITNESSES if f"\n\u2014 {m} " in note)
        return size, cosigners

    def settle(self, inbox: int, quiet: float = 3.0) -> int:
        """Wait until US processed ``inbox`` messages and the log's checkpoint is cosigned.

        The log is quiet once its cosigned checkpoint has not moved for ``quiet`` seconds
        (the relay signs a new one within a second of any growth).

        Returns:
            The cosigned checkpoint's size.
        """

        def processed() -> bool:
            self.node_kids.check_alive()
            st = self.node_status("US")
            return bool(st) and st["messages_in"] == inbox and st["outbox_pending"] == 0

        _wait(processed, f"US's node to process {inbox} messages and send its receipts")
        seen: dict[int, float] = {}

        def quiet_and_cosigned() -> bool:
            size, cosigners = self.cosigned_size()
            first = seen.setdefault(size, time.monotonic())
            return cosigners == len(WITNESSES) and time.monotonic() - first >= quiet

        _wait(quiet_and_cosigned, "a cosigned checkpoint of the whole, quiet log")
        return self.cosigned_size()[0]

    def audit_verify(self, state: Path) -> subprocess.CompletedProcess[str]:
        """`relay247 audit verify` exactly as OPERATIONS.md ("Auditing a relay") gives it."""
        return self.cli(
            "audit", "verify", "--relay", self.url, "--log-key", self.log_key,
            "--witnesses", self.witness_file(), "--quorum", "2", "--state", state,
            "--trust-root", self.root / "net" / "trust.json", check=False,
        )  # fmt: skip
