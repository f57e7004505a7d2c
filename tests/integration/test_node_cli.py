"""The officer's commands (`relay247 node template/new/send/inbox/cases/show/reply/...`).

Against real processes: a network made with the CLI, `relay247 relay serve` and two
`relay247 node serve` (FR and US) on loopback. The commands themselves run in-process
(click's runner) and reach the nodes through their local API, as an officer's would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from cli import _node_ops
from cli._demo_procs import Children, free_port, set_toml
from cli.main import cli, load

PASS = "node cli test passphrase"
WAIT = 30.0  # seconds: generous bound for another process to deliver a message


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def ok_json(*args: str | Path) -> Any:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _run(*args: str | Path) -> None:
    env = {**os.environ, "RELAY247_PASSPHRASE": PASS}
    done = subprocess.run(
        [sys.executable, "-m", "cli", *(str(a) for a in args)],
        capture_output=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()


def eventually(cond: Callable[[], Any], what: str) -> Any:
    """Poll another process's state until ``cond`` returns something truthy."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Net:
    root: Path
    kids: Children = field(default_factory=lambda: Children(PASS))

    def data(self, member: str) -> Path:
        return self.root / member.lower()


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    n = Net(tmp_path_factory.mktemp("nodecli"))
    trust = n.root / "net" / "trust.json"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    _run("network", "init", "--dir", n.root / "net", "--name", "cli-net")
    for member in ("FR", "US"):
        _run("node", "init", "--member", member, "--data", n.data(member),
             "--authority", f"24/7 point {member}", "--languages", "en,fr",
             "--relay", url, "--trust-root", trust)  # fmt: skip
        set_toml(n.data(member) / "node.toml", "api", "port", "0")
        _run("network", "add-member", "--dir", n.root / "net", n.data(member) / "member.json")
    _run("relay", "init", "--data", n.root / "relay", "--id", "cli-relay",
         "--public-url", url, "--port", str(port), "--trust-root", trust)  # fmt: skip
    set_toml(n.root / "relay" / "relay.toml", "audit", "checkpoint_interval", "0.5")
    try:
        cfg = n.root / "relay" / "relay.toml"
        n.kids.start("relay", ["relay", "serve", "--config", str(cfg)], n.root / "relay.log")
        eventually(lambda: _healthy(url), "the relay")
        _run("network", "publish", "--dir", n.root / "net", "--relay", url)
        log_key = json.loads(_get(url + "/v1/info"))["log_key"]
        for member in ("FR", "US"):
            cfg = n.data(member) / "node.toml"
            # witnesses of the relay's log (an evidence bundle needs a cosigned checkpoint)
            set_toml(cfg, "witness", "log_key", json.dumps(log_key))
            set_toml(cfg, "witness", "interval", "1.0")
            log = n.data(member) / "node.log"
            n.kids.start(member, ["node", "serve", "--config", str(cfg)], log)
        for member in ("FR", "US"):
            eventually(partial(_ready, n.data(member)), f"node {member}")
        yield n
    finally:
        n.kids.stop_all()


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as r:
        return bytes(r.read())


def _healthy(url: str) -> bool:
    try:
        _get(url + "/healthz")
    except OSError:
        return False
    return True


def _ready(data: Path) -> bool:
    result = invoke("node", "status", "--data", data, "--json")
    return result.exit_code == 0 and json.loads(result.stdout)["directory_version"] is not None


def _request_file(tmp_path: Path, to: str = "US", edit: Callable[[str], str] | None = None) -> Path:
    result = invoke("node", "template", "preservation")
    assert result.exit_code == 0, result.output
    text = result.stdout.replace('"member": "DE-BKA"', f'"member": "{to}"')
    path = tmp_path / "request.json"
    path.write_text(edit(text) if edit else text, encoding="utf-8")
    return path


# -- template and new: no node needed --------------------------------------------------


def test_operator_commands_are_listed() -> None:
    result = invoke("node", "--help")
    group = load("node")
    assert isinstance(group, click.Group)
    for name in ("template", "new", "send", "inbox", "cases", "show", "reply", "extend",
                 "withdraw", "mla-submitted", "export-case", "status"):  # fmt: skip
        assert name in group.commands
        assert name in result.output


def test_template_is_commented_json_that_new_accepts(tmp_path: Path) -> None:
    path = _request_file(tmp_path)
    text = path.read_text()
    assert text.startswith("// relay247 request file")
    assert "// Necessity of preservation" in text
    assert "one of: urgent, high, normal" in text
    answer = ok_json("node", "new", path)
    assert answer["valid"] is True
    assert answer["kind"] == "preservation_request"
    assert answer["to"] == "US"
    other = tmp_path / "again"
    other.mkdir()
    # each template gets a fresh case id
    assert ok_json("node", "new", _request_file(other))["case_id"] != answer["case_id"]


def test_new_names_the_field_of_a_bad_value(tmp_path: Path) -> None:
    path = _request_file(tmp_path, edit=lambda t: t.replace('"port": 51234', '"port": 70000'))
    result = invoke("node", "new", path)
    assert result.exit_code == 2
    assert "$.data.identifiers[3].port" in result.output


def test_new_names_a_missing_field(tmp_path: Path) -> None:
    def drop(text: str) -> str:
        return "\n".join(x for x in text.splitlines() if '"necessity"' not in x)

    result = invoke("node", "new", _request_file(tmp_path, edit=drop))
    assert result.exit_code == 2
    assert "$.necessity: required field is missing" in result.output


def test_new_names_a_broken_rule(tmp_path: Path) -> None:
    def twice(text: str) -> str:
        return text.replace('"categories": ["subscriber","traffic","content"]',
                            '"categories": ["subscriber","subscriber"]')  # fmt: skip

    result = invoke("node", "new", _request_file(tmp_path, edit=twice))
    assert result.exit_code == 2
    assert "$.data.categories" in result.output


def test_new_gives_the_line_of_a_syntax_error(tmp_path: Path) -> None:
    def comma(text: str) -> str:
        return text.replace('"status": "new",', '"status": "new"')

    path = _request_file(tmp_path, edit=comma)
    result = invoke("node", "new", path)
    assert result.exit_code == 2
    line = next(i for i, x in enumerate(path.read_text().splitlines(), 1) if '"status"' in x)
    assert "not valid JSON" in result.output
    assert f"(line {line + 2})" in result.output or f"(line {line + 1})" in result.output


def test_new_refuses_a_file_that_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(b"\xff\xfe{}")
    result = invoke("node", "new", path)
    assert result.exit_code == 2
    assert "not UTF-8" in result.output


def test_commands_say_node_not_running(tmp_path: Path) -> None:
    for args in (("inbox",), ("cases",), ("show", "ab" * 16), ("status",)):
        result = invoke("node", *args, "--data", tmp_path)
        assert result.exit_code == 1, result.output
        assert "node not running" in result.output


def test_a_stale_port_file_is_node_not_running(tmp_path: Path) -> None:
    (tmp_path / "api.port").write_text(str(free_port()))
    (tmp_path / "api.token").write_text("00" * 32)
    result = invoke("node", "cases", "--data", tmp_path)
    assert result.exit_code == 1
    assert "node not running" in result.output


# -- against the running nodes ---------------------------------------------------------


@pytest.fixture(scope="module")
def case(net: Net, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = _request_file(tmp_path_factory.mktemp("req"))
    sent = ok_json("node", "send", path, "--to", "US", "--data", net.data("FR"))
    eventually(
        lambda: any(m["msg_id"] == sent["msg_id"]
                    for m in ok_json("node", "inbox", "--data", net.data("US"))["messages"]),
        "US to receive the request",
    )  # fmt: skip
    return str(sent["case_id"])


def _timeline(net: Net, member: str, case: str) -> list[dict[str, Any]]:
    return list(ok_json("node", "show", case, "--data", net.data(member))["timeline"])


def test_send_refuses_another_addressee(net: Net, tmp_path: Path) -> None:
    result = invoke("node", "send", _request_file(tmp_path), "--to", "FR", "--data", net.data("FR"))
    assert result.exit_code == 2
    assert "$.requested.member is US but --to is FR" in result.output


def test_template_from_and_to_make_a_request_any_member_can_send(net: Net, tmp_path: Path) -> None:
    # The example's requesting member is FR: from US it was refused by US's own node
    # ("FR is not the sender US") until --from named the sender.
    made = invoke("node", "template", "preservation", "--to", "FR", "--from", "US")
    assert made.exit_code == 0, made.output
    path = tmp_path / "from-us.json"
    path.write_text(made.stdout, encoding="utf-8")
    sent = invoke("node", "send", path, "--to", "FR", "--data", net.data("US"), "--json")
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.stdout)["case_id"] == ok_json("node", "new", path)["case_id"]


def test_template_help_names_every_kind_once_and_whole() -> None:
    text = invoke("node", "template", "--help").output
    usage = text.split("\n\n")[0]
    assert "[KIND]" in usage
    assert "preservation_request" not in usage
    for kind in _node_ops._TEMPLATES:
        assert kind in text.replace("\n  ", " ")
    assert "--from" in text


def test_send_refuses_an_invalid_file_before_the_node(net: Net, tmp_path: Path) -> None:
    path = _request_file(tmp_path, edit=lambda t: t.replace('"port": 51234', '"port": -1'))
    result = invoke("node", "send", path, "--to", "US", "--data", net.data("FR"))
    assert result.exit_code == 2
    assert "$.data.identifiers[3].port" in result.output


def test_inbox_cases_and_show(net: Net, case: str) -> None:
    messages = ok_json("node", "inbox", "--data", net.data("US"))["messages"]
    assert [m["kind"] for m in messages if m["case_id"] == case] == ["preservation_request"]
    listed = ok_json("node", "cases", "--data", net.data("FR"))["cases"]
    assert [c["role"] for c in listed if c["case_id"] == case] == ["requester"]
    by_prefix = ok_json("node", "show", case[:10], "--data", net.data("FR"))
    assert by_prefix["summary"]["case_id"] == case
    table = invoke("node", "cases", "--data", net.data("US"))
    assert table.exit_code == 0
    assert case in table.output


def test_show_in_french(net: Net, case: str) -> None:
    result = invoke("node", "show", case, "--lang", "fr", "--data", net.data("US"))
    assert result.exit_code == 0, result.output
    assert "Demande de conservation rapide (art. 29)" in result.output
    assert "Reçu" in result.output
    assert "Chronologie" in result.output
    # free text is shown as written
    assert "Phishing kits are typically removed within days" in result.output


def test_show_unknown_case(net: Net) -> None:
    result = invoke("node", "show", "0" * 32, "--data", net.data("FR"))
    assert result.exit_code == 2
    assert "refused" in result.output
    result = invoke("node", "show", "zz", "--data", net.data("FR"))
    assert result.exit_code == 2
    assert "no case starting with 'zz'" in result.output


def test_reply_dry_run_fills_the_case(net: Net, case: str) -> None:
    result = invoke("node", "reply", case, "--kind", "taken-in-charge", "--officer-name", "Dana",
                    "--officer-email", "duty@us.example.org", "--dry-run",
                    "--data", net.data("US"))  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    request = _timeline(net, "US", case)[0]
    assert body["kind"] == "taken_in_charge"
    assert body["case_id"] == case
    assert body["in_reply_to"] == request["msg_id"]
    assert body["officer"]["name"] == "Dana"
    assert body["officer"]["email"] == "duty@us.example.org"


def test_reply_names_the_missing_field_and_option(net: Net, case: str) -> None:
    result = invoke("node", "reply", case, "--kind", "refused", "--explanation", "no",
                    "--data", net.data("US"))  # fmt: skip
    assert result.exit_code == 2
    assert "$.ground: required field is missing (give --ground)" in result.output


def test_reply_refuses_an_option_of_another_kind(net: Net, case: str) -> None:
    result = invoke("node", "reply", case, "--kind", "refused", "--until", "2030-01-01",
                    "--data", net.data("US"))  # fmt: skip
    assert result.exit_code == 2
    assert "--until does not apply to a refusal reply" in result.output


def test_reply_needs_an_incoming_request(net: Net, case: str) -> None:
    result = invoke("node", "reply", case, "--kind", "preserved", "--until", "2030-01-01",
                    "--data", net.data("FR"))  # fmt: skip
    assert result.exit_code == 2
    assert "no incoming request" in result.output


def test_sequels_need_our_request(net: Net, case: str) -> None:
    result = invoke(
        "node", "withdraw", case, "--reason", "investigation_closed", "--data", net.data("US")
    )
    assert result.exit_code == 2
    assert "sent no request" in result.output


def test_reply_with_bad_date(net: Net, case: str) -> None:
    result = invoke("node", "reply", case, "--kind", "preserved", "--until", "next week",
                    "--data", net.data("US"))  # fmt: skip
    assert result.exit_code == 2
    assert "--until: 'next week' is not a date" in result.output


def test_the_whole_flow_from_the_cli(net: Net, case: str, tmp_path: Path) -> None:
    us, fr = net.data("US"), net.data("FR")
    ok_json("node", "reply", case, "--kind", "taken-in-charge", "--officer-name", "Dana Reyes",
            "--officer-phone", "+12025550123", "--data", us)  # fmt: skip
    ok_json("node", "reply", case, "--kind", "preserved", "--until", "2030-01-31",
            "--scope", "full", "--data", us)  # fmt: skip
    eventually(
        lambda: "preserved" in [e["kind"] for e in _timeline(net, "FR", case)],
        "FR to receive the preservation",
    )  # an officer extends once they know it is preserved, quoting the other side's ref
    ok_json("node", "extend", case, "--until", "2030-06-30", "--mla-status", "in_preparation",
            "--reason", "Translation of the annexes.", "--data", fr)  # fmt: skip
    ok_json("node", "mla-submitted", case, "--mla-ref", "MLA-1", "--sent-to", "DOJ OIA",
            "--data", fr)  # fmt: skip
    ok_json("node", "withdraw", case, "--reason", "data_obtained_otherwise", "--data", fr)
    want = ["preservation_request", "taken_in_charge", "preserved", "preservation_extension",
            "mla_submitted", "preservation_withdrawal"]  # fmt: skip

    def both_have_all() -> bool:
        return all(
            sorted(e["kind"] for e in _timeline(net, m, case)) == sorted(want)
            and all(e["status"] in ("delivered", "accepted") for e in _timeline(net, m, case))
            for m in ("FR", "US")
        )

    eventually(both_have_all, "every message delivered both ways")
    preserved = next(e for e in _timeline(net, "FR", case) if e["kind"] == "preserved")
    assert preserved["body"]["preserved_until"].startswith("2030-01-31T23:59:59")
    assert preserved["body"]["categories"] == ["subscriber", "traffic", "content"]
    extension = next(e for e in _timeline(net, "US", case) if e["kind"] == "preservation_extension")
    assert extension["body"]["previous_ref"] == preserved["body"]["sender_ref"]
    text = invoke("node", "show", case, "--data", fr)
    assert "Data preserved" in text.output
    out = tmp_path / "bundle.json"

    tries: list[str] = []

    def exported() -> bool:
        result = invoke("node", "export-case", case, "--out", out, "--data", fr)
        tries.append(result.output)
        return result.exit_code == 0

    eventually(exported, "the evidence bundle")
    assert f"evidence bundle of case {case} written" in tries[-1]
    with (fr / "node.toml").open("rb") as f:
        log_key = tomllib.load(f)["witness"]["log_key"]
    result = invoke("audit", "verify-bundle", out, "--trust-root", net.root / "net" / "trust.json",
                    "--log-key", log_key)  # fmt: skip
    assert result.exit_code == 0, result.output
    # the court exhibit (PROTOCOL.md §21): the same bundle inside a PDF/A, in French
    pdf = tmp_path / "exhibit.pdf"
    result = invoke("node", "export-case", case, "--pdf", pdf, "--lang", "fr", "--data", fr)
    assert result.exit_code == 0, result.output
    assert "court exhibit of case" in result.output
    result = invoke("audit", "verify-bundle", pdf, "--trust-root", net.root / "net" / "trust.json",
                    "--log-key", log_key)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "language fr" in result.output


def test_reply_from_a_fields_file(net: Net, case: str, tmp_path: Path) -> None:
    fields = tmp_path / "traffic.json"
    fields.write_text(
        "// the provider found on the path\n"
        '{"provider": {"name": "Example Mail B.V.", "country": "NL"},\n'
        ' "path": [{"provider": "Example Cloud Inc.", "country": "US"}]}\n'
    )
    result = invoke("node", "reply", case[:12], "--kind", "traffic-data", "--file", fields,
                    "--text", "SMTP to 203.0.113.77:25", "--dry-run",
                    "--data", net.data("US"))  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["kind"] == "traffic_data_disclosure"
    assert body["provider"]["country"] == "NL"
    assert body["traffic_data"] == "SMTP to 203.0.113.77:25"
    fields.write_text('// comment\n{"provider": {"name": "x"},\n "path": [}\n')
    result = invoke("node", "reply", case, "--kind", "traffic-data", "--file", fields,
                    "--data", net.data("US"))  # fmt: skip
    assert result.exit_code == 2
    assert "not valid JSON" in result.output
    assert "(line 3)" in result.output


def test_config_option_and_tables(net: Net, case: str) -> None:
    config = net.data("US") / "node.toml"
    listed = ok_json("node", "cases", "--config", config)["cases"]
    assert case in [c["case_id"] for c in listed]
    status = invoke("node", "status", "--config", config)
    assert status.exit_code == 0, status.output
    assert "member: US" in status.output
    inbox = invoke("node", "inbox", "--data", net.data("US"))
    assert inbox.exit_code == 0
    assert "Expedited preservation request (Art. 29)" in inbox.output
    bad = invoke("node", "cases", "--config", net.root / "missing.toml")
    assert bad.exit_code == 2


def test_send_to_a_member_not_in_the_directory(net: Net, tmp_path: Path) -> None:
    path = _request_file(tmp_path, to="JP")
    result = invoke("node", "send", path, "--to", "JP", "--data", net.data("FR"))
    assert result.exit_code == 2
    assert "the node refused: to: JP is not in the directory" in result.output
