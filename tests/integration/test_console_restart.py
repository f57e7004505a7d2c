"""Sessions in node.db and per-officer tokens, against ``relay247 node serve`` processes
(PROTOCOL.md §14.4): a restart keeps the officer logged in; ``relay247 node officer
disable`` (another process) ends the session at once; logout ends it; an officer's
token issued by ``relay247 node officer token`` works in the serving node's API."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from click.testing import CliRunner

from cli._demo_procs import Children, free_port, set_toml
from cli.main import cli
from node.officers import code_at, open_db
from tests.support.console import CSRF_RE

PASS = "console restart test passphrase"
WAIT = 30.0


def _invoke(*args: str | Path) -> str:
    result = CliRunner(env={"RELAY247_PASSPHRASE": PASS}).invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


def _port_of(path: Path, log: Path, deadline: float) -> str | None:
    """The port in ``path`` once the node wrote it (the node's log if it never does)."""
    if path.exists():
        return path.read_text().strip()
    assert time.monotonic() < deadline, log.read_text()
    return None


async def _wait_for(path: Path, log: Path) -> str:
    deadline = time.monotonic() + WAIT
    port = _port_of(path, log, deadline)
    while port is None:  # another process writes the file: nothing to wait on but time
        await asyncio.sleep(0.05)
        port = _port_of(path, log, deadline)
    return port


async def _csrf(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as resp:
        found = CSRF_RE.search(await resp.read())
    assert found is not None
    return found.group(1).decode()


async def test_a_restart_keeps_the_officer_logged_in(tmp_path: Path) -> None:
    net, data = tmp_path / "net", tmp_path / "fr"
    _invoke("network", "init", "--dir", net, "--name", "restart-net")
    _invoke("node", "init", "--member", "FR", "--data", data, "--authority", "24/7 point FR",
            "--languages", "en,fr", "--relay", f"http://127.0.0.1:{free_port()}",
            "--trust-root", net / "trust.json")  # fmt: skip
    config = data / "node.toml"
    set_toml(config, "api", "port", "0")
    add = ["node", "officer", "add", "duty", "--name", "Duty Officer", "--role", "officer",
           "--language", "fr", "--data", str(data), "--json"]  # fmt: skip
    creds = json.loads(_invoke(*add))
    token = json.loads(_invoke("node", "officer", "token", "duty", "--data", data, "--json"))
    kids = Children(PASS)
    log = tmp_path / "node.log"
    jar = aiohttp.CookieJar(unsafe=True)  # cookies of 127.0.0.1 whatever the port
    try:
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            kids.start("FR", ["node", "serve", "--config", str(config)], log)
            url = f"http://127.0.0.1:{await _wait_for(data / 'console.port', log)}"
            form = {
                "csrf": await _csrf(http, f"{url}/login"),
                "login": "duty",
                "password": creds["password"],
                "code": code_at(creds["totp_secret"], datetime.now(UTC)),
            }
            async with http.post(f"{url}/login", data=form) as resp:
                assert str(resp.url) == f"{url}/inbox"
            # the officer's API token, in the serving process's API
            api = f"http://127.0.0.1:{await _wait_for(data / 'api.port', log)}"
            bearer = {"Authorization": f"Bearer {token['token']}"}
            async with http.get(f"{api}/v1/cases", headers=bearer) as resp:
                assert resp.status == 200, await resp.text()
            assert kids.stop_all() == [("FR", 0)]

            # node.db holds hashes of session ids, never the cookie's value
            cookie = next(c.value for c in jar if c.key == "relay247_console")
            conn = open_db(data / "node.db")
            try:
                assert cookie not in "\n".join(conn.iterdump())
            finally:
                conn.close()

            kids.start("FR", ["node", "serve", "--config", str(config)], log)
            url = f"http://127.0.0.1:{await _wait_for(data / 'console.port', log)}"
            async with http.get(f"{url}/inbox") as resp:
                assert str(resp.url) == f"{url}/inbox", "logged out by the restart"
                assert "Boîte de réception" in await resp.text()

            # disabling the account from the CLI (another process) ends its session
            _invoke("node", "officer", "disable", "duty", "--data", data)
            async with http.get(f"{url}/inbox") as resp:
                assert str(resp.url).startswith(f"{url}/login")
            api = f"http://127.0.0.1:{await _wait_for(data / 'api.port', log)}"
            async with http.get(f"{api}/v1/cases", headers=bearer) as resp:
                assert resp.status == 401
            _invoke("node", "officer", "enable", "duty", "--data", data)

            # log in again, log out: that session is gone too
            form["csrf"] = await _csrf(http, f"{url}/login")
            # the next step's code (the window allows it; this step's was used)
            form["code"] = code_at(creds["totp_secret"], datetime.now(UTC) + timedelta(seconds=30))
            async with http.post(f"{url}/login", data=form) as resp:
                assert str(resp.url) == f"{url}/inbox", await resp.text()
            csrf = await _csrf(http, f"{url}/inbox")
            async with http.post(f"{url}/logout", data={"csrf": csrf}) as resp:
                assert str(resp.url) == f"{url}/login"
            conn = open_db(data / "node.db")
            try:
                rows = conn.execute(
                    "SELECT COUNT(*) FROM officer_sessions WHERE officer_id IS NOT NULL"
                ).fetchone()
                assert rows[0] == 0
            finally:
                conn.close()
    finally:
        kids.stop_all()
