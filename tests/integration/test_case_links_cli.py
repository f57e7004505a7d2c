"""``relay247 node link/unlink/show --follow/send --link/export-case --with-linked``
against two real nodes' local APIs through a real relay (PROTOCOL.md §17)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner, Result

from cli.main import cli
from node.events import MessageReceived
from protocol.evidence import verify_bundle
from schemas._links import CASE_LINKS
from schemas.messages import encode_body
from tests.integration._node_services import peers
from tests.integration.test_case_links import _exchange, _request
from tests.integration.test_node_api import until
from tests.integration.test_node_export import _settled
from tests.support.fake_relay import next_event
from tests.support.network import make_network
from tests.support.relay import running_relay, signed


async def _cli(*args: str | Path) -> Result:
    # Each command runs its own event loop (asyncio.run): off this test's loop.
    return await asyncio.to_thread(CliRunner().invoke, cli, [str(a) for a in args])


def _json(result: Result) -> dict[str, object]:
    # The nodes run in this process and log to the same stdout: take the JSON line.
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("{")]
    value = json.loads(line)
    assert isinstance(value, dict)
    return value


async def test_link_show_send_and_export_from_the_command_line(tmp_path: Path) -> None:
    net = make_network()
    net.overrides["US"] = {"capabilities": (CASE_LINKS,)}
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr, us = p["FR"], p["US"]
        fr_data = ("--data", fr.data)
        a, b = _request(), _request()
        await _exchange(fr, us, a)
        await _exchange(fr, us, b)
        # A local link, by prefix; shown both ways; refused twice; then removed.
        # A control character in the note is refused (protocol/free_text.py), nothing stored.
        ansi = await _cli("node", "link", a.case_id[:10], b.case_id, "--type", "supersedes",
                          "--note", "même\x1b[2J affaire", *fr_data)  # fmt: skip
        assert ansi.exit_code == 2, ansi.output
        assert "no control or format character (U+001B)" in ansi.output
        done = await _cli("node", "link", a.case_id[:10], b.case_id, "--type", "supersedes",
                          "--note", "même affaire", *fr_data)  # fmt: skip
        assert done.exit_code == 0, done.output
        assert "not sent" in done.output
        again = await _cli("node", "link", a.case_id, b.case_id, "--type", "supersedes", *fr_data)
        assert again.exit_code == 1, again.output  # conflict: refused at run time
        bad = await _cli("node", "link", a.case_id, b.case_id, "--type", "follows", *fr_data)
        assert bad.exit_code == 2
        shown = await _cli("node", "show", a.case_id, "--brief", *fr_data)
        assert f"→ Supersedes the case: {b.case_id}" in shown.output, shown.output
        assert "this node only" in shown.output
        assert "même affaire" in shown.output
        shown = await _cli("node", "show", b.case_id, "--brief", "--lang", "fr", *fr_data)
        assert f"← Remplacée par: {a.case_id}" in shown.output, shown.output
        followed = await _cli("node", "show", a.case_id, "--follow", "--json", *fr_data)
        data = _json(followed)
        linked = data["linked"]
        assert isinstance(linked, list)
        assert [c["summary"]["case_id"] for c in linked] == [b.case_id]
        gone = await _cli("node", "unlink", a.case_id, b.case_id, *fr_data)
        assert gone.exit_code == 0, gone.output
        assert "removed 1 link(s)" in gone.output
        assert (await _cli("node", "unlink", a.case_id, b.case_id, *fr_data)).exit_code == 2
        # send --link: the link travels to US and shows there.
        c = _request()
        file = tmp_path / "c.json"
        file.write_bytes(encode_body(c))
        us_q = us.node.events.queue()
        link = f"{a.case_id[:8]}:mla_follows"
        sent = await _cli("node", "send", file, "--to", "US", "--link", link, "--json", *fr_data)
        assert sent.exit_code == 0, sent.output
        assert _json(sent)["links_kept_local"] == []
        await next_event(us_q, MessageReceived)
        # The case is rebuilt after the event: wait for its link to be stored.
        links = us.services.cases.links
        await until(lambda: links.of_case(a.case_id), lambda found: len(found) == 1)
        us_show = await _cli("node", "show", a.case_id, "--brief", "--data", us.data)
        assert f"← Preservation followed by the mutual legal assistance request: {c.case_id}" in (
            us_show.output
        ), us_show.output
        bad_link = await _cli("node", "send", file, "--to", "US", "--link", "nocolon", *fr_data)
        assert bad_link.exit_code == 2
        assert "CASE:TYPE" in bad_link.output
        # export-case --with-linked: one bundle, both cases, verified offline.
        await _settled(relay)
        await signed(relay)
        out = tmp_path / "bundle.json"
        exported = await _cli("node", "export-case", c.case_id, "--out", out, "--with-linked",
                              *fr_data)  # fmt: skip
        assert exported.exit_code == 0, exported.output
    report = verify_bundle(
        out.read_bytes(),
        trust_root=net.root(),
        now=datetime.now(UTC),
        log_key=relay.state.keys.log_key,
    )
    assert [case_id for case_id, _ in report.linked] == [a.case_id]
    checked = await _cli("audit", "verify-bundle", out, "--trust-root", fr.data / "trust.json",
                         "--log-key", relay.state.keys.log_key)  # fmt: skip
    assert checked.exit_code == 0, checked.output
    assert f"Linked case {a.case_id}: 2 message(s)." in checked.output
