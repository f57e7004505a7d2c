"""Every endpoint of :mod:`client` against a real relay on 127.0.0.1, and the one
refusal mapping: the relay's JSON error body, a non-JSON error page, an answer over the
client's limit, junk with a 200, and no relay at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web

from audit.verify import Policy, verify_log
from client import PublicClient, RelayClient, RelayRejectedError
from protocol.checkpoint import open_checkpoint
from protocol.cosignature import CosignatureSigner
from protocol.errors import MalformedError, TooLargeError, TransportError
from protocol.keys import SigningKey
from protocol.merkle import consistency_proof, inclusion_proof, leaf_hash, root
from protocol.note import Verifier, generate_key
from protocol.witness import witness_checkpoint
from schemas.errors import ErrorCode
from tests.support.relay import RunningRelay, envelope, free_port, grow, running_relay, signed
from tests.support.web_app import serving


def _public(relay: RunningRelay, **kw: int) -> PublicClient:
    return PublicClient(relay.url, relay.session, **kw)


async def test_public_reads_and_directory_post(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        c = _public(relay)
        await c.health()
        info = await c.info()
        assert (info.relay_id, info.public_url) == ("test-relay", relay.url)
        assert info.log_key == relay.state.keys.log_key
        assert await c.directory() == relay.net.signed()
        # A version the relay holds already is answered with its leaf (network push).
        again = await c.publish_directory(relay.net.signed())
        assert (again.version, again.leaf_index) == (1, 0)


async def test_audit_log_reads_match_the_relays_tree(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        c = _public(relay)
        with pytest.raises(RelayRejectedError) as none_yet:
            await c.checkpoint()
        assert (none_yet.value.code, none_yet.value.status) == (ErrorCode.NOT_FOUND, 404)
        await grow(relay, 20)
        old = await relay.state.store.tree_size()
        await grow(relay, 7)
        cp = await signed(relay)
        note = await c.checkpoint()
        verifier = Verifier.from_key(relay.state.keys.log_key)
        opened, _ = open_checkpoint(note, verifier, verifier.name)
        assert (opened.size, opened.root_hash) == (cp.size, cp.root)

        entries = await c.entries(0, cp.size)
        hashes = [leaf_hash(e) for e in entries]
        assert root(hashes) == cp.root
        assert await c.consistency_proof(old, cp.size) == consistency_proof(old, hashes)
        assert await c.consistency_proof(cp.size, cp.size) == []
        by_index = await c.inclusion_proof(3, cp.size)
        assert list(by_index.proof) == inclusion_proof(3, hashes)
        by_hash = await c.inclusion_by_hash(hashes[3], cp.size)
        assert (by_hash.index, list(by_hash.proof)) == (3, list(by_index.proof))
        # A partial tile (fewer than 256 leaves): entries and level-0 hashes.
        assert await c.entry_bundle(0, cp.size) == entries
        assert await c.hash_tile(0, 0, cp.size) == hashes


async def test_member_calls_are_signed(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        fr = relay.client("FR")
        await fr.submit(envelope(relay.net))
        status = await fr.members_status()
        assert "FR" in {m.id for m in status.members if m.last_seen is not None}
        # The cosignature POST: the relay adds FR's line to its checkpoint (W1-W6).
        await signed(relay)
        note = await fr.checkpoint()
        verifier = Verifier.from_key(relay.state.keys.log_key)
        done = witness_checkpoint(
            None,
            note,
            [],
            log_verifier=verifier,
            origin=verifier.name,
            signer=CosignatureSigner("FR", relay.net.members["FR"].signing),
            timestamp=int(datetime.now(UTC).timestamp()),
        )
        assert (await fr.submit_cosignature(note, done.line)).witnesses == 1
        assert done.line.encode() in await fr.checkpoint()
        with pytest.raises(RelayRejectedError) as bad:
            await fr.submit_cosignature(note, done.line.replace("FR", "US", 1))
        assert bad.value.code is ErrorCode.INVALID_NOTE


async def test_the_relays_error_body_becomes_its_code(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        stranger = RelayClient(relay.url, SigningKey.generate(), relay.session)
        with pytest.raises(RelayRejectedError) as info:
            await stranger.mailbox()
        exc = info.value
        assert (exc.code, exc.status, exc.message) == (
            ErrorCode.UNAUTHENTICATED,
            401,
            "request signature does not verify",
        )
        assert exc.request_id
        assert exc.request_id in exc.detail
        assert f"HTTP 401 GET {relay.url}/v1/mailbox" in exc.detail


@asynccontextmanager
async def _answering(status: int, body: bytes, content_type: str) -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type=content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    async with serving(app) as url:
        yield url


@pytest.mark.parametrize(
    ("status", "code"), [(502, ErrorCode.UNAVAILABLE), (404, ErrorCode.MALFORMED)]
)
async def test_an_error_page_without_the_json_body_is_a_transport_error(
    status: int, code: ErrorCode
) -> None:
    # A proxy's HTML page, not the relay: the node fails over instead of giving up.
    page = b"<html>Bad Gateway</html>"
    async with _answering(status, page, "text/html") as url, PublicClient(url) as c:
        with pytest.raises(TransportError) as info:
            await c.info()
    assert not isinstance(info.value, RelayRejectedError)
    assert info.value.code is code
    assert (
        info.value.message
        == f"GET {url}/v1/info: relay answered HTTP {status} without an error body"
    )
    # Not the page's text: it would reach a terminal or a log unescaped.
    assert info.value.detail == f"{len(page)} bytes"


async def test_junk_with_200_and_answers_over_the_limit(tmp_path: Path) -> None:
    async with _answering(200, b"<html>hi</html>", "text/html") as url, PublicClient(url) as c:
        with pytest.raises(MalformedError, match="relay answer is not valid JSON"):
            await c.info()
    async with running_relay(tmp_path) as relay:
        size = len(await _public(relay).directory())
        with pytest.raises(TooLargeError, match=f"relay answer larger than {size - 1} bytes"):
            await _public(relay, limit=size - 1).directory()
        assert len(await _public(relay, limit=size).directory()) == size


async def test_no_relay_is_named_with_its_address() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with RelayClient(url, SigningKey.generate()) as c:
        with pytest.raises(TransportError, match=f"^{url}/v1/mailbox.*: relay unreachable"):
            await c.mailbox()
        with pytest.raises(TransportError, match=f"^{url}/healthz: relay unreachable"):
            await c.health()


@pytest.mark.parametrize(("status", "anomaly"), [(404, True), (403, True), (502, False)])
async def test_the_auditor_reports_a_foreign_error_page_as_an_anomaly(
    tmp_path: Path, status: int, anomaly: bool
) -> None:
    """A 4xx page that is not the relay's error body (a proxy's, a static tile host's) is
    something the relay answered: the audit reports it. A 5xx is no answer: it stops."""
    _, vkey = generate_key("relay.test/log")
    policy = Policy(vkey, (), 0)
    async with _answering(status, b"<html>no</html>", "text/html") as url, PublicClient(url) as c:
        if anomaly:
            result = await verify_log(c, policy, tmp_path, now=datetime.now(UTC))
            assert not result.ok
            assert result.anomalies[0].startswith("checkpoint: ")
            assert "<html>" not in result.anomalies[0]
        else:
            with pytest.raises(TransportError):
                await verify_log(c, policy, tmp_path, now=datetime.now(UTC))
