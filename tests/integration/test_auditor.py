"""The auditor's tool, the witness process and evidence bundles against a real relay.

Every tampering of issue 4 that the auditor side must catch is done to a real relay on
127.0.0.1 with a real SQLite file (tests/support/relay.py), and each is named.
"""

from __future__ import annotations

import asyncio
import base64
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner, Result

from audit.monitor import monitor
from audit.verify import AuditResult, Policy, read_witnesses, verify_log
from audit.witness import WitnessKeys, witness_round
from cli.main import cli
from client import PublicClient
from protocol.checkpoint import Checkpoint, sign_checkpoint
from protocol.codec import encode
from protocol.cosignature import cosignature_verifier_key
from protocol.envelope import check_header
from protocol.errors import NoteError
from protocol.keys import SigningKey
from protocol.keystore import lock
from protocol.note import Signer
from protocol.receipt import make_ack
from protocol.witness import ForkError
from relay.audit._checkpointer import sign_if_due
from relay.storage import StoredCheckpoint
from schemas.keystore import SecretKeys
from tests.support.network import make_network
from tests.support.relay import RunningRelay, envelope, running_relay

MEMBERS = ("FR", "US", "DE")


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[RunningRelay]:
    async with running_relay(tmp_path / "relay", make_network(MEMBERS)) as r:
        yield r


def keys(r: RunningRelay, member: str) -> WitnessKeys:
    m = r.net.members[member]
    return WitnessKeys(member, m.signing, m.transport)


def witness_file(r: RunningRelay, path: Path) -> Path:
    lines = [cosignature_verifier_key(m, r.net.members[m].signing.public) for m in MEMBERS]
    path.write_text("# the members' witness keys\n" + "\n".join(lines) + "\n")
    return path


def policy(r: RunningRelay, quorum: int = 2) -> Policy:
    lines = [cosignature_verifier_key(m, r.net.members[m].signing.public) for m in MEMBERS]
    return Policy(r.state.keys.log_key, read_witnesses("\n".join(lines)), quorum, r.net.root())


async def exchange(r: RunningRelay, n: int) -> None:
    """FR sends ``n`` envelopes to US; US pulls and acks them all."""
    for _ in range(n):
        await r.client("FR").submit(envelope(r.net, "FR", "US"))
    page = await r.client("US").mailbox()
    for item in page.messages:
        checked = check_header(item.envelope, r.net.lookup(), now=datetime.now(UTC))
        ack = make_ack(
            checked.header,
            checked.envelope.header,
            signing_key=r.net.members["US"].signing,
            acked_at=datetime.now(UTC),
        )
        await r.client("US").ack(ack)


async def checkpoint_and_cosign(r: RunningRelay, tmp: Path, *members: str) -> None:
    await sign_if_due(r.state, force=True)
    for m in members:
        done = await witness_round(
            r.client(m), keys(r, m), r.state.keys.log_key, tmp / f"w-{m}", now=datetime.now(UTC)
        )
        assert done.cosigned


async def audit(r: RunningRelay, state: Path, quorum: int = 2) -> AuditResult:
    client = PublicClient(r.url, r.session)
    return await verify_log(client, policy(r, quorum), state, now=datetime.now(UTC))


async def invoke(args: list[str]) -> Result:
    # The CLI runs its own event loop: give it a thread of its own.
    return await asyncio.to_thread(CliRunner().invoke, cli, args)


async def test_honest_relay_passes_incrementally_and_from_the_cli(
    relay: RunningRelay, tmp_path: Path
) -> None:
    await exchange(relay, 3)
    await checkpoint_and_cosign(relay, tmp_path, "FR", "US")
    first = await audit(relay, tmp_path / "state")
    assert first.anomalies == []
    assert first.counts["envelope_accepted"] == 3
    assert first.counts["delivery_acked"] == 3
    assert first.signatures == 7  # directory + 3 headers + 3 acks
    assert set(first.witnesses) == {"FR", "US"}
    await exchange(relay, 2)
    await checkpoint_and_cosign(relay, tmp_path, "FR", "US")
    second = await audit(relay, tmp_path / "state")
    assert second.anomalies == []
    assert (second.previous_size, second.size) == (first.size, first.size + 4)
    assert second.signatures == 4  # only the new entries were downloaded and checked
    await exchange(relay, 1)
    await checkpoint_and_cosign(relay, tmp_path, "FR", "US")
    trust = tmp_path / "trust.json"
    trust.write_bytes((tmp_path / "relay" / "trust.json").read_bytes())
    result = await invoke(
        [
            "audit",
            "verify",
            "--relay",
            relay.url,
            "--log-key",
            relay.state.keys.log_key,
            "--witnesses",
            str(witness_file(relay, tmp_path / "w.txt")),
            "--quorum",
            "2",
            "--state",
            str(tmp_path / "state"),
            "--trust-root",
            str(trust),
        ]
    )
    assert result.exit_code == 0, result.output
    assert "verified" in result.output
    rounds: list[AuditResult] = []
    last = await monitor(
        PublicClient(relay.url, relay.session),
        policy(relay),
        tmp_path / "state",
        interval=0.01,
        report=rounds.append,
        runs=2,
    )
    assert last.ok
    assert len(rounds) == 2


async def test_checkpoint_signed_with_the_wrong_key_is_named(
    relay: RunningRelay, tmp_path: Path
) -> None:
    await exchange(relay, 1)
    cp = await sign_if_due(relay.state, force=True)
    assert cp is not None
    wrong = Signer(relay.state.log_origin, SigningKey(bytes(32)))
    note = sign_checkpoint(Checkpoint(relay.state.log_origin, cp.size, cp.root), wrong)
    relay.state.audit.latest = StoredCheckpoint(cp.size, cp.root, note)
    result = await audit(relay, tmp_path / "state")
    assert result.anomalies == ["checkpoint: note has no signature from a known key"]
    assert not (tmp_path / "state").exists()


async def test_forged_cosignature_is_named(relay: RunningRelay, tmp_path: Path) -> None:
    await exchange(relay, 1)
    await checkpoint_and_cosign(relay, tmp_path, "FR", "US")
    line = relay.state.audit.cosignatures["FR"]
    name, b64 = line.rstrip(b"\n").rsplit(b" ", 1)
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    relay.state.audit.cosignatures["FR"] = name + b" " + base64.b64encode(bytes(raw)) + b"\n"
    result = await audit(relay, tmp_path / "state")
    assert result.anomalies == ["checkpoint: note signature does not verify (key FR)"]


async def test_replayed_cosignature_is_named(relay: RunningRelay, tmp_path: Path) -> None:
    await exchange(relay, 1)
    await checkpoint_and_cosign(relay, tmp_path, "FR", "US")
    old = dict(relay.state.audit.cosignatures)
    await exchange(relay, 1)
    await sign_if_due(relay.state, force=True)
    relay.state.audit.cosignatures.update(old)  # last checkpoint's lines on the new one
    result = await audit(relay, tmp_path / "state")
    assert result.anomalies[0].startswith("checkpoint: note signature does not verify (key ")


async def test_too_few_cosignatures_are_named(relay: RunningRelay, tmp_path: Path) -> None:
    await exchange(relay, 1)
    await checkpoint_and_cosign(relay, tmp_path, "FR")
    result = await audit(relay, tmp_path / "state", quorum=2)
    assert result.anomalies == ["checkpoint: too few witness cosignatures (1 of 2)"]


async def test_witness_refuses_a_forked_checkpoint_and_keeps_both(
    relay: RunningRelay, tmp_path: Path
) -> None:
    await exchange(relay, 2)
    await checkpoint_and_cosign(relay, tmp_path, "FR")
    cp = relay.state.audit.latest
    assert cp is not None
    # The relay shows FR another tree of the same size, signed with its real log key.
    forked = sign_checkpoint(
        Checkpoint(relay.state.log_origin, cp.size, bytes(32)), relay.state.keys.log_signer
    )
    relay.state.audit.latest, relay.state.audit.cosignatures = (
        StoredCheckpoint(cp.size, bytes(32), forked),
        {},
    )
    with pytest.raises(ForkError, match="two different root hashes") as info:
        await witness_round(
            relay.client("FR"),
            keys(relay, "FR"),
            relay.state.keys.log_key,
            tmp_path / "w-FR",
            now=datetime.now(UTC),
        )
    kept = Path(info.value.detail.rsplit(" ", 1)[1])
    evidence = msgspec.json.decode(await asyncio.to_thread(kept.read_bytes))
    assert evidence["held"].encode() == cp.note
    assert evidence["shown"].encode() == forked


async def test_witness_refuses_an_inconsistent_newer_checkpoint(
    relay: RunningRelay, tmp_path: Path
) -> None:
    await exchange(relay, 2)
    await checkpoint_and_cosign(relay, tmp_path, "US")
    await exchange(relay, 1)
    size = await relay.state.store.tree_size()
    bogus = sign_checkpoint(
        Checkpoint(relay.state.log_origin, size, bytes(32)), relay.state.keys.log_signer
    )
    relay.state.audit.latest = StoredCheckpoint(size, bytes(32), bogus)
    with pytest.raises(ForkError, match="is not consistent with size"):
        await witness_round(
            relay.client("US"),
            keys(relay, "US"),
            relay.state.keys.log_key,
            tmp_path / "w-US",
            now=datetime.now(UTC),
        )
    assert list((tmp_path / "w-US").glob("fork-*.json"))


async def test_auditor_refuses_a_truncated_log(relay: RunningRelay, tmp_path: Path) -> None:
    await exchange(relay, 1)
    await checkpoint_and_cosign(relay, tmp_path, "FR", "US")
    old, old_cosigs = relay.state.audit.latest, dict(relay.state.audit.cosignatures)
    await exchange(relay, 2)
    await checkpoint_and_cosign(relay, tmp_path, "FR", "US")
    assert (await audit(relay, tmp_path / "state")).ok
    assert old is not None
    relay.state.audit.latest, relay.state.audit.cosignatures = old, old_cosigs
    result = await audit(relay, tmp_path / "state")
    assert len(result.anomalies) == 1
    assert "is smaller than the size" in result.anomalies[0]
    assert list((tmp_path / "state").glob("fork-*.json"))


async def test_an_edited_entry_is_named(relay: RunningRelay, tmp_path: Path) -> None:
    await exchange(relay, 2)
    await checkpoint_and_cosign(relay, tmp_path, "FR", "US")
    db = relay.state.config.path(relay.state.config.storage.sqlite_path)
    with sqlite3.connect(db) as conn:
        (entry,) = conn.execute("SELECT entry FROM leaves WHERE idx = 2").fetchone()
        obj = msgspec.json.decode(entry)
        obj["received_at"] = "2026-01-01T00:00:00Z"
        conn.execute("UPDATE leaves SET entry = ? WHERE idx = 2", (msgspec.json.encode(obj),))
    result = await audit(relay, tmp_path / "state")
    assert result.anomalies[0].startswith("recomputed root ")
    assert result.anomalies[1] == (
        "entry 2 (entry): altered: its bytes do not hash to the leaf the signed checkpoint holds"
    )
    assert not (tmp_path / "state").exists()


async def test_standalone_witness_from_the_cli(relay: RunningRelay, tmp_path: Path) -> None:
    await exchange(relay, 1)
    await sign_if_due(relay.state, force=True)
    m = relay.net.members["DE"]
    secrets = SecretKeys(
        owner="DE", keys={"signing": m.signing.seed, "transport": m.transport.seed}
    )
    keyfile = tmp_path / "de.keys"
    keyfile.write_bytes(
        lock(secrets, b"pw", salt=bytes(16), nonce=bytes(24), opslimit=1, memlimit=8192)
    )
    (tmp_path / "pw").write_text("pw\n")
    result = await invoke(
        [
            "audit",
            "witness",
            "--relay",
            relay.url,
            "--log-key",
            relay.state.keys.log_key,
            "--keys",
            str(keyfile),
            "--passphrase-file",
            str(tmp_path / "pw"),
            "--state",
            str(tmp_path / "w"),
            "--once",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "cosigned (1 witness(es))" in result.output
    assert set(relay.state.audit.cosignatures) == {"DE"}


async def test_witness_file_errors_are_named() -> None:
    with pytest.raises(NoteError, match="lists no witness key"):
        read_witnesses("# nothing\n")
    with pytest.raises(NoteError, match="not a JSON list"):
        read_witnesses("[1, 2")
    assert len(read_witnesses(encode([cosignature_verifier_key("FR", bytes(32))]).decode())) == 1


async def test_an_unreachable_relay_is_named_with_its_address(tmp_path: Path) -> None:
    # Before: "Error: relay unreachable", whatever the address given.
    from cli._demo_procs import free_port

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    witnesses = tmp_path / "witnesses.txt"
    # well-formed public keys of another run: the relay is never reached to check them
    witnesses.write_text("DE+072fb54a+BFcKEuvY1LCDNrR0DlA1UHC+pRKe1phqEa567nkJcQ27\n")
    log_key = "127.0.0.1:47189/relay1+1f050bd1+AcR9R6pOa1XEjQNbRwpe1Epn7BY5iux1KeMmYTKel+wN"
    state = str(tmp_path / "state")
    args = ["audit", "verify", "--relay", url, "--log-key", log_key,
            "--witnesses", str(witnesses), "--quorum", "1", "--state", state]  # fmt: skip
    result = await invoke(args)
    assert result.exit_code == 1, result.output
    assert f"{url}/v1/audit/checkpoint: relay unreachable (" in result.output
