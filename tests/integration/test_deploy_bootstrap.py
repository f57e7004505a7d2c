"""deploy/bootstrap.sh with the real CLI, then the two relay instances it configures.

The script writes what deploy/compose.yaml mounts. Its configs name container paths
(/run/secrets, /etc/relay247, host `db`); to run the instances here those few values are
pointed at the generated files and the test PostgreSQL, and nothing else is changed.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from cryptography import x509

from node.config import load_config as load_node_config
from node.witness import LogIdentity, log_identity
from protocol.directory import VerifiedDirectory, verify_directory
from protocol.keys import SigningKey
from protocol.keystore import unlock
from protocol.note import Signer
from relay.app import read_trust_root
from relay.config import load_config as load_relay_config
from tests.integration._crash_load import RelayProcess
from tests.support.pg import pg_dsn, requires_pg
from tests.support.relay import free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
BIN = Path(sys.executable).parent


def _bootstrap(out: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("openssl")
    if tool is None:
        pytest.skip("openssl is not installed")
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "RELAY247": str(BIN / "relay247")}
    return subprocess.run(
        ["bash", str(DEPLOY / "bootstrap.sh"), str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )


@pytest.fixture(scope="module")
def boot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("deploy")
    done = _bootstrap(out)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_bootstrap_writes_what_compose_mounts(boot: Path) -> None:
    compose = (DEPLOY / "compose.yaml").read_text()
    mounted = set(re.findall(r"^\s+(?:-|file:) \./((?:secrets|etc)/[^:\s]+)", compose, re.M))
    assert len(mounted) > 10
    for rel in mounted:
        assert (boot / rel).exists(), rel
    for key in ("relay.keys", "node-fr.keys", "relay_passphrase", "pg_password", "pgpass"):
        assert (boot / "secrets" / key).stat().st_mode & 0o077 == 0, key
    pgpass = (boot / "secrets" / "pgpass").read_text().strip()
    assert pgpass == "db:5432:relay247:relay247:" + (boot / "secrets/pg_password").read_text()
    # Every secret the bootstrap wrote is a random value, not a placeholder.
    passphrases = {p.read_text() for p in (boot / "secrets").glob("*passphrase*")}
    assert len(passphrases) == 5
    assert all(len(p) >= 32 for p in passphrases)


def test_bootstrap_configs_load_with_the_real_loaders(boot: Path) -> None:
    a = load_relay_config(boot / "etc/relay-a.toml")
    b = load_relay_config(boot / "etc/relay-b.toml")
    assert a.relay.public_url == b.relay.public_url == "https://relay.example.org"
    assert (a.relay.instance_url, b.relay.instance_url) == (
        "http://relay-a:8247",
        "http://relay-b:8247",
    )
    assert a.storage == b.storage
    assert a.storage.postgres_dsn == "postgresql://relay247@db:5432/relay247"
    assert a.relay.data_dir == "/run/secrets"
    for m in ("FR", "US", "DE"):
        node = load_node_config(boot / f"etc/node-{m.lower()}.toml")
        assert node.node.member == m
        assert node.node.keys_file == "/run/secrets/node.keys"
        assert node.relays.urls == ("https://relay.example.org",)
        assert (len(node.alerts.webhooks), len(node.alerts.smtp)) == (0, 0)
        assert node.witness.log_key == ""  # the directory pins the relay's log key


def _directory(boot: Path) -> VerifiedDirectory:
    raw = (boot / "secrets/network/directory-1.json").read_bytes()
    trust = read_trust_root(boot / "etc/trust.json")
    return verify_directory(raw, trust, current=None, now=datetime.now(UTC))


def test_bootstrap_directory_lists_the_relay_and_its_log_key(boot: Path) -> None:
    directory = _directory(boot)
    assert sorted(m.id for m in directory.directory.members) == ["DE", "FR", "US"]
    (entry,) = directory.directory.relays  # one entry: both instances share URL and keys
    assert (entry.id, entry.url) == ("relay247", "https://relay.example.org")
    assert entry.log_origin == "relay.example.org/relay247"
    # The key of the keystore both instances unlock (checked against /v1/info below).
    seeds = unlock(
        (boot / "secrets/relay.keys").read_bytes(),
        (boot / "secrets/relay_passphrase").read_bytes().strip(),
    ).keys
    signer = Signer(entry.log_origin, SigningKey(seeds["log"]))
    assert entry.log_key == signer.verifier().key_string()
    node = load_node_config(boot / "etc/node-fr.toml")
    assert log_identity(directory, node.relays.urls[0], node.witness.log_key or None) == (
        LogIdentity(entry.log_origin, entry.log_key)
    )


def test_bootstrap_certificate_is_for_the_public_name(boot: Path) -> None:
    ca = x509.load_pem_x509_certificate((boot / "secrets/tls/ca.pem").read_bytes())
    cert = x509.load_pem_x509_certificate((boot / "secrets/tls/fullchain.pem").read_bytes())
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["relay.example.org"]


def test_bootstrap_refuses_to_overwrite(boot: Path) -> None:
    done = _bootstrap(boot)
    assert done.returncode == 2
    assert "refusing to overwrite" in done.stderr


def _local(boot: Path, name: str, *, dsn: str, schema: str, port: int) -> tuple[Path, str]:
    """The generated config with container paths replaced by local ones; its instance URL."""
    text = (boot / "etc" / name).read_text()
    instance = f"http://127.0.0.1:{port}"
    swaps = {
        'data_dir = "/run/secrets"': f'data_dir = "{boot / "secrets"}"',
        'trust_root = "/etc/relay247/trust.json"': f'trust_root = "{boot / "etc/trust.json"}"',
        'host = "0.0.0.0"': 'host = "127.0.0.1"',
        "port = 8247": f"port = {port}",
        'postgres_dsn = "postgresql://relay247@db:5432/relay247"': f'postgres_dsn = "{dsn}"',
        'postgres_schema = "relay247"': f'postgres_schema = "{schema}"',
    }
    for old, new in swaps.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    text = re.sub(r'^instance_url = ".*"$', f'instance_url = "{instance}"', text, flags=re.M)
    path = boot / f"local-{name}"
    path.write_text(text)
    return path, instance


@asynccontextmanager
async def _schema(dsn: str) -> AsyncIterator[str]:
    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        yield schema
    finally:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


@requires_pg
async def test_two_instances_from_the_bootstrap_configs(boot: Path) -> None:
    dsn = pg_dsn()
    env: dict[str, str] = {}  # the passphrase comes from the file, as in compose
    async with _schema(dsn) as schema:
        relays = []
        for name in ("relay-a.toml", "relay-b.toml"):
            port = free_port()
            config, _ = _local(boot, name, dsn=dsn, schema=schema, port=port)
            relays.append(_FileRelay(config, port, env=env, passphrase=boot / "secrets"))
        try:
            for relay in relays:
                await relay.start()
            async with aiohttp.ClientSession() as s:
                signed = (boot / "secrets/network/directory-1.json").read_bytes()
                headers = {"Content-Type": "application/json"}
                async with s.post(
                    relays[0].url + "/v1/directory", data=signed, headers=headers
                ) as r:
                    assert r.status == 200, await r.text()
                # One instance takes the leader lock; the other follows.
                deadline = time.monotonic() + 30  # leader election deadline, generous
                while (roles := await _roles(s, relays)) != ["follower", "leader"]:
                    assert time.monotonic() < deadline, roles
                    await asyncio.sleep(0.1)
                # Both instances serve the log key the directory pins.
                (entry,) = _directory(boot).directory.relays
                for relay in relays:
                    async with s.get(relay.url + "/v1/info") as r:
                        info = await r.json()
                    assert (info["log_origin"], info["log_key"]) == (
                        entry.log_origin,
                        entry.log_key,
                    )
                # The directory posted through one instance is served by the other.
                deadline = time.monotonic() + 30  # fail-over deadline, generous
                while True:
                    async with s.get(relays[1].url + "/v1/directory") as r:
                        if r.status == 200:
                            assert await r.read() == signed
                            break
                    assert time.monotonic() < deadline, "directory never reached instance b"
                    await asyncio.sleep(0.1)
        finally:
            codes = [relay.terminate() for relay in relays]
        assert codes == [0, 0], [relay.stderr() for relay in relays]


async def _roles(s: aiohttp.ClientSession, relays: list[_FileRelay]) -> list[str]:
    roles = []
    for relay in relays:
        async with s.get(relay.url + "/healthz") as r:
            roles.append((await r.json())["role"])
    return sorted(roles)


class _FileRelay(RelayProcess):
    """``relay serve --passphrase-file`` as in the compose command."""

    def __init__(self, config: Path, port: int, *, env: dict[str, str], passphrase: Path) -> None:
        super().__init__(config, port, env=env)
        self.passphrase = passphrase / "relay_passphrase"

    def _spawn(self) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "cli", "relay", "serve", "--config", str(self.config)]
        argv += ["--passphrase-file", str(self.passphrase)]
        with self.log.open("ab") as log:
            return subprocess.Popen(argv, stdout=log, stderr=log, env=self.env)
