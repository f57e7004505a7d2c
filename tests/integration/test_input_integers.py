"""Integers in paths and queries: one canonical ASCII parser everywhere (issue 11, §1).

Against a real relay and a real node API on loopback: non-ASCII digits, signs, white
space, exponents and huge values are ``400 malformed`` in the one error shape, never
``500 internal`` and never silently read as some number.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from yarl import URL

from protocol.decimal import MAX_DECIMAL, parse_decimal
from protocol.errors import MalformedError
from protocol.httpsig import sign_request
from tests.integration._node_services import lone_fr
from tests.support.relay import RunningRelay, running_relay

#: superscript two, Arabic-Indic three, fullwidth one, Devanagari one, and ASCII near-misses
BAD = [
    "\u00b2",
    "\u0663",
    "\uff11",
    "\u0967",
    "-1",
    "+1",
    " 1",
    "1 ",
    "1\n",
    "1e3",
    "1_0",
    "0x1",
    "01",
    "",
    "9" * 30,
    str(2**63),
]


@pytest.mark.parametrize("text", BAD)
def test_parser_refuses(text: str) -> None:
    with pytest.raises(MalformedError):
        parse_decimal(text, name="x")


def test_parser_accepts_canonical_values_and_bounds() -> None:
    assert parse_decimal("0", name="x") == 0
    assert parse_decimal("42", name="x") == 42
    assert parse_decimal(str(MAX_DECIMAL), name="x") == MAX_DECIMAL
    assert parse_decimal("500", name="x", low=1, high=500) == 500
    for text, low, high in (("0", 1, 5), ("6", 1, 5), ("1000", 0, 999)):
        with pytest.raises(MalformedError):
            parse_decimal(text, name="x", low=low, high=high)


def _url(base: str, path: str, name: str, value: str) -> URL:
    return URL(f"{base}{path}?{name}={quote(value, safe='')}", encoded=True)


async def _get(
    session: aiohttp.ClientSession, url: URL, headers: dict[str, str]
) -> tuple[int, dict[str, object]]:
    async with session.get(url, headers=headers) as resp:
        data = await resp.read()
        assert resp.content_type == "application/json", data[:200]
        return resp.status, json.loads(data)


def _signed(relay: RunningRelay, url: URL, member: str = "US") -> dict[str, str]:
    key = relay.net.members[member].transport
    return sign_request(
        "GET",
        str(url),
        {},
        b"",
        key=key,
        keyid=key.fingerprint,
        now=int(time.time()),
        nonce=os.urandom(16).hex(),
    )


async def test_relay_refuses_every_non_canonical_integer(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        signed_routes = [("/v1/mailbox", n) for n in ("after", "limit", "wait")]
        signed_routes.append(("/v1/mailbox/ws", "after"))
        public_routes = [
            ("/v1/audit/entries?end=1&", "start"),
            ("/v1/audit/proof/consistency?new=1&", "old"),
            ("/v1/audit/proof/inclusion?index=0&", "size"),
        ]
        for value in BAD:
            for path, name in signed_routes:
                url = _url(relay.url, path, name, value)
                status, body = await _get(relay.session, url, _signed(relay, url))
                assert (status, body["code"]) == (400, "malformed"), (path, name, value, body)
                assert set(body) == {"code", "message", "request_id"}
            for path, name in public_routes:
                base, _, fixed = path.partition("?")
                url = URL(f"{relay.url}{base}?{fixed}{name}={quote(value, safe='')}", encoded=True)
                status, body = await _get(relay.session, url, {})
                assert (status, body["code"]) == (400, "malformed"), (path, value, body)
        for tail in ("0/\u0663\u0663\u0663", "0/\uff10\uff10\uff11", "entries/000.p/\u00b2"):
            url = URL(f"{relay.url}/v1/audit/tile/{quote(tail)}", encoded=True)
            status, body = await _get(relay.session, url, {})
            assert (status, body["code"]) == (400, "malformed"), (tail, body)
        for query in ("after=1&after=2", "limit=1&limit=1"):
            url = URL(f"{relay.url}/v1/mailbox?{query}", encoded=True)
            status, body = await _get(relay.session, url, _signed(relay, url))
            assert (status, body["code"]) == (400, "malformed"), (query, body)
        # Canonical values still work.
        url = _url(relay.url, "/v1/mailbox", "after", "0")
        status, body = await _get(relay.session, url, _signed(relay, url))
        assert status == 200, body
        async with relay.session.get(relay.url + "/metrics") as r:
            assert 'code="internal"' not in await r.text()


async def test_node_api_refuses_every_non_canonical_integer(tmp_path: Path) -> None:
    async with lone_fr(tmp_path) as (fr, token):
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as session:
            for value in BAD:
                for name in ("after", "limit"):
                    url = _url(fr.api.base_url, "/v1/inbox", name, value)
                    status, body = await _get(session, url, headers)
                    assert (status, body["code"]) == (400, "malformed"), (name, value, body)
                    assert set(body) == {"code", "message", "request_id"}
            # A page of no messages is not a page: limit=0 was silently read as 1.
            status, body = await _get(
                session, _url(fr.api.base_url, "/v1/inbox", "limit", "0"), headers
            )
            assert (status, body["code"]) == (400, "malformed"), body
            status, body = await _get(
                session, _url(fr.api.base_url, "/v1/inbox", "after", "0"), headers
            )
            assert status == 200, body
            # A path id that passed ``re.match(r"^[0-9a-f]{32}$")`` with a final newline.
            url = URL(f"{fr.api.base_url}/v1/cases/{'a' * 32}%0A", encoded=True)
            status, body = await _get(session, url, headers)
            assert (status, body["code"]) == (400, "malformed"), body
