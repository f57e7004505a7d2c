"""Linked cases: the wire field, rule S13, the directory capability and the link table
(PROTOCOL.md §10.2, §10.8, §3.1, §17)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from node.cases.links import LinkStore, NewLink, Origin, wire_links
from node.cases.store import CaseStore
from node.storage import Direction, MessageRecord, Status
from protocol.codec import decode
from protocol.errors import MalformedError, StorageError
from schemas._links import CASE_LINKS, CaseLink, LinkType
from schemas.directory import Member, supports
from schemas.examples import EXAMPLES
from schemas.messages import BODY_DECODER, encode_body, semantic_errors
from tests.support.network import member_keys

T = datetime(2026, 12, 3, 22, 0, tzinfo=UTC)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_a_body_without_links_encodes_without_the_field(kind: str) -> None:
    raw = encode_body(EXAMPLES[kind])
    assert b'"links"' not in raw
    # and decoding it back leaves it unset, so it encodes to the same bytes
    assert encode_body(decode(BODY_DECODER, raw, "body", limit=len(raw))) == raw


def _with(links: object) -> bytes:
    wire = json.loads(encode_body(EXAMPLES["preservation_request"]))
    wire["links"] = links
    return json.dumps(wire).encode()


def test_links_decode_and_keep_their_bytes() -> None:
    other = os.urandom(16).hex()
    raw = _with([{"type": "mla_follows", "case_id": other, "note": "MLA 2026/114"}])
    body = decode(BODY_DECODER, raw, "body", limit=len(raw))
    assert body.links == (CaseLink(type=LinkType.MLA_FOLLOWS, case_id=other, note="MLA 2026/114"),)
    assert semantic_errors(body) == []
    null = decode(BODY_DECODER, _with(None), "body", limit=len(raw))
    assert null.links is None


@pytest.mark.parametrize(
    "links",
    [
        [],  # an empty list is written by leaving the field out
        [{"type": "related", "case_id": "a" * 32}] * 17,
        [{"type": "follows", "case_id": "a" * 32}],
        [{"type": "related", "case_id": "A" * 32}],
        [{"type": "related", "case_id": "\u0661" * 32}],
        [{"type": "related", "case_id": "a" * 32, "extra": 1}],
        [{"type": "related", "case_id": "a" * 32, "note": ""}],
        {"type": "related", "case_id": "a" * 32},
    ],
)
def test_malformed_links_are_refused(links: object) -> None:
    raw = _with(links)
    with pytest.raises(MalformedError):
        decode(BODY_DECODER, raw, "body", limit=len(raw))


def test_s13_self_link_and_duplicates() -> None:
    base = EXAMPLES["preservation_request"]
    other = "b" * 32
    me = CaseLink(type=LinkType.RELATED, case_id=base.case_id)
    twice = (
        CaseLink(type=LinkType.RELATED, case_id=other),
        CaseLink(type=LinkType.SUPERSEDES, case_id=other),
    )
    assert semantic_errors(msgspec.structs.replace(base, links=(me,))) == [
        ("$.links[0].case_id", "a case cannot be linked to itself")
    ]
    assert semantic_errors(msgspec.structs.replace(base, links=twice)) == [
        ("$.links[1].case_id", "this case is linked twice")
    ]


def test_capabilities_are_optional_and_leave_old_entries_unchanged() -> None:
    plain = member_keys("FR").member()
    assert b"capabilities" not in msgspec.json.encode(plain)
    assert not supports(plain, CASE_LINKS)
    able = member_keys("FR").member(capabilities=(CASE_LINKS, "later_feature"))
    assert supports(able, CASE_LINKS)
    again = msgspec.json.decode(msgspec.json.encode(able), type=Member)
    assert supports(again, CASE_LINKS)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(
            msgspec.json.encode(able).replace(b"later_feature", b"Later-Feature"), type=Member
        )


def _record(status: Status, direction: Direction, links: tuple[CaseLink, ...]) -> MessageRecord:
    body = msgspec.structs.replace(EXAMPLES["preservation_request"], links=links)
    return MessageRecord(
        direction=direction,
        msg_id=os.urandom(16).hex(),
        case_id=body.case_id,
        peer="DE-BKA",
        coarse_kind="request",
        body_kind="preservation_request",
        in_reply_to=None,
        seq=1,
        envelope=b"",
        header=b"",
        body=encode_body(body),
        stored_at=T,
        status=status,
    )


async def test_link_table_keeps_wire_links_once_and_forgets_failed_ones(tmp_path: Path) -> None:
    cases = CaseStore(tmp_path / "node.db")
    await cases.open()
    try:
        store = LinkStore(cases)
        link = (CaseLink(type=LinkType.RELATED, case_id="c" * 32),)
        sent = _record(Status.SENT, Direction.OUT, link)
        refused_in = _record(Status.REJECTED, Direction.IN, link)
        body = BODY_DECODER.decode(sent.body or b"")
        rows = wire_links([(sent, body), (refused_in, body)])
        assert [(r.origin, r.msg_id) for r in rows] == [(Origin.SENT, sent.msg_id)]
        assert await store.add(rows, T) == 1
        assert await store.add(rows, T) == 0  # rebuilding the case adds nothing
        local = NewLink(
            case_id=sent.case_id, target="d" * 32, type="supersedes", origin=Origin.LOCAL
        )
        await store.add([local], T)
        await store.forget_sent([sent.msg_id])
        (kept,) = await store.of_case(sent.case_id)
        assert (kept.origin, kept.target) == (Origin.LOCAL, "d" * 32)
        # a local link removed stays recorded
        assert await store.remove_local(sent.case_id, "d" * 32, T, "duty", None) == 1
        assert await store.of_case(sent.case_id) == []
        (gone,) = await store.of_case(sent.case_id, removed=True)
        assert (gone.removed_by, gone.removed_at) == ("duty", T)
    finally:
        await cases.close()


async def test_export_refuses_more_linked_cases_than_a_bundle_holds() -> None:
    from typing import Any, cast

    from node.cases.export import export_case
    from protocol.errors import PeerError
    from protocol.evidence import MAX_LINKED_CASES
    from schemas.errors import ErrorCode

    unused = cast(Any, None)  # refused before any of these is used
    many = tuple(f"{i:032x}" for i in range(MAX_LINKED_CASES + 1))
    with pytest.raises(PeerError) as caught:
        await export_case(
            "f" * 32,
            store=unused,
            cases=unused,
            keys=unused,
            source=unused,
            log=unused,
            trust_root=unused,
            now=T,
            linked=many,
        )
    assert caught.value.code is ErrorCode.TOO_LARGE


async def test_an_older_database_with_duplicate_local_links_migrates(tmp_path: Path) -> None:
    import sqlite3

    from node.cases.links import DDL

    path = tmp_path / "node.db"
    old = sqlite3.connect(path)
    old.executescript(DDL)  # the table as it was, with no index on local links
    row = "INSERT INTO case_links (case_id, target, type, origin, msg_id, created_at)"
    a, b, c = "a" * 32, "b" * 32, "c" * 32
    for target, msg_id in ((b, None), (b, None), (b, None), (c, None), (b, "e" * 32)):
        old.execute(f"{row} VALUES (?,?,'related','local',?,?)", (a, target, msg_id, T.isoformat()))
    old.commit()
    old.close()
    cases = CaseStore(path)
    await cases.open()
    try:
        store = LinkStore(cases)
        await store.open()  # the duplicates cannot make the unique index fail
        active = await store.of_case(a)
        # the oldest of the three, the other target, and the link kept from a message
        assert [(x.id, x.target, x.msg_id) for x in active] == [
            (1, b, None), (4, c, None), (5, b, "e" * 32),
        ]  # fmt: skip
        every = await store.of_case(a, removed=True)
        assert [x.id for x in every if x.removed_at is not None] == [2, 3]
        # removed as of their own creation: the migration reads no clock
        assert {x.removed_at for x in every if x.id in (2, 3)} == {T}
        again = NewLink(case_id=a, target=b, type="related", origin=Origin.LOCAL)
        assert await store.add_local(again, T) is False
        # the index itself refuses a second active officer's link, whatever writes it
        with pytest.raises(StorageError):
            await cases._run(
                cases._conn().execute,
                f"{row} VALUES (?,?,'related','local',NULL,?)",
                (a, b, T.isoformat()),
            )
        assert await store.remove_local(a, b, T, "duty", "related") == 2
        assert await store.add_local(again, T) is True  # linked again once removed
    finally:
        await cases.close()


async def test_identical_local_links_at_once_store_one(tmp_path: Path) -> None:
    import asyncio

    cases = CaseStore(tmp_path / "node.db")
    await cases.open()
    try:
        store = LinkStore(cases)
        new = NewLink(case_id="a" * 32, target="b" * 32, type="related", origin=Origin.LOCAL)
        added = await asyncio.gather(*(store.add_local(new, T) for _ in range(8)))
        assert sorted(added) == [False] * 7 + [True]
        assert len(await store.of_case("a" * 32)) == 1
    finally:
        await cases.close()
