"""deploy/ checked with the real tools: systemd-analyze, nginx, promtool.

A tool missing on this machine skips its test with a one-line reason, unless it is named
in ``RELAY247_REQUIRE_TOOLS`` (``.ci/run`` sets it for the tools CI has): then a missing
tool is a failure, not a skip.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.relay import free_port, running_relay

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = ("relay247-relay.service", "relay247-node@.service")
#: highest accepted `systemd-analyze security` exposure (0.0 best .. 10.0 worst); the
#: units score 1.2 with systemd 252
MAX_EXPOSURE = 2.0


def tool(name: str) -> str:
    """The tool's path, or skip (fail when RELAY247_REQUIRE_TOOLS names it)."""
    path = shutil.which(name)
    if path is None:
        if name in os.environ.get("RELAY247_REQUIRE_TOOLS", "").split():
            pytest.fail(f"{name} is required here (RELAY247_REQUIRE_TOOLS) but not installed")
        pytest.skip(f"{name} is not installed")
    return path


# ---- systemd -----------------------------------------------------------------------------


def _units_for_verify(tmp: Path) -> list[Path]:
    """Copies of the units whose ExecStart is this venv's relay247 (verify needs it to exist).

    The template is instantiated as ``@fr`` so %i resolves as on a real host.
    """
    relay247 = Path(sys.executable).parent / "relay247"
    assert relay247.exists(), "relay247 is not installed in this environment"
    out = []
    for unit in UNITS:
        text = (DEPLOY / "systemd" / unit).read_text()
        assert text.count("/opt/relay247/bin/relay247") == 1
        name = unit.replace("@.", "@fr.")
        (tmp / name).write_text(text.replace("/opt/relay247/bin/relay247", str(relay247)))
        out.append(tmp / name)
    return out


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    for unit in _units_for_verify(tmp_path):
        done = subprocess.run(
            [analyze, "verify", "--man=no", str(unit)],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
        )
        # verify only warns (exit 0) on an unknown key: any output is a failure.
        assert (done.returncode, done.stdout + done.stderr) == (0, ""), unit.name


def test_systemd_verify_catches_a_typo(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    unit = _units_for_verify(tmp_path)[0]
    unit.write_text(unit.read_text().replace("UMask=0077", "UMaks=0077"))
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False
    )
    assert "UMaks" in done.stderr


@pytest.mark.parametrize("unit", UNITS)
def test_systemd_units_exposure(tmp_path: Path, unit: str) -> None:
    analyze = tool("systemd-analyze")
    path = next(p for p in _units_for_verify(tmp_path) if p.name == unit.replace("@.", "@fr."))
    done = subprocess.run(
        [analyze, "security", "--offline=true", f"--threshold={int(MAX_EXPOSURE * 10)}", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if "--offline" in done.stderr and "unrecognized" in done.stderr:
        pytest.skip("this systemd-analyze has no --offline (systemd < 250)")
    score = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert score is not None, done.stdout + done.stderr
    assert float(score.group(1)) <= MAX_EXPOSURE
    assert done.returncode == 0


def test_systemd_units_keep_the_hardening() -> None:
    # verify and security accept weaker units too: the settings the design relies on.
    required = {
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectHome": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "RestrictNamespaces": "yes",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native",
        "UMask": "0077",
        "Restart": "on-failure",
    }
    for unit in UNITS:
        text = (DEPLOY / "systemd" / unit).read_text()
        settings: dict[str, list[str]] = {}
        for line in text.splitlines():
            if "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                settings.setdefault(key, []).append(value)
        for key, value in required.items():
            assert settings.get(key) == [value], f"{unit}: {key}"
        assert "@system-service" in settings["SystemCallFilter"]
        assert settings["ReadWritePaths"] == [settings["StateDirectory"][0].join(("/var/lib/", ""))]
        assert any(v.startswith("passphrase:") for v in settings["LoadCredential"])
        assert "--passphrase-file %d/passphrase" in settings["ExecStart"][0]
        assert "User" in settings
        assert "Environment" not in settings or all(
            "PASSPHRASE" not in v for v in settings["Environment"]
        )


# ---- nginx -------------------------------------------------------------------------------


def _self_signed(tmp: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay.example.org")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("relay.example.org"), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    (tmp / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _nginx_conf(tmp: Path, *, upstream: int, http: int, https: int) -> Path:
    """The site config in a minimal nginx.conf: temp cert, loopback upstreams and ports.

    The compose service names (relay-a, relay-b) do not resolve here and nginx resolves
    upstream names when it loads the config, so both point at one loopback relay.
    """
    _self_signed(tmp)
    site = (DEPLOY / "nginx" / "relay247.conf").read_text()
    swaps = {
        "/etc/nginx/tls/": f"{tmp}/",
        "relay-a:8247": f"127.0.0.1:{upstream}",
        "relay-b:8247": f"127.0.0.1:{upstream}",
        "listen 8080;": f"listen 127.0.0.1:{http};",
        "listen 8443 ssl;": f"listen 127.0.0.1:{https} ssl;",
    }
    for old, new in swaps.items():
        assert old in site, old
        site = site.replace(old, new)
    # No IPv6 on every CI machine.
    site = re.sub(r"^\s*listen \[::\].*$", "", site, flags=re.MULTILINE)
    (tmp / "site.conf").write_text(site)
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"pid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\nevents {{}}\n"
        f"http {{ access_log off; include {tmp}/site.conf; }}\n"
    )
    return conf


def test_nginx_config_is_valid(tmp_path: Path) -> None:
    nginx = tool("nginx")
    conf = _nginx_conf(tmp_path, upstream=free_port(), http=free_port(), https=free_port())
    done = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@contextmanager
def _nginx(tmp: Path, upstream: int) -> Iterator[tuple[int, int]]:
    """nginx in the foreground with the site config; yields its (http, https) ports."""
    nginx = tool("nginx")
    http, https = free_port(), free_port()
    conf = _nginx_conf(tmp, upstream=upstream, http=http, https=https)
    log = tmp / "error.log"
    argv = [nginx, "-p", str(tmp), "-e", str(log), "-c", str(conf), "-g", "daemon off;"]
    proc = subprocess.Popen(argv)
    try:
        yield http, https
    finally:
        proc.send_signal(signal.SIGQUIT)  # graceful stop
        proc.wait(10)


async def _get_when_up(
    s: aiohttp.ClientSession, url: str, ctx: ssl.SSLContext
) -> tuple[int, Any, Any]:
    deadline = time.monotonic() + 10  # nginx start-up, not a timing assumption
    while True:
        try:
            async with s.get(url, ssl=ctx) as resp:
                return resp.status, resp.headers, await resp.json()
        except aiohttp.ClientConnectorError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_nginx_terminates_tls_in_front_of_a_relay(tmp_path: Path) -> None:
    tool("nginx")
    (tmp_path / "nginx").mkdir()
    async with running_relay(tmp_path / "relay") as relay, aiohttp.ClientSession() as s:
        upstream = int(relay.url.rsplit(":", 1)[1])
        with _nginx(tmp_path / "nginx", upstream) as (http, https):
            cafile = str(tmp_path / "nginx" / "fullchain.pem")
            ctx = ssl.create_default_context(cafile=cafile)
            base = f"https://localhost:{https}"
            status, headers, body = await _get_when_up(s, base + "/healthz", ctx)
            assert status == 200
            assert body["status"] == "ok"
            assert headers["Strict-Transport-Security"] == "max-age=63072000"
            async with s.get(base + "/metrics", ssl=ctx) as resp:
                assert resp.status == 404
            async with s.get(f"http://127.0.0.1:{http}/healthz", allow_redirects=False) as resp:
                assert resp.status == 308
                assert resp.headers["Location"].startswith("https://")
            # TLS 1.2 is served as well as 1.3; older versions are not configured (an
            # OpenSSL 3 client refuses them itself, so that is checked in the config).
            tls12 = ssl.create_default_context(cafile=cafile)
            tls12.maximum_version = ssl.TLSVersion.TLSv1_2
            async with s.get(base + "/healthz", ssl=tls12) as resp:
                assert resp.status == 200
    site = (DEPLOY / "nginx" / "relay247.conf").read_text()
    assert re.findall(r"^\s*ssl_protocols (.*);", site, re.MULTILINE) == ["TLSv1.2 TLSv1.3"]


# ---- promtool ----------------------------------------------------------------------------


def test_promtool_accepts_the_rules_and_config() -> None:
    promtool = tool("promtool")
    checks = (
        ["check", "rules", "alerts.yml"],
        ["check", "config", "prometheus.yml"],
        # alerts_test.yml: each alert fires (and stays quiet) on synthetic series.
        ["test", "rules", "alerts_test.yml"],
    )
    for args in checks:
        done = subprocess.run(
            [promtool, *args],
            cwd=DEPLOY / "prometheus",
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
