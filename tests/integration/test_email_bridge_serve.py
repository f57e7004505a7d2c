"""`relay247 node serve` with `[email_bridge]` on, for real (issue 18 §2, PROTOCOL.md §22).

Everything is made by the CLI as an operator would: the network (with MT added by
``network add-member --email --openpgp-cert``), the nodes, FR's OpenPGP key
(``node openpgp-key``), its mailbox password in the key file (``node email-password``)
and its certificate for the member (``node openpgp-cert``). The relay and FR's node run
as processes; GnuPG plays MT over aiosmtpd and Dovecot. The request goes out, the reply
comes back into the case, both records are logged; a forged reply is refused; SIGTERM
stops the node cleanly while its mailbox loop waits in IMAP IDLE.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, cast

import aiohttp
import pytest

from node.api.client import NodeApiClient
from node.email_bridge import armored_payload
from schemas.examples import EXAMPLES
from tests.integration._crash_load import RelayProcess
from tests.integration.test_email_bridge import NODE_ADDRESS, _reply, gpg, impostor, mail
from tests.integration.test_email_bridge_network import _preserved
from tests.integration.test_node_process import (
    PASS,
    Net,
    NodeProcess,
    _ok,
    _passphrase,
    _publish,
    net,
    run,
)
from tests.support.bodies import addressed
from tests.support.mailserver import USER, GpgMember, MailServer, mail_available
from tests.support.network import member_keys

if TYPE_CHECKING:
    from node.email_bridge import NodeOpenPgpKey

pytestmark = pytest.mark.skipif(mail_available() is not None, reason=str(mail_available()))
__all__ = ["_passphrase", "gpg", "impostor", "mail", "net"]  # the fixtures this module uses


def _bridge_on(toml: Path, **settings: str) -> None:
    """Set keys of ``[email_bridge]`` in ``toml`` (the other sections are left alone)."""
    head, section = toml.read_text().split("[email_bridge]\n", 1)
    section, tail = section.split("\n# Alerts to the officer", 1)
    for key, value in settings.items():
        section, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", section)
        assert n == 1, key
    toml.write_text(f"{head}[email_bridge]\n{section}\n# Alerts to the officer{tail}")


def _email_log(db: Path) -> list[tuple[str, str, int | None]]:
    # Read-only look at a database another process writes (WAL allows it).
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT direction, state, leaf_index FROM email_log ORDER BY rowid")
        return [(str(d), str(s), i) for d, s, i in rows.fetchall()]


async def _until(check: object) -> None:
    assert callable(check)
    async with asyncio.timeout(90):
        while True:
            if await check():
                return
            await asyncio.sleep(0.1)  # polling another process's state, not timing it


async def test_node_serve_runs_the_bridge_from_its_config(
    net: Net, mail: MailServer, gpg: GpgMember, impostor: GpgMember, tmp_path: Path
) -> None:
    cert = tmp_path / "mt.asc"
    cert.write_text(gpg.armored_cert())
    mt = member_keys("MT")
    _ok(run(
        "network", "add-member", "--dir", net.root / "net", "--id", "MT",
        "--signing-key", mt.signing.public.hex(), "--encryption-key", mt.encryption.public.hex(),
        "--transport-key", mt.transport.public.hex(), "--email", gpg.address,
        "--openpgp-cert", cert,
    ))  # fmt: skip
    toml, data = net.node_toml("FR"), net.root / "fr"
    _bridge_on(
        toml, enabled="true", from_address=f'"{NODE_ADDRESS}"', smtp_host='"127.0.0.1"',
        smtp_port=str(mail.smtp_port), smtp_login="false", imap_host='"127.0.0.1"',
        imap_port=str(mail.imap_port), user=f'"{USER}"', password_source='"keystore"',
        ca_file=f'"{mail.root / "cert.pem"}"', idle_seconds="2", retry_seconds="0.2",
    )  # fmt: skip
    refused = await asyncio.to_thread(run, "node", "serve", "--config", toml)  # no key yet
    assert refused.exit_code == 2
    assert "relay247 node openpgp-key" in refused.output
    _ok(run("node", "openpgp-key", "--config", toml))
    secret = tmp_path / "typed"
    secret.write_text(mail.login[1] + "\n")
    _ok(run("node", "email-password", "--config", toml, "--password-file", secret))
    _ok(run("node", "openpgp-cert", "--config", toml, "--out", tmp_path / "fr.asc"))
    gpg.import_cert((tmp_path / "fr.asc").read_text())
    impostor.import_cert((tmp_path / "fr.asc").read_text())
    fingerprint = gpg.run("--with-colons", "--list-keys", NODE_ADDRESS).stdout.decode()
    fr_fpr = next(x.split(":")[9] for x in fingerprint.splitlines() if x.startswith("fpr"))
    mail.handler.local = {NODE_ADDRESS}

    relay = RelayProcess(net.root / "relay" / "relay.toml", net.port, env={})
    relay.env["RELAY247_PASSPHRASE"] = PASS
    await relay.start()
    node = NodeProcess(toml)
    try:
        await _publish(net)
        node.start()
        async with aiohttp.ClientSession() as session:

            async def serving() -> bool:
                try:
                    await NodeApiClient.from_data_dir(data, session).status()
                except Exception:  # noqa: BLE001 - not up yet (no port file, no answer)
                    return False
                return True

            await _until(serving)
            api = NodeApiClient.from_data_dir(data, session)
            request = addressed(EXAMPLES["preservation_request"], "FR", "MT")
            before = len(mail.handler.received)

            async def sent_ok() -> bool:  # the node may not hold the new directory yet
                try:
                    await api.send("MT", request)
                except Exception:  # noqa: BLE001 - retried until the directory is there
                    return False
                return True

            await _until(sent_ok)

            async def mailed() -> bool:
                return len(mail.handler.received) > before

            await _until(mailed)
            raw = mail.handler.received[-1]
            _plain, status = gpg.decrypt(armored_payload(raw))
            assert f" {fr_fpr} " in status
            msg_id = (await api.case(request.case_id)).timeline[0].msg_id
            fr_key = cast("NodeOpenPgpKey", _FprOnly(fr_fpr))  # GnuPG encrypts to it
            answer = _preserved(request.case_id, msg_id)
            mail.deliver(_reply(gpg, fr_key, answer, signer=impostor))  # forged
            mail.deliver(_reply(gpg, fr_key, answer))

            async def recorded() -> bool:
                logged = _email_log(data / "node.db")
                return [(d, s) for d, s, _ in logged] == [
                    ("sent", "logged"),
                    ("received", "logged"),
                ]

            await _until(recorded)
            detail = await api.case(request.case_id)
            assert detail.summary.state == "preserved"
            assert [t.direction for t in detail.timeline] == ["out", "in"]
        assert node.terminate() == 0  # stops cleanly, its mailbox loop waiting in IDLE
        log = node.log.read_text()
        assert "e-mail refused" in log
        assert "bad_signature" in log
        assert mail.login[1] not in log  # the mailbox password is never logged
    finally:
        if node.proc is not None and node.proc.poll() is None:
            node.kill()
        relay.terminate()


class _FprOnly:
    """What ``_reply`` needs of the node's key: the fingerprint GnuPG encrypts to."""

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
