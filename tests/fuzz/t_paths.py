"""Target ``paths``: tile and entry-bundle paths, proof and page query parameters, Range
fields, ids in paths, entry bundles, and the console's query strings.

Input: a selector byte, then UTF-8 text (so digits of other scripts get through). For the
query-string parsers the text is split on ``&`` and ``=``, each part percent-encoded, and
handed to the real function inside a real aiohttp request object. Canonical decimals are
also checked as a property: a number any of them accepts is ASCII digits without a
leading zero.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from urllib.parse import quote

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from console import _admin, _search
from console._pages import _page_query
from console._security import FormError
from node.api.handlers import _case_id, _int_param
from protocol.decimal import parse_decimal
from protocol.errors import Relay247Error
from protocol.tiles import decode_entry_bundle, parse_entries_path, parse_tile_path
from relay.audit._routes import _int, _query
from relay.http._blobs import _blob_id
from relay.http._envelopes import int_query
from relay.http._ranges import parse_range
from tests.fuzz._harness import Pick

#: the exceptions the console's parsers document (each answered 400 by its page)
CONSOLE_ERRORS = (FormError, _admin.QueryError, _search.BadParamError)


def _request(text: str, **match: str) -> web.Request:
    pairs = [part.partition("=") for part in text.split("&")]
    qs = "&".join(quote(k, safe="") + ("=" + quote(v, safe="") if eq else "") for k, eq, v in pairs)
    return make_mocked_request("GET", "/x?" + qs, match_info=match)


def _canonical(value: int, text: str) -> None:
    assert str(value) == text.strip(), f"accepted a non-canonical decimal {text!r}"


def _decimal(text: str) -> None:
    _canonical(parse_decimal(text, name="n"), text)


def _tile(text: str) -> None:
    level, index, width = parse_tile_path(text)
    assert min(level, index) >= 0
    assert 1 <= width <= 256


def _entries(text: str) -> None:
    index, width = parse_entries_path(text)
    assert index >= 0
    assert 1 <= width <= 256


def _range(text: str) -> None:
    lines = text.split("\n")
    size = 1 + (len(lines[0]) * 7919) % 100_000
    got = parse_range(lines[1:], size)
    if got is not None:
        start, end = got
        assert 0 <= start < end <= size, (text, size, got)


def _audit(text: str) -> None:
    query = _query(_request(text), "first", "second", "size", "index", "start", "count")
    for name in ("first", "second", "size", "index", "start", "count"):
        if name in query:
            _canonical(_int(query, name, 0), query[name])


def _mailbox(text: str) -> None:
    req = _request(text)
    for name, lo, hi in (("after", 0, 2**63 - 1), ("limit", 1, 500)):
        got = int_query(req, name, lo, lo, hi)
        assert lo <= got <= hi


def _node_api(text: str) -> None:
    req = _request(text)
    got = _int_param(req, "with_linked", 0, 1)
    assert got in (0, 1)
    _case_id(make_mocked_request("GET", "/", match_info={"case_id": text}))


def _blob(text: str) -> None:
    _blob_id(make_mocked_request("GET", "/", match_info={"blob_id": text}))


def _console_inbox(text: str) -> None:
    _closed, page = _page_query(_request(text))
    assert page >= 1


def _console_search(text: str) -> None:
    _search.parse(_request(text), UTC)


def _console_access(text: str) -> None:
    _admin.parse(_request(text).query, UTC)


def _bundle(text: str) -> None:
    decode_entry_bundle(text.encode("latin-1"))


PARSERS: tuple[Callable[[str], None], ...] = (
    _decimal,
    _tile,
    _entries,
    _range,
    _audit,
    _mailbox,
    _node_api,
    _blob,
    _console_inbox,
    _console_search,
    _console_access,
    _bundle,
)


def one(data: bytes) -> None:
    pick = Pick(data)
    parser = PARSERS[pick.byte() % len(PARSERS)]
    raw = pick.rest()
    text = raw.decode("latin-1") if parser is _bundle else raw.decode("utf-8", errors="replace")
    try:
        parser(text)
    except (Relay247Error, *CONSOLE_ERRORS):
        pass
