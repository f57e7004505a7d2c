"""``relay247 audit``: verify a relay's log, follow it, witness it, check evidence bundles.

Files an auditor brings:

- ``--witnesses FILE``: the witnesses' cosignature verifier keys (type 0x04, see
  PROTOCOL.md §9.5), one per line (``#`` comments and blank lines ignored) or a JSON list
  of strings. A member's key is ``cosignature_verifier_key(member_id, signing_public)``.
- ``--trust-root FILE``: the coordinators' ``trust.json`` (``relay247 network init``).
- ``--keys FILE`` (witness only): a keystore locked with the passphrase (PROTOCOL.md §11)
  whose owner is the member id and whose keys are ``signing`` (cosigns) and ``transport``
  (authenticates the POST); until the node keystore exists, create it with
  :func:`protocol.keystore.lock`.

``audit witnesses`` writes the ``--witnesses`` file from a signed directory verified
against ``--trust-root``. Every command takes ``--json``.

Exit codes: 0 verified, 1 an anomaly or a network failure (each anomaly named), or a
bundle checked without both pins (internal consistency only; ``--accept-bundle-keys``
makes that 0), 2 usage.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from audit.monitor import monitor as run_monitor
from audit.verify import AuditResult, Policy, read_witnesses, verify_log
from audit.witness import WitnessKeys, witness_round
from cli._files import read_user_file
from cli._network import emit
from cli._numbers import AsciiFloatRange, AsciiIntRange
from cli._passphrase import CliError, CliUsageError, fail_from, passphrase_option, read_passphrase
from client import READ_LIMIT, PublicClient, RelayClient
from protocol.codec import decode
from protocol.cosignature import CosignatureVerifier
from protocol.directory import TrustRoot
from protocol.errors import PeerError, Relay247Error
from protocol.keys import SigningKey
from protocol.keystore import unlock
from schemas.directory import TrustRootFile

T = TypeVar("T")
_TRUST = msgspec.json.Decoder(TrustRootFile)
_err = Console(stderr=True)
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_DIR = click.Path(file_okay=False, path_type=Path)
_TRUST_HELP = "Coordinators' trust.json."
_JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def _echo_json(data: dict[str, Any]) -> None:
    click.echo(json.dumps(data, sort_keys=True))


def _read(path: Path, limit: int = 1 << 20) -> bytes:
    # A regular file only, and at most limit + 1 bytes read (cli/_files.py).
    return read_user_file(path, limit)


def _trust_root(path: Path | None) -> TrustRoot | None:
    if path is None:
        return None
    try:
        t = decode(_TRUST, _read(path), "trust root", limit=1 << 20)
    except Relay247Error as exc:
        raise CliUsageError(f"{path}: {exc.message}") from None
    return TrustRoot(t.coordinators, t.threshold)


def _witnesses(path: Path) -> tuple[CosignatureVerifier, ...]:
    try:
        return read_witnesses(_read(path).decode("utf-8", "replace"))
    except Relay247Error as exc:
        raise CliUsageError(f"{path}: {exc.message}") from None


def _run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return asyncio.run(main())
    except Relay247Error as exc:
        raise fail_from(exc) from None


def _policy(log_key: str, witnesses: Path, quorum: int, trust_root: Path | None) -> Policy:
    keys = _witnesses(witnesses)
    if quorum > len(keys):
        raise CliUsageError(f"--quorum {quorum} exceeds the {len(keys)} witnesses in {witnesses}")
    return Policy(log_key, keys, quorum, _trust_root(trust_root))


def _log_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--relay", "relay_url", required=True, help="The relay's URL."),
            click.option("--log-key", required=True, help="The log's verifier key (pinned)."),
            click.option("--witnesses", required=True, type=_FILE, help="Witness keys file."),
            click.option(
                "--quorum",
                required=True,
                type=AsciiIntRange(1, 100),
                help="How many witnesses of the file must have cosigned the checkpoint.",
            ),
            click.option(
                "--state",
                "state_dir",
                required=True,
                type=click.Path(file_okay=False, path_type=Path),
                help="Directory keeping the last verified state.",
            ),
            click.option(
                "--trust-root", type=_FILE, default=None, help="Coordinators' trust.json."
            ),
        ]
    ):
        func = option(func)
    return func


def _result_json(result: AuditResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "size": result.size,
        "previous_size": result.previous_size,
        "root_hash": result.root_hash.hex(),
        "witnesses": list(result.witnesses),
        "counts": dict(sorted(result.counts.items())),
        "signatures": result.signatures,
        "directory_version": result.directory_version,
        "anomalies": list(result.anomalies),
        "notes": list(result.notes),
    }


def _summary(result: AuditResult, console: Console) -> None:
    # A table on a terminal, `key: value` lines when piped (OPERATIONS.md, Exit codes).
    rows: dict[str, Any] = {
        "checkpoint size": f"{result.size:,}",
        "root hash": result.root_hash.hex(),
        "cosigned by": ", ".join(result.witnesses) or "-",
        "new entries": f"{result.size - result.previous_size:,}",
    }
    for kind, count in sorted(result.counts.items()):
        rows[f"new {kind}"] = f"{count:,}"
    rows["signatures verified"] = f"{result.signatures:,}"
    version = result.directory_version
    rows["directory in force"] = "-" if version is None else f"version {version}"
    rows["result"] = "verified" if result.ok else "ANOMALIES"
    emit(rows, as_json=False)
    for note in result.notes:
        console.print(f"note: {note}", markup=False, highlight=False)


def _fail_on_anomalies(result: AuditResult) -> None:
    if result.ok:
        return
    for anomaly in result.anomalies:
        _err.print(f"ANOMALY: {anomaly}", markup=False, highlight=False)
    raise CliError(f"{len(result.anomalies)} anomaly(ies); the state was not updated")


@click.group()
def audit() -> None:
    """Verify a relay's audit log, follow it, witness it, check evidence bundles."""


@audit.command("verify")
@_log_options
@_JSON_OPTION
def verify(
    *,
    relay_url: str,
    log_key: str,
    witnesses: Path,
    quorum: int,
    state_dir: Path,
    trust_root: Path | None,
    as_json: bool,
) -> None:
    """Verify the latest checkpoint and every entry added since the last run."""
    policy = _policy(log_key, witnesses, quorum, trust_root)
    console = Console()

    async def go() -> AuditResult:
        columns = (TextColumn("entries"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        # The progress bar draws only on a terminal and never with --json (stdout is data).
        shown = console.is_terminal and not as_json
        with Progress(*columns, console=console, transient=True, disable=not shown) as bar:
            task = bar.add_task("entries", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            async with PublicClient(relay_url) as client:
                return await verify_log(
                    client, policy, state_dir, now=datetime.now(UTC), progress=progress
                )

    result = _run(go)
    if as_json:
        _echo_json(_result_json(result))
    else:
        _summary(result, console)
    _fail_on_anomalies(result)


@audit.command("monitor")
@_log_options
@click.option(
    "--interval",
    default=30.0,
    show_default=True,
    type=AsciiFloatRange(0.1, 86400),
    help="Seconds between two runs.",
)
@click.option("--runs", default=None, type=AsciiIntRange(1), hidden=True)
@_JSON_OPTION
def monitor(
    *,
    relay_url: str,
    log_key: str,
    witnesses: Path,
    quorum: int,
    state_dir: Path,
    trust_root: Path | None,
    interval: float,
    runs: int | None,
    as_json: bool,
) -> None:
    """Verify continuously, every INTERVAL seconds; exit non-zero at the first anomaly.

    With --json, one JSON object per run, one per line.
    """
    policy = _policy(log_key, witnesses, quorum, trust_root)
    console = Console()

    def report(r: AuditResult) -> None:
        if as_json:
            _echo_json({"at": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}", **_result_json(r)})
            return
        new = r.size - r.previous_size
        state = "ok" if r.ok else "ANOMALY"
        console.print(f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} size {r.size:,} (+{new:,}) {state}")

    async def go() -> AuditResult:
        async with PublicClient(relay_url) as client:
            return await run_monitor(
                client, policy, state_dir, interval=interval, report=report, runs=runs
            )

    _fail_on_anomalies(_run(go))


def _witness_keys(path: Path, passphrase_file: Path | None) -> WitnessKeys:
    data = _read(path)
    try:
        secrets = unlock(data, read_passphrase(passphrase_file, confirm=False))
    except Relay247Error as exc:
        raise CliUsageError(f"{path}: {exc.message}") from None
    seeds = {name: secrets.keys.get(name) for name in ("signing", "transport")}
    if any(s is None or len(s) != 32 for s in seeds.values()):
        raise CliUsageError(f"{path}: needs 32-byte keys named 'signing' and 'transport'")
    return WitnessKeys(
        secrets.owner, SigningKey(seeds["signing"] or b""), SigningKey(seeds["transport"] or b"")
    )


@audit.command("witness")
@click.option("--relay", "relay_url", required=True, help="The relay's URL.")
@click.option("--log-key", required=True, help="The log's verifier key (pinned).")
@click.option("--keys", "keys_file", required=True, type=_FILE, help="Member keystore.")
@click.option(
    "--state",
    "state_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory keeping the last checkpoint this witness cosigned.",
)
@click.option(
    "--interval",
    default=5.0,
    show_default=True,
    type=AsciiFloatRange(0.1, 86400),
    help="Seconds between two rounds.",
)
@click.option("--once", is_flag=True, help="Run one round and exit.")
@passphrase_option
@_JSON_OPTION
def witness(
    *,
    relay_url: str,
    log_key: str,
    keys_file: Path,
    state_dir: Path,
    interval: float,
    once: bool,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Follow the relay's checkpoints, check consistency, cosign; stop on a fork.

    With --json, one JSON object per round, one per line.
    """
    keys = _witness_keys(keys_file, passphrase_file)
    console = Console()

    async def go() -> None:
        # The transport key signs the cosignature POST; reads use the auditor's limit.
        async with RelayClient(relay_url, keys.transport, timeout=30.0, limit=READ_LIMIT) as c:
            await rounds(c)

    async def rounds(client: RelayClient) -> None:
        while True:
            try:
                r = await witness_round(client, keys, log_key, state_dir, now=datetime.now(UTC))
            except PeerError as exc:
                if exc.code.value != "not_found":
                    raise
                if as_json:
                    _echo_json({"checkpoint": None})
                else:
                    console.print("no checkpoint yet")
            else:
                at = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
                what = f"cosigned ({r.witnesses} witness(es))" if r.cosigned else "unchanged"
                if as_json:
                    _echo_json(
                        {"at": at, "size": r.size, "cosigned": r.cosigned, "witnesses": r.witnesses}
                    )
                else:
                    console.print(f"{at} size {r.size:,} {what}")
            if once:
                return
            await asyncio.sleep(interval)

    try:
        _run(go)
    except CliError as exc:
        _err.print(f"ALERT: {exc.message}", markup=False, highlight=False)
        raise
