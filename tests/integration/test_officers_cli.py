"""`relay247 node officer ...` and `relay247 audit access-log` on a real data directory.

The node is made with the real `network init` and `node init`; the commands run through
click's runner; tampering is done with the sqlite3 module on node.db, as an intruder
with file access would (issue 13 §2: "A test edits one entry in the database and sees
it named").
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from node._wallclock import system_clock
from node.keyfile import load_keys
from node.officers import LogSigner, OfficerDb, code_at, open_db, verifier_of
from schemas._attachment import ATTACHMENTS
from schemas._links import CASE_LINKS
from schemas.directory import KeyUse, Member, supports

PASS = "officers cli test passphrase"


def invoke(*args: str | Path, passphrase: str = PASS) -> Result:
    env = {"RELAY247_PASSPHRASE": passphrase, "RELAY247_NODE_DATA": None}
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def ok_json(*args: str | Path) -> Any:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A node data directory with three officers and some account changes (made once)."""
    root = tmp_path_factory.mktemp("officers")
    assert invoke("network", "init", "--dir", root / "net", "--name", "t").exit_code == 0
    data = root / "fr"
    result = invoke(
        "node", "init", "--member", "FR", "--data", data, "--authority", "FR 24/7",
        "--trust-root", root / "net" / "trust.json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ok_json("node", "officer", "add", "alice", "--name", "Alice Martin", "--role", "officer",
            "--time-zone", "Europe/Paris", "--language", "fr", "--data", data)  # fmt: skip
    ok_json("node", "officer", "add", "bob", "--name", "Bob", "--role", "auditor",
            "--email", "bob@police.example", "--data", data)  # fmt: skip
    ok_json("node", "officer", "add", "carol", "--name", "Carol", "--role", "admin",
            "--data", data)  # fmt: skip
    ok_json("node", "officer", "disable", "bob", "--data", data)
    ok_json("node", "officer", "roles", "carol", "--role", "admin", "--role", "supervisor",
            "--data", data)  # fmt: skip
    return data


@pytest.fixture
def data(made: Path, tmp_path: Path) -> Path:
    """A private copy of the made directory, free to tamper with."""
    copy = tmp_path / "fr"
    shutil.copytree(made, copy)
    return copy


def test_add_prints_a_password_and_an_otpauth_uri(data: Path) -> None:
    out = ok_json("node", "officer", "add", "dave", "--name", "Dave", "--role", "officer",
                  "--data", data)  # fmt: skip
    assert out["login"] == "dave"
    assert len(out["password"]) >= 12
    assert out["otpauth_uri"].startswith("otpauth://totp/")
    # the printed credentials log in (the console's path), and the login is logged
    keys = load_keys(data / "node.keys", PASS.encode())
    conn = open_db(data / "node.db")
    try:
        signer = LogSigner("FR", keys.signing)
        # the TOTP secret is sealed at rest (PROTOCOL.md §18): the node's sealer opens it
        db = OfficerDb(conn, system_clock, member="FR", signer=signer, sealer=keys.sealer())
        code = code_at(out["totp_secret"], datetime.now(UTC))
        assert db.authenticate("dave", out["password"], code, client="127.0.0.1").login == "dave"
    finally:
        conn.close()
    status, report = _audit(data)
    assert (status, report["entries"]) == (0, 7)
    conn = sqlite3.connect(data / "node.db")
    last = conn.execute("SELECT officer, action FROM access_log ORDER BY idx DESC").fetchone()
    conn.close()
    assert last == ("dave", "login")


def test_password_from_a_file_and_the_policy(data: Path, tmp_path: Path) -> None:
    weak = tmp_path / "weak"
    weak.write_text("short\n")
    result = invoke("node", "officer", "add", "erin", "--name", "Erin", "--role", "officer",
                    "--password-file", weak, "--data", data)  # fmt: skip
    assert result.exit_code == 2
    assert "weak_password" in result.output
    assert "short" not in result.output.replace("weak_password", "")
    good = tmp_path / "good"
    good.write_text("a long enough passphrase\n")
    out = ok_json("node", "officer", "add", "erin", "--name", "Erin", "--role", "officer",
                  "--password-file", good, "--data", data)  # fmt: skip
    assert "password" not in out  # the officer chose it: not printed back
    result = CliRunner().invoke(
        cli,
        ["node", "officer", "reset", "erin", "--password-file", "-", "--data", str(data), "--json"],
        input="another long passphrase\n",
        env={"RELAY247_PASSPHRASE": PASS},
    )
    assert result.exit_code == 0, result.output
    assert "password" not in json.loads(result.stdout)


def test_list_shows_the_accounts_after_a_restart(data: Path) -> None:
    rows = {o["login"]: o for o in ok_json("node", "officer", "list", "--data", data)}
    assert sorted(rows) == ["alice", "bob", "carol"]
    assert rows["alice"]["time_zone"] == "Europe/Paris"
    assert rows["bob"]["disabled"] is True
    assert rows["carol"]["roles"] == ["admin", "supervisor"]
    text = invoke("node", "officer", "list", "--data", data)
    assert text.exit_code == 0
    assert "disabled" in text.output
    assert "Alice Martin" in text.output


def test_enable_and_reset(data: Path) -> None:
    assert ok_json("node", "officer", "enable", "bob", "--data", data)["disabled"] is False
    out = ok_json("node", "officer", "reset", "alice", "--data", data)
    assert out["login"] == "alice"
    assert len(out["password"]) >= 12


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("add", "alice", "--name", "A", "--role", "officer"), "exists"),
        (
            ("add", "zed", "--name", "Z", "--role", "officer", "--time-zone", "Nowhere/X"),
            "invalid",
        ),
        (("disable", "nobody"), "not_found"),
        (("reset", "nobody"), "not_found"),
    ],
)
def test_errors_have_stable_codes(data: Path, args: tuple[str, ...], code: str) -> None:
    result = invoke("node", "officer", *args, "--data", data)
    assert result.exit_code == 2, result.output
    assert f"Error: {code}: " in result.output


def test_a_wrong_passphrase_changes_nothing(data: Path) -> None:
    result = invoke("node", "officer", "disable", "alice", "--data", data,
                    passphrase="not the passphrase")  # fmt: skip
    assert result.exit_code == 2
    rows = {o["login"]: o for o in ok_json("node", "officer", "list", "--data", data)}
    assert rows["alice"]["disabled"] is False


# -- the access log ------------------------------------------------------------------------


def _audit(data: Path, *extra: str | Path) -> tuple[int, dict[str, Any]]:
    result = invoke("audit", "access-log", "--data", data, "--json", *extra)
    return result.exit_code, json.loads(result.stdout)


def test_every_account_change_is_logged_and_verifies(data: Path) -> None:
    code, report = _audit(data)
    assert (code, report["ok"], report["problems"]) == (0, True, [])
    assert report["entries"] == report["checkpoints"] == 5
    conn = sqlite3.connect(data / "node.db")
    actions = [r[0] for r in conn.execute("SELECT action FROM access_log ORDER BY idx")]
    conn.close()
    assert actions == ["officer_added"] * 3 + ["officer_disabled", "roles_changed"]


def _sql(data: Path, *statements: str) -> None:
    conn = sqlite3.connect(data / "node.db")
    with conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()


def test_an_edited_entry_is_named(data: Path) -> None:
    # the intruder rewrites who was disabled, in the bytes and in the column alike
    _sql(data, "UPDATE access_log SET entry = CAST(replace(CAST(entry AS TEXT), 'bob', 'eve')"
               " AS BLOB) WHERE idx = 3")  # fmt: skip
    code, report = _audit(data)
    assert code == 1
    assert report["first_altered_entry"] == 3
    assert "entry 3 is altered" in report["problems"][0]


def test_an_edited_filter_column_is_named(data: Path) -> None:
    _sql(data, "UPDATE access_log SET officer = 'eve' WHERE idx = 1")
    code, report = _audit(data)
    assert (code, report["first_altered_entry"]) == (1, 1)


def test_a_deleted_entry_is_named(data: Path) -> None:
    _sql(data, "DELETE FROM access_log WHERE idx = 2")
    code, report = _audit(data)
    assert (code, report["first_altered_entry"]) == (1, 2)
    assert "entry 2 is missing" in report["problems"][0]


def test_reordered_entries_are_named(data: Path) -> None:
    _sql(
        data,
        "UPDATE access_log SET idx = -1 WHERE idx = 1",
        "UPDATE access_log SET idx = 1 WHERE idx = 2",
        "UPDATE access_log SET idx = 2 WHERE idx = -1",
    )
    code, report = _audit(data)
    assert (code, report["first_altered_entry"]) == (1, 1)
    assert "out of place" in report["problems"][0]


def test_a_forged_checkpoint_is_refused(data: Path) -> None:
    _sql(data, "UPDATE access_checkpoints SET note = CAST(replace(CAST(note AS TEXT), "
               "'access-log/FR', 'access-log/XX') AS BLOB) WHERE size = 4")  # fmt: skip
    code, report = _audit(data)
    assert code == 1
    assert report["first_altered_entry"] == 3
    assert "checkpoint of size 4 does not verify" in report["problems"][0]


def test_truncation_is_caught_by_the_kept_checkpoint(data: Path, tmp_path: Path) -> None:
    kept = tmp_path / "kept.checkpoint"
    assert _audit(data, "--keep", kept)[0] == 0
    assert kept.read_bytes().startswith(b"relay247/v1/access-log/FR\n5\n")
    # the intruder drops the last entry with its checkpoint: self-consistent, but shorter
    _sql(data, "DELETE FROM access_log WHERE idx = 4", "DELETE FROM access_checkpoints"
               " WHERE size = 5", "DELETE FROM access_frontier")  # fmt: skip
    assert _audit(data)[0] == 0
    code, report = _audit(data, "--keep", kept)
    assert code == 1
    assert "fewer than the 5 of the kept checkpoint" in report["problems"][0]
    assert kept.read_bytes().startswith(b"relay247/v1/access-log/FR\n5\n")  # not replaced


def test_a_full_disk_keeps_the_kept_checkpoint_whole(data: Path, tmp_path: Path) -> None:
    """Before: written in place of a temporary file with no sync, a partial ``.tmp`` left
    on a full disk, exit 2 as if the option were wrong. Now exit 1, the old one intact."""
    from tests.integration.test_storage_full import fill, tmpfs

    with tmpfs(tmp_path / "disk", "1m") as disk:
        kept = disk / "kept.checkpoint"
        assert _audit(data, "--keep", kept)[0] == 0
        before = kept.read_bytes()
        ok_json("node", "officer", "enable", "bob", "--data", data)  # a longer log to keep
        fill(disk)
        result = invoke("audit", "access-log", "--data", data, "--keep", kept)
        assert result.exit_code == 1, result.output
        assert "cannot keep the checkpoint" in result.output
        assert kept.read_bytes() == before
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "kept.checkpoint"]


def test_appends_continue_after_a_restart_and_the_kept_checkpoint_follows(
    data: Path, tmp_path: Path
) -> None:
    kept = tmp_path / "kept.checkpoint"
    assert _audit(data, "--keep", kept)[0] == 0
    ok_json("node", "officer", "enable", "bob", "--data", data)
    code, report = _audit(data, "--keep", kept)
    assert (code, report["entries"]) == (0, 6)
    assert kept.read_bytes().startswith(b"relay247/v1/access-log/FR\n6\n")


def test_the_key_can_be_pinned(data: Path) -> None:
    pinned = _pinned(data)
    code, report = _audit(data, "--vkey", pinned)
    assert code == 0
    assert report["key"] == f"{pinned} from --vkey"
    other = verifier_of("FR", bytes(32)).key_string()
    code, report = _audit(data, "--vkey", other)
    assert code == 1
    assert report["first_altered_entry"] == 0


# -- per-officer API tokens -------------------------------------------------------------------


def test_a_token_is_issued_verified_and_revoked(data: Path) -> None:
    from node.officers import OfficerError, Permission, TokenStore

    out = ok_json("node", "officer", "token", "carol", "--days", "7", "--role", "officer",
                  "--data", data)  # fmt: skip
    assert out["roles"] == "officer"
    assert out["token"].startswith("r247o_" + out["id"] + ".")
    conn = open_db(data / "node.db")
    try:
        tokens = TokenStore(conn, system_clock)
        assert tokens.verify(out["token"], Permission.SEND).login == "carol"
        with pytest.raises(OfficerError):  # officer scope: no account management
            tokens.verify(out["token"], Permission.MANAGE_ACCOUNTS)
        result = invoke("node", "officer", "revoke-token", out["id"], "--data", data)
        assert result.exit_code == 0, result.output
        with pytest.raises(OfficerError):
            tokens.verify(out["token"], Permission.SEND)
    finally:
        conn.close()
    code, report = _audit(data)
    assert (code, report["entries"]) == (0, 7)
    # a scope wider than the officer's roles, and a disabled officer, are refused
    result = invoke("node", "officer", "token", "alice", "--role", "admin", "--data", data)
    assert result.exit_code == 2
    assert "Error: invalid: " in result.output
    result = invoke("node", "officer", "token", "bob", "--data", data)
    assert result.exit_code == 2
    assert "Error: disabled: " in result.output


def test_node_init_declares_what_this_node_reads(made: Path) -> None:
    """The entry `node init` writes lists the capabilities of this release (§3.1)."""
    member = msgspec.json.decode((made / "member.json").read_bytes(), type=Member)
    assert member.capabilities == (CASE_LINKS, ATTACHMENTS)
    assert supports(member, ATTACHMENTS)


def _pinned(data: Path) -> str:
    member = msgspec.json.decode((data / "member.json").read_bytes(), type=Member)
    public = next(bytes(k.public) for k in member.keys if k.use == KeyUse.SIGNING)
    return verifier_of("FR", public).key_string()


def test_a_copy_of_node_db_is_verified_without_changing_it(data: Path, tmp_path: Path) -> None:
    copy = tmp_path / "handed-over.db"
    src = sqlite3.connect(data / "node.db")
    dst = sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    before = copy.read_bytes()
    result = invoke("audit", "access-log", "--db", copy, "--vkey", _pinned(data), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["entries"] == 5
    assert copy.read_bytes() == before
    result = invoke("audit", "access-log", "--db", copy)
    assert result.exit_code == 2
    assert "--db needs --vkey" in result.output


def test_a_node_db_without_officer_tables_is_an_empty_log(tmp_path: Path) -> None:
    bare = tmp_path / "bare.db"
    sqlite3.connect(bare).close()
    result = invoke("audit", "access-log", "--db", bare, "--json",
                    "--vkey", verifier_of("FR", bytes(32)).key_string())  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["entries"] == 0


@pytest.mark.parametrize(
    "content",
    [b'{"id": 1}', b"not json", b'{"id": "FR", "id": "US"}', b" " * 70_000],
    ids=["wrong-shape", "not-json", "repeated-key", "too-large"],
)
def test_a_bad_member_file_is_a_clear_error(data: Path, content: bytes) -> None:
    """The audit's key comes from member.json unless --vkey: a broken one is exit 2, named."""
    (data / "member.json").write_bytes(content)
    result = invoke("audit", "access-log", "--data", data)
    assert result.exit_code == 2, result.output
    assert "cannot read the node's public keys" in result.output


def test_a_redaction_inside_the_retention_period_is_named(data: Path) -> None:
    """§14.6 L8 through ``relay247 audit access-log``: the node's own key redacts entries
    made minutes ago under a 30-day period; the signed cutoff gives it away (exit 1)."""
    from node.officers import _access_redact as redact

    keys = load_keys(data / "node.keys", PASS.encode())
    conn = open_db(data / "node.db")
    try:
        conn.execute("BEGIN IMMEDIATE")
        redact.redact(conn, LogSigner("FR", keys.signing), [0, 1], at=datetime.now(UTC), days=30)
        conn.execute("COMMIT")
    finally:
        conn.close()
    code, report = _audit(data)
    assert (code, report["first_altered_entry"]) == (1, 0)
    assert "entry 0 is redacted inside its retention period" in report["problems"][0]
