"""What auditors and officers read (issue 11 §5), against real processes.

A network made with the CLI, `relay247 relay serve` and two `relay247 node serve` on
loopback, FR in Europe/Paris and US in America/New_York, so that every time shown has
to be converted; the commands run in-process (click's runner) or, when a printed
command must work as pasted, as a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result

from cli._demo_procs import free_port, set_toml
from cli.main import cli
from tests.integration.test_node_cli import Net, _get, _healthy, _run, eventually

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
#: text of the template request that must never reach a log (the bodies are sealed)
SECRET_MARKERS = ("Phishing kits are typically removed", "secure-login-bank.example.com")


def invoke(*args: str | Path, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], input=stdin)


def ok_json(*args: str | Path) -> Any:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _ready(data: Path) -> bool:
    result = invoke("node", "status", "--data", data, "--json")
    return result.exit_code == 0 and json.loads(result.stdout)["directory_version"] is not None


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    n = Net(tmp_path_factory.mktemp("officers"))
    trust = n.root / "net" / "trust.json"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    _run("network", "init", "--dir", n.root / "net", "--name", "officers-net")
    for member, zone in (("FR", "Europe/Paris"), ("US", "America/New_York")):
        _run("node", "init", "--member", member, "--data", n.data(member),
             "--authority", f"24/7 point {member}", "--languages", "en,fr",
             "--time-zone", zone, "--relay", url, "--trust-root", trust)  # fmt: skip
        set_toml(n.data(member) / "node.toml", "api", "port", "0")
        _run("network", "add-member", "--dir", n.root / "net", n.data(member) / "member.json")
    _run("relay", "init", "--data", n.root / "relay", "--id", "officers-relay",
         "--public-url", url, "--port", str(port), "--trust-root", trust)  # fmt: skip
    set_toml(n.root / "relay" / "relay.toml", "audit", "checkpoint_interval", "0.5")
    try:
        cfg = n.root / "relay" / "relay.toml"
        n.kids.start("relay", ["relay", "serve", "--config", str(cfg)], n.root / "relay.log")
        eventually(lambda: _healthy(url), "the relay")
        _run("network", "publish", "--dir", n.root / "net", "--relay", url)
        log_key = json.loads(_get(url + "/v1/info"))["log_key"]
        (n.root / "log_key").write_text(log_key)
        (n.root / "url").write_text(url)
        for member in ("FR", "US"):
            cfg = n.data(member) / "node.toml"
            set_toml(cfg, "witness", "log_key", json.dumps(log_key))
            set_toml(cfg, "witness", "interval", "1.0")
            # US escalates an urgent request after ~1 s, to an alert target it lacks
            # (through the deprecated key: it must keep working, with a warning)
            set_toml(cfg, "clocks", "escalate_after_minutes", "0.02")
            set_toml(cfg, "clocks", "interval", "1.0")
            n.kids.start(
                member, ["node", "serve", "--config", str(cfg)], n.data(member) / "node.log"
            )
        for member in ("FR", "US"):
            eventually(partial(_ready, n.data(member)), f"node {member}")
        yield n
    finally:
        n.kids.stop_all()


def _request(tmp: Path, to: str = "US", *, urgent: bool = False) -> Path:
    result = invoke("node", "template", "preservation")
    assert result.exit_code == 0, result.output
    text = result.stdout.replace('"member": "DE-BKA"', f'"member": "{to}"')
    if urgent:
        text = text.replace('"priority": "high"', '"priority": "urgent"')
    path = tmp / "request.json"
    path.write_text(text, encoding="utf-8")
    return path


def _timeline(net: Net, member: str, case: str) -> list[dict[str, Any]]:
    result = invoke("node", "show", case, "--data", net.data(member), "--json")
    if result.exit_code == 2 and "no such case" in result.output:
        return []  # not arrived yet
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout)["timeline"])


@pytest.fixture(scope="module")
def case(net: Net, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An urgent request FR -> US, taken in charge and preserved until 2030-01-31."""
    tmp = tmp_path_factory.mktemp("req")
    sent = ok_json("node", "send", _request(tmp, urgent=True), "--to", "US",
                   "--data", net.data("FR"))  # fmt: skip
    case_id = str(sent["case_id"])
    eventually(lambda: _timeline(net, "US", case_id), "US to receive the request")
    ok_json("node", "reply", case_id, "--kind", "preserved", "--until", "2030-01-31",
            "--data", net.data("US"))  # fmt: skip
    eventually(
        lambda: [e for e in _timeline(net, "FR", case_id) if e["kind"] == "preserved"],
        "FR to receive the preservation",
    )
    eventually(lambda: all(e["receipt"] for e in _timeline(net, "FR", case_id)), "every receipt")
    return case_id


# -- verify-bundle and its pins; export-case --------------------------------------------


def _export(net: Net, case: str, out: Path, *extra: str) -> Result:
    tries: list[Result] = []

    def exported() -> bool:
        tries.append(invoke("node", "export-case", case, "--out", out, *extra,
                            "--data", net.data("FR")))  # fmt: skip
        return tries[-1].exit_code == 0

    eventually(exported, "the evidence bundle")
    return tries[-1]


def test_export_hint_pins_the_keys_and_runs_as_printed(net: Net, case: str, tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    result = _export(net, case, out)
    [hint] = [ln.strip() for ln in result.output.splitlines() if "verify-bundle" in ln]
    assert "--trust-root" in hint
    assert "--log-key" in hint
    words = shlex.split(hint)
    assert Path(words[words.index("--trust-root") + 1]).is_file()
    assert words[words.index("--log-key") + 1] == (net.root / "log_key").read_text()
    # run literally, as the officer would paste it (`relay247` -> this interpreter's cli)
    assert words[0] == "relay247" or words[0].endswith("relay247")
    done = subprocess.run(
        [sys.executable, "-m", "cli", *words[1:]], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "starting from the trust root pinned by the verifier" in done.stdout
    assert "internal consistency" not in done.stdout


def test_verify_bundle_without_pins_says_so_and_fails(net: Net, case: str, tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    _export(net, case, out)
    bare = invoke("audit", "verify-bundle", out)
    assert bare.exit_code == 1, bare.output
    assert "starting from the pinned trust root" not in bare.output
    assert "named in the bundle itself" in bare.output
    assert "internal consistency only" in bare.output
    assert "--accept-bundle-keys" in bare.output
    # one pin is not enough: the other key still comes from the bundle
    trust = net.root / "net" / "trust.json"
    half = invoke("audit", "verify-bundle", out, "--trust-root", trust)
    assert half.exit_code == 1
    assert "give --log-key" in half.output
    accepted = invoke("audit", "verify-bundle", out, "--accept-bundle-keys")
    assert accepted.exit_code == 0, accepted.output
    assert "internal consistency only" in accepted.output
    as_json = invoke("audit", "verify-bundle", out, "--accept-bundle-keys", "--json")
    assert json.loads(as_json.stdout)["result"] == "internally_consistent_only"


def test_export_case_does_not_overwrite(net: Net, case: str, tmp_path: Path) -> None:
    out = tmp_path / "kept.json"
    out.write_bytes(b"an earlier bundle")
    result = invoke("node", "export-case", case, "--out", out, "--data", net.data("FR"))
    assert result.exit_code == 2
    assert "exists already" in result.output
    assert out.read_bytes() == b"an earlier bundle"
    _export(net, case, out, "--force")
    assert json.loads(out.read_bytes())["case_id"] == case


# -- the witnesses file --------------------------------------------------------------------


def test_audit_witnesses_writes_the_file_audit_verify_needs(
    net: Net, case: str, tmp_path: Path
) -> None:
    trust, directory = net.root / "net" / "trust.json", net.root / "net" / "directory-1.json"
    result = invoke("audit", "witnesses", "--trust-root", trust, "--directory", directory)
    assert result.exit_code == 0, result.output
    keys = [ln for ln in result.stdout.splitlines() if ln and not ln.startswith("#")]
    assert [k.split("+")[0] for k in keys] == ["FR", "US"]
    wfile = tmp_path / "witnesses.txt"
    wfile.write_text(result.stdout)
    url, log_key = (net.root / "url").read_text(), (net.root / "log_key").read_text()

    def verified() -> dict[str, Any] | None:
        r = invoke("audit", "verify", "--relay", url, "--log-key", log_key, "--witnesses",
                   wfile, "--quorum", "2", "--state", tmp_path / "state",
                   "--trust-root", trust, "--json")  # fmt: skip
        if r.exit_code != 0:
            return None
        answer: dict[str, Any] = json.loads(r.stdout)
        return answer

    answer = eventually(verified, "a checkpoint cosigned by both nodes")
    assert answer["ok"] is True
    assert sorted(answer["witnesses"]) == ["FR", "US"]
    only = ok_json("audit", "witnesses", "--trust-root", trust, "--directory", directory,
                   "--member", "US")  # fmt: skip
    assert [k.split("+")[0] for k in only["witnesses"]] == ["US"]


def test_audit_witnesses_verifies_the_directory_first(net: Net, tmp_path: Path) -> None:
    _run("network", "init", "--dir", tmp_path / "other", "--name", "other-net")
    directory = net.root / "net" / "directory-1.json"
    result = invoke("audit", "witnesses", "--trust-root", tmp_path / "other" / "trust.json",
                    "--directory", directory)  # fmt: skip
    assert result.exit_code == 2
    assert "does not verify" in result.output
    assert "+" not in result.stdout  # no key printed


# -- sending twice ------------------------------------------------------------------------


def test_sending_the_same_file_twice_is_refused(
    net: Net, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _request(tmp_path)
    fr = net.data("FR")
    first = ok_json("node", "send", path, "--to", "US", "--data", fr)
    again = invoke("node", "send", path, "--to", "US", "--data", fr)
    assert again.exit_code == 2, again.output
    assert "already sent to US" in again.output
    assert first["msg_id"] in again.output
    # the same content with other comments and layout is the same request
    path.write_text("// a note\n" + path.read_text().replace("\n  ", "\n    "))
    assert invoke("node", "send", path, "--to", "US", "--data", fr, "--json").exit_code == 2
    # at a terminal the officer is asked; "no" sends nothing
    from cli import _node_ops

    monkeypatch.setattr(_node_ops, "interactive", lambda: True)
    asked = invoke("node", "send", path, "--to", "US", "--data", fr, stdin="n\n")
    assert asked.exit_code == 1, asked.output
    assert "Send it again?" in asked.output
    assert "not sent" in asked.output
    outs = [e for e in _timeline(net, "FR", first["case_id"]) if e["direction"] == "out"]
    assert len(outs) == 1
    second = ok_json("node", "send", path, "--to", "US", "--data", fr, "--again")
    assert second["msg_id"] != first["msg_id"]


# -- times and words ----------------------------------------------------------------------


def _offset(zone: ZoneInfo, at: datetime) -> str:
    text = at.astimezone(zone).strftime("%z")
    return f"{text[:3]}:{text[3:]}"


def test_show_uses_the_node_zone_and_says_what_until_means(net: Net, case: str) -> None:
    result = invoke("node", "show", case, "--data", net.data("FR"))
    assert result.exit_code == 0, result.output
    out = result.output
    times = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ([+-]\d\d:\d\d)", out)
    assert times
    # every instant in FR's zone (winter or summer time), whatever offset it was sent with
    assert set(times) <= {"+01:00", "+02:00"}, out
    assert "+00:00" not in out
    # US's "until 2030-01-31" is the end of that day in New York, said in words
    assert (
        "2030-02-01 05:59:59 +01:00 (end of 2030-01-31 in the requested party's time zone, "
        "UTC-05:00)" in out
    )
    # the MLA date of the request is a date: shown as that day, not the next at 00:00
    body = next(e for e in _timeline(net, "FR", case) if e["kind"] == "preservation_request")
    mla = body["body"]["mla_expected_by"]
    assert f"{mla} (end of day)" in out


def test_reply_until_is_the_end_of_the_day_in_the_replying_node_zone(net: Net, case: str) -> None:
    preserved = next(e for e in _timeline(net, "FR", case) if e["kind"] == "preserved")
    assert preserved["body"]["preserved_until"] == "2030-01-31T23:59:59-05:00"


def test_inbox_and_cases_show_the_node_zone(net: Net, case: str) -> None:
    inbox = invoke("node", "inbox", "--data", net.data("US"))
    assert inbox.exit_code == 0
    assert _offset(NEW_YORK, datetime.now(UTC)) in inbox.output
    assert "+00:00" not in inbox.output
    assert "verified and stored" in inbox.output
    cases = invoke("node", "cases", "--data", net.data("FR"))
    assert "+00:00" not in cases.output


def test_french_words_and_receipts(net: Net, case: str) -> None:
    fr = invoke("node", "show", case, "--lang", "fr", "--data", net.data("FR")).output
    for code in ("[delivered]", "[accepted]", "[sent]", "Accepted", "Accepté"):
        assert code not in fr, code
    assert "[remis]" in fr
    assert "[vérifié et enregistré]" in fr
    assert "Accusé de réception: Remis et vérifié" in fr
    assert "fin de la journée du 2030-01-31, heure de la partie requise, UTC-05:00" in fr
    en = invoke("node", "show", case, "--data", net.data("FR")).output
    assert "Receipt: Accepted" not in en
    assert "Delivery receipt: Delivered and verified" in en
    # no label left with nothing after it (sub-objects are headings without a colon)
    for text in (fr, en):
        empty = [ln for ln in text.splitlines() if re.search(r"\S:\s*$", ln)]
        assert empty == [], empty


# -- logs --------------------------------------------------------------------------------


def test_node_log_has_every_message_by_id_and_no_content(net: Net, case: str) -> None:
    fr_log = (net.data("FR") / "node.log").read_text()
    us_log = (net.data("US") / "node.log").read_text()
    request = next(e for e in _timeline(net, "FR", case) if e["kind"] == "preservation_request")
    sent = [json.loads(ln) for ln in fr_log.splitlines() if '"message sent"' in ln]
    assert any(e["msg_id"] == request["msg_id"] and e["to"] == "US" for e in sent), fr_log
    got = [json.loads(ln) for ln in us_log.splitlines() if '"message received"' in ln]
    assert any(e["msg_id"] == request["msg_id"] and e["case_id"] == case for e in got), us_log
    receipts = [json.loads(ln) for ln in fr_log.splitlines() if '"receipt received"' in ln]
    assert any(e["msg_id"] == request["msg_id"] for e in receipts)
    for text in (fr_log, us_log):
        for marker in SECRET_MARKERS:
            assert marker not in text


def test_no_alert_target_is_said_and_no_alert_is_logged_as_sent(net: Net, tmp_path: Path) -> None:
    us_log = net.data("US") / "node.log"
    started = us_log.read_text().split('"node started"')[1]
    assert "no alert target" in started
    # the old key (set above) still works, mapped onto [escalation], and is said at start
    assert "deprecated setting" in started
    assert "clocks.escalate_after_minutes" in started
    # an urgent request nobody answers escalates after ~1 s: not "alert sent" to nobody
    sent = ok_json("node", "send", _request(tmp_path, urgent=True), "--to", "US",
                   "--data", net.data("FR"))  # fmt: skip

    def escalated() -> bool:
        return any(
            '"alert not sent: no alert target"' in ln and sent["case_id"] in ln
            for ln in us_log.read_text().splitlines()
        )

    eventually(escalated, "the escalation")
    assert '"alert sent"' not in us_log.read_text()
    status = CliRunner().invoke(cli, ["node", "status", "--data", str(net.data("US"))])
    assert status.exit_code == 0
    assert "alert targets: 0" in status.stdout
    assert "no alert target is configured" in status.stderr
    assert ok_json("node", "status", "--data", net.data("US"))["alert_targets"] == 0


# -- output conventions -------------------------------------------------------------------


def test_piped_status_is_key_value_lines(net: Net) -> None:
    result = invoke("node", "status", "--data", net.data("FR"))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "member: FR" in lines
    assert all(": " in ln for ln in lines), lines
    assert not any(ch in result.stdout for ch in "┏┃│─")


def test_piped_case_has_no_box_drawing(net: Net, case: str) -> None:
    # The timeline heading was a rich rule ("──── Timeline ────") even when piped.
    for lang, heading in (("en", "Timeline"), ("fr", "Chronologie")):
        result = invoke("node", "show", case, "--data", net.data("FR"), "--lang", lang)
        assert result.exit_code == 0, result.output
        assert heading in result.stdout.splitlines()
        assert not any(ch in result.stdout for ch in "┏┃│─"), result.stdout


def test_config_and_data_must_agree(net: Net, tmp_path: Path) -> None:
    config = net.data("US") / "node.toml"
    agree = invoke("node", "status", "--config", config, "--data", net.data("US"), "--json")
    assert agree.exit_code == 0, agree.output
    disagree = invoke("node", "status", "--config", config, "--data", net.data("FR"))
    assert disagree.exit_code == 2
    assert "different nodes" in disagree.output
    # $RELAY247_NODE_DATA is a default only: an explicit --config wins over it
    env = {"RELAY247_NODE_DATA": str(net.data("FR"))}
    by_env = CliRunner(env=env).invoke(cli, ["node", "status", "--config", str(config), "--json"])
    assert by_env.exit_code == 0, by_env.output
    assert json.loads(by_env.stdout)["member"] == "US"


def test_audit_commands_take_json() -> None:
    for name in ("verify", "monitor", "witness", "verify-bundle", "witnesses"):
        result = invoke("audit", name, "--help")
        assert "--json" in result.output, name


# -- templates ----------------------------------------------------------------------------


def test_template_dates_are_from_today(monkeypatch: pytest.MonkeyPatch) -> None:
    from cli import _node_render

    fixed = datetime(2031, 3, 3, 9, 30, tzinfo=PARIS)
    monkeypatch.setattr(_node_render, "now_local", lambda: fixed)
    body = _template_body()
    assert body["issued_at"] == "2031-03-03T09:30:00+01:00"
    # the example's MLA date was 49 days after its issue date; it stays 49 days after
    assert body["mla_expected_by"] == "2031-04-21"
    seen = [i["seen_at"] for i in body["data"]["identifiers"] if "seen_at" in i]
    assert seen
    assert all(s.startswith("2031-03-01") for s in seen)
    assert body["data"]["date_range"]["end"].startswith("2031-03-03")


def test_template_to_addresses_it() -> None:
    result = invoke("node", "template", "preservation", "--to", "US")
    assert result.exit_code == 0, result.output
    assert '"member": "US"' in result.stdout
    assert "DE-BKA" not in result.stdout.split('"requesting"')[0]


def test_template_is_never_overdue_today() -> None:
    body = _template_body()
    assert body["mla_expected_by"] > datetime.now(UTC).date().isoformat()


def _template_body() -> dict[str, Any]:
    result = invoke("node", "template", "preservation")
    assert result.exit_code == 0, result.output
    text = "\n".join(ln for ln in result.stdout.splitlines() if not ln.lstrip().startswith("//"))
    body: dict[str, Any] = json.loads(text)
    return body


def test_program_hint_when_not_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from cli._program import program

    monkeypatch.setattr(sys, "argv", [".venv/bin/relay247", "demo"])
    assert program() == ".venv/bin/relay247"
    monkeypatch.setattr(sys, "argv", ["relay247", "demo"])
    assert program() == "relay247"
    monkeypatch.setattr(sys, "argv", ["-c"])
    monkeypatch.setenv("PATH", "/nonexistent")
    hint = program()
    assert hint.endswith(("relay247", "-m cli"))
    assert hint != "relay247"
    assert os.sep in hint
