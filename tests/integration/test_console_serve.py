"""``relay247 node serve`` mounts the console from ``[console]`` in node.toml, over TLS.

A real process: the officer is created with ``relay247 node officer add``, then logs
in over HTTPS with password and TOTP; the session cookie is Secure under TLS.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

import aiohttp
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cli._demo_procs import Children, free_port, set_toml
from cli.main import cli
from console._security import CSP
from node.officers import code_at
from tests.support.console import CSRF_RE

PASS = "console serve test passphrase"
WAIT = 30.0


def _self_signed(directory: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    (directory / "console.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "console.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _invoke(*args: str | Path) -> str:
    result = CliRunner(env={"RELAY247_PASSPHRASE": PASS}).invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


async def test_node_serve_mounts_the_console_over_tls(tmp_path: Path) -> None:
    net, data = tmp_path / "net", tmp_path / "fr"
    trust = net / "trust.json"
    _invoke("network", "init", "--dir", net, "--name", "console-net")
    _invoke("node", "init", "--member", "FR", "--data", data, "--authority", "24/7 point FR",
            "--languages", "en,fr", "--relay", f"http://127.0.0.1:{free_port()}",
            "--trust-root", trust)  # fmt: skip
    config = data / "node.toml"
    set_toml(config, "api", "port", "0")
    _self_signed(data)
    set_toml(config, "console", "cert_file", '"console.crt"')
    set_toml(config, "console", "key_file", '"console.key"')
    creds = json.loads(
        _invoke(
            "node",
            "officer",
            "add",
            "duty",
            "--name",
            "Duty Officer",
            "--role",
            "officer",
            "--language",
            "fr",
            "--data",
            data,
            "--json",
        )
    )
    kids = Children(PASS)
    try:
        kids.start("FR", ["node", "serve", "--config", str(config)], tmp_path / "node.log")
        port_file = data / "console.port"
        deadline = time.monotonic() + WAIT
        while not port_file.exists():
            assert time.monotonic() < deadline, (tmp_path / "node.log").read_text()
            await asyncio.sleep(0.05)
        url = f"https://127.0.0.1:{port_file.read_text().strip()}"
        tls = ssl.create_default_context(cafile=data / "console.crt")
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            async with http.get(f"{url}/login", ssl=tls) as resp:
                assert resp.headers["Content-Security-Policy"] == CSP
                found = CSRF_RE.search(await resp.read())
                assert "Secure" in resp.headers["Set-Cookie"]
                assert "HttpOnly" in resp.headers["Set-Cookie"]
            assert found is not None
            form = {
                "csrf": found.group(1).decode(),
                "login": "duty",
                "password": creds["password"],
                "code": code_at(creds["totp_secret"], datetime.now(UTC)),
            }
            async with http.post(f"{url}/login", data=form, ssl=tls) as resp:
                assert str(resp.url) == f"{url}/inbox"
                assert "Boîte de réception" in await resp.text()
    finally:
        stopped = kids.stop_all()
    assert stopped == [("FR", 0)]
    assert not (data / "console.port").exists()
