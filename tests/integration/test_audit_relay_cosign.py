"""Witness cosignatures submitted to a real relay (POST /v1/audit/cosignature)."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest

from protocol.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from protocol.cosignature import CosignatureSigner, CosignatureVerifier, cosign, verify_cosignatures
from protocol.keys import SigningKey
from protocol.note import Signer, Verifier
from relay.storage import StoredCheckpoint
from schemas.audit_api import CosignatureResult, CosignatureSubmission
from schemas.errors import ErrorBody
from tests.support.relay import (
    Answer,
    RunningRelay,
    fetch,
    grow,
    post_signed,
    running_relay,
    signed,
)

# Every test runs on SQLite and on PostgreSQL (tests/integration/conftest.py).
pytestmark = pytest.mark.usefixtures("relay_backend")

PATH = "/v1/audit/cosignature"


def text_of(note: bytes) -> str:
    """The checkpoint text of a note (everything before the blank line)."""
    return note[: note.index(b"\n\n") + 1].decode()


def witness(relay: RunningRelay, member: str) -> CosignatureSigner:
    """The member's witness key: its directory signing key, named by its member id."""
    return CosignatureSigner(member, relay.net.members[member].signing)


def line_for(relay: RunningRelay, member: str, cp: StoredCheckpoint, when: int = 0) -> str:
    return cosign(text_of(cp.note), witness(relay, member), when or int(time.time()))


async def submit(
    relay: RunningRelay, member: str, note: bytes | str, line: str, *, raw: bytes | None = None
) -> Answer:
    checkpoint = note if isinstance(note, str) else note.decode()
    body = raw or msgspec.json.encode(
        CosignatureSubmission(checkpoint=checkpoint, cosignature=line)
    )
    return await post_signed(relay, member, PATH, body)


def refused(answer: Answer, code: str = "invalid_note", status: int = 400) -> None:
    assert answer.status == status, answer.body
    assert msgspec.json.decode(answer.body, type=ErrorBody).code.value == code


async def test_cosignature_is_published_on_the_checkpoint(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        cp = await signed(relay)
        answer = await submit(relay, "FR", cp.note, line_for(relay, "FR", cp))
        assert answer.status == 200, answer.body
        assert msgspec.json.decode(answer.body, type=CosignatureResult) == CosignatureResult(
            size=cp.size, witnesses=1
        )
        assert (await submit(relay, "US", cp.note, line_for(relay, "US", cp))).status == 200
        served = (await fetch(relay, "/v1/audit/checkpoint")).body
        info = await relay.client("FR").info()
        got, _ = open_checkpoint(served, Verifier.from_key(info.log_key), info.log_origin)
        assert got.size == cp.size
        keys = [witness(relay, m).verifier() for m in ("FR", "US")]
        assert [c.name for c in verify_cosignatures(served, keys, 2)] == ["FR", "US"]


async def test_same_line_again_is_idempotent(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        cp = await signed(relay)
        line = line_for(relay, "FR", cp, int(time.time()) - 2)
        assert (await submit(relay, "FR", cp.note, line)).status == 200
        again = await submit(relay, "FR", cp.note, line)
        assert again.status == 200
        assert msgspec.json.decode(again.body, type=CosignatureResult).witnesses == 1
        # A second, different line by the same witness: accepted, the first one is kept.
        other = line_for(relay, "FR", cp, int(time.time()) - 1)
        assert (await submit(relay, "FR", cp.note, other)).status == 200
        served = (await fetch(relay, "/v1/audit/checkpoint")).body
        assert served.count(b"\n\xe2\x80\x94 FR ") == 1
        assert served.endswith(line.encode())


async def test_forged_cosignature_is_refused(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        cp = await signed(relay)
        # FR's name, another key: the key ID does not match, so it is not FR's line.
        forged = cosign(text_of(cp.note), CosignatureSigner("FR", SigningKey.generate()), 1)
        refused(await submit(relay, "FR", cp.note, forged))
        # FR's key ID, signature bytes altered.
        good = line_for(relay, "FR", cp)
        payload = good.split(" ")[2]
        flipped = payload[:20] + ("A" if payload[20] != "A" else "B") + payload[21:]
        refused(await submit(relay, "FR", cp.note, good.replace(payload, flipped)))
        assert (await fetch(relay, "/v1/audit/checkpoint")).body == cp.note


async def test_cosignature_replayed_from_another_checkpoint_is_refused(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        old = await signed(relay)
        await grow(relay, 1)
        new = await signed(relay)
        refused(await submit(relay, "FR", new.note, line_for(relay, "FR", old)))


async def test_cosignature_under_another_members_name_is_refused(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        cp = await signed(relay)
        # A valid US cosignature, handed in by FR.
        refused(await submit(relay, "FR", cp.note, line_for(relay, "US", cp)))
        # FR's key under US's name.
        fake = cosign(text_of(cp.note), CosignatureSigner("US", relay.net.members["FR"].signing), 1)
        refused(await submit(relay, "FR", cp.note, fake))


async def test_checkpoint_the_log_did_not_sign_is_refused(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        cp = await signed(relay)
        origin = relay.state.log_origin
        # Signed with the log's own key, but never stored: not in the relay's history.
        unknown = sign_checkpoint(
            Checkpoint(origin, cp.size + 7, b"\x01" * 32), relay.state.keys.log_signer
        )
        line = cosign(text_of(unknown), witness(relay, "FR"), int(time.time()))
        refused(await submit(relay, "FR", unknown, line))
        # Another key's checkpoint of the same tree.
        stranger = Signer(relay.state.keys.log_signer.name, SigningKey.generate())
        other = sign_checkpoint(Checkpoint(origin, cp.size, cp.root), stranger)
        refused(await submit(relay, "FR", other, line_for(relay, "FR", cp)))


async def test_malformed_submissions(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        cp = await signed(relay)
        line = line_for(relay, "FR", cp)
        refused(await submit(relay, "FR", cp.note, line + line))  # two lines
        refused(await submit(relay, "FR", cp.note, line.rstrip("\n")))  # unterminated
        refused(await submit(relay, "FR", cp.note, "FR " + line))  # no em dash
        future = line_for(relay, "FR", cp, int(time.time()) + 3600)
        refused(await submit(relay, "FR", cp.note, future))
        refused(await submit(relay, "FR", cp.note, line, raw=b'{"checkpoint": 1}'), "malformed")
        refused(await submit(relay, "FR", cp.note, line, raw=b"not json"), "malformed")


async def test_cosignature_dated_long_ago_is_refused(tmp_path: Path) -> None:
    """W6 both ways: the timestamp says when the witness cosigned, which is just now."""
    async with running_relay(tmp_path) as relay:
        cp = await signed(relay)
        skew = 60  # the relay's default [limits] max_clock_skew
        for when in (0, int(time.time()) - 3600, int(time.time()) - skew - 5):
            line = cosign(text_of(cp.note), witness(relay, "FR"), when)
            refused(await submit(relay, "FR", cp.note, line))
        late = line_for(relay, "FR", cp, int(time.time()) - skew + 10)  # within the skew
        assert (await submit(relay, "FR", cp.note, late)).status == 200


async def test_unsigned_submission_is_unauthenticated(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        cp = await signed(relay)
        body = msgspec.json.encode(
            CosignatureSubmission(
                checkpoint=cp.note.decode(), cosignature=line_for(relay, "FR", cp)
            )
        )
        headers = {"Content-Type": "application/json"}
        async with relay.session.post(relay.url + PATH, data=body, headers=headers) as resp:
            refused(
                Answer(resp.status, dict(resp.headers), await resp.read()), "unauthenticated", 401
            )


async def test_wrong_content_type(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        cp = await signed(relay)
        body = msgspec.json.encode(
            CosignatureSubmission(
                checkpoint=cp.note.decode(), cosignature=line_for(relay, "FR", cp)
            )
        )
        async with relay.session.post(
            relay.url + PATH, data=body, headers={"Content-Type": "text/plain"}
        ) as resp:
            refused(Answer(resp.status, {}, await resp.read()), "unsupported_media_type", 415)


async def test_older_checkpoint_is_stored_but_not_served(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        old = await signed(relay)
        await grow(relay, 1)
        new = await signed(relay)
        assert (await submit(relay, "FR", old.note, line_for(relay, "FR", old))).status == 200
        assert [w for w, _ in await relay.state.store.cosignatures(old.size)] == ["FR"]
        assert (await fetch(relay, "/v1/audit/checkpoint")).body == new.note


async def test_cosignatures_survive_a_restart(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        cp = await signed(relay)
        line = line_for(relay, "FR", cp)
        assert (await submit(relay, "FR", cp.note, line)).status == 200
    async with running_relay(tmp_path, fresh=False) as relay:
        served = (await fetch(relay, "/v1/audit/checkpoint")).body
        assert served == cp.note + line.encode()
        verifier = CosignatureVerifier("FR", relay.net.members["FR"].signing.public)
        assert len(verify_cosignatures(served, [verifier], 1)) == 1
