"""Officers' WebAuthn security keys (issue 13 §1, PROTOCOL.md §14.5): registration and
login verified on hand-built attestation and assertion objects (tests/support/webauthn.py,
a real P-256 key), the sign counter, the lockout, the access log. Real SQLite, fake clock.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node.officers import (
    MAX_FAILURES,
    MAX_KEYS,
    LogSigner,
    OfficerDb,
    OfficerError,
    OfficerErrorCode,
    RelyingParty,
    SecurityKeys,
    open_db,
)
from node.officers._access_log import ENTRY_DECODER
from node.officers._keys import check_name
from node.officers._webauthn import KeyRefused, unb64url
from protocol.keys import SigningKey
from tests.support.webauthn import AT, UP, SoftKey, b64, client_data, unb64

PASSWORD = "correct horse battery staple"
ORIGIN = "https://desk.police.example"
RP = RelyingParty("police.example", ORIGIN)
T0 = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = open_db(tmp_path / "node.db")
    yield c
    c.close()


@pytest.fixture
def keys(conn: sqlite3.Connection) -> SecurityKeys:
    clock = Clock()
    signer = LogSigner("FR", SigningKey.generate())
    db = OfficerDb(conn, clock, member="FR", signer=signer)
    for login in ("alice", "bob"):
        db.add(login, display_name=login.title(), roles=["officer"], password=PASSWORD)
    return SecurityKeys(db, clock, signer)


def _actions(keys: SecurityKeys) -> list[tuple[str, str | None, str | None]]:
    rows = keys._conn.execute("SELECT entry FROM access_log ORDER BY idx").fetchall()
    out = []
    for (raw,) in rows:
        e = ENTRY_DECODER.decode(bytes(raw))
        out.append((e.action.value, e.officer, e.subject))
    return out


def _register(keys: SecurityKeys, login: str = "alice", name: str = "blue key") -> SoftKey:
    key = SoftKey(ORIGIN)
    challenge = os.urandom(32)
    options = keys.registration_options(login, RP, challenge)
    keys.register(
        login, name, key.create(options), rp=RP, challenge=challenge, by=login, client="1.2.3.4"
    )
    return key


def _login(keys: SecurityKeys, key: SoftKey, login: str = "alice", **spoil: object) -> object:
    challenge = os.urandom(32)
    options = keys.login_options(login, RP, challenge, decoy_secret=b"s" * 32)
    assertion = key.get(options, **spoil)  # type: ignore[arg-type]
    return keys.authenticate(
        login, PASSWORD, assertion, rp=RP, challenge=challenge, client="1.2.3.4"
    )


def test_register_then_log_in_with_the_key(keys: SecurityKeys) -> None:
    key = _register(keys)
    [stored] = keys.keys_of("alice")
    assert (stored.name, stored.credential_id, stored.transports) == (
        "blue key",
        key.credential_id,
        ("usb",),
    )
    assert stored.last_used is None
    officer = _login(keys, key)
    assert getattr(officer, "login", None) == "alice"
    [used] = keys.keys_of("alice")
    assert used.sign_count == 1
    assert used.last_used == T0
    assert _actions(keys)[-2:] == [("key_added", "alice", "alice"), ("login_key", "alice", None)]


def test_registration_options_name_the_node_and_exclude_known_keys(keys: SecurityKeys) -> None:
    key = _register(keys)
    options = json.loads(keys.registration_options("alice", RP, b"c" * 32))
    assert options["rp"] == {"id": "police.example", "name": "relay247"}
    assert options["user"]["name"] == "alice"
    assert unb64(options["user"]["id"]) == keys.user_handle("alice")  # random, not the login
    assert len(keys.user_handle("alice")) == 32
    assert options["attestation"] == "none"
    assert options["authenticatorSelection"]["userVerification"] == "discouraged"
    assert [unb64(c["id"]) for c in options["excludeCredentials"]] == [key.credential_id]
    assert {p["alg"] for p in options["pubKeyCredParams"]} == {-8, -7, -257}


def _refused_registration(keys: SecurityKeys, answer: str, challenge: bytes) -> None:
    with pytest.raises(OfficerError) as exc:
        keys.register("alice", "k", answer, rp=RP, challenge=challenge, by="alice", client="x")
    assert exc.value.reason is OfficerErrorCode.BAD_KEY
    assert keys.keys_of("alice") == []
    assert _actions(keys)[-1] == ("key_failed", "alice", "alice")


@pytest.mark.parametrize(
    "spoil",
    [
        {"origin": "https://evil.example"},
        {"rp_id": "evil.example"},
        {"flags": AT},  # no user presence
        {"fmt": "packed"},  # an attestation with no statement
        {"client": client_data("webauthn.get", b64(b"c" * 32), ORIGIN)},  # wrong type
    ],
)
def test_registration_refused(keys: SecurityKeys, spoil: dict[str, object]) -> None:
    challenge = b"c" * 32
    options = keys.registration_options("alice", RP, challenge)
    _refused_registration(keys, SoftKey(ORIGIN).create(options, **spoil), challenge)  # type: ignore[arg-type]


def test_registration_of_another_challenge_refused(keys: SecurityKeys) -> None:
    options = keys.registration_options("alice", RP, b"c" * 32)
    _refused_registration(keys, SoftKey(ORIGIN).create(options), b"d" * 32)


def _mangle(answer: str, edit: str) -> str:
    if edit == "duplicate":  # a repeated member: which "type" would count?
        return answer.replace('"type": "public-key"', '"type": "public-key", "type": "public-key"')
    if edit == "unknown":
        return answer[:-1] + ', "extra": 1}'
    if edit == "alphabet":  # py_webauthn's decoder would skip the '!' and the '.'
        return answer.replace('"rawId": "', '"rawId": "!.')
    if edit == "large":
        return answer[:-1] + ', "pad": "' + "A" * 9000 + '"}'
    if edit == "client_duplicate":
        parsed = json.loads(answer)
        data = json.loads(unb64(parsed["response"]["clientDataJSON"]))
        # a first "challenge" that is not the node's, the node's last: json.loads (which
        # py_webauthn uses) keeps the last, another reader the first
        text = '{"challenge": "AAAA", ' + json.dumps(data)[1:]
        parsed["response"]["clientDataJSON"] = b64(text.encode())
        return json.dumps(parsed)
    return "not json"


@pytest.mark.parametrize(
    "edit", ["duplicate", "unknown", "alphabet", "large", "client_duplicate", "garbage"]
)
def test_malformed_registration_refused(keys: SecurityKeys, edit: str) -> None:
    challenge = b"c" * 32
    options = keys.registration_options("alice", RP, challenge)
    _refused_registration(keys, _mangle(SoftKey(ORIGIN).create(options), edit), challenge)


def test_one_key_registered_once_and_names_unique(keys: SecurityKeys) -> None:
    key = _register(keys)
    challenge = b"c" * 32
    again = key.create(keys.registration_options("bob", RP, challenge))
    with pytest.raises(OfficerError) as exc:  # the same key for another officer
        keys.register("bob", "k", again, rp=RP, challenge=challenge, by="bob", client="x")
    assert exc.value.reason is OfficerErrorCode.EXISTS
    with pytest.raises(OfficerError) as exc:
        _register(keys, name="blue key")
    assert exc.value.reason is OfficerErrorCode.EXISTS


def test_at_most_max_keys(keys: SecurityKeys) -> None:
    for i in range(MAX_KEYS):
        _register(keys, name=f"key {i}")
    with pytest.raises(OfficerError) as exc:
        _register(keys, name="one more")
    assert exc.value.reason is OfficerErrorCode.INVALID


@pytest.mark.parametrize("bad", ["", "   ", "x" * 65, "tab\there", "bidi\u202eevil", "nl\u2028x"])
def test_key_names(bad: str) -> None:
    with pytest.raises(OfficerError):
        check_name(bad)
    assert check_name("  clé bleue ٣  ") == "clé bleue ٣"


def _bad_login(keys: SecurityKeys, key: SoftKey, login: str = "alice", **spoil: object) -> None:
    with pytest.raises(OfficerError) as exc:
        _login(keys, key, login, **spoil)
    assert exc.value.reason is OfficerErrorCode.BAD_CREDENTIALS


@pytest.mark.parametrize(
    "spoil",
    [
        {"origin": "https://evil.example"},
        {"rp_id": "evil.example"},
        {"flags": 0},  # not touched: no user presence
        {"client": client_data("webauthn.create", b64(b"x"), ORIGIN)},
    ],
)
def test_login_refused_and_counted(keys: SecurityKeys, spoil: dict[str, object]) -> None:
    key = _register(keys)
    _bad_login(keys, key, "alice", **spoil)
    assert _actions(keys)[-1] == ("key_failed", "alice", None)
    assert keys._officers.get("alice").failed_logins == 1


def test_a_replayed_assertion_is_refused(keys: SecurityKeys) -> None:
    key = _register(keys)
    challenge = os.urandom(32)
    assertion = key.get(keys.login_options("alice", RP, challenge, decoy_secret=b"s"))
    keys.authenticate("alice", PASSWORD, assertion, rp=RP, challenge=challenge, client="x")
    with pytest.raises(OfficerError):  # the same bytes again (had the challenge been kept)
        keys.authenticate("alice", PASSWORD, assertion, rp=RP, challenge=challenge, client="x")
    assert _actions(keys)[-1] == ("key_counter", "alice", None)
    with pytest.raises(OfficerError):  # and with the challenge of a new ceremony
        keys.authenticate("alice", PASSWORD, assertion, rp=RP, challenge=b"n" * 32, client="x")
    assert _actions(keys)[-1] == ("key_failed", "alice", None)


def test_a_counter_going_back_is_refused_and_logged(keys: SecurityKeys) -> None:
    key = _register(keys)
    for _ in range(3):
        _login(keys, key)
    assert keys.keys_of("alice")[0].sign_count == 3
    _bad_login(keys, key, count=2)  # correctly signed, counter behind: a clone?
    assert _actions(keys)[-1] == ("key_counter", "alice", None)
    assert keys.keys_of("alice")[0].sign_count == 3
    _login(keys, key, count=4)


def test_a_key_without_a_counter_keeps_working(keys: SecurityKeys) -> None:
    key = _register(keys)
    _login(keys, key, count=0)
    _login(keys, key, count=0)  # §6.1.1: zero both times means "no counter"


def test_wrong_password_never_reaches_the_key(keys: SecurityKeys) -> None:
    key = _register(keys)
    challenge = os.urandom(32)
    assertion = key.get(keys.login_options("alice", RP, challenge, decoy_secret=b"s"))
    with pytest.raises(OfficerError):
        keys.authenticate("alice", "wrong" * 4, assertion, rp=RP, challenge=challenge, client="x")
    assert _actions(keys)[-1] == ("login_failed", "alice", None)
    assert keys.keys_of("alice")[0].sign_count == 0  # not used


def test_another_officers_key_is_refused(keys: SecurityKeys) -> None:
    bobs = _register(keys, login="bob")
    _register(keys, login="alice")
    _bad_login(keys, bobs, login="alice")
    assert _actions(keys)[-1] == ("key_failed", "alice", None)


def test_a_removed_key_no_longer_logs_in(keys: SecurityKeys) -> None:
    key = _register(keys)
    keys.remove("alice", "blue key", by=None, client="cli:uid=0")
    assert keys.keys_of("alice") == []
    assert _actions(keys)[-1] == ("key_removed", None, "alice")
    _bad_login(keys, key)
    with pytest.raises(OfficerError) as exc:
        keys.remove("alice", "blue key", by=None, client="cli")
    assert exc.value.reason is OfficerErrorCode.NOT_FOUND


def test_key_failures_lock_the_account(keys: SecurityKeys) -> None:
    key = _register(keys)
    for _ in range(MAX_FAILURES):
        _bad_login(keys, key, origin="https://evil.example")
    with pytest.raises(OfficerError) as exc:
        _login(keys, key)  # the right key, but locked
    assert exc.value.reason is OfficerErrorCode.LOCKED
    # a wrong password or a wrong key while locked: bad_credentials, as for any name
    challenge = os.urandom(32)
    assertion = key.get(keys.login_options("alice", RP, challenge, decoy_secret=b"s" * 32))
    with pytest.raises(OfficerError) as exc:
        keys.authenticate(
            "alice", "wrong password", assertion, rp=RP, challenge=challenge, client="x"
        )
    assert exc.value.reason is OfficerErrorCode.BAD_CREDENTIALS
    _bad_login(keys, key, origin="https://evil.example")


def test_a_disabled_account_is_named_after_the_key(keys: SecurityKeys) -> None:
    key = _register(keys)
    keys._officers.disable("alice")
    with pytest.raises(OfficerError) as exc:
        _login(keys, key)
    assert exc.value.reason is OfficerErrorCode.DISABLED
    assert _actions(keys)[-1] == ("login_failed", "alice", None)


def test_login_options_hide_which_logins_have_keys(keys: SecurityKeys) -> None:
    key = _register(keys)
    real = json.loads(keys.login_options("alice", RP, b"c" * 32, decoy_secret=b"s"))
    assert [unb64(c["id"]) for c in real["allowCredentials"]] == [key.credential_id]
    assert real["userVerification"] == "discouraged"
    assert real["rpId"] == "police.example"
    for login in ("bob", "nobody"):  # no key, no account: one imitation id, stable
        one = json.loads(keys.login_options(login, RP, b"c" * 32, decoy_secret=b"s"))
        two = json.loads(keys.login_options(login, RP, b"d" * 32, decoy_secret=b"s"))
        assert len(one["allowCredentials"]) == 1
        assert one["allowCredentials"] == two["allowCredentials"]


def test_strict_base64url() -> None:
    assert unb64url("AQID") == b"\x01\x02\x03"
    for bad in ("AQ=D", "A", "AQ\u0663D", "AQ+D"):
        with pytest.raises(KeyRefused):
            unb64url(bad)


def test_clock_moves_last_used(keys: SecurityKeys) -> None:
    key = _register(keys)
    keys._clock.now += timedelta(hours=1)  # type: ignore[attr-defined]
    _login(keys, key)
    assert keys.keys_of("alice")[0].last_used == T0 + timedelta(hours=1)
    assert UP == 1
