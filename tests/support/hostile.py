"""Shared pieces of the hostile-input suite (tests/integration/test_hostile_*.py).

The suite is data-driven: :func:`routes` enumerates the routes of the real aiohttp
applications (the relay's and the node API's), and every route must have an entry in
:data:`RELAY_COVERAGE` or :data:`NODE_COVERAGE` saying what reaches the code behind it
(signature, query, path parameters, body). A route added without an entry fails
``test_every_route_has_hostile_coverage``, so a new endpoint cannot escape the suite.

Requests go over raw sockets (:func:`exchange`) so that the suite can send what a
well-behaved client library refuses to send (duplicate Content-Length, non-ASCII header
bytes, a request line cut in half), every one bounded by a client timeout: a hang fails.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import structlog
from aiohttp import web

from protocol.httpsig import sign_request
from protocol.keys import SigningKey

# Characters for which str.isdigit() (and often int()) is true but which are not ASCII
# digits: superscript, Arabic-Indic, fullwidth, mathematical bold, Bengali, NKo.
NON_ASCII_DIGITS = ("²", "٣", "１", "𝟙", "৭", "߁", "1²", "1٣", "１０", "0𝟙")
# ASCII forms that int() accepts but a canonical decimal parser must refuse, and values
# out of every range.
ODD_INTEGERS = (
    "+1",
    "-1",
    "-0",
    " 1",
    "1 ",
    "\t1",
    "1\n",
    "0x1",
    "1_0",
    "1e3",
    "1.0",
    "01",
    "",
    "9" * 40,
    str(2**63),
    str(2**64),
    "NaN",
    "½",
    "Ⅻ",
)
HOSTILE_INTEGERS = NON_ASCII_DIGITS + ODD_INTEGERS
_DIGIT_SWAP = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")  # Arabic-Indic, same values


@dataclass(frozen=True)
class Coverage:
    """What it takes to reach the code behind one route.

    Attributes:
        signed: the relay needs an RFC 9421 signature before the handler reads anything.
        query: a valid query; each integer parameter is replaced in turn by hostile values.
        ints: the names in ``query`` that are integers.
        params: valid values of the path parameters (``{name}`` in the route).
        variants: more valid values of them, each attacked like ``params``.
        body: the kind of body the route reads (``None``: it reads none).
        ws: a WebSocket upgrade route.
    """

    signed: bool = False
    query: Mapping[str, str] = field(default_factory=dict)
    ints: tuple[str, ...] = ()
    params: Mapping[str, str] = field(default_factory=dict)
    variants: tuple[Mapping[str, str], ...] = ()
    body: str | None = None
    ws: bool = False


_MAILBOX = {"after": "0", "limit": "10", "wait": "0"}
#: every relay route (method, canonical path); HEAD routes share their GET's entry
RELAY_COVERAGE: dict[tuple[str, str], Coverage] = {
    ("POST", "/v1/envelopes"): Coverage(signed=True, body="envelope"),
    ("GET", "/v1/mailbox"): Coverage(signed=True, query=_MAILBOX, ints=tuple(_MAILBOX)),
    ("GET", "/v1/mailbox/ws"): Coverage(
        signed=True, query={"after": "0"}, ints=("after",), ws=True
    ),
    ("POST", "/v1/acks"): Coverage(signed=True, body="ack"),
    # A node's record of a bridged e-mail (PROTOCOL.md §22.5 G2).
    ("POST", "/v1/email-records"): Coverage(signed=True, body="email record"),
    ("GET", "/v1/directory"): Coverage(),
    # Publication is authorised by the coordinators' k-of-n signatures inside the body.
    ("POST", "/v1/directory"): Coverage(body="directory"),
    ("GET", "/v1/info"): Coverage(),
    ("GET", "/v1/members/status"): Coverage(signed=True),
    ("GET", "/v1/openapi.json"): Coverage(),
    ("GET", "/healthz"): Coverage(),
    ("GET", "/metrics"): Coverage(),
    ("GET", "/v1/audit/checkpoint"): Coverage(),
    ("GET", "/v1/audit/proof/inclusion"): Coverage(
        query={"index": "0", "size": "1"}, ints=("index", "size")
    ),
    ("GET", "/v1/audit/proof/consistency"): Coverage(
        query={"old": "1", "new": "1"}, ints=("old", "new")
    ),
    ("GET", "/v1/audit/entries"): Coverage(query={"start": "0", "end": "1"}, ints=("start", "end")),
    ("GET", "/v1/audit/tile/{tail}"): Coverage(
        params={"tail": "0/000"},
        variants=(
            {"tail": "1/x001/234.p/17"},
            {"tail": "entries/000"},
            {"tail": "entries/000.p/3"},
        ),
    ),
    ("POST", "/v1/audit/cosignature"): Coverage(signed=True, body="cosignature"),
    # Attachments (PROTOCOL.md §15.4); a well-formed id of no blob: 404 past the checks.
    ("POST", "/v1/blobs"): Coverage(signed=True, body="blob create"),
    ("PUT", "/v1/blobs/{blob_id}/chunks/{n}"): Coverage(
        signed=True, params={"blob_id": "b" * 32, "n": "0"}, body="chunk"
    ),
    ("GET", "/v1/blobs/{blob_id}"): Coverage(signed=True, params={"blob_id": "b" * 32}),
    ("POST", "/v1/blobs/{blob_id}/commit"): Coverage(
        signed=True, params={"blob_id": "b" * 32}, body="commit: nothing or a BlobCommit"
    ),
    ("POST", "/v1/blobs/{blob_id}/discard"): Coverage(
        signed=True, params={"blob_id": "b" * 32}, body="none: a discard takes no body"
    ),
    ("GET", "/v1/blobs/{blob_id}/content"): Coverage(signed=True, params={"blob_id": "b" * 32}),
}
#: every node API route; the bearer token stands in for ``signed``
NODE_COVERAGE: dict[tuple[str, str], Coverage] = {
    ("GET", "/v1/status"): Coverage(),
    ("POST", "/v1/messages"): Coverage(body="send"),
    ("GET", "/v1/cases"): Coverage(),
    ("GET", "/v1/cases/{case_id}"): Coverage(params={"case_id": "c" * 32}),
    ("GET", "/v1/cases/{case_id}/export"): Coverage(
        params={"case_id": "c" * 32}, query={"with_linked": "0"}, ints=("with_linked",)
    ),
    ("POST", "/v1/cases/{case_id}/links"): Coverage(params={"case_id": "c" * 32}, body="link"),
    # legal hold and retention (PROTOCOL.md §19; tests/integration/test_retention_hostile.py)
    ("POST", "/v1/cases/{case_id}/hold"): Coverage(params={"case_id": "c" * 32}, body="hold"),
    ("POST", "/v1/cases/{case_id}/release"): Coverage(
        params={"case_id": "c" * 32}, body="none (release): nothing or {}"
    ),
    ("GET", "/v1/cases/{case_id}/retention"): Coverage(params={"case_id": "c" * 32}),
    # statistics (PROTOCOL.md §20): the period's days; its own hostile cases are in
    # tests/integration/test_node_stats_api.py (non-ASCII digits, repeats, reversed...)
    ("GET", "/v1/stats"): Coverage(query={"from": "2026-01-01", "to": "2026-01-31"}),
    ("GET", "/v1/stats/reports"): Coverage(),
    ("GET", "/v1/retention"): Coverage(query={"limit": "10"}, ints=("limit",)),
    ("POST", "/v1/retention"): Coverage(
        query={"limit": "10"}, ints=("limit",), body="none (a pass): nothing or {}"
    ),
    ("DELETE", "/v1/cases/{case_id}/links/{other}"): Coverage(
        params={"case_id": "c" * 32, "other": "d" * 32}
    ),
    ("GET", "/v1/inbox"): Coverage(query={"after": "0", "limit": "10"}, ints=("after", "limit")),
    ("GET", "/v1/openapi.json"): Coverage(),
    # Attachments (PROTOCOL.md §8.6, §15.2); an unknown case: 404 past the checks.
    ("POST", "/v1/attachments"): Coverage(
        query={"name": "a.txt", "media_type": "text/plain"}, body="file (octet-stream)"
    ),
    ("GET", "/v1/cases/{case_id}/attachments"): Coverage(params={"case_id": "c" * 32}),
    ("GET", "/v1/cases/{case_id}/attachments/{n}"): Coverage(
        params={"case_id": "c" * 32, "n": "1"}
    ),
    ("GET", "/v1/cases/{case_id}/attachments/{n}/ciphertext"): Coverage(
        params={"case_id": "c" * 32, "n": "1"}
    ),
}


def routes(app: web.Application) -> list[tuple[str, str]]:
    """Every (method, canonical path) the application's router serves, HEAD included."""
    out = []
    for route in app.router.routes():
        resource = route.resource
        assert resource is not None
        out.append((route.method, resource.canonical))
    return sorted(set(out))


def coverage(table: Mapping[tuple[str, str], Coverage], method: str, path: str) -> Coverage:
    """The entry of a route; HEAD (added by aiohttp beside each GET) uses the GET's."""
    return table[("GET" if method == "HEAD" else method, path)]


def concrete(path: str, cov: Coverage, **params: str) -> str:
    """The route's path with its parameters filled with valid values (``params`` first)."""
    for name, value in {**cov.params, **params}.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no value for a parameter of {path}"
    return path


def query_string(query: Mapping[str, str]) -> str:
    """``?a=1&b=2``, percent-encoded (UTF-8), or ``""``."""
    if not query:
        return ""
    return "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query.items())


def hostile_queries(cov: Coverage) -> Iterator[tuple[str, str]]:
    """(label, percent-encoded query): each integer parameter in turn made hostile."""
    for name in cov.ints:
        for value in HOSTILE_INTEGERS:
            yield f"{name}={value!r}", query_string({**cov.query, name: value})
        # The same parameter twice: one reader takes the first, another the last.
        yield f"{name} twice", query_string(cov.query) + f"&{name}=1"
        # Percent-encoded bytes that are not UTF-8.
        rest = query_string({k: v for k, v in cov.query.items() if k != name})
        yield f"{name}=%FF", (rest + "&" if rest else "?") + f"{name}=%FF"
    # Every route also meets a non-ASCII digit in a parameter it does not know, and a
    # long value (short enough to stay under the request-line limit).
    yield "unknown=²", query_string({**cov.query, "unknown": "²"})
    yield "long value", query_string({**cov.query, "x": "٣" * 600})


def hostile_paths(path: str) -> Iterator[str]:
    """Variants of a concrete path with hostile integers in every segment in turn.

    Percent-encoded (UTF-8), as a client library sends them, so they reach the router
    and the handlers; raw bytes in the request line are a header-phase case.
    """
    segments = path.split("/")
    for i in range(1, len(segments)):
        seg = segments[i]
        variants = [
            *NON_ASCII_DIGITS[:4],
            seg.translate(_DIGIT_SWAP),
            seg + "²",
            "+" + seg,
            "-1",
            " " + seg,
            "9" * 40,
            seg.replace("0", "00", 1),
        ]
        for variant in dict.fromkeys(variants):
            if variant != seg:
                yield "/".join([*segments[:i], quote(variant, safe=""), *segments[i + 1 :]])
    yield path + "/" + quote("²")


def all_paths(path: str, cov: Coverage, **params: str) -> list[str]:
    """The route's concrete path for ``params`` and for each of its variants."""
    return [concrete(path, cov, **params)] + [
        concrete(path, cov, **{**v, **params}) for v in cov.variants
    ]


def sign(
    base_url: str,
    key: SigningKey,
    method: str,
    target: str,
    body: bytes = b"",
    content_type: str | None = "application/json",
) -> dict[str, str]:
    """RFC 9421 headers (relay247 profile) for ``method target`` with ``body``.

    ``target`` is signed as the relay rebuilds it (``public_url`` + decoded path and
    query), so a signature over hostile query values verifies and the request reaches
    the code behind the signature check.
    """
    headers = {"Content-Type": content_type} if body and content_type else {}
    headers.update(
        sign_request(
            method,
            base_url + target,
            headers,
            body,
            key=key,
            keyid=key.fingerprint,
            now=int(time.time()),
            nonce=os.urandom(16).hex(),
        )
    )
    return headers


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class LogWatch:
    """What the servers in this process logged at error level or with a traceback."""

    events: list[MutableMapping[str, Any]]
    stdlib: _Errors

    def problems(self) -> list[str]:
        """Error-level or traceback-carrying entries, as short strings."""
        out = [
            f"{e.get('log_level')}: {e.get('event')} {e.get('path', '')}"
            for e in self.events
            if e.get("log_level") in ("error", "critical", "exception") or e.get("exc_info")
        ]
        out += [f"{r.name}: {r.getMessage()[:200]}" for r in self.stdlib.records]
        return out

    def assert_quiet(self) -> None:
        """No traceback and no error-level entry at all."""
        problems = self.problems()
        assert not problems, f"{len(problems)} error entries, first: {problems[:5]}"


@contextmanager
def watch_logs() -> Iterator[LogWatch]:
    """Capture structlog events and stdlib (aiohttp) errors of in-process servers."""
    handler = _Errors()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with structlog.testing.capture_logs() as events:
            yield LogWatch(events, handler)
    finally:
        root.removeHandler(handler)


@dataclass
class Findings:
    """Every failed check of a test, so one run reports them all (not only the first)."""

    items: list[str] = field(default_factory=list)

    @contextmanager
    def check(self, what: str) -> Iterator[None]:
        """Record an assertion failure or a hang (client timeout) under ``what``."""
        try:
            yield
        except AssertionError as exc:
            self.items.append(f"{what}: {str(exc).splitlines()[0][:300]}")
        except TimeoutError:
            self.items.append(f"{what}: no answer within the client timeout (hang)")

    def assert_none(self) -> None:
        """Fail with every recorded finding."""
        assert not self.items, f"{len(self.items)} findings:\n" + "\n".join(self.items[:60])
