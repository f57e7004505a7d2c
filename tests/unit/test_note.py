"""C2SP signed notes: Go sumdb/note and C2SP vectors, round trips, every rejection path."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import note
from protocol._note_open import MAX_NOTE_BYTES
from protocol.errors import NoteError

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "vectors/external/signed-note/vectors.json").read_text("utf-8")
)
PETER_VKEY = VECTORS["verify"][0]["vkeys"][0]
PETER_NOTE: bytes = VECTORS["verify"][0]["note"].encode()
PETER_TEXT = VECTORS["sign"][0]["text"]
SEED_A = bytes(range(32))
SEED_B = bytes(range(1, 33))


def _signer(name: str = "relay.example/log", seed: bytes = SEED_A) -> note.Signer:
    return note.Signer.from_key(note.generate_key(name, seed)[0])


def _rejects(func: Any, *args: Any, match: str) -> NoteError:
    with pytest.raises(NoteError, match=match) as info:
        func(*args)
    assert type(info.value) is NoteError
    return info.value


# --- published vectors ---------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS["sign"], ids=lambda c: c["name"])
def test_sign_vector(case: dict[str, Any]) -> None:
    signer = note.Signer.from_key(case["skey"])
    assert note.sign(case["text"], [signer]) == case["want"].encode()


@pytest.mark.parametrize(
    "case", [c for c in VECTORS["verify"] if not c.get("want_error")], ids=lambda c: c["name"]
)
def test_verify_vector_accepts(case: dict[str, Any]) -> None:
    verifiers = [note.Verifier.from_key(k) for k in case["vkeys"]]
    opened = note.open(case["note"].encode(), verifiers)
    assert [s.name for s in opened.verified] == case["expect_verified"]
    assert case["note"].startswith(opened.text + "\n")


@pytest.mark.parametrize(
    "case", [c for c in VECTORS["verify"] if c.get("want_error")], ids=lambda c: c["name"]
)
def test_verify_vector_rejects(case: dict[str, Any]) -> None:
    verifiers = [note.Verifier.from_key(k) for k in case["vkeys"]]
    _rejects(note.open, case["note"].encode(), verifiers, match="note")


@pytest.mark.parametrize("case", VECTORS["bad_vkeys"], ids=lambda c: c["why"])
def test_bad_verifier_key_vectors(case: dict[str, Any]) -> None:
    _rejects(note.Verifier.from_key, case["vkey"], match="verifier key")


def test_signer_key_matches_verifier_key_vector() -> None:
    signer = note.Signer.from_key(VECTORS["sign"][0]["skey"])
    assert signer.verifier().key_string() == PETER_VKEY
    assert signer.key_hash == 0xC74F20A3
    assert note.verifier_key(signer.name, signer.public) == PETER_VKEY


def test_unknown_signature_beside_verified_is_listed_unverified() -> None:
    case = VECTORS["verify"][1]
    opened = note.open(case["note"].encode(), [note.Verifier.from_key(PETER_VKEY)])
    assert [(s.name, s.key_hash) for s in opened.unverified] == [("EnochRoot", 0xAF0CFE78)]


# --- keys ----------------------------------------------------------------------------


def test_generate_key_is_deterministic_with_seed_and_round_trips() -> None:
    skey, vkey = note.generate_key("relay.example/log", SEED_A)
    assert note.generate_key("relay.example/log", SEED_A) == (skey, vkey)
    assert skey.startswith("PRIVATE+KEY+relay.example/log+")
    signer, verifier = note.Signer.from_key(skey), note.Verifier.from_key(vkey)
    assert (signer.name, signer.key_hash) == (verifier.name, verifier.key_hash)
    assert verifier.verify(b"m", signer.sign_bytes(b"m"))
    assert not verifier.verify(b"n", signer.sign_bytes(b"m"))


def test_generate_key_random_keys_differ() -> None:
    assert note.generate_key("a")[1] != note.generate_key("a")[1]


def test_generate_key_rejects_bad_name() -> None:
    _rejects(note.generate_key, "bad name", match="invalid key name")


def test_generate_key_rejects_short_seed() -> None:
    _rejects(note.generate_key, "a", b"x" * 31, match="seed must be 32 bytes")


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\u00a0b", "a\u2028b", "a\x01b", "a\tb"])
def test_verifier_rejects_invalid_names(name: str) -> None:
    _rejects(note.Verifier, name, bytes(32), match="invalid key name")


def test_verifier_rejects_short_public_key() -> None:
    _rejects(note.Verifier, "a", bytes(31), match="32 bytes")


def test_vkey_missing_field() -> None:
    _rejects(note.Verifier.from_key, "PeterNeumann+c74f20a3", match="malformed verifier key")


def test_vkey_uppercase_hex() -> None:
    _rejects(note.Verifier.from_key, PETER_VKEY.replace("c74f20a3", "C74F20A3"), match="malformed")


def test_vkey_wrong_key_hash() -> None:
    bad = PETER_VKEY.replace("c74f20a3", "c74f20a4")
    _rejects(note.Verifier.from_key, bad, match="key ID does not match")


def test_vkey_other_name_keeps_old_hash() -> None:
    bad = PETER_VKEY.replace("PeterNeumann", "PeterNeuman")
    _rejects(note.Verifier.from_key, bad, match="key ID does not match")


def test_vkey_non_standard_alphabet() -> None:
    # The URL-safe alphabet is not the RFC 4648 §4 one the spec names.
    bad = PETER_VKEY.replace("/", "_")
    _rejects(note.Verifier.from_key, bad, match="malformed verifier key")


def test_vkey_missing_padding() -> None:
    vkey = note.verifier_key("a", bytes(32))  # 33 bytes: no padding, so extend to 34
    name, hex8, _ = vkey.split("+")
    unpadded = base64.b64encode(b"\x01" + bytes(33)).decode().rstrip("=")
    _rejects(note.Verifier.from_key, f"{name}+{hex8}+{unpadded}", match="malformed verifier key")


def test_vkey_cosignature_type_refused() -> None:
    vkey = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
    _rejects(note.Verifier.from_key, vkey, match="unsupported verifier key type")


def test_vkey_empty_key_material() -> None:
    _rejects(note.Verifier.from_key, "a+00000000+", match="malformed verifier key")


def test_skey_missing_private_prefix() -> None:
    skey = VECTORS["sign"][0]["skey"].replace("PRIVATE+KEY+", "")
    _rejects(note.Signer.from_key, skey, match="malformed signer key")


def test_skey_wrong_key_hash_does_not_leak_secret() -> None:
    skey = VECTORS["sign"][0]["skey"]
    err = _rejects(note.Signer.from_key, skey.replace("c74f20a3", "00000000"), match="key ID")
    assert skey.rsplit("+", 1)[1] not in err.diagnostics()


def test_skey_wrong_seed_length() -> None:
    skey = note.generate_key("a", SEED_A)[0]
    prefix, key64 = skey.rsplit("+", 1)
    short = base64.b64encode(base64.b64decode(key64)[:-1]).decode()
    _rejects(note.Signer.from_key, f"{prefix}+{short}", match="malformed signer key")


def test_skey_cosignature_type_refused() -> None:
    skey = note.generate_key("a", SEED_A)[0]
    prefix, key64 = skey.rsplit("+", 1)
    raw = b"\x04" + base64.b64decode(key64)[1:]
    _rejects(note.Signer.from_key, f"{prefix}+{base64.b64encode(raw).decode()}", match="type")


def test_signer_repr_hides_seed() -> None:
    signer = _signer()
    assert "relay.example/log" in repr(signer)
    assert base64.b64encode(SEED_A).decode() not in repr(signer)


def test_signer_rejects_bad_name() -> None:
    _rejects(note.Signer, "", _signer()._key, match="invalid key name")


# --- signing -------------------------------------------------------------------------


def test_sign_bytes_equals_sign_str() -> None:
    signer = _signer()
    assert note.sign(PETER_TEXT, [signer]) == note.sign(PETER_TEXT.encode(), [signer])


def test_sign_two_signers_both_verify() -> None:
    a, b = _signer("a.example", SEED_A), _signer("b.example", SEED_B)
    opened = note.open(note.sign(PETER_TEXT, [a, b]), [a.verifier(), b.verifier()])
    assert [s.name for s in opened.verified] == ["a.example", "b.example"]
    assert opened.unverified == []


def test_sign_text_with_blank_lines_round_trips() -> None:
    text = (
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n"
        "\ned è subito sera.\n"
    )
    signer = _signer()
    assert note.open(note.sign(text, [signer]), [signer.verifier()]).text == text


def test_sign_rejects_missing_final_newline() -> None:
    _rejects(note.sign, "no newline", [_signer()], match="malformed note")


def test_sign_rejects_empty_text() -> None:
    _rejects(note.sign, "", [_signer()], match="malformed note")


def test_sign_rejects_control_character() -> None:
    _rejects(note.sign, "a\rb\n", [_signer()], match="malformed note")


def test_sign_rejects_invalid_utf8() -> None:
    _rejects(note.sign, b"\xff\n", [_signer()], match="malformed note")


def test_sign_rejects_no_signer() -> None:
    _rejects(note.sign, "a\n", [], match="at least one signer")


def test_sign_rejects_duplicate_signer() -> None:
    _rejects(note.sign, "a\n", [_signer(), _signer()], match="twice")


def test_sign_rejects_too_many_signers() -> None:
    signers = [_signer(f"s{i}") for i in range(note.MAX_SIGNATURES + 1)]
    _rejects(note.sign, "a\n", signers, match="too many signers")


_TEXT_CHARS = st.characters(codec="utf-8", min_codepoint=0x20) | st.just("\n")
_NAMES = st.from_regex(r"[a-z0-9./-]{1,20}", fullmatch=True)


@given(body=st.text(_TEXT_CHARS, max_size=200), name=_NAMES)
def test_sign_open_round_trip(body: str, name: str) -> None:
    text = body + "\n"
    signer = note.Signer.from_key(note.generate_key(name, SEED_A)[0])
    opened = note.open(note.sign(text, [signer]), [signer.verifier()])
    assert opened.text == text
    assert [(s.name, s.key_hash) for s in opened.verified] == [(name, signer.key_hash)]


# --- opening: rejection paths --------------------------------------------------------


def _peter() -> list[note.NoteVerifier]:
    return [note.Verifier.from_key(PETER_VKEY)]


def _sig_line(name: str, payload: bytes) -> bytes:
    return f"\u2014 {name} {base64.b64encode(payload).decode()}\n".encode()


def test_open_tampered_text() -> None:
    bad = PETER_NOTE.replace(b"problem,", b"problem;")
    _rejects(note.open, bad, _peter(), match="does not verify")


def test_open_tampered_signature() -> None:
    text, line = PETER_NOTE.split(b"\n\n")
    raw = bytearray(base64.b64decode(line.split(b" ")[2]))
    raw[10] ^= 1
    bad = text + b"\n\n" + _sig_line("PeterNeumann", bytes(raw))
    _rejects(note.open, bad, _peter(), match="does not verify")


def test_open_known_key_with_truncated_signature() -> None:
    raw = base64.b64decode(PETER_NOTE.split(b"\n\n")[1].split(b" ")[2])[:20]
    bad = PETER_TEXT.encode() + b"\n" + _sig_line("PeterNeumann", raw)
    _rejects(note.open, bad, _peter(), match="does not verify")


def test_open_unknown_keys_only() -> None:
    _rejects(note.open, PETER_NOTE, [_signer().verifier()], match="no signature from a known key")


def test_open_no_verifiers() -> None:
    _rejects(note.open, PETER_NOTE, [], match="no signature from a known key")


def test_open_same_name_other_key_id_is_ignored() -> None:
    raw = base64.b64decode(PETER_NOTE.split(b"\n\n")[1].split(b" ")[2])
    other = (0xC74F20A4).to_bytes(4, "big") + raw[4:]
    bad = PETER_TEXT.encode() + b"\n" + _sig_line("PeterNeumann", other)
    _rejects(note.open, bad, _peter(), match="no signature from a known key")


def test_open_missing_final_newline() -> None:
    _rejects(note.open, PETER_NOTE[:-1], _peter(), match="malformed note")


def test_open_missing_blank_line() -> None:
    _rejects(note.open, PETER_TEXT.encode(), _peter(), match="malformed note")


def test_open_empty_signature_block() -> None:
    _rejects(note.open, PETER_TEXT.encode() + b"\n", _peter(), match="malformed note")


def test_open_line_without_em_dash() -> None:
    bad = PETER_NOTE.replace("\u2014".encode(), b"-")
    _rejects(note.open, bad, _peter(), match="malformed note")


def test_open_line_without_space_after_name() -> None:
    bad = PETER_TEXT.encode() + "\n\u2014 PeterNeumann\n".encode()
    _rejects(note.open, bad, _peter(), match="malformed note")


def test_open_empty_key_name() -> None:
    bad = PETER_NOTE.replace(b" PeterNeumann ", b"  ")
    _rejects(note.open, bad, _peter(), match="malformed note")


def test_open_non_canonical_base64_signature() -> None:
    bad = PETER_NOTE.replace(b"nAM=\n", b"nAN=\n")
    _rejects(note.open, bad, _peter(), match="malformed note")


def test_open_signature_shorter_than_five_bytes() -> None:
    bad = PETER_TEXT.encode() + b"\n" + _sig_line("PeterNeumann", bytes.fromhex("c74f20a3"))
    _rejects(note.open, bad, _peter(), match="malformed note")


def test_open_invalid_utf8() -> None:
    _rejects(note.open, b"\xc3\x28" + PETER_NOTE, _peter(), match="malformed note")


def test_open_control_character_in_signature_block() -> None:
    _rejects(note.open, PETER_NOTE[:-1] + b"\r\n", _peter(), match="malformed note")


def test_open_too_many_signatures() -> None:
    lines = [_sig_line(f"x{i}", b"\x00" * 68) for i in range(note.MAX_SIGNATURES)]
    # The Peter line plus 99 unknown ones is the limit; one more is refused.
    assert len(note.open(PETER_NOTE + b"".join(lines[:-1]), _peter()).unverified) == 99
    _rejects(note.open, PETER_NOTE + b"".join(lines), _peter(), match="too many signatures")


def test_open_too_large() -> None:
    big = b"a" * MAX_NOTE_BYTES + PETER_NOTE
    _rejects(note.open, big, _peter(), match="too large")


def test_open_ambiguous_verifiers() -> None:
    class Colliding:
        name = "PeterNeumann"
        key_hash = 0xC74F20A3
        public = bytes(32)

        def verify(self, msg: bytes, sig: bytes) -> bool:
            return True

    _rejects(note.open, PETER_NOTE, [*_peter(), Colliding()], match="ambiguous")


def test_open_same_verifier_twice_is_fine() -> None:
    assert len(note.open(PETER_NOTE, _peter() * 2).verified) == 1


def test_open_repeated_signature_counts_once() -> None:
    line = PETER_NOTE.split(b"\n\n")[1]
    assert len(note.open(PETER_NOTE + line, _peter()).verified) == 1


def test_open_repeated_known_key_with_one_bad_signature() -> None:
    raw = bytearray(base64.b64decode(PETER_NOTE.split(b"\n\n")[1].split(b" ")[2]))
    raw[-1] ^= 1
    bad = PETER_NOTE + _sig_line("PeterNeumann", bytes(raw))
    _rejects(note.open, bad, _peter(), match="does not verify")


def test_open_repeated_unknown_line_listed_once() -> None:
    enoch = VECTORS["verify"][1]["note"].encode().split(b"\n")[-2] + b"\n"
    opened = note.open(PETER_NOTE + enoch + enoch, _peter())
    assert len(opened.unverified) == 1


def test_verifier_rejects_lone_surrogate_name() -> None:
    _rejects(note.Verifier, "a\ud800", bytes(32), match="invalid key name")


def test_vkey_invalid_name() -> None:
    _rejects(note.Verifier.from_key, "Peter Neumann" + PETER_VKEY[12:], match="malformed verifier")


def test_vkey_non_ascii_key_material() -> None:
    _rejects(note.Verifier.from_key, PETER_VKEY[:-1] + "\u00e9", match="malformed verifier key")


def test_verifier_repr_is_its_key_string() -> None:
    assert repr(note.Verifier.from_key(PETER_VKEY)) == f"Verifier({PETER_VKEY!r})"
