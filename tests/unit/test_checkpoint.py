"""C2SP checkpoints: a real public-log checkpoint, spec examples, round trips, rejections."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import note
from protocol.checkpoint import Checkpoint, encode, open_checkpoint, parse, sign_checkpoint
from protocol.errors import NoteError

_EXT = Path(__file__).parents[1] / "vectors/external"
CHECKPOINTS: dict[str, Any] = json.loads((_EXT / "c2sp/checkpoints.json").read_text("utf-8"))
TREE_NOTE: dict[str, Any] = json.loads((_EXT / "signed-note/vectors.json").read_text("utf-8"))[
    "tlog_tree_note"
]
REAL = CHECKPOINTS["real_world"][0]
REAL_NOTE: bytes = REAL["note"].encode()
ORIGIN: str = REAL["expect"]["origin"]
LOG = note.Verifier.from_key(REAL["vkeys"]["log_ed25519_type01"])
ROOT = bytes(range(32))
SIGNER = note.Signer.from_key(note.generate_key("relay.example/log", bytes(32))[0])


def _rejects(func: Any, *args: Any, match: str) -> None:
    with pytest.raises(NoteError, match=match) as info:
        func(*args)
    assert type(info.value) is NoteError


# --- vectors -------------------------------------------------------------------------


def test_real_checkpoint_opens() -> None:
    cp, opened = open_checkpoint(REAL_NOTE, LOG, ORIGIN)
    assert cp.origin == ORIGIN
    assert cp.size == REAL["expect"]["tree_size"]
    assert cp.root_hash == base64.b64decode(REAL["expect"]["root_hash_b64"])
    assert cp.extensions == ()
    assert [s.name for s in opened.verified] == [ORIGIN]
    # The RFC 6962 TreeHeadSignature (type 0x05) and four witness lines are ignored.
    assert len(opened.unverified) == 5
    assert encode(cp) == opened.text


def test_real_checkpoint_tampered_size() -> None:
    bad = REAL_NOTE.replace(b"\n1432088532\n", b"\n42\n")
    _rejects(open_checkpoint, bad, LOG, ORIGIN, match="does not verify")


def test_real_checkpoint_wrong_origin() -> None:
    _rejects(open_checkpoint, REAL_NOTE, LOG, "example.com/other", match="another log")


def test_checkpoint_without_log_signature() -> None:
    # Only witness and unknown lines: the log's own signature is required.
    _rejects(open_checkpoint, REAL_NOTE, SIGNER.verifier(), ORIGIN, match="no signature")


@pytest.mark.parametrize("key", ["tlog-checkpoint.md", "tlog-cosignature.md"])
def test_spec_example_parses_but_has_no_known_key(key: str) -> None:
    example: str = CHECKPOINTS["spec_examples_format_only"][key]
    cp = parse(example.split("\n\n", maxsplit=1)[0] + "\n")
    assert (cp.origin, cp.size) == ("example.com/behind-the-sofa", 20852163)
    _rejects(open_checkpoint, example.encode(), LOG, cp.origin, match="no signature")


def test_go_tree_note_is_a_checkpoint() -> None:
    cp = parse(TREE_NOTE["text"])
    assert cp.origin == "go.sum database tree"  # spaces are allowed in an origin
    assert cp.size == TREE_NOTE["tree_size"]
    assert cp.root_hash == hashlib.sha256(b"\x00" + TREE_NOTE["record"].encode()).digest()
    assert encode(cp) == TREE_NOTE["text"]


# --- round trips ---------------------------------------------------------------------


def test_sign_and_open_with_extensions() -> None:
    cp = Checkpoint("relay.example/log", 7, ROOT, ("ext one", "— two"))
    opened_cp, _ = open_checkpoint(sign_checkpoint(cp, SIGNER), SIGNER.verifier(), cp.origin)
    assert opened_cp == cp


def test_empty_tree_size_zero() -> None:
    assert parse(encode(Checkpoint("o", 0, ROOT))).size == 0


_LINE = st.text(st.characters(codec="utf-8", min_codepoint=0x20), min_size=1, max_size=40)


@given(
    origin=_LINE,
    size=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(_LINE, max_size=3).map(tuple),
)
def test_encode_parse_round_trip(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    cp = Checkpoint(origin, size, root, extensions)
    assert parse(encode(cp)) == cp


# --- parse: rejection paths ----------------------------------------------------------

_HASH = base64.b64encode(ROOT).decode()


def test_parse_missing_final_newline() -> None:
    _rejects(parse, f"o\n1\n{_HASH}", match="malformed checkpoint")


def test_parse_two_lines() -> None:
    _rejects(parse, "o\n1\n", match="malformed checkpoint")


def test_parse_empty_origin() -> None:
    _rejects(parse, f"\n1\n{_HASH}\n", match="malformed checkpoint")


@pytest.mark.parametrize("size", ["01", "00", "+1", "-1", " 1", "1 ", "1_0", "\uff11", "", "0x1"])
def test_parse_non_canonical_size(size: str) -> None:
    _rejects(parse, f"o\n{size}\n{_HASH}\n", match="malformed checkpoint")


def test_parse_size_beyond_uint64() -> None:
    _rejects(parse, f"o\n{2**64}\n{_HASH}\n", match="malformed checkpoint")
    assert parse(f"o\n{2**64 - 1}\n{_HASH}\n").size == 2**64 - 1


def test_parse_hash_not_base64() -> None:
    _rejects(parse, "o\n1\nnot base64!\n", match="malformed checkpoint")


def test_parse_hash_wrong_length() -> None:
    short = base64.b64encode(ROOT[:31]).decode()
    _rejects(parse, f"o\n1\n{short}\n", match="malformed checkpoint")


def test_parse_hash_non_canonical_base64() -> None:
    loose = _HASH[:-2] + chr(ord(_HASH[-2]) + 1) + "="  # only the unused low bits differ
    assert base64.b64decode(loose) == ROOT
    _rejects(parse, f"o\n1\n{loose}\n", match="malformed checkpoint")


def test_parse_empty_extension_line() -> None:
    _rejects(parse, f"o\n1\n{_HASH}\n\next\n", match="malformed checkpoint")


# --- construction: rejection paths ---------------------------------------------------


def test_checkpoint_rejects_empty_origin() -> None:
    _rejects(Checkpoint, "", 1, ROOT, match="malformed checkpoint")


def test_checkpoint_rejects_newline_in_origin() -> None:
    _rejects(Checkpoint, "a\nb", 1, ROOT, match="malformed checkpoint")


def test_checkpoint_rejects_control_character() -> None:
    _rejects(Checkpoint, "a\tb", 1, ROOT, match="malformed note")


def test_checkpoint_rejects_negative_size() -> None:
    _rejects(Checkpoint, "o", -1, ROOT, match="malformed checkpoint")


def test_checkpoint_rejects_size_beyond_uint64() -> None:
    _rejects(Checkpoint, "o", 2**64, ROOT, match="malformed checkpoint")


def test_checkpoint_rejects_short_root() -> None:
    _rejects(Checkpoint, "o", 1, ROOT[:31], match="malformed checkpoint")


def test_checkpoint_rejects_empty_extension() -> None:
    _rejects(Checkpoint, "o", 1, ROOT, ("",), match="malformed checkpoint")


def test_checkpoint_rejects_multi_line_extension() -> None:
    _rejects(Checkpoint, "o", 1, ROOT, ("a\nb",), match="malformed checkpoint")
