"""An attachment uploaded while it is encrypted, over the fake relay (PROTOCOL.md §15.4).

``AttachmentFiles.prepare(..., upload=EarlyUpload(...))`` (node/messaging/_early.py):
the blob is created without its hash, its chunks go while the encryption goes on, the
commit carries the hash, and the outbox's upload at send time then sends nothing. Best
effort: whatever fails, the prepare returns the same kind of Attachment as without it,
and a later ``upload()`` completes the blob.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from node.events import MessageReceived
from node.messaging import _early
from node.messaging._chunks import IN_FLIGHT
from node.messaging._early import EarlyUpload
from node.messaging._stream_check import hash_file
from node.messaging.attachments import AttachmentFiles, refs_of, upload
from protocol import attachment as fmt
from protocol.errors import MalformedError
from schemas import Attachment
from schemas.blobs import BLOB_CHUNK, BlobStatus, chunk_count
from schemas.errors import ErrorCode
from schemas.examples import EXAMPLES
from tests.support.bodies import addressed
from tests.support.fake_blobs import refuse
from tests.support.fake_relay import HANG_GUARD, FakeRelay, FakeTransport, next_event
from tests.support.network import make_network
from tests.unit.test_node_attachments import REQUEST, Pair, _pieces, _with, pair

__all__ = ["pair"]  # the fixture used here

MiB = 1 << 20


@pytest.fixture(autouse=True)
def _patient(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests that expect the early upload to complete do not depend on the fake
    relay answering within SLOT_WAIT on a loaded machine; a test of the bound sets its
    own (shorter) value after this."""
    monkeypatch.setattr(_early, "SLOT_WAIT", HANG_GUARD)


class Spy:
    """Counts what reaches the fake relay's blobs; ``seen_put`` is set by the first PUT."""

    def __init__(self, relay: FakeRelay) -> None:
        self.creates: list[str | None] = []
        self.puts: list[int] = []
        self.commits: list[str | None] = []
        self.seen_put = asyncio.Event()
        blobs = relay.blobs
        create, put, commit = blobs.create, blobs.put, blobs.commit

        def on_create(
            member: str, blob_id: str, recipient: str, ct_len: int, ct_sha256: str | None
        ) -> BlobStatus:
            self.creates.append(ct_sha256)
            return create(member, blob_id, recipient, ct_len, ct_sha256)

        def on_put(member: str, blob_id: str, index: int, data: bytes) -> BlobStatus:
            self.puts.append(index)
            self.seen_put.set()
            return put(member, blob_id, index, data)

        def on_commit(member: str, blob_id: str, ct_sha256: str | None = None) -> BlobStatus:
            self.commits.append(ct_sha256)
            return commit(member, blob_id, ct_sha256)

        blobs.create, blobs.put, blobs.commit = on_create, on_put, on_commit  # type: ignore[method-assign]


def _relay() -> FakeRelay:
    net = make_network()
    return FakeRelay(net.lookup(), net.signed())


async def _waiting(data: bytes, event: asyncio.Event, after: int) -> AsyncIterator[bytes]:
    """``data`` in 1 MiB pieces; before the piece at ``after`` bytes, waits for ``event``
    (a test that would hang instead fails after HANG_GUARD)."""
    for i in range(0, len(data), MiB):
        if i == after:
            await asyncio.wait_for(event.wait(), HANG_GUARD)
        yield data[i : i + MiB]


def _check_kept(files: AttachmentFiles, a: Attachment, data: bytes) -> bytes:
    """The Attachment is what prepare() always made: the file kept, its digests."""
    ct = files.sent_path(a.blob_id).read_bytes()
    assert (a.size, a.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert (a.ct_len, a.ct_sha256) == (len(ct), hashlib.sha256(ct).hexdigest())
    assert hash_file(files.sent_path(a.blob_id)) == (a.ct_len, a.ct_sha256)
    files.check_prepared((a,), "US")  # its .json digest, as without the early upload
    # .to: the member the relay's blob is for, kept beside it (refused for another one)
    to = [".to"] if files.uploaded_for(a.blob_id) else []
    assert sorted(p.suffix for p in files.out_dir.iterdir()) == [".ct", ".json", *to]
    return ct


async def test_chunks_go_while_it_encrypts_and_the_send_uploads_nothing(
    tmp_path: Path,
) -> None:
    relay = _relay()
    spy = Spy(relay)
    fr = relay.client("FR")
    files = AttachmentFiles(tmp_path)
    data = os.urandom(13 * MiB + 7)  # four upload chunks
    # The last 4 MiB of plaintext are handed over only once the relay has seen a PUT:
    # prepare() would hang (and the guard fail the test) if the chunks waited for it.
    pieces = _waiting(data, spy.seen_put, after=9 * MiB)
    a = await files.prepare(
        pieces, name="a.bin", media_type="a/b", upload=EarlyUpload(fr, "US", len(data))
    )
    ct = _check_kept(files, a, data)
    assert spy.creates == [None]  # announced before its hash was known
    assert sorted(spy.puts) == list(range(chunk_count(a.ct_len)))
    assert spy.commits == [a.ct_sha256]  # the commit carries it
    blob = relay.blobs.blobs[a.blob_id]
    assert (blob.committed, blob.ct_sha256, blob.recipient) == (True, a.ct_sha256, "US")
    assert blob.content() == ct
    assert files.uploaded_for(a.blob_id) == "US"
    # At send time the outbox's upload finds it complete and sends nothing more.
    await upload(fr, files, "US", refs_of((a,)))
    assert spy.creates == [None, a.ct_sha256]
    assert (len(spy.puts), len(spy.commits)) == (chunk_count(a.ct_len), 1)


async def test_between_nodes_the_file_goes_early_and_arrives(pair: Pair) -> None:
    spy = Spy(pair.relay)
    data = os.urandom(5 * MiB)
    a = await pair.fr.prepare_attachment(
        _pieces(data), name="x.pdf", media_type="application/pdf", to="US", size=len(data)
    )
    assert pair.relay.blobs.blobs[a.blob_id].committed
    puts = list(spy.puts)
    assert sorted(puts) == [0, 1]
    await pair.fr.send(_with(REQUEST, a), "US")
    await next_event(pair.us_q, MessageReceived)
    assert spy.puts == puts  # nothing more went at send time
    with pair.us.files.received_path("FR", a.blob_id).open("rb") as f:
        assert b"".join(fmt.verified_chunks(f, a)) == data
    # Uploaded for US: its ciphertext is at the relay for US only, so not for DE.
    with pytest.raises(MalformedError) as err:
        await pair.fr.send(_with(addressed(EXAMPLES["preservation_request"], "FR", "DE"), a), "DE")
    assert err.value.field == "$.attachments[0]"
    assert err.value.problem == "prepared for US: it went to the relay for that member only"


def _down(relay: FakeRelay, spy: Spy) -> None:
    relay.down = True


def _old_relay(relay: FakeRelay, spy: Spy) -> None:
    create = relay.blobs.create

    def wants_hash(
        member: str, blob_id: str, recipient: str, ct_len: int, ct_sha256: str | None
    ) -> BlobStatus:
        if ct_sha256 is None:
            raise refuse(ErrorCode.MALFORMED, "blob: ct_sha256 is required")
        return create(member, blob_id, recipient, ct_len, ct_sha256)

    relay.blobs.create = wants_hash  # type: ignore[method-assign]


def _second_put_refused(relay: FakeRelay, spy: Spy) -> None:
    put, refused = relay.blobs.put, list[int]()

    def once(member: str, blob_id: str, index: int, data: bytes) -> BlobStatus:
        if index == 1 and not refused:
            refused.append(index)
            raise refuse(ErrorCode.UNAVAILABLE, "storage unavailable")
        return put(member, blob_id, index, data)

    relay.blobs.put = once  # type: ignore[method-assign]


def _down_at_commit(relay: FakeRelay, spy: Spy) -> None:
    commit, once = relay.blobs.commit, list[str]()

    def down(member: str, blob_id: str, ct_sha256: str | None = None) -> BlobStatus:
        if not once:  # the relay goes down as the commit arrives
            once.append(blob_id)
            relay.down = True
            relay._check()
        return commit(member, blob_id, ct_sha256)

    relay.blobs.commit = down  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("fault", "at_relay", "why"),
    [
        (_down, set(), "create failed"),
        (_old_relay, set(), "create failed"),
        (_second_put_refused, {0}, "chunk 1 failed"),
        (_down_at_commit, {0, 1, 2}, "commit failed"),
    ],
)
async def test_a_failure_abandons_it_and_the_send_uploads_the_rest(
    tmp_path: Path, fault: Callable[[FakeRelay, Spy], None], at_relay: set[int], why: str
) -> None:
    relay = _relay()
    spy = Spy(relay)
    fault(relay, spy)
    fr = relay.client("FR")
    files = AttachmentFiles(tmp_path)
    data = os.urandom(10 * MiB)  # three upload chunks
    with capture_logs() as logs:
        a = await files.prepare(
            _pieces(data, MiB),
            name="a.bin",
            media_type="a/b",
            upload=EarlyUpload(fr, "US", len(data)),
        )
    ct = _check_kept(files, a, data)
    (abandoned,) = [e for e in logs if e["event"] == "attachment early upload abandoned"]
    assert (abandoned["blob_id"], abandoned["why"]) == (a.blob_id, why)
    # Nothing of the key or the plaintext is logged.
    key = base64.b64decode(a.key)
    text = repr(logs)
    assert a.key not in text
    assert key.hex() not in text
    assert data[:16].hex() not in text
    blob = relay.blobs.blobs.get(a.blob_id)
    assert (set() if blob is None else set(blob.chunks)) == at_relay
    # At send time (the relay back), the outbox's upload sends what is missing.
    relay.down = False  # (a PUT refused once goes the second time)
    before = len(spy.puts)
    await upload(fr, files, "US", refs_of((a,)))
    assert sorted(spy.puts[before:]) == sorted({0, 1, 2} - at_relay)
    blob = relay.blobs.blobs[a.blob_id]
    assert blob.committed
    assert blob.content() == ct


@pytest.mark.parametrize("delta", [-1, 1, -6 * MiB, 5 * MiB])
async def test_a_plaintext_of_another_size_takes_another_blob_id(
    tmp_path: Path, delta: int
) -> None:
    """The early upload announced ``len + delta`` bytes: abandoned, and the attachment
    gets a fresh blob id (the relay may hold the announced length under the first one,
    which a create with the true length would meet as a conflict)."""
    relay = _relay()
    spy = Spy(relay)
    fr = relay.client("FR")
    files = AttachmentFiles(tmp_path)
    data = os.urandom(10 * MiB)
    with capture_logs() as logs:
        a = await files.prepare(
            _pieces(data, MiB),
            name="a.bin",
            media_type="a/b",
            upload=EarlyUpload(fr, "US", len(data) + delta),
        )
    ct = _check_kept(files, a, data)
    # Announced with its first whole chunk (-6 MiB: the plaintext outran the announced
    # length before that, so nothing was), then discarded: its quota back at once.
    assert spy.creates == ([] if delta == -6 * MiB else [None])
    assert relay.blobs.blobs == {}
    assert spy.commits == []
    assert any(e["event"] == "attachment early upload abandoned" for e in logs)
    assert files.uploaded_for(a.blob_id) is None  # the new id went nowhere
    await upload(fr, files, "US", refs_of((a,)))
    assert relay.blobs.blobs[a.blob_id].content() == ct


class _Blocking(FakeTransport):
    """A transport whose PUTs wait until :meth:`release` (``max_at_once``: the most that
    were under way together; ``cancelled``: PUTs cancelled while they waited)."""

    def __init__(self, relay: FakeRelay) -> None:
        super().__init__(relay, "FR", relay.url)
        self.waiting: list[asyncio.Event] = []
        self.done = 0
        self.under_way = 0
        self.max_at_once = 0
        self.cancelled = 0
        self.started = asyncio.Event()
        self.opened = False  # once True, PUTs no longer wait

    async def put_blob_chunk(self, blob_id: str, index: int, data: bytes) -> BlobStatus:
        gate = asyncio.Event()
        if self.opened:
            gate.set()
        self.waiting.append(gate)
        self.under_way += 1
        self.max_at_once = max(self.max_at_once, self.under_way)
        self.started.set()
        try:
            await gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.under_way -= 1
        self.done += 1
        return await super().put_blob_chunk(blob_id, index, data)

    def release(self) -> None:
        """Let the oldest waiting PUT go on."""
        self.waiting.pop(0).set()

    def open(self) -> None:
        """Let every PUT go on, now and later."""
        self.opened = True
        while self.waiting:
            self.release()


async def test_the_encryption_waits_for_a_free_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most IN_FLIGHT PUTs at once, and the plaintext taken never runs more than a
    bounded number of chunks ahead of the PUTs done: the memory stays bounded."""
    relay = _relay()
    fr = _Blocking(relay)
    files = AttachmentFiles(tmp_path)
    data = os.urandom(8 * BLOB_CHUNK)  # nine upload chunks
    ahead = (IN_FLIGHT + 2) * BLOB_CHUNK
    original = _early.Uploader._slot

    async def slot(self: _early.Uploader) -> bool:
        # The PUTs wait until the encryption itself waits for a free slot: then one goes.
        if self._slots.locked():
            fr.release()
        return await original(self)

    monkeypatch.setattr(_early.Uploader, "_slot", slot)
    taken = 0

    async def pieces() -> AsyncIterator[bytes]:
        nonlocal taken
        for i in range(0, len(data), MiB):
            assert taken <= fr.done * BLOB_CHUNK + ahead, (taken, fr.done)
            taken += MiB
            yield data[i : i + MiB]
        fr.open()  # the last chunks and the commit: nothing waits for a slot any more

    a = await files.prepare(
        pieces(), name="a.bin", media_type="a/b", upload=EarlyUpload(fr, "US", len(data))
    )
    assert fr.max_at_once == IN_FLIGHT
    assert relay.blobs.blobs[a.blob_id].committed


def _uploads() -> list[asyncio.Task[Any]]:
    """The tasks under way that run an early upload's requests."""
    return [t for t in asyncio.all_tasks() if "Uploader" in repr(t.get_coro())]


async def test_a_cancelled_prepare_cancels_its_uploads_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    relay = _relay()
    fr = _Blocking(relay)
    files = AttachmentFiles(tmp_path)
    data = os.urandom(12 * MiB)
    stuck = asyncio.Event()  # never set: the plaintext stops arriving half way
    fds_before = set(os.listdir("/proc/self/fd"))
    task = asyncio.create_task(
        files.prepare(
            _waiting(data, stuck, after=8 * MiB),
            name="a.bin",
            media_type="a/b",
            upload=EarlyUpload(fr, "US", len(data)),
        )
    )
    await asyncio.wait_for(fr.started.wait(), HANG_GUARD)  # a PUT is under way
    task.cancel()
    # (the guard only stops a broken prepare() that waits for its uploads forever)
    await asyncio.wait((task,), timeout=HANG_GUARD)
    assert task.cancelled()
    assert fr.cancelled == 1  # the PUT under way was cancelled ...
    assert fr.under_way == 0  # ... and had ended when prepare() raised
    assert _uploads() == []  # no upload task left behind
    assert list(files.out_dir.iterdir()) == []  # no temporary file
    assert set(os.listdir("/proc/self/fd")) == fds_before
    # Nothing will send it: discarded at the relay, its quota back at once.
    assert relay.blobs.blobs == {}


async def test_a_link_that_does_not_keep_up_ends_it_and_the_encryption_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PUTs that never end: once a chunk waited SLOT_WAIT for a slot, the early upload
    ends (its PUTs cancelled) and the prepare finishes without them; the rest goes at
    send time, where an upload resumes after a kill (an early one cannot)."""
    monkeypatch.setattr(_early, "SLOT_WAIT", 0.05)
    relay = _relay()
    fr = _Blocking(relay)  # never released
    files = AttachmentFiles(tmp_path)
    data = os.urandom(6 * BLOB_CHUNK)  # seven upload chunks: more than IN_FLIGHT
    with capture_logs() as logs:
        a = await asyncio.wait_for(
            files.prepare(
                _pieces(data),
                name="a.bin",
                media_type="a/b",
                upload=EarlyUpload(fr, "US", len(data)),
            ),
            HANG_GUARD,
        )
    ct = _check_kept(files, a, data)
    (why,) = [e for e in logs if e["event"] == "attachment early upload abandoned"]
    assert (why["log_level"], why["why"]) == (
        "info",
        "the link does not keep up with the encryption",
    )
    assert (fr.cancelled, fr.under_way, fr.done) == (IN_FLIGHT, 0, 0)
    assert _uploads() == []
    blob = relay.blobs.blobs[a.blob_id]
    assert not blob.committed
    assert blob.ct_sha256 is None
    await upload(relay.client("FR"), files, "US", refs_of((a,)))
    assert relay.blobs.blobs[a.blob_id].content() == ct


async def test_a_create_the_relay_does_not_answer_in_time_ends_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_early, "SLOT_WAIT", 0.05)
    relay = _relay()
    never = asyncio.Event()

    class SlowCreate(FakeTransport):
        async def create_blob(
            self, blob_id: str, recipient: str, ct_len: int, ct_sha256: str | None
        ) -> BlobStatus:
            await never.wait()
            raise AssertionError("unreachable")

    files = AttachmentFiles(tmp_path)
    data = os.urandom(2 * BLOB_CHUNK)
    slow = SlowCreate(relay, "FR", relay.url)
    with capture_logs() as logs:
        a = await asyncio.wait_for(
            files.prepare(
                _pieces(data),
                name="a.bin",
                media_type="a/b",
                upload=EarlyUpload(slow, "US", len(data)),
            ),
            HANG_GUARD,
        )
    _check_kept(files, a, data)
    assert [e["why"] for e in logs if e["event"] == "attachment early upload abandoned"] == [
        "the relay does not answer the create in time"
    ]
    assert _uploads() == []
    assert relay.blobs.blobs == {}
    await upload(relay.client("FR"), files, "US", refs_of((a,)))
    assert relay.blobs.blobs[a.blob_id].committed


async def test_the_member_it_went_for_is_kept_across_a_restart(tmp_path: Path) -> None:
    relay = _relay()
    data = os.urandom(MiB)
    a = await AttachmentFiles(tmp_path).prepare(
        _pieces(data),
        name="a.bin",
        media_type="a/b",
        upload=EarlyUpload(relay.client("FR"), "US", len(data)),
    )
    again = AttachmentFiles(tmp_path)  # the node restarted
    assert again.uploaded_for(a.blob_id) == "US"
    again.check_prepared((a,), "US")
    with pytest.raises(MalformedError) as err:
        again.check_prepared((a,), "DE")
    assert err.value.problem == "prepared for US: it went to the relay for that member only"
    # One prepared without the early upload goes to anyone, as before.
    b = await again.prepare(_pieces(data), name="b.bin", media_type="a/b")
    assert again.uploaded_for(b.blob_id) is None
    again.check_prepared((b,), "DE")


async def test_nothing_is_announced_before_the_first_whole_chunk(tmp_path: Path) -> None:
    """A request that declares its length and stalls (or is cancelled) before 4 MiB of
    ciphertext holds nothing at the relay: the create goes with the first whole chunk."""
    relay = _relay()
    spy = Spy(relay)
    files = AttachmentFiles(tmp_path)
    data = os.urandom(12 * MiB)
    stuck = asyncio.Event()  # never set
    arrived = asyncio.Event()

    async def pieces() -> AsyncIterator[bytes]:
        yield data[:MiB]
        arrived.set()
        await stuck.wait()

    task = asyncio.create_task(
        files.prepare(
            pieces(),
            name="a.bin",
            media_type="a/b",
            upload=EarlyUpload(relay.client("FR"), "US", len(data)),
        )
    )
    await asyncio.wait_for(arrived.wait(), HANG_GUARD)
    await asyncio.sleep(0)  # the first MiB is being encrypted: still nothing announced
    assert spy.creates == []
    task.cancel()
    await asyncio.wait((task,), timeout=HANG_GUARD)
    assert task.cancelled()
    assert (spy.creates, relay.blobs.blobs) == ([], {})
    assert _uploads() == []


@pytest.mark.parametrize("encrypting", [0.0, 1000.0])
async def test_the_link_may_take_as_long_as_the_encryption_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encrypting: float
) -> None:
    """The waits for the link get SLOT_WAIT, or the time the encryption has taken so far
    (the node's clock) if that is longer: a PUT held 0.2 s is waited for when the
    encryption took 1000 s, not when it took none."""
    monkeypatch.setattr(_early, "SLOT_WAIT", 0.05)
    relay = _relay()
    fr = _Blocking(relay)
    now = [0.0]
    files = AttachmentFiles(tmp_path)
    data = os.urandom(6 * BLOB_CHUNK)  # seven chunks: the fifth waits for a slot

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(data), MiB):
            if i == MiB:
                now[0] += encrypting  # "the encryption so far took this long"
            yield data[i : i + MiB]

    async def release_later() -> None:
        await asyncio.wait_for(fr.started.wait(), HANG_GUARD)
        await asyncio.sleep(0.2)
        fr.open()

    opener = asyncio.create_task(release_later())
    a = await asyncio.wait_for(
        files.prepare(
            pieces(),
            name="a.bin",
            media_type="a/b",
            upload=EarlyUpload(fr, "US", len(data), lambda: now[0]),
        ),
        HANG_GUARD,
    )
    await opener
    blob = relay.blobs.blobs[a.blob_id]
    assert blob.committed is (encrypting > 0)
