"""relay247's own vectors: reproduced byte for byte, and each case gives its outcome.

The cases are replayed from the JSON alone (keys, directories, times), as another
implementation would, through the public functions of ``protocol``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from protocol import errors
from protocol.directory import KeyLookup, TrustRoot, VerifiedDirectory, verify_directory
from protocol.email_record import read_submission, verify_email_record
from protocol.envelope import Window, check_header, open_envelope
from protocol.keys import EncryptionKey
from protocol.receipt import verify_ack, verify_receipt
from schemas.directory import Coordinator
from schemas.envelope import EnvelopeHeader
from tests.vectors.generate import generate

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
Json = dict[str, Any]


def _load(name: str) -> Json:
    content: Json = json.loads((VECTORS / name).read_bytes())
    return content


def _cases(name: str) -> list[Any]:
    return [pytest.param(c, id=c["name"]) for c in _load(name)["cases"]]


def _data(case: Json) -> bytes:
    if "data_fill" in case:
        fill = case["data_fill"]
        return bytes.fromhex(fill["byte_hex"]) * int(fill["length"])
    return base64.b64decode(case["data_b64"])


def _root(content: Json) -> TrustRoot:
    tr = content["trust_root"]
    coords = tuple(
        Coordinator(id=c["id"], public=bytes.fromhex(c["public_hex"])) for c in tr["coordinators"]
    )
    return TrustRoot(coords, tr["threshold"])


def _lookup(content: Json, name: str, now: datetime) -> KeyLookup:
    data = base64.b64decode(content["directories"][name])
    return KeyLookup(verify_directory(data, _root(content), current=None, now=now).directory)


def _expect(expected: Json, run: Callable[[], Json]) -> None:
    """Run a case; compare its result or its exception class, code and public type."""
    if expected["outcome"] == "ok":
        assert run() == {k: v for k, v in expected.items() if k != "outcome"}
        return
    exc_type = getattr(errors, expected["error"])
    with pytest.raises(exc_type) as info:
        run()
    assert type(info.value) is exc_type
    assert info.value.code.value == expected["code"]


FILES = ("envelopes.json", "directories.json", "receipts.json", "email_records.json")


@pytest.mark.parametrize("name", FILES)
def test_generator_reproduces_committed_files(name: str) -> None:
    assert generate()[name] == (VECTORS / name).read_bytes()


def test_generator_writes_exactly_the_committed_set() -> None:
    assert set(generate()) == {p.name for p in VECTORS.glob("*.json")}


@pytest.mark.parametrize("case", _cases("envelopes.json"))
def test_envelope_vector(case: Json) -> None:
    content = _load("envelopes.json")
    now = datetime.fromisoformat(case["now"])
    w = case["window"]
    window = Window(
        max_bytes=w["max_bytes"],
        max_skew=timedelta(seconds=w["max_skew_seconds"]),
        max_lifetime=timedelta(seconds=w["max_lifetime_seconds"]),
    )
    keys = _lookup(content, case["directory"], now)
    data = _data(case)

    def run() -> Json:
        if case["function"] == "check_header":
            checked = check_header(
                data, keys, now=now, window=window, key_valid_now=case["key_valid_now"]
            )
            assert checked.header.recipient == case["me"]
            return {}
        my_keys = {
            k.fingerprint: k for k in map(EncryptionKey, map(bytes.fromhex, case["my_keys_hex"]))
        }
        seen = {tuple(s) for s in case["seen"]}
        opened = open_envelope(
            data,
            keys,
            me=case["me"],
            my_keys=my_keys,
            now=now,
            seen=lambda sender, msg_id: (sender, msg_id) in seen,
            window=window,
        )
        return {"body_b64": base64.b64encode(opened.body).decode()}

    _expect(case["expected"], run)


@pytest.mark.parametrize("case", _cases("directories.json"))
def test_directory_vector(case: Json) -> None:
    content = _load("directories.json")
    now = datetime.fromisoformat(case["now"])
    root = _root(content)
    current = None
    if case["current_b64"] is not None:
        held = base64.b64decode(case["current_b64"])
        current = verify_directory(held, root, current=None, now=now)

    def run() -> Json:
        v: VerifiedDirectory = verify_directory(_data(case), root, current=current, now=now)
        return {"version": v.version}

    _expect(case["expected"], run)


@pytest.mark.parametrize("case", _cases("receipts.json"))
def test_receipt_vector(case: Json) -> None:
    content = _load("receipts.json")
    keys = _lookup(content, case["directory"], datetime.fromisoformat(content["directory_now"]))
    data = _data(case)

    def run() -> Json:
        if case["function"] == "verify_ack":
            now = datetime.fromisoformat(case["now"]) if "now" in case else None
            _, ack = verify_ack(data, keys, now=now)
            return {"msg_id": ack.msg_id, "header_sha256": ack.header_sha256}
        header, digest = None, None
        if "expected_header_b64" in case:
            raw = base64.b64decode(case["expected_header_b64"])
            header = msgspec.json.decode(raw, type=EnvelopeHeader)
            digest = hashlib.sha256(raw).hexdigest()
        r = verify_receipt(data, keys, expected=header, expected_header_sha256=digest)
        reason = None if r.reason is None else r.reason.value
        out = {"status": r.status.value, "msg_id": r.msg_id, "reason": reason}
        if isinstance(r.field, str):  # absent from the bytes unless set (E13, E14)
            out["field"] = r.field
        return out

    _expect(case["expected"], run)


@pytest.mark.parametrize("case", _cases("email_records.json"))
def test_email_record_vector(case: Json) -> None:
    content = _load("email_records.json")
    keys = _lookup(content, case["directory"], datetime.fromisoformat(content["directory_now"]))
    data = _data(case)

    def run() -> Json:
        now = datetime.fromisoformat(case["now"]) if "now" in case else None
        submitted = read_submission(data)
        r = verify_email_record(submitted.record, submitted.sig, keys, now=now)
        at = r.at.isoformat().replace("+00:00", "Z")
        fields = {"node": r.node, "member": r.member, "direction": r.direction}
        return fields | {"case_id": r.case_id, "sha256": r.sha256, "at": at}

    _expect(case["expected"], run)


def test_every_step_has_a_vector() -> None:
    """Each numbered step that can reject has at least one invalid case."""
    steps = {
        c["expected"]["step"]
        for name in FILES
        for c in _load(name)["cases"]
        if c["expected"]["outcome"] == "error"
    }
    wanted = {f"E{i}" for i in range(1, 13)} | {"D1", "D2", "D4", "D5", "D6", "D7", "D8"}
    wanted |= {f"R{i}" for i in range(1, 6)} | {"A1", "A2", "A3"}
    wanted |= {f"G3{s}" for s in "abcde"}
    assert wanted <= steps


def test_case_names_are_unique() -> None:
    for name in FILES:
        names = [c["name"] for c in _load(name)["cases"]]
        assert len(names) == len(set(names)), name
