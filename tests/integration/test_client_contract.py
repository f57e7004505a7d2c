"""One contract, two implementations: :class:`client.RelayClient` on a real relay and
the fake relay's transport (tests/support/fake_relay.py) answer and refuse alike.

Node unit tests run on the fake; this test is what lets them: every call the node makes
through :class:`node._transport_api.Transport` (submit, pull, long-poll, push, ack,
directory) and each refusal the node's policy sorts (``node._relays.is_refusal`` and
``PERMANENT``) is run here against both, with the same assertions.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from client import RelayRejectedError
from node.messaging.relays import PERMANENT, is_refusal
from node.messaging.transport_api import Transport
from protocol.receipt import make_ack
from schemas.blobs import BLOB_CHUNK, BlobRef
from schemas.envelope import Envelope, EnvelopeHeader
from schemas.errors import ErrorCode
from tests.integration._hostile_servers import _patched
from tests.support.fake_relay import FakeRelay
from tests.support.network import Network, make_network
from tests.support.relay import envelope, running_relay


@dataclass
class Side:
    """The transports of one implementation, by member, and the directory it holds."""

    transport: Callable[[str], Transport]
    net: Network
    name: str


@pytest.fixture(params=["real", "fake"])
async def side(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Side]:
    net = make_network(("FR", "US", "DE"))
    if request.param == "real":
        async with running_relay(tmp_path, net) as relay:
            yield Side(relay.client, net, "real")
    else:
        fake = FakeRelay(lookup=net.lookup(), directory_bytes=net.signed())
        yield Side(fake.client, net, "fake")


def _ack(net: Network, member: str, data: bytes) -> bytes:
    env = msgspec.json.decode(data, type=Envelope)
    header = msgspec.json.decode(env.header, type=EnvelopeHeader)
    return make_ack(
        header, env.header, signing_key=net.members[member].signing, acked_at=datetime.now(UTC)
    )


async def test_submit_pull_push_ack_directory(side: Side) -> None:
    fr, us = side.transport("FR"), side.transport("US")
    assert await fr.directory() == side.net.signed()
    data = envelope(side.net)
    sent = await fr.submit(data)
    assert not sent.duplicate
    again = await fr.submit(data)
    assert (again.duplicate, again.msg_id) == (True, sent.msg_id)

    page = await us.mailbox()
    assert [(m.sender, m.envelope) for m in page.messages] == [("FR", data)]
    assert page.next == page.messages[-1].seq
    empty = await us.mailbox(after=page.next, wait=1)  # long-poll runs out
    assert (empty.messages, empty.next) == ((), page.next)
    stream = us.push()
    assert isinstance(stream, AsyncGenerator)  # both close their connection on aclose()
    async with contextlib.aclosing(stream) as pushed:
        first = await anext(pushed)
    assert [m.envelope for m in first.messages] == [data]

    ack = _ack(side.net, "US", data)
    done = await us.ack(ack)
    assert (done.msg_id, done.duplicate) == (sent.msg_id, False)
    twice = await us.ack(ack)
    assert (twice.duplicate, twice.leaf_index) == (True, done.leaf_index)
    assert (await us.mailbox()).messages == ()


async def _refused(call: Awaitable[object]) -> RelayRejectedError:
    with pytest.raises(RelayRejectedError) as info:
        await call
    assert is_refusal(info.value)  # the node's policy sees a refusal, not a relay down
    return info.value


async def test_refusals_carry_the_relays_code(side: Side) -> None:
    fr, us, de = side.transport("FR"), side.transport("US"), side.transport("DE")
    msg_id = os.urandom(16).hex()
    data = envelope(side.net, msg_id=msg_id)
    await fr.submit(data)

    other = envelope(side.net, msg_id=msg_id)  # new bytes (new seal) under the same id
    conflict = await _refused(fr.submit(other))
    assert (conflict.code, conflict.status) == (ErrorCode.CONFLICT, 409)
    assert conflict.code in PERMANENT

    stale = envelope(side.net, created=datetime.now(UTC) - timedelta(days=2))
    expired = await _refused(fr.submit(stale))
    assert (expired.code, expired.status) == (ErrorCode.EXPIRED, 400)
    assert expired.code in PERMANENT

    forged = await _refused(de.submit(envelope(side.net, frm="FR")))  # DE posts FR's
    assert (forged.code, forged.status) == (ErrorCode.UNAUTHENTICATED, 401)

    ack = _ack(side.net, "US", data)
    wrong = await _refused(de.ack(ack))  # only the recipient acks
    assert (wrong.code, wrong.status) == (ErrorCode.UNAUTHENTICATED, 401)
    await us.ack(ack)
    missing = await _refused(us.ack(_ack(side.net, "US", envelope(side.net))))
    assert (missing.code, missing.status) == (ErrorCode.NOT_FOUND, 404)


# --- blobs: attachments' ciphertext (PROTOCOL.md §15.4) --------------------------------


def _blob(size: int) -> tuple[str, bytes, str]:
    data = os.urandom(size)
    return os.urandom(16).hex(), data, hashlib.sha256(data).hexdigest()


async def _read(t: Transport, blob_id: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([piece async for piece in t.blob_content(blob_id, start=start, end=end)])


async def _upload(t: Transport, blob_id: str, data: bytes, order: list[int] | None = None) -> None:
    count = max(1, -(-len(data) // BLOB_CHUNK))
    for i in order if order is not None else range(count):
        await t.put_blob_chunk(blob_id, i, data[i * BLOB_CHUNK : (i + 1) * BLOB_CHUNK])


# Both backends: the PostgreSQL one keeps chunks as rows, SQLite's as files.
@pytest.mark.usefixtures("relay_backend")
async def test_blob_upload_resume_commit_download_attach(side: Side) -> None:
    fr, us = side.transport("FR"), side.transport("US")
    blob_id, data, sha = _blob(2 * BLOB_CHUNK + 100)
    first = await fr.create_blob(blob_id, "US", len(data), sha)
    assert (first.missing, first.complete, first.chunk_size) == ((0, 1, 2), False, BLOB_CHUNK)
    await _upload(fr, blob_id, data, [2, 0])  # any order
    again = await fr.create_blob(blob_id, "US", len(data), sha)  # resume: what is missing
    assert again.missing == (1,)
    await _upload(fr, blob_id, data, [1, 1])  # idempotent
    done = await fr.commit_blob(blob_id)
    assert (done.missing, done.complete) == ((), True)
    assert (await fr.commit_blob(blob_id)).complete  # committing twice answers the same
    assert (await us.blob_status(blob_id)).complete

    assert await _read(us, blob_id) == data
    for start, end in [(5, 10), (BLOB_CHUNK - 3, BLOB_CHUNK + 3), (len(data) - 1, None)]:
        assert await _read(us, blob_id, start, end) == data[start:end]
    assert await _read(us, blob_id, 10, len(data) + 99) == data[10:]  # clamped (RFC 9110)

    ref = BlobRef(blob_id=blob_id, ct_sha256=sha, ct_len=len(data))
    env = envelope(side.net, attachments=(ref,))
    sent = await fr.submit(env)
    assert (await fr.submit(env)).duplicate  # a retry sees the blob bound to itself
    page = await us.mailbox()
    assert [m.msg_id for m in page.messages] == [sent.msg_id]
    header = msgspec.json.decode(
        msgspec.json.decode(page.messages[0].envelope, type=Envelope).header, type=EnvelopeHeader
    )
    assert header.attachments == (ref,)
    other = await _refused(fr.submit(envelope(side.net, attachments=(ref,))))
    assert (other.code, other.status) == (ErrorCode.CONFLICT, 409)  # one envelope per blob


@pytest.mark.usefixtures("relay_backend")
async def test_blob_refusals(side: Side) -> None:
    fr, us, de = side.transport("FR"), side.transport("US"), side.transport("DE")
    blob_id, data, sha = _blob(BLOB_CHUNK + 100)
    await fr.create_blob(blob_id, "US", len(data), sha)

    async def refused(call: Awaitable[object], code: ErrorCode, status: int) -> None:
        got = await _refused(call)
        assert (got.code, got.status) == (code, status), got.message

    nf = (ErrorCode.NOT_FOUND, 404)
    # Another member's blob answers like a missing one, whatever the call.
    await refused(de.blob_status(blob_id), *nf)
    await refused(us.put_blob_chunk(blob_id, 0, data[:BLOB_CHUNK]), *nf)
    await refused(de.create_blob(blob_id, "US", len(data), sha), ErrorCode.CONFLICT, 409)
    await refused(fr.create_blob(blob_id, "US", len(data) + 1, sha), ErrorCode.CONFLICT, 409)
    await refused(fr.create_blob(os.urandom(16).hex(), "FR", 5, sha), ErrorCode.MALFORMED, 400)
    unknown = fr.create_blob(os.urandom(16).hex(), "ZZ", 5, sha)
    await refused(unknown, ErrorCode.UNKNOWN_RECIPIENT, 422)
    await refused(fr.put_blob_chunk(blob_id, 2, b"x"), *nf)  # no such chunk
    await refused(fr.put_blob_chunk(blob_id, 1, data[BLOB_CHUNK:-1]), ErrorCode.MALFORMED, 400)
    await refused(fr.put_blob_chunk(blob_id, 1, data[BLOB_CHUNK:] + b"!"), ErrorCode.TOO_LARGE, 413)
    await refused(fr.commit_blob(blob_id), ErrorCode.BLOB_INCOMPLETE, 409)
    await _upload(fr, blob_id, data)
    await refused(us.blob_content(blob_id).__anext__(), ErrorCode.BLOB_INCOMPLETE, 409)
    ref = BlobRef(blob_id=blob_id, ct_sha256=sha, ct_len=len(data))
    early = fr.submit(envelope(side.net, attachments=(ref,)))
    await refused(early, ErrorCode.BLOB_INCOMPLETE, 409)
    await refused(us.commit_blob(blob_id), *nf)  # only the owner commits
    await fr.commit_blob(blob_id)
    await refused(fr.put_blob_chunk(blob_id, 0, data[:BLOB_CHUNK]), ErrorCode.CONFLICT, 409)
    await refused(fr.blob_content(blob_id).__anext__(), *nf)  # the sender does not download
    await refused(de.blob_content(blob_id).__anext__(), *nf)
    beyond = us.blob_content(blob_id, start=len(data)).__anext__()
    await refused(beyond, ErrorCode.RANGE_NOT_SATISFIABLE, 416)

    # The submit checks: the header must name the blob as committed, to its recipient.
    wrong = BlobRef(blob_id=blob_id, ct_sha256="00" * 32, ct_len=len(data))
    await refused(fr.submit(envelope(side.net, attachments=(wrong,))), ErrorCode.BLOB_MISMATCH, 422)
    to_de = envelope(side.net, to="DE", attachments=(ref,))
    await refused(fr.submit(to_de), ErrorCode.BLOB_MISMATCH, 422)
    stranger = BlobRef(blob_id=os.urandom(16).hex(), ct_sha256=sha, ct_len=len(data))
    await refused(fr.submit(envelope(side.net, attachments=(stranger,))), *nf)
    theirs = envelope(side.net, frm="DE", attachments=(ref,))  # FR's blob in DE's envelope
    await refused(de.submit(theirs), *nf)

    # A commit whose hash differs discards the upload.
    bad_id, bad, _ = _blob(10)
    await fr.create_blob(bad_id, "US", len(bad), "11" * 32)
    await fr.put_blob_chunk(bad_id, 0, bad)
    await refused(fr.commit_blob(bad_id), ErrorCode.BLOB_MISMATCH, 422)
    await refused(fr.blob_status(bad_id), *nf)


@pytest.mark.usefixtures("relay_backend")
async def test_blob_hash_announced_at_the_commit(side: Side) -> None:
    """§15.4: a create may omit ct_sha256; a later create or the commit announces it."""
    fr, us = side.transport("FR"), side.transport("US")

    async def refused(call: Awaitable[object], code: ErrorCode, status: int) -> None:
        got = await _refused(call)
        assert (got.code, got.status) == (code, status), got.message

    # Uploaded while encrypting: no hash at the create, chunks in any order, hash at the end.
    blob_id, data, sha = _blob(2 * BLOB_CHUNK + 100)
    first = await fr.create_blob(blob_id, "US", len(data), None)
    assert (first.missing, first.complete) == ((0, 1, 2), False)
    await _upload(fr, blob_id, data, [2, 0])
    assert (await fr.create_blob(blob_id, "US", len(data), None)).missing == (1,)  # resume
    await _upload(fr, blob_id, data, [1])
    await refused(us.commit_blob(blob_id, sha), ErrorCode.NOT_FOUND, 404)  # owner only
    done = await fr.commit_blob(blob_id, sha)
    assert (done.missing, done.complete) == ((), True)
    assert (await fr.commit_blob(blob_id)).complete  # again, without the hash: the same
    assert (await fr.commit_blob(blob_id, sha)).complete  # or with it
    await refused(fr.commit_blob(blob_id, "ab" * 32), ErrorCode.CONFLICT, 409)
    await refused(fr.create_blob(blob_id, "US", len(data), "ab" * 32), ErrorCode.CONFLICT, 409)
    assert (await fr.create_blob(blob_id, "US", len(data), sha)).complete
    assert await _read(us, blob_id) == data
    ref = BlobRef(blob_id=blob_id, ct_sha256=sha, ct_len=len(data))
    wrong = BlobRef(blob_id=blob_id, ct_sha256="ab" * 32, ct_len=len(data))
    await refused(fr.submit(envelope(side.net, attachments=(wrong,))), ErrorCode.BLOB_MISMATCH, 422)
    await fr.submit(envelope(side.net, attachments=(ref,)))  # the hash recorded is checked

    # A later create announces it: recorded, so a bodiless commit works; another conflicts.
    late_id, late, late_sha = _blob(BLOB_CHUNK + 7)
    await fr.create_blob(late_id, "US", len(late), None)
    assert (await fr.create_blob(late_id, "US", len(late), late_sha)).missing == (0, 1)
    other_sha = hashlib.sha256(late + b"!").hexdigest()
    await refused(fr.create_blob(late_id, "US", len(late), other_sha), ErrorCode.CONFLICT, 409)
    assert (await fr.create_blob(late_id, "US", len(late), None)).missing == (0, 1)
    await _upload(fr, late_id, late)
    await refused(fr.commit_blob(late_id, other_sha), ErrorCode.CONFLICT, 409)
    assert (await fr.commit_blob(late_id)).complete

    # Announced at the create: a commit naming another hash conflicts and keeps the blob.
    kept_id, kept, kept_sha = _blob(300)
    await fr.create_blob(kept_id, "US", len(kept), kept_sha)
    await _upload(fr, kept_id, kept)
    await refused(fr.commit_blob(kept_id, "cd" * 32), ErrorCode.CONFLICT, 409)
    assert (await fr.blob_status(kept_id)).missing == ()  # still there, every chunk too
    assert (await fr.commit_blob(kept_id, kept_sha)).complete

    # Never announced: a bare commit is malformed, a wrong hash discards the upload.
    bare_id, bare, _ = _blob(500)
    await fr.create_blob(bare_id, "US", len(bare), None)
    await _upload(fr, bare_id, bare)
    await refused(fr.commit_blob(bare_id), ErrorCode.MALFORMED, 400)
    assert not (await fr.blob_status(bare_id)).complete  # the refusal changed nothing
    await refused(fr.commit_blob(bare_id, "ef" * 32), ErrorCode.BLOB_MISMATCH, 422)
    await refused(fr.blob_status(bare_id), ErrorCode.NOT_FOUND, 404)

    # Chunks missing: blob_incomplete, and the hash is not recorded.
    part_id, part, part_sha = _blob(BLOB_CHUNK + 1)
    await fr.create_blob(part_id, "US", len(part), None)
    await _upload(fr, part_id, part, [0])
    await refused(fr.commit_blob(part_id, "12" * 32), ErrorCode.BLOB_INCOMPLETE, 409)
    await refused(fr.commit_blob(part_id), ErrorCode.MALFORMED, 400)  # still no hash
    await _upload(fr, part_id, part, [1])
    assert (await fr.commit_blob(part_id, part_sha)).complete


async def test_blob_hash_of_the_wrong_shape_is_malformed_first(side: Side) -> None:
    """A hash that is not 64 lowercase hex digits ("", upper case, short) is malformed at
    the create and at the commit before any other check (the recipient, the caller, the
    blob, its state), and changes nothing: the blob stays, every chunk with it."""
    fr, us = side.transport("FR"), side.transport("US")

    async def malformed(call: Awaitable[object]) -> None:
        got = await _refused(call)
        assert (got.code, got.status) == (ErrorCode.MALFORMED, 400), got.message

    blob_id, data, sha = _blob(BLOB_CHUNK + 3)
    wrong = ("", sha.upper(), sha[:-1])
    for given in wrong:
        await malformed(fr.create_blob(blob_id, "US", len(data), given))
        await malformed(fr.create_blob(blob_id, "ZZ", len(data), given))  # not in the directory
        await malformed(fr.create_blob(blob_id, "FR", len(data), given))  # the caller itself
    with pytest.raises(RelayRejectedError) as nothing:
        await fr.blob_status(blob_id)
    assert nothing.value.code is ErrorCode.NOT_FOUND  # none of them created it
    await fr.create_blob(blob_id, "US", len(data), None)
    await _upload(fr, blob_id, data)
    for given in wrong:
        await malformed(fr.commit_blob(blob_id, given))
        await malformed(us.commit_blob(blob_id, given))  # not the owner
        await malformed(fr.commit_blob(os.urandom(16).hex(), given))  # no such blob
    kept = await fr.blob_status(blob_id)
    assert (kept.missing, kept.complete) == ((), False)
    assert (await fr.commit_blob(blob_id, sha)).complete
    for given in wrong:
        await malformed(fr.commit_blob(blob_id, given))  # committed: still its shape first
    assert await _read(us, blob_id) == data


#: the owner's blob quota of :func:`quota_side` (``blobs.max_bytes_per_sender``)
SENDER_BYTES = 3000


@pytest.fixture(params=["real", "fake"])
async def quota_side(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Side]:
    """Like :func:`side`, each member's blobs limited to :data:`SENDER_BYTES`."""
    net = make_network(("FR", "US", "DE"))
    if request.param == "real":
        quota = str(SENDER_BYTES)
        _patched(monkeypatch, max_blob_bytes=quota, max_bytes_per_sender=quota)
        async with running_relay(tmp_path, net) as relay:
            yield Side(relay.client, net, "real")
    else:
        fake = FakeRelay(lookup=net.lookup(), directory_bytes=net.signed())
        fake.blobs.sender_bytes = SENDER_BYTES
        yield Side(fake.client, net, "fake")


@pytest.mark.usefixtures("relay_backend")
async def test_blob_discard(quota_side: Side) -> None:
    """§15.4 "Discard": the owner gives up an upload not committed; it is gone at once,
    its quota with it; a committed blob, another member's or a missing one is refused."""
    fr, us, de = (quota_side.transport(m) for m in ("FR", "US", "DE"))

    async def refused(call: Awaitable[object], code: ErrorCode, status: int) -> None:
        got = await _refused(call)
        assert (got.code, got.status) == (code, status), got.message

    nf = (ErrorCode.NOT_FOUND, 404)
    blob_id, data, sha = _blob(2000)
    await fr.create_blob(blob_id, "US", len(data), None)  # an upload while encrypting
    await _upload(fr, blob_id, data[:2000])
    other_id, other, other_sha = _blob(1500)
    full = fr.create_blob(other_id, "US", len(other), other_sha)
    await refused(full, ErrorCode.QUOTA_EXCEEDED, 429)  # 2000 + 1500 > 3000
    await refused(us.discard_blob(blob_id), *nf)  # the recipient does not discard it
    await refused(de.discard_blob(blob_id), *nf)  # nor does a third member
    assert (await fr.blob_status(blob_id)).missing == ()  # both changed nothing
    await fr.discard_blob(blob_id)
    await refused(fr.blob_status(blob_id), *nf)
    await refused(us.blob_status(blob_id), *nf)
    await refused(fr.discard_blob(blob_id), *nf)  # twice: it is gone
    await refused(fr.put_blob_chunk(blob_id, 0, data), *nf)
    await refused(fr.commit_blob(blob_id, sha), *nf)
    await refused(fr.discard_blob(os.urandom(16).hex()), *nf)  # never was

    # Its 2000 bytes no longer count: the create refused above is taken now.
    assert (await fr.create_blob(other_id, "US", len(other), other_sha)).missing == (0,)
    await _upload(fr, other_id, other)
    assert (await fr.commit_blob(other_id)).complete
    await refused(fr.discard_blob(other_id), ErrorCode.CONFLICT, 409)  # committed: kept
    assert await _read(us, other_id) == other

    # The discarded id can be created again: a new blob (another length: no conflict),
    # every chunk missing; and discarded again.
    again = await fr.create_blob(blob_id, "US", 1000, None)
    assert (again.ct_len, again.missing, again.complete) == (1000, (0,), False)
    await fr.discard_blob(blob_id)
    assert (await fr.create_blob(blob_id, "US", 1500, "ab" * 32)).ct_len == 1500
