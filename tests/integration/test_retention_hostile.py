"""Hostile input to the legal-hold and retention routes (PROTOCOL.md §19): non-ASCII
digits, repeated keys, oversized bodies, another node's case, bad reasons, and an
officer whose roles do not include ``hold_cases`` or ``configure``."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

from node.cases.hold import reason_digest
from node.officers import AccessLog, Action, LogSigner, OfficerDb, TokenStore, open_db
from schemas.errors import ErrorCode
from tests.integration._node_services import peers
from tests.integration._retention_support import exchange, request
from tests.integration.test_node_api import raw
from tests.support.network import make_network
from tests.support.relay import running_relay

_PASSWORD = "correct horse battery staple 24/7"


def _code(data: bytes) -> ErrorCode:
    return ErrorCode(json.loads(data)["code"])


async def test_hold_routes_refuse_hostile_input(tmp_path: Path) -> None:
    net = make_network()
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, seal=True) as p,
    ):
        fr, us = p["FR"], p["US"]
        body = request("hostile")
        await exchange(fr, us, body, "refusal")
        case = body.case_id
        hold = f"/v1/cases/{case}/hold"
        ok = json.dumps({"reason": "Réquisition 26/1"}).encode()
        cases: list[tuple[str, str, bytes | None, int, str]] = [
            ("POST", "/v1/cases/" + "\u0661" * 32 + "/hold", ok, 400, "malformed"),
            ("POST", "/v1/cases/" + "\u0661" * 32 + "/release", None, 400, "malformed"),
            ("GET", "/v1/cases/" + "\uff11" * 32 + "/retention", None, 400, "malformed"),
            ("POST", hold, b'{"reason":"a","reason":"b"}', 400, "malformed"),
            ("POST", hold, b'{"reason":"' + b"a" * (1 << 20) + b'"}', 413, "too_large"),
            ("POST", hold, json.dumps({"reason": "x" * 501}).encode(), 400, "malformed"),
            ("POST", hold, json.dumps({"reason": "   "}).encode(), 400, "malformed"),
            ("POST", hold, json.dumps({"reason": "a\u202eb"}).encode(), 400, "malformed"),
            ("POST", hold, json.dumps({"reason": "a\x07b"}).encode(), 400, "malformed"),
            ("POST", hold, json.dumps({"reason": "ok", "more": 1}).encode(), 400, "malformed"),
            ("POST", hold, b"[]", 400, "malformed"),
            ("POST", f"/v1/cases/{case}/release", b'{"x":1}', 400, "malformed"),
            ("POST", "/v1/retention?limit=\u0661", None, 400, "malformed"),
            ("GET", "/v1/retention?limit=1&limit=2", None, 400, "malformed"),
            ("GET", "/v1/retention?limit=10001", None, 400, "malformed"),
            # another node's case (or none): not found, and nothing recorded
            ("POST", f"/v1/cases/{os.urandom(16).hex()}/hold", ok, 404, "not_found"),
            ("POST", f"/v1/cases/{os.urandom(16).hex()}/release", None, 404, "not_found"),
            ("GET", f"/v1/cases/{os.urandom(16).hex()}/retention", None, 404, "not_found"),
        ]
        for method, path, data, status, code in cases:
            got, answer = await raw(us, method, path, body=data)
            assert (got, _code(answer)) == (status, code), (path[:60], data and data[:40])
        status, answer = await raw(us, "POST", hold, body=ok, token=None)  # no token at all
        assert (status, _code(answer)) == (401, "unauthenticated")
        assert (await us.api.retention(case)).history == ()
        # The same hold twice changes nothing the second time; the release likewise.
        assert (await raw(us, "POST", hold, body=ok))[0] == 201
        assert (await raw(us, "POST", hold, body=ok))[0] == 200
        assert (await raw(us, "POST", f"/v1/cases/{case}/release"))[0] == 200
        released = await us.api.set_hold(case, None)
        assert released.changed is False
        assert [h.action for h in released.history] == ["held", "released"]


async def test_only_supervisors_hold_and_only_administrators_run_a_pass(tmp_path: Path) -> None:
    net = make_network()
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, seal=True) as p,
    ):
        fr, us = p["FR"], p["US"]
        body = request("roles")
        await exchange(fr, us, body, "refusal")
        conn = open_db(us.data / "node.db")
        clock = us.node._shared.clock
        signer = LogSigner("US", us.node._shared.keys.signing)
        officers = OfficerDb(conn, clock, member="US", signer=signer)
        tokens = TokenStore(conn, clock, signer)
        issued = {}
        for role in ("officer", "supervisor", "auditor", "admin"):
            officers.add(role + "1", display_name=role, roles=[role], password=_PASSWORD)
            issued[role] = tokens.create(role + "1", lifetime=timedelta(days=1)).token
        hold = f"/v1/cases/{body.case_id}/hold"
        ok = json.dumps({"reason": "Court order"}).encode()
        try:
            for role in ("officer", "auditor", "admin"):
                status, answer = await raw(us, "POST", hold, body=ok, token=issued[role])
                assert (status, _code(answer)) == (403, "forbidden"), role
            for role in ("officer", "supervisor", "auditor"):
                status, answer = await raw(us, "POST", "/v1/retention", token=issued[role])
                assert (status, _code(answer)) == (403, "forbidden"), role
            status, _ = await raw(us, "POST", hold, body=ok, token=issued["supervisor"])
            assert status == 201
            status, _ = await raw(us, "POST", "/v1/retention", token=issued["admin"])
            assert status == 200
            status, _ = await raw(us, "GET", "/v1/retention", token=issued["auditor"])
            assert status == 200
            view = await us.api.retention(body.case_id)
            assert view.hold is not None
            assert (view.hold.officer, view.hold.reason) == ("supervisor1", "Court order")
            log = AccessLog(conn, signer, clock).entries()
            held = [e for e in log if e.action is Action.CASE_HELD]
            assert [(e.officer, e.case, e.subject) for e in held] == [
                ("supervisor1", body.case_id, reason_digest("Court order"))
            ]
            assert all("Court order" not in repr(e) for e in log)  # the reason is not logged
            denied = [e.officer for e in log if e.action is Action.DENIED]
            assert set(denied) >= {"officer1", "auditor1", "admin1"}
        finally:
            conn.close()
