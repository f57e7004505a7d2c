"""`relay247 node officer keys` and `remove-key` on a real data directory (issue 13 §1,
PROTOCOL.md §14.5): a key registered as the console does (a software key, the node's
own keystore signing the log) is listed, removed by the administrator's command, and
the access log with its key entries still verifies offline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from node._wallclock import system_clock
from node.keyfile import load_keys
from node.officers import LogSigner, OfficerDb, RelyingParty, SecurityKeys, open_db
from tests.integration.test_officers_cli import PASS, invoke, ok_json
from tests.support.webauthn import SoftKey, b64

RP = RelyingParty("localhost", "http://localhost:8443")


def _node(root: Path) -> Path:
    assert invoke("network", "init", "--dir", root / "net", "--name", "t").exit_code == 0
    data = root / "fr"
    result = invoke(
        "node", "init", "--member", "FR", "--data", data, "--authority", "FR 24/7",
        "--trust-root", root / "net" / "trust.json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ok_json("node", "officer", "add", "alice", "--name", "Alice", "--role", "officer",
            "--data", data)  # fmt: skip
    return data


def _register(data: Path, name: str) -> SoftKey:
    keys = load_keys(data / "node.keys", PASS.encode())
    conn = open_db(data / "node.db")
    try:
        signer = LogSigner("FR", keys.signing)
        # officers' names are sealed at rest (PROTOCOL.md §18): the node's data keys
        db = OfficerDb(conn, system_clock, member="FR", signer=signer, sealer=keys.sealer())
        store = SecurityKeys(db, system_clock, signer)
        key = SoftKey(RP.origin)
        challenge = os.urandom(32)
        answer = key.create(store.registration_options("alice", RP, challenge))
        store.register("alice", name, answer, rp=RP, challenge=challenge, by="alice",
                       client="127.0.0.1")  # fmt: skip
    finally:
        conn.close()
    return key


def test_list_and_remove_keys(tmp_path: Path) -> None:
    data = _node(tmp_path)
    result = invoke("node", "officer", "keys", "alice", "--data", data)
    assert (result.exit_code, result.output.strip()) == (0, "alice has no security key")
    key = _register(data, "blue key")
    _register(data, "spare")
    listed = ok_json("node", "officer", "keys", "alice", "--data", data)
    assert [k["name"] for k in listed] == ["blue key", "spare"]
    assert listed[0]["credential_id"] == b64(key.credential_id)
    assert listed[0]["transports"] == ["usb"]
    assert listed[0]["last_used"] is None
    table = invoke("node", "officer", "keys", "alice", "--data", data)
    assert "blue key" in table.output
    assert "never" in table.output

    result = invoke("node", "officer", "remove-key", "alice", "blue key", "--data", data)
    assert result.exit_code == 0, result.output
    assert "removed" in result.output
    assert [k["name"] for k in ok_json("node", "officer", "keys", "alice", "--data", data)] == [
        "spare"
    ]
    again = invoke("node", "officer", "remove-key", "alice", "blue key", "--data", data)
    assert again.exit_code == 2
    assert again.output.startswith("not_found:") or "not_found:" in again.output
    nobody = invoke("node", "officer", "keys", "nobody", "--data", data)
    assert nobody.exit_code == 2
    assert "not_found:" in nobody.output
    wrong = invoke("node", "officer", "remove-key", "alice", "spare", "--data", data,
                   passphrase="not the passphrase")  # fmt: skip
    assert wrong.exit_code == 2
    assert len(ok_json("node", "officer", "keys", "alice", "--data", data)) == 1

    audit = invoke("audit", "access-log", "--data", data, "--json")
    assert audit.exit_code == 0, audit.output
    report = json.loads(audit.stdout)
    assert report["ok"] is True
    conn = open_db(data / "node.db")
    try:
        actions = [r[0] for r in conn.execute("SELECT action FROM access_log ORDER BY idx")]
    finally:
        conn.close()
    assert actions[-3:] == ["key_added", "key_added", "key_removed"]
