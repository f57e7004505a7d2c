"""Parser bombs in a reply, before and after M4 (PROTOCOL.md §22.4, M1's bounds).

Each is refused with its code, within a memory bound far below what the stdlib's
``email.policy.default`` parser took (8,000 encoded-words in From: +747 MiB), and the
mailbox loop goes on and flags the e-mail seen.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest

from node.alerts import Alert
from node.email_bridge import (
    BridgeInbox,
    BridgeRefusedError,
    NodeOpenPgpKey,
    Reply,
    armored_payload,
)
from node.email_bridge import service as service_module
from node.email_bridge.fetch import BridgeFetcher
from tests.integration.test_email_bridge import (
    CASE,
    CASE_TEXT,
    NODE,
    NOW,
    _accept,
    _member,
    _reply,
    _text_reply,
    gpg,
    node_key,
)
from tests.support.mailserver import GpgMember, mail_available

pytestmark = pytest.mark.skipif(mail_available() is not None, reason=str(mail_available()))
__all__ = ["gpg", "node_key"]  # the fixtures this module uses

MIB = 1 << 20


def _good(gpg: GpgMember, node_key: NodeOpenPgpKey) -> bytes:
    return _reply(gpg, node_key, _text_reply(CASE_TEXT))


def _with_from(raw: bytes, value: bytes) -> bytes:
    first, rest = raw.split(b"\r\n", 1)
    assert first.startswith(b"From: ")
    return b"From: " + value + b"\r\n" + rest


def _with_params(raw: bytes, params: bytes) -> bytes:
    """The outer Content-Type with ``params`` added (the frame is otherwise intact)."""
    head = b"Content-Type: multipart/encrypted;"
    assert raw.count(head) == 1
    return raw.replace(head, head + params, 1)


def _peak(fn: Callable[[], object]) -> int:
    """Bytes allocated at the peak while ``fn`` runs (an upper bound, not a timing)."""
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def _refused_within(reason: str, raw: bytes, gpg: GpgMember, key: NodeOpenPgpKey) -> None:
    caught: list[BridgeRefusedError] = []

    def run() -> None:
        try:
            _accept(raw, _member("DE-BKA", gpg), key)
        except BridgeRefusedError as exc:
            caught.append(exc)

    assert _peak(run) < 50 * MIB
    assert [c.reason for c in caught] == [reason], [c.detail for c in caught]


def test_encoded_words_in_from_are_refused_unparsed(
    gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    """4,000 encoded-words (56 KB, under the header block's bound): the default policy took
    +193 MiB for them (and took the reply); now over the count of encoded-words."""
    words = b"=?utf-8?q?a?= " * 4000 + b"<" + gpg.address.encode() + b">"
    raw = _with_from(_good(gpg, node_key), words)
    _refused_within("bad_header", raw, gpg, node_key)


def test_many_addresses_in_from_are_refused_within_memory(
    gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    raw = _with_from(_good(gpg, node_key), b"a@b.c, " * 9000 + gpg.address.encode())
    _refused_within("bad_header", raw, gpg, node_key)


@pytest.mark.parametrize(
    "params",
    [
        b" x=y;" * 2000,  # the default policy: CPU growing faster than the parameters
        b"".join(b" protocol*%d*=a;" % i for i in range(1000)),  # RFC 2231 continuations
    ],
    ids=["params", "rfc2231"],
)
def test_content_type_parameters_are_bounded(
    params: bytes, gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    _refused_within("bad_header", _with_params(_good(gpg, node_key), params), gpg, node_key)


def test_header_block_and_line_are_bounded(gpg: GpgMember, node_key: NodeOpenPgpKey) -> None:
    good = _good(gpg, node_key)
    line = good.replace(b"\r\nTo: ", b"\r\nX-Big: " + b"a" * 2000 + b"\r\nTo: ", 1)
    _refused_within("bad_header", line, gpg, node_key)
    block = good.replace(b"\r\nTo: ", b"\r\n" + b"X-H: a\r\n" * 20_000 + b"To: ", 1)
    _refused_within("bad_header", block, gpg, node_key)


def test_empty_sibling_parts_are_refused_before_parsing(
    gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    raw = (
        b"From: " + gpg.address.encode() + b"\r\nContent-Type: multipart/encrypted; "
        b'protocol="application/pgp-encrypted"; boundary="q"\r\n\r\n'
        + b"--q\r\n\r\n" * 1000
        + b"--q--\r\n"
    )
    _refused_within("mime_too_complex", raw, gpg, node_key)


def test_nested_comments_in_from_are_refused(gpg: GpgMember, node_key: NodeOpenPgpKey) -> None:
    """5,000 nested comments overflowed the address parser's recursion (RecursionError,
    refused only after three rounds); in one line they are over the line's bound, folded
    in lines under it they are read and refused as the header's fault."""
    address = b" " + gpg.address.encode()
    one_line = b"(" * 5000 + b"x" + b")" * 5000 + address
    _refused_within("bad_header", _with_from(_good(gpg, node_key), one_line), gpg, node_key)
    folded = b"\r\n ".join([b"(" * 900] * 6 + [b")" * 900] * 6) + address
    _refused_within("bad_header", _with_from(_good(gpg, node_key), folded), gpg, node_key)


def test_encoded_words_in_the_signed_entity_are_bounded(
    gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    """After M4 the same bounds apply: the default policy took +433 MiB for 8,000."""
    inner = b"X-Relay247-Case: " + b"=?utf-8?q?a?= " * 4000 + b"\r\n"
    inner += b"Content-Type: text/plain\r\n\r\n" + CASE_TEXT.encode() + b"\r\n"
    armored = gpg.sign_encrypt(inner, node_key.fingerprint)
    good = _good(gpg, node_key)
    raw = good.replace(armored_payload(good).strip(), armored.strip())
    _refused_within("bad_header", raw, gpg, node_key)


def test_a_reply_within_the_bounds_is_taken(gpg: GpgMember, node_key: NodeOpenPgpKey) -> None:
    """Encoded-words in a display name and a Subject (a real client's) are not decoded."""
    good = _good(gpg, node_key)
    name = b"=?utf-8?q?J=C3=BCrgen?= <" + gpg.address.encode() + b">"
    raw = _with_from(good, name).replace(
        b"Subject: Re: relay247", b"Subject: =?utf-8?q?Re:_relay247_=C3=9C?=", 1
    )
    assert _accept(raw, _member("DE-BKA", gpg), node_key).case_id == CASE


@pytest.mark.parametrize("charset", ["idna", "undefined", "punycode", "x-nope"])
def test_a_text_part_in_a_charset_that_cannot_decode_is_read_as_utf8(
    charset: str, gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    """A member's text/plain in a codec that raises UnicodeError (not LookupError) was an
    unexpected failure, refused internal_error after three rounds: read as UTF-8."""
    inner = f"Content-Type: text/plain; charset={charset}\r\nMIME-Version: 1.0\r\n\r\n"
    data = (inner + CASE_TEXT + "\r\n\u00e9\r\n").encode("latin-1")
    armored = gpg.sign_encrypt(data, node_key.fingerprint)
    good = _good(gpg, node_key)
    raw = good.replace(armored_payload(good).strip(), armored.strip())
    reply = _accept(raw, _member("DE-BKA", gpg), node_key)
    assert reply.case_id == CASE
    assert "\ufffd" in reply.text  # the latin-1 byte, replaced


class _Box:
    """A mailbox of fixed messages (what BridgeInbox and BridgeFetcher use of one)."""

    def __init__(self, mail: dict[str, bytes], fail_first: BaseException | None = None) -> None:
        self.mail = mail
        self.seen: set[str] = set()
        self.fail = fail_first
        self.on_idle: Callable[[], object] = lambda: None

    def unseen(self) -> list[str]:
        if self.fail is not None:
            fail, self.fail = self.fail, None
            raise fail
        return [uid for uid in self.mail if uid not in self.seen]

    def fetch(self, uid: str) -> bytes:
        return self.mail[uid]

    def mark_seen(self, uid: str) -> None:
        self.seen.add(uid)

    def idle(self, seconds: float) -> None:
        del seconds
        self.on_idle()  # a pass is done

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


def _inbox(box: _Box, gpg: GpgMember, key: NodeOpenPgpKey, out: list[str]) -> BridgeInbox:
    async def on_reply(reply: Reply) -> None:
        out.append(f"reply {reply.member}")

    async def on_alert(alert: Alert) -> None:
        out.append(alert.kind)

    return BridgeInbox(
        cast(Any, box), members=lambda: [_member("DE-BKA", gpg)], node_member=NODE,
        node_key=key, case_peer={CASE: "DE-BKA"}.get, on_reply=on_reply, on_alert=on_alert,
        now=lambda: NOW,
    )  # fmt: skip


async def test_the_loop_refuses_a_bomb_at_once_and_goes_on(
    gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    good = _good(gpg, node_key)
    bomb = _with_from(good, b"\r\n ".join([b"(" * 900] * 6 + [b")" * 900] * 6) + b" x@y.test")
    box = _Box({"1": bomb, "2": good})
    out: list[str] = []
    assert await _inbox(box, gpg, node_key, out).handle_new() == (1, 1)
    assert box.seen == {"1", "2"}  # the bomb is not fetched again by the next round
    assert sorted(out) == ["email_bad_header", "reply DE-BKA"]


async def test_running_out_of_memory_refuses_that_email_only(
    gpg: GpgMember, node_key: NodeOpenPgpKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A MemoryError or RecursionError is the e-mail's: refused at once, flagged seen."""
    good = _good(gpg, node_key)
    errors = iter([MemoryError(), RecursionError()])

    def exhausted(raw: bytes, **kwargs: object) -> Reply:
        raise next(errors)

    monkeypatch.setattr(service_module, "accept", exhausted)
    box = _Box({"1": good, "2": good + b"\r\n"})
    out: list[str] = []
    assert await _inbox(box, gpg, node_key, out).handle_new() == (0, 2)
    assert box.seen == {"1", "2"}
    assert out == ["email_too_large", "email_mime_too_complex"]


async def test_the_fetcher_survives_any_exception_of_a_pass(
    gpg: GpgMember, node_key: NodeOpenPgpKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A RuntimeError (e.g. no thread to be had) is logged and counted; the task goes on."""
    box = _Box({"1": _good(gpg, node_key)}, fail_first=RuntimeError("can't start new thread"))
    replies: list[Reply] = []
    idled = asyncio.Event()
    loop = asyncio.get_running_loop()
    box.on_idle = lambda: loop.call_soon_threadsafe(idled.set)

    async def record(reply: Reply) -> None:
        replies.append(reply)

    async def alert(item: Alert) -> None:
        raise AssertionError(item.kind)

    settings = SimpleNamespace(retry_seconds=0.01, idle_seconds=0.01)
    setup = SimpleNamespace(settings=settings, key=node_key)
    bridge = SimpleNamespace(member=NODE, peer_of=lambda c, loop: {CASE: "DE-BKA"}.get(c),
                             record_reply=record)  # fmt: skip
    fetcher = BridgeFetcher(cast(Any, setup), cast(Any, bridge),
                            members=lambda: [_member("DE-BKA", gpg)], alert=alert,
                            clock=lambda: NOW)  # fmt: skip
    monkeypatch.setattr(fetcher, "_connect", lambda: box)
    task = asyncio.create_task(fetcher.run())
    try:
        waiting = asyncio.create_task(idled.wait())
        await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        assert not task.done(), task.exception()
    finally:
        task.cancel()
    assert fetcher.failures == 1
    assert [r.case_id for r in replies] == [CASE]
    assert box.seen == {"1"}
