"""cosignature/v1: a real witness cosignature, the spec example, round trips, rejections."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import cosignature as cs
from protocol import note
from protocol.checkpoint import Checkpoint, encode, sign_checkpoint
from protocol.errors import NoteError
from protocol.keys import SigningKey

CHECKPOINTS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "vectors/external/c2sp/checkpoints.json").read_text("utf-8")
)
REAL = CHECKPOINTS["real_world"][0]
REAL_NOTE: bytes = REAL["note"].encode()
REAL_TEXT = REAL["note"].split("\n\n", maxsplit=1)[0] + "\n"
REMORA_VKEY: str = REAL["vkeys"]["witness_cosignature_v1_type04"]
REMORA = cs.CosignatureVerifier.from_key(REMORA_VKEY)
SPEC = CHECKPOINTS["spec_examples_format_only"]

LOG = note.Signer.from_key(note.generate_key("relay.example/log", bytes(32))[0])
CHECKPOINT = Checkpoint("relay.example/log", 10, bytes(range(32)))
TEXT = encode(CHECKPOINT)
LOG_NOTE = sign_checkpoint(CHECKPOINT, LOG)
T0 = 1_700_000_000


def _witness(name: str, seed_byte: int) -> cs.CosignatureSigner:
    return cs.CosignatureSigner.from_key(
        cs.generate_cosignature_key(name, bytes([seed_byte]) * 32)[0]
    )


W1, W2, W3 = _witness("w1.example", 1), _witness("w2.example", 2), _witness("w3.example", 3)
ALL = [W1.verifier(), W2.verifier(), W3.verifier()]


def _rejects(func: Any, *args: Any, match: str, **kwargs: Any) -> None:
    with pytest.raises(NoteError, match=match) as info:
        func(*args, **kwargs)
    assert type(info.value) is NoteError


def _line(name: str, key_hash: int, timestamp: int, sig: bytes) -> bytes:
    payload = key_hash.to_bytes(4, "big") + timestamp.to_bytes(8, "big") + sig
    return f"\u2014 {name} {base64.b64encode(payload).decode()}\n".encode()


# --- vectors -------------------------------------------------------------------------


def test_real_witness_cosignature_verifies() -> None:
    found = cs.verify_cosignatures(REAL_NOTE, [REMORA], 1)
    assert [(c.name, c.timestamp) for c in found] == [
        ("remora.n621.de", REAL["expect"]["remora_cosignature_timestamp"])
    ]
    assert found[0].key_hash == 0xDA77ADE7 == REMORA.key_hash


def test_real_cosigned_message() -> None:
    ts = REAL["expect"]["remora_cosignature_timestamp"]
    assert (
        cs.cosignature_message(REAL_TEXT, ts) == REAL["expect"]["remora_cosigned_message"].encode()
    )


def test_real_cosignature_on_tampered_checkpoint() -> None:
    bad = REAL_NOTE.replace(b"\n1432088532\n", b"\n42\n")
    _rejects(cs.verify_cosignatures, bad, [REMORA], 1, match="does not verify")


def test_spec_example_signed_message() -> None:
    example: str = SPEC["tlog-cosignature.md"]
    raw = base64.b64decode(example.rstrip("\n").rsplit(" ", 1)[1])
    timestamp = int.from_bytes(raw[4:12], "big")
    text = example.split("\n\n", maxsplit=1)[0] + "\n"
    assert (
        cs.cosignature_message(text, timestamp)
        == SPEC["tlog-cosignature.md_signed_message"].encode()
    )


def test_spec_example_has_no_known_witness() -> None:
    example = SPEC["tlog-cosignature.md"].encode()
    _rejects(cs.verify_cosignatures, example, [REMORA], 1, match="too few")


# --- keys ----------------------------------------------------------------------------


def test_key_strings_round_trip() -> None:
    skey, vkey = cs.generate_cosignature_key("w.example", bytes(32))
    assert skey.startswith("PRIVATE+KEY+w.example+")
    assert base64.b64decode(vkey.split("+")[2])[0] == 0x04
    signer = cs.CosignatureSigner.from_key(skey)
    assert signer.verifier().key_string() == vkey
    assert cs.cosignature_verifier_key("w.example", signer.public) == vkey
    assert "w.example" in repr(signer)
    assert vkey in repr(signer.verifier())


def test_key_id_differs_from_plain_note_key() -> None:
    key = SigningKey(bytes(32))
    assert cs.CosignatureSigner("w", key).key_hash != note.Signer("w", key).key_hash


def test_vkey_type_01_refused() -> None:
    _rejects(cs.CosignatureVerifier.from_key, note.verifier_key("w", bytes(32)), match="type")


def test_skey_type_01_refused() -> None:
    _rejects(cs.CosignatureSigner.from_key, note.generate_key("w", bytes(32))[0], match="type")


def test_vkey_wrong_key_hash() -> None:
    bad = REMORA_VKEY.replace("da77ade7", "da77ade8")
    _rejects(cs.CosignatureVerifier.from_key, bad, match="key ID does not match")


def test_generate_rejects_bad_name() -> None:
    _rejects(cs.generate_cosignature_key, "a b", match="invalid key name")


def test_generate_rejects_bad_seed() -> None:
    _rejects(cs.generate_cosignature_key, "a", b"short", match="seed")


def test_generate_random_keys_differ() -> None:
    assert cs.generate_cosignature_key("a")[1] != cs.generate_cosignature_key("a")[1]


def test_verifier_rejects_bad_name_and_length() -> None:
    _rejects(cs.CosignatureVerifier, "a+b", bytes(32), match="invalid key name")
    _rejects(cs.CosignatureVerifier, "a", bytes(33), match="32 bytes")


def test_signer_rejects_bad_name() -> None:
    _rejects(cs.CosignatureSigner, "", SigningKey(bytes(32)), match="invalid key name")


# --- cosign and verify ---------------------------------------------------------------


def test_cosign_line_layout() -> None:
    line = cs.cosign(TEXT, W1, T0)
    assert line.startswith("\u2014 w1.example ")
    assert line.endswith("\n")
    raw = base64.b64decode(line.split(" ")[2])
    assert len(raw) == 4 + 8 + 64
    assert int.from_bytes(raw[:4], "big") == W1.key_hash
    assert int.from_bytes(raw[4:12], "big") == T0


@given(timestamp=st.integers(0, cs.MAX_TIMESTAMP))
def test_cosign_verify_round_trip(timestamp: int) -> None:
    cosigned = LOG_NOTE + cs.cosign(TEXT, W1, timestamp).encode()
    found = cs.verify_cosignatures(cosigned, ALL, 1)
    assert [(c.name, c.timestamp) for c in found] == [("w1.example", timestamp)]


def test_not_before_refuses_an_older_cosignature() -> None:
    cosigned = LOG_NOTE + cs.cosign(TEXT, W1, T0).encode()
    assert cs.verify_cosignatures(cosigned, ALL, 1, not_before=T0)
    with pytest.raises(NoteError, match="too old"):
        cs.verify_cosignatures(cosigned, ALL, 1, not_before=T0 + 1)


def test_quorum_of_three_with_log_and_unknown_lines_ignored() -> None:
    stranger = _witness("stranger.example", 9)
    lines = [cs.cosign(TEXT, w, T0 + i) for i, w in enumerate([W1, stranger, W2, W3])]
    found = cs.verify_cosignatures(LOG_NOTE + "".join(lines).encode(), ALL, 3)
    assert [c.name for c in found] == ["w1.example", "w2.example", "w3.example"]


def test_cosign_rejects_negative_timestamp() -> None:
    _rejects(cs.cosign, TEXT, W1, -1, match="timestamp out of range")


def test_cosign_rejects_timestamp_beyond_2_63() -> None:
    _rejects(cs.cosign, TEXT, W1, 2**63, match="timestamp out of range")


def test_cosign_rejects_non_checkpoint_text() -> None:
    _rejects(cs.cosign, "just one line\n", W1, T0, match="malformed checkpoint")


def test_forged_cosignature() -> None:
    raw = bytearray(base64.b64decode(cs.cosign(TEXT, W1, T0).split(" ")[2]))
    raw[-1] ^= 1
    forged = LOG_NOTE + _line("w1.example", W1.key_hash, T0, bytes(raw[12:]))
    _rejects(cs.verify_cosignatures, forged, ALL, 1, match="does not verify")


def test_forged_cosignature_beside_valid_ones() -> None:
    good = cs.cosign(TEXT, W1, T0) + cs.cosign(TEXT, W2, T0)
    forged = _line("w3.example", W3.key_hash, T0, bytes(64))
    _rejects(cs.verify_cosignatures, LOG_NOTE + good.encode() + forged, ALL, 2, match="verify")


def test_replayed_cosignature_from_other_checkpoint() -> None:
    other = encode(Checkpoint("relay.example/log", 11, bytes(32)))
    replayed = LOG_NOTE + cs.cosign(other, W1, T0).encode()
    _rejects(cs.verify_cosignatures, replayed, ALL, 1, match="does not verify")


def test_replayed_cosignature_with_other_timestamp() -> None:
    sig = base64.b64decode(cs.cosign(TEXT, W1, T0).split(" ")[2])[12:]
    moved = LOG_NOTE + _line("w1.example", W1.key_hash, T0 + 1, sig)
    _rejects(cs.verify_cosignatures, moved, ALL, 1, match="does not verify")


def test_cosignature_with_timestamp_beyond_2_63_refused_even_if_signed() -> None:
    ts = 2**63
    sig = W1.sign_message(cs.HEADER + f"time {ts}\n".encode() + TEXT.encode())
    _rejects(
        cs.verify_cosignatures,
        LOG_NOTE + _line("w1.example", W1.key_hash, ts, sig),
        ALL,
        1,
        match="verify",
    )


def test_plain_note_signature_is_not_a_cosignature() -> None:
    # The same Ed25519 key signs as a log (type 0x01) and is pinned as a witness (0x04).
    key = SigningKey(bytes([7]) * 32)
    as_log = note.sign(TEXT, [note.Signer("w.example", key)])
    witness = cs.CosignatureVerifier("w.example", key.public)
    _rejects(cs.verify_cosignatures, as_log, [witness], 1, match="too few")


def test_cosigned_text_must_be_a_checkpoint() -> None:
    text = b"not\na checkpoint\n"
    sig = W1.sign_message(cs.HEADER + f"time {T0}\n".encode() + text)
    bad = text + b"\n" + _line("w1.example", W1.key_hash, T0, sig)
    _rejects(cs.verify_cosignatures, bad, ALL, 1, match="malformed checkpoint")


def test_cosignature_in_the_future() -> None:
    cosigned = LOG_NOTE + cs.cosign(TEXT, W1, T0 + 1).encode()
    assert len(cs.verify_cosignatures(cosigned, ALL, 1, not_after=T0 + 1)) == 1
    _rejects(cs.verify_cosignatures, cosigned, ALL, 1, not_after=T0, match="future")


# --- quorum --------------------------------------------------------------------------


def test_quorum_not_met() -> None:
    cosigned = LOG_NOTE + cs.cosign(TEXT, W1, T0).encode()
    _rejects(cs.verify_cosignatures, cosigned, ALL, 2, match="too few")


def test_duplicate_cosignature_lines_count_once() -> None:
    line = cs.cosign(TEXT, W1, T0)
    _rejects(cs.verify_cosignatures, LOG_NOTE + (line * 2).encode(), ALL, 2, match="too few")


def test_same_witness_twice_counts_once_and_with_two_timestamps() -> None:
    lines = cs.cosign(TEXT, W1, T0) + cs.cosign(TEXT, W1, T0 + 5)
    found = cs.verify_cosignatures(LOG_NOTE + lines.encode(), ALL, 1)
    assert [(c.name, c.timestamp) for c in found] == [("w1.example", T0)]
    _rejects(cs.verify_cosignatures, LOG_NOTE + lines.encode(), ALL, 2, match="too few")


@pytest.mark.parametrize("quorum", [0, -1])
def test_quorum_not_positive(quorum: int) -> None:
    _rejects(cs.verify_cosignatures, LOG_NOTE, ALL, quorum, match="invalid cosignature quorum")


def test_quorum_above_witness_count() -> None:
    _rejects(cs.verify_cosignatures, LOG_NOTE, ALL, 4, match="invalid cosignature quorum")


def test_quorum_with_no_witnesses() -> None:
    _rejects(cs.verify_cosignatures, LOG_NOTE, [], 1, match="invalid cosignature quorum")


def test_duplicate_witness_in_policy_counts_once() -> None:
    cosigned = LOG_NOTE + cs.cosign(TEXT, W1, T0).encode()
    twice = [W1.verifier(), W1.verifier()]
    _rejects(cs.verify_cosignatures, cosigned, twice, 2, match="invalid cosignature quorum")


def test_one_key_under_two_names_refused() -> None:
    key = SigningKey(bytes([5]) * 32)
    witnesses = [
        cs.CosignatureVerifier("a.example", key.public),
        cs.CosignatureVerifier("b.example", key.public),
    ]
    cosigned = LOG_NOTE + cs.cosign(TEXT, cs.CosignatureSigner("a.example", key), T0).encode()
    _rejects(cs.verify_cosignatures, cosigned, witnesses, 1, match="two names")


def test_cosignature_of_wrong_length() -> None:
    short = LOG_NOTE + _line("w1.example", W1.key_hash, T0, bytes(63))
    _rejects(cs.verify_cosignatures, short, ALL, 1, match="does not verify")


def test_ml_dsa_witness_key_is_unsupported() -> None:
    # Optional in the vector set; relay247 implements Ed25519 cosignatures only.
    vkey = CHECKPOINTS["real_world"][1]["vkeys"]["witness_mldsa44_type06"]
    _rejects(cs.CosignatureVerifier.from_key, vkey, match="unsupported verifier key type")
