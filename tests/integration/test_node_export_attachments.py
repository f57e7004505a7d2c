"""`export-case --with-attachments` and `audit verify-bundle` over the ciphertexts (§7.3, §15)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import msgspec
from click.testing import CliRunner, Result

from cli.main import cli
from node.events import ReceiptReceived
from schemas._attachment import ATTACHMENTS
from schemas._links import LinkType
from schemas.node_api_links import LinkRequest
from tests.integration._node_services import peers
from tests.integration.test_node_api import request
from tests.integration.test_node_export import _settled
from tests.support.fake_relay import next_event
from tests.support.network import make_network
from tests.support.relay import running_relay, signed


def _run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


async def test_bundle_with_attachments_verifies_and_one_flipped_byte_is_refused(
    tmp_path: Path,
) -> None:
    net = make_network()
    net.declare(ATTACHMENTS)  # as `node init` writes it (PROTOCOL.md §10.10)
    files = [tmp_path / "screenshot.png", tmp_path / "ips.csv"]
    files[0].write_bytes(os.urandom(150_000))
    files[1].write_bytes(b"203.0.113.7,443,2026-12-01T10:00:00Z\n" * 3000)
    out = tmp_path / "bundle.json"
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr = p["FR"]
        fr_q = fr.node.events.queue()
        made = [
            await fr.api.upload_attachment(f, name=f.name, media_type=m)
            for f, m in zip(files, ("image/png", "text/csv"), strict=True)
        ]
        body = msgspec.structs.replace(request(), attachments=tuple(made))
        await fr.api.send("US", body)
        await next_event(fr_q, ReceiptReceived)
        await _settled(relay)
        await signed(relay)
        exported = await asyncio.to_thread(
            _run, "node", "export-case", body.case_id, "--out", out, "--with-attachments",
            "--data", fr.data, "--json",
        )  # fmt: skip
        assert exported.exit_code == 0, exported.output
    written = json.loads(exported.output)["attachments"]
    beside = tmp_path / "bundle.json.attachments"
    assert sorted(written) == sorted(str(beside / f"{a.blob_id}.ct") for a in made)
    pins = ("--trust-root", fr.data / "trust.json", "--log-key", relay.state.keys.log_key)

    ok = _run("audit", "verify-bundle", out, *pins)
    assert ok.exit_code == 0, ok.output
    assert ok.output.count("the file matches the hash the log committed to") == 2

    # One flipped byte in one exported ciphertext: refused, naming the attachment.
    target = beside / f"{made[1].blob_id}.ct"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    refused = _run("audit", "verify-bundle", out, *pins)
    assert refused.exit_code == 1
    assert "REFUSED" in refused.output
    assert made[1].blob_id in refused.output

    # A missing file is refused too; with no directory at all, only the hashes are shown.
    target.unlink()
    assert _run("audit", "verify-bundle", out, *pins).exit_code == 1
    beside.rename(tmp_path / "elsewhere")
    hashes_only = _run("audit", "verify-bundle", out, *pins)
    assert hashes_only.exit_code == 0, hashes_only.output
    assert hashes_only.output.count("ciphertext not included") == 2


async def test_linked_cases_attachments_are_exported_and_checked(tmp_path: Path) -> None:
    # M6: `--with-linked --with-attachments` writes the linked cases' ciphertexts too, and
    # verify-bundle checks them against the hashes the log committed to
    net = make_network()
    net.declare(ATTACHMENTS)  # as `node init` writes it (PROTOCOL.md §10.10)
    src = tmp_path / "linked.bin"
    src.write_bytes(os.urandom(120_000))
    out = tmp_path / "bundle.json"
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr = p["FR"]
        fr_q = fr.node.events.queue()
        main = request()
        await fr.api.send("US", main)
        await next_event(fr_q, ReceiptReceived)
        made = await fr.api.upload_attachment(src, name=src.name, media_type="text/plain")
        other = msgspec.structs.replace(request(), case_id="ab" * 16, attachments=(made,))
        await fr.api.send("US", other)
        await next_event(fr_q, ReceiptReceived)
        await fr.api.link(main.case_id, LinkRequest(type=LinkType.RELATED, case_id=other.case_id))
        await _settled(relay)
        await signed(relay)
        exported = await asyncio.to_thread(
            _run, "node", "export-case", main.case_id, "--out", out, "--with-attachments",
            "--with-linked", "--data", fr.data, "--json",
        )  # fmt: skip
        assert exported.exit_code == 0, exported.output
    kept = tmp_path / "bundle.json.attachments" / f"{made.blob_id}.ct"
    assert json.loads(exported.output)["attachments"] == [str(kept)]
    pins = ("--trust-root", fr.data / "trust.json", "--log-key", relay.state.keys.log_key)
    ok = _run("audit", "verify-bundle", out, *pins)
    assert ok.exit_code == 0, ok.output
    assert ok.output.count("the file matches the hash the log committed to") == 1
    data = bytearray(kept.read_bytes())
    data[len(data) // 2] ^= 0x01
    kept.write_bytes(bytes(data))
    refused = _run("audit", "verify-bundle", out, *pins)
    assert refused.exit_code == 1
    assert made.blob_id in refused.output
