"""Stalled and surplus connections against a real relay (issue 11, §2 "Stalled connections").

Every phase of a connection is bounded: nothing sent, half a request line, headers cut
short, an idle keep-alive, a body that never comes, and with TLS a handshake that
stops. Over the caps a connection is answered 503 in the one error shape and closed.
"""

from __future__ import annotations

import asyncio
import json
import re
import resource
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from node.messaging.transport import RelayClient
from relay.app import make_runner, make_site, open_state, tls_context
from relay.config import load_config
from tests.integration._crash_load import RelayProcess
from tests.support.network import Network, make_network
from tests.support.relay import PASSPHRASE, free_port, running_relay, write_relay_dir

BOUND = 1.0  # header, keep-alive, body and handshake bounds of these relays, seconds
SLACK = 3.0  # scheduling slack on a loaded 2-core machine, seconds


def relay_config(tmp: Path, net: Network, **http: object) -> Path:
    """A relay dir whose ``[http]`` values are replaced by ``http``."""
    config = write_relay_dir(tmp, net, free_port())
    text = config.read_text()
    values = {
        "header_timeout": BOUND,
        "keepalive_timeout": BOUND,
        "tls_handshake_timeout": BOUND,
        "read_timeout": BOUND,
        **http,
    }
    for key, value in values.items():
        if isinstance(value, str):
            line = f'{key} = "{value}"'
            text, n = re.subn(rf"(?m)^# {key} = .*$", line, text, count=1)
        else:
            text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text, count=1)
        assert n == 1, key
    config.write_text(text)
    return config


def raw(port: int, source: str = "127.0.0.1") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    s.settimeout(0.0)
    return s


def closed(s: socket.socket) -> bool:
    """True once the relay has closed ``s`` (EOF or reset); never blocks."""
    try:
        data = s.recv(65536)
    except BlockingIOError:
        return False
    except OSError:
        return True
    if data == b"":
        return True
    return closed(s)  # an answer came first (e.g. 408/400); look again for the EOF


async def wait_closed(socks: list[socket.socket], within: float) -> float:
    """Seconds until every socket in ``socks`` is closed by the peer; fails after ``within``."""
    start = time.monotonic()
    pending = list(socks)
    while pending:
        pending = [s for s in pending if not closed(s)]
        if not pending:
            break
        assert time.monotonic() - start < within, f"{len(pending)} stalled sockets still open"
        await asyncio.sleep(0.1)  # polling the sockets, not a timing assumption
    return time.monotonic() - start


async def stalled(port: int, phase: str) -> socket.socket:
    """A connection that stops in ``phase`` (opened in a thread: the relay runs here)."""
    return await asyncio.to_thread(_stalled, port, phase)


def _stalled(port: int, phase: str) -> socket.socket:
    s = raw(port)
    s.setblocking(True)
    if phase == "request_line":
        s.sendall(b"GET /heal")
    elif phase == "headers":
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    elif phase == "body":
        s.sendall(
            b"POST /v1/envelopes HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"
        )
    elif phase in ("idle", "second_headers"):
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        s.settimeout(5)
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
        if phase == "second_headers":  # a kept-alive connection, then a stalled request
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    s.setblocking(False)
    return s


@pytest.mark.parametrize(
    "phase", ["nothing", "request_line", "headers", "body", "idle", "second_headers"]
)
async def test_each_stalled_phase_is_cut_within_its_bound(tmp_path: Path, phase: str) -> None:
    net = make_network()
    relay_config(tmp_path, net)
    async with running_relay(tmp_path, net, fresh=False) as relay:
        port = int(relay.url.rsplit(":", 1)[1])
        socks = [await stalled(port, phase) for _ in range(5)]
        try:
            took = await wait_closed(socks, BOUND + SLACK)
        finally:
            for s in socks:
                s.close()
        assert took >= 0.5 * BOUND  # cut by the bound, not refused at once


async def test_normal_client_served_while_many_sockets_stall(tmp_path: Path) -> None:
    net = make_network()
    relay_config(tmp_path, net, header_timeout=30.0, keepalive_timeout=30.0)
    async with running_relay(tmp_path, net, fresh=False) as relay:
        port = int(relay.url.rsplit(":", 1)[1])
        phases = ["nothing", "request_line", "headers"]
        socks = [await stalled(port, phases[i % 3]) for i in range(150)]
        try:
            for _ in range(3):
                async with relay.session.get(relay.url + "/healthz") as resp:
                    assert resp.status == 200
            assert not any(closed(s) for s in socks)  # the bound here is 30 s
        finally:
            for s in socks:
                s.close()


async def test_over_the_caps_a_connection_gets_503_and_is_closed(tmp_path: Path) -> None:
    net = make_network()
    relay_config(
        tmp_path,
        net,
        header_timeout=30.0,
        keepalive_timeout=30.0,
        max_connections=6,
        max_connections_per_address=5,
    )
    async with running_relay(tmp_path, net, fresh=False) as relay:
        port = int(relay.url.rsplit(":", 1)[1])
        await relay.session.close()  # its pooled connection would count too
        held = [raw(port) for _ in range(5)]  # connect() completes in the kernel
        try:
            await asyncio.sleep(0.2)  # let the relay admit them before the next one
            refused = await asyncio.to_thread(_refused_answer, raw(port))  # per address
            assert refused["code"] == "unavailable"
            held.append(raw(port, "127.0.0.2"))  # 6th in all, from another address
            await asyncio.sleep(0.2)
            other = await asyncio.to_thread(_refused_answer, raw(port, "127.0.0.3"))
            assert other["code"] == "unavailable"
        finally:
            for s in held:
                s.close()
        await asyncio.sleep(0.2)  # the relay sees the closes
        async with aiohttp.ClientSession() as session, session.get(relay.url + "/metrics") as resp:
            text = await resp.text()
        assert 'relay247_connections_refused_total{reason="max_per_address"} 1.0' in text
        assert 'relay247_connections_refused_total{reason="max_connections"} 1.0' in text


def _refused_answer(s: socket.socket) -> dict[str, str]:
    s.setblocking(True)
    s.settimeout(5)
    data = b""
    while chunk := s.recv(65536):  # until the relay closes it
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503"), data
    assert b"\r\nRetry-After: " in head
    answer: dict[str, str] = json.loads(body)
    assert set(answer) == {"code", "message", "request_id"}
    return answer


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@asynccontextmanager
async def tls_relay(config_path: Path) -> AsyncIterator[int]:
    """A relay serving HTTPS itself, as ``relay serve`` builds it; yields its port."""
    config = load_config(config_path)
    state = await open_state(config, PASSPHRASE)
    runner = make_runner(state)
    await runner.setup()
    ctx = tls_context(config)
    assert ctx is not None
    site = make_site(runner, state, "127.0.0.1", config.http.port, ctx)
    await site.start()
    try:
        yield config.http.port
    finally:
        await runner.cleanup()
        await state.store.close()


async def test_tls_stalls_in_handshake_and_headers_are_cut(tmp_path: Path) -> None:
    net = make_network()
    cert, key = _self_signed(tmp_path)
    config = relay_config(tmp_path, net, tls_cert=str(cert), tls_key=str(key))
    client = ssl.create_default_context(cafile=str(cert))
    client.check_hostname = False
    async with tls_relay(config) as port:
        # Mid handshake: TCP connected, then half a ClientHello or nothing at all.
        silent = raw(port)
        half = raw(port)
        half.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # fits the buffer
        # Handshake done, then headers cut short.
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        await writer.drain()
        # A normal HTTPS client is served meanwhile.
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"https://127.0.0.1:{port}/healthz", ssl=client) as resp,
        ):
            assert resp.status == 200
        start = time.monotonic()
        try:
            assert await asyncio.wait_for(reader.read(), BOUND + SLACK) == b""
            await wait_closed([silent, half], BOUND + SLACK)
        finally:
            writer.close()
            silent.close()
            half.close()
        assert time.monotonic() - start < BOUND + SLACK


class _LimitedRelay(RelayProcess):
    """``relay serve`` with a small descriptor budget (RLIMIT_NOFILE in the child)."""

    def __init__(self, config: Path, port: int, nofile: int) -> None:
        super().__init__(config, port, env={"RELAY247_PASSPHRASE": PASSPHRASE.decode()})
        self.nofile = nofile

    def _spawn(self) -> subprocess.Popen[bytes]:
        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

        with self.log.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "cli", "relay", "serve", "--config", str(self.config)],
                stdout=log,
                stderr=log,
                env=self.env,
                preexec_fn=limit,  # noqa: PLW1509 -- only setrlimit, no locks taken
            )


async def test_out_of_descriptors_relay_stays_reachable_and_log_stays_short(
    tmp_path: Path,
) -> None:
    net = make_network()
    # max_connections above the descriptor budget: accept() itself runs out (EMFILE).
    config = relay_config(tmp_path, net, max_connections=100_000)
    port = load_config(config).http.port
    relay = _LimitedRelay(config, port, nofile=128)
    await relay.start()
    socks: list[socket.socket] = []
    try:
        async with aiohttp.ClientSession() as session:
            await RelayClient(relay.url, net.members["FR"].transport, session).publish_directory(
                net.signed()
            )
            for _ in range(3):  # three waves of 300 silent connections, 1 s apart
                for _ in range(300):
                    s = socket.socket()
                    s.setblocking(False)
                    s.connect_ex(("127.0.0.1", port))  # no wait: the backlog fills up
                    socks.append(s)
                await asyncio.sleep(1.0)
            # While they stall, a normal client still gets through within the bounds.
            deadline = time.monotonic() + 4 * (BOUND + SLACK)
            while True:
                try:
                    timeout = aiohttp.ClientTimeout(total=2)
                    async with session.get(relay.url + "/healthz", timeout=timeout) as resp:
                        if resp.status == 200:
                            break
                except (aiohttp.ClientError, TimeoutError):
                    pass
                assert time.monotonic() < deadline, relay.stderr()
                await asyncio.sleep(0.2)  # retrying a client, not a timing assumption
    finally:
        for s in socks:
            s.close()
        assert relay.terminate() == 0, relay.stderr()
    lines = relay.log.read_text(errors="replace").splitlines()
    assert len(lines) < 50, f"{len(lines)} log lines:\n" + "\n".join(lines[:20])
    assert not any("Traceback" in line for line in lines), relay.stderr()
