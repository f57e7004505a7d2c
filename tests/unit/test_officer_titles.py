"""Job titles on officer accounts (issue 13 §1 "Attribution": the request form's requesting
contact): a table of its own, so a node.db made before it opens unchanged and gains it."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.officers import LogSigner, OfficerDb, OfficerError, OfficerErrorCode, open_db
from node.officers._access_log import ENTRY_DECODER
from protocol.keys import SigningKey

T0 = datetime(2026, 12, 3, 3, 0, 0, tzinfo=UTC)


def _db(conn: sqlite3.Connection) -> OfficerDb:
    return OfficerDb(conn, lambda: T0, member="FR", signer=LogSigner("FR", SigningKey.generate()))


def test_an_old_node_db_gains_titles_and_keeps_its_accounts(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    conn = open_db(path)
    _db(conn).add("duty", display_name="Duty", roles=["officer"], password="x" * 20)
    # the node.db of a release before job titles: no officer_titles table
    conn.execute("DROP TABLE officer_titles")
    conn.close()
    conn = open_db(path)
    db = _db(conn)
    assert db.job_titles() == {}
    assert db.get("duty").display_name == "Duty"
    db.set_job_title("duty", "  Inspector, cybercrime unit ", by="admin", client="127.0.0.1")
    assert db.job_titles() == {"duty": "Inspector, cybercrime unit"}
    db.set_job_title("duty", "", by="admin", client="127.0.0.1")  # blank clears it
    assert db.job_titles() == {}
    actions = [
        ENTRY_DECODER.decode(bytes(raw)).action.value
        for (raw,) in conn.execute("SELECT entry FROM access_log ORDER BY idx")
    ]
    assert actions[-2:] == ["title_changed", "title_changed"]
    conn.close()


@pytest.mark.parametrize(
    ("login", "title", "reason"),
    [
        ("duty", "x" * 101, OfficerErrorCode.INVALID),
        ("duty", "bell\x07", OfficerErrorCode.INVALID),
        ("duty", "zero\u0085width", OfficerErrorCode.INVALID),
        ("nobody", "Chief", OfficerErrorCode.NOT_FOUND),
    ],
)
def test_bad_titles_and_unknown_accounts_are_refused(
    tmp_path: Path, login: str, title: str, reason: OfficerErrorCode
) -> None:
    conn = open_db(tmp_path / "node.db")
    db = _db(conn)
    db.add("duty", display_name="Duty", roles=["officer"], password="x" * 20)
    with pytest.raises(OfficerError) as exc:
        db.set_job_title("duty" if login == "duty" else login, title)
    assert exc.value.reason is reason
    assert db.job_titles() == {}
    conn.close()
