"""RFC 9421 request signatures: Appendix B.2.6, the relay247 profile, each rejection path,
Content-Digest, the nonce cache, and interop with http-message-signatures and cryptography."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    InvalidSignature,
    MappingKeyResolver,
    algorithms,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from protocol import httpsig
from protocol._sfv import BareItem
from protocol.errors import (
    ConfigError,
    MalformedError,
    PeerError,
    ReplayError,
    TimeWindowError,
    VerificationError,
)
from protocol.httpsig import (
    COMPONENTS_WITH_BODY,
    COMPONENTS_WITHOUT_BODY,
    NonceCache,
    content_digest,
    sign_request,
    signature_base,
    verify_content_digest,
    verify_request,
    verify_signature,
)
from protocol.keys import SigningKey
from schemas.errors import ErrorCode

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "external" / "rfc9421"
B26: dict[str, Any] = json.loads((VECTORS / "b26.json").read_text())
B26_KEY = SigningKey(bytes.fromhex(B26["private_seed_hex"]))

KEY = SigningKey(bytes(range(32)))
KEYID = "node-fr-transport-1"
URI = "https://relay.example/v1/envelopes?priority=urgent"
BODY = b'{"kind":"envelope","v":1}'
NOW = 1_700_000_000
CT = {"Content-Type": "application/json"}


def resolve(keyid: str) -> bytes | None:
    return KEY.public if keyid == KEYID else None


def signed(method: str = "POST", body: bytes = BODY, **kw: Any) -> dict[str, str]:
    """Headers of a request signed with our profile (the common valid case)."""
    headers = dict(CT)
    kw.setdefault("nonce", "nonce-0001")
    headers.update(sign_request(method, URI, headers, body, key=KEY, keyid=KEYID, now=NOW, **kw))
    return headers


def crafted(
    params: Mapping[str, BareItem],
    components: tuple[str, ...] = COMPONENTS_WITH_BODY,
    label: str = "sig1",
    body: bytes = BODY,
) -> dict[str, str]:
    """A validly signed request with hand-chosen parameters, to isolate one profile rule."""
    headers = {**CT, "Content-Digest": content_digest(body)}
    base = signature_base("POST", URI, headers, components, params)
    sig = base64.b64encode(KEY.sign_raw(base)).decode()
    params_value = base.decode().rsplit('"@signature-params": ', 1)[1]
    return {
        **headers,
        "Signature-Input": f"{label}={params_value}",
        "Signature": f"{label}=:{sig}:",
    }


def good_params(**changes: BareItem | None) -> dict[str, BareItem]:
    params: dict[str, BareItem] = {
        "created": NOW,
        "expires": NOW + 60,
        "keyid": KEYID,
        "nonce": "n1",
        "tag": "relay247",
    }
    for name, value in changes.items():
        if value is None:
            params.pop(name)
        else:
            params[name] = value
    return params


def verify(headers: Any, body: bytes | None = BODY, **kw: Any) -> httpsig.VerifiedRequest:
    kw.setdefault("resolve_key", resolve)
    kw.setdefault("now", NOW)
    method = kw.pop("method", "POST")
    uri = kw.pop("uri", URI)
    return verify_request(method, uri, headers, body, **kw)


# --- RFC 9421 Appendix B.2.6 -------------------------------------------------------------


def b26_headers(
    label: str = "sig-b26", sig: str | None = None, params: str | None = None
) -> dict[str, str]:
    headers = dict(B26["headers"])
    headers["Signature-Input"] = f"{label}={params or B26['signature_params']}"
    headers["Signature"] = f"{label}=:{sig or B26['signature_b64']}:"
    return headers


def b26_params(**extra: BareItem) -> dict[str, BareItem]:
    return {"created": 1618884473, "keyid": "test-key-ed25519", **extra}


def b26_resolve(keyid: str) -> bytes | None:
    return bytes.fromhex(B26["public_key_hex"]) if keyid == B26["key_id"] else None


def test_b26_key_files_match_the_raw_key() -> None:
    pem_public = serialization.load_pem_public_key((VECTORS / "test-key-ed25519.pem").read_bytes())
    pem_private = serialization.load_pem_private_key(
        (VECTORS / "test-key-ed25519.key").read_bytes(), password=None
    )
    assert isinstance(pem_public, Ed25519PublicKey)
    assert isinstance(pem_private, Ed25519PrivateKey)
    assert pem_public.public_bytes_raw() == B26_KEY.public
    assert pem_private.private_bytes_raw() == B26_KEY.seed


def test_b26_signature_base_is_exact() -> None:
    req = B26["request"]
    base = signature_base(
        req["method"], req["target_uri"], B26["headers"], B26["covered_components"], b26_params()
    )
    assert base == B26["signature_base"].encode()
    assert base == (VECTORS / "b26-signature-base.txt").read_bytes()


def test_b26_signature_value_is_exact() -> None:
    req = B26["request"]
    base = signature_base(
        req["method"], req["target_uri"], B26["headers"], B26["covered_components"], b26_params()
    )
    assert base64.b64encode(B26_KEY.sign_raw(base)).decode() == B26["signature_b64"]
    assert b26_headers() == {**B26["headers"], **B26["expected_headers"]}


def test_b26_tag_variant_is_exact() -> None:
    extra = B26["extra_same_key_with_tag_pyauth"]
    req = B26["request"]
    params = b26_params(tag="tag-b27")
    base = signature_base(
        req["method"], req["target_uri"], B26["headers"], B26["covered_components"], params
    )
    assert base.decode().endswith(extra["signature_params"])
    assert base64.b64encode(B26_KEY.sign_raw(base)).decode() == extra["signature_b64"]


def test_b26_verifies_without_alg() -> None:
    req = B26["request"]
    got = verify_signature(req["method"], req["target_uri"], b26_headers(), "sig-b26", b26_resolve)
    assert got.keyid == "test-key-ed25519"
    assert "alg" not in got.params
    assert got.components == tuple(B26["covered_components"])
    assert got.signature_base == B26["signature_base"].encode()


def test_b26_with_alg_parameter_also_verifies() -> None:
    req = B26["request"]
    params = b26_params(alg="ed25519")
    base = signature_base(
        req["method"], req["target_uri"], B26["headers"], B26["covered_components"], params
    )
    sig = base64.b64encode(B26_KEY.sign_raw(base)).decode()
    assert sig != B26["signature_b64"]  # alg is signed, so the signature differs
    params_value = base.decode().rsplit('"@signature-params": ', 1)[1]
    headers = b26_headers(sig=sig, params=params_value)
    got = verify_signature(req["method"], req["target_uri"], headers, "sig-b26", b26_resolve)
    assert got.params["alg"] == "ed25519"


def test_b26_tampered_date_fails() -> None:
    headers = b26_headers()
    headers["Date"] = "Tue, 20 Apr 2021 02:07:56 GMT"
    req = B26["request"]
    with pytest.raises(VerificationError) as exc:
        verify_signature(req["method"], req["target_uri"], headers, "sig-b26", b26_resolve)
    assert exc.value.code is ErrorCode.UNAUTHENTICATED


def test_generic_verify_rejects_missing_label() -> None:
    req = B26["request"]
    with pytest.raises(MalformedError):
        verify_signature(req["method"], req["target_uri"], b26_headers(), "sig1", b26_resolve)


# --- the profile: accepted requests ------------------------------------------------------


def test_roundtrip_with_body() -> None:
    headers = signed()
    assert headers["Content-Digest"] == content_digest(BODY)
    assert headers["Signature-Input"] == (
        'sig1=("@method" "@target-uri" "content-digest" "content-type");'
        f'created={NOW};expires={NOW + 60};keyid="{KEYID}";nonce="nonce-0001";tag="relay247"'
    )
    got = verify(headers)
    assert got == httpsig.VerifiedRequest(KEYID, "nonce-0001", NOW, NOW + 60)


def test_profile_worked_example() -> None:
    # Pins the worked example of docs/_sections/httpsig.md §5.
    headers = {"Content-Type": "application/json"}
    out = sign_request(
        "POST",
        "https://relay.example/v1/envelopes",
        headers,
        b'{"kind":"envelope","v":1}',
        key=KEY,
        keyid="fr-transport-1",
        now=1_700_000_000,
        nonce="q5Y1mW0v3bM9sXJ2cT8kZA",
    )
    assert KEY.public.hex() == "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    assert out == {
        "Content-Digest": "sha-256=:oj0VwJ2Qcn/oOlgYQlrvDS1kZjB3aRsSPOm9HVRBgns=:",
        "Signature-Input": 'sig1=("@method" "@target-uri" "content-digest" "content-type");'
        'created=1700000000;expires=1700000060;keyid="fr-transport-1";'
        'nonce="q5Y1mW0v3bM9sXJ2cT8kZA";tag="relay247"',
        "Signature": "sig1=:5F3EfA2p5oaAtZ7FY+pKTJw/11FdjC01ov/u7kdc4jNR7vIXAyFpWUfJ3vgH6uECy"
        "Ppl985SRtWjcBlvtKFIBg==:",
    }


def test_roundtrip_get_without_body_covers_method_and_uri_only() -> None:
    out = sign_request("GET", URI, {}, b"", key=KEY, keyid=KEYID, now=NOW, nonce="n")
    assert "Content-Digest" not in out
    assert out["Signature-Input"].startswith('sig1=("@method" "@target-uri");')
    assert verify(out, body=b"", method="GET").nonce == "n"


def test_roundtrip_with_alg_parameter() -> None:
    headers = signed(include_alg=True)
    assert headers["Signature-Input"].endswith(';tag="relay247";alg="ed25519"')
    assert verify(headers).keyid == KEYID


def test_default_nonce_is_random() -> None:
    a = sign_request("GET", URI, {}, b"", key=KEY, keyid=KEYID, now=NOW)
    b = sign_request("GET", URI, {}, b"", key=KEY, keyid=KEYID, now=NOW)
    assert verify(a, body=b"", method="GET").nonce != verify(b, body=b"", method="GET").nonce


def test_signing_ignores_a_stale_content_digest() -> None:
    headers = {**CT, "Content-Digest": content_digest(b"other")}
    headers.update(sign_request("POST", URI, headers, BODY, key=KEY, keyid=KEYID, now=NOW))
    assert verify(headers).keyid == KEYID


def test_time_window_boundaries_accepted() -> None:
    verify(signed(), now=NOW - httpsig.MAX_SKEW)  # created == now + max_skew
    verify(signed(), now=NOW + 59)  # expires == now + 1
    verify(signed(lifetime=300))  # expires - created == max_lifetime


def test_header_names_case_insensitive_and_multidict() -> None:
    headers = CIMultiDict(signed())
    assert verify(headers).keyid == KEYID
    lowered = {k.lower(): v for k, v in signed().items()}
    assert verify(lowered).keyid == KEYID


# --- the profile: each rejection path ---------------------------------------------------


@pytest.mark.parametrize("field", ["Signature-Input", "Signature"])
def test_missing_signature_field_rejected(field: str) -> None:
    headers = signed()
    del headers[field]
    with pytest.raises(VerificationError) as exc:
        verify(headers)
    assert exc.value.code is ErrorCode.UNAUTHENTICATED
    assert exc.value.message == "request is not signed"


def test_two_labels_rejected() -> None:
    headers = signed()
    headers["Signature-Input"] += ", " + headers["Signature-Input"].replace("sig1=", "sig2=", 1)
    headers["Signature"] += ", " + headers["Signature"].replace("sig1=", "sig2=", 1)
    with pytest.raises(MalformedError, match="exactly one signature"):
        verify(headers)


def test_other_label_rejected() -> None:
    headers = signed()
    headers["Signature-Input"] = headers["Signature-Input"].replace("sig1=", "pyhms=", 1)
    headers["Signature"] = headers["Signature"].replace("sig1=", "pyhms=", 1)
    with pytest.raises(MalformedError, match="exactly one signature"):
        verify(headers)


def test_label_only_in_one_field_rejected() -> None:
    headers = signed()
    headers["Signature"] = headers["Signature"].replace("sig1=", "sig2=", 1)
    with pytest.raises(MalformedError):
        verify(headers)


def test_wrong_tag_rejected() -> None:
    with pytest.raises(MalformedError, match="tag"):
        verify(crafted(good_params(tag="other-app")))


@pytest.mark.parametrize("name", ["created", "expires", "keyid", "nonce", "tag"])
def test_missing_required_parameter_rejected(name: str) -> None:
    with pytest.raises(MalformedError, match=name):
        verify(crafted(good_params(**{name: None})))


def test_other_alg_rejected() -> None:
    with pytest.raises(MalformedError, match="algorithm"):
        verify(crafted(good_params(alg="rsa-pss-sha512")))


def test_unknown_parameter_rejected() -> None:
    with pytest.raises(MalformedError, match="unknown signature parameter"):
        verify(crafted(good_params(foo="bar")))


@pytest.mark.parametrize(
    ("name", "value"), [("created", "1700000000"), ("expires", True), ("keyid", 7)]
)
def test_parameter_of_wrong_type_rejected(name: str, value: BareItem) -> None:
    with pytest.raises(MalformedError, match="wrong type"):
        verify(crafted(good_params(**{name: value})))


def test_expires_not_after_created_rejected() -> None:
    with pytest.raises(MalformedError, match="after created"):
        verify(crafted(good_params(expires=NOW)))


@pytest.mark.parametrize("nonce", ["", "x" * 129])
def test_bad_nonce_length_rejected(nonce: str) -> None:
    with pytest.raises(MalformedError, match="nonce"):
        verify(crafted(good_params(nonce=nonce)))


def test_expired_rejected() -> None:
    with pytest.raises(TimeWindowError) as exc:
        verify(signed(), now=NOW + 60)
    assert exc.value.code is ErrorCode.EXPIRED


def test_created_in_future_beyond_skew_rejected() -> None:
    with pytest.raises(TimeWindowError) as exc:
        verify(signed(), now=NOW - httpsig.MAX_SKEW - 1)
    assert exc.value.code is ErrorCode.CLOCK_SKEW


def test_lifetime_too_long_rejected() -> None:
    with pytest.raises(TimeWindowError, match="lifetime") as exc:
        verify(signed(lifetime=301))
    assert exc.value.code is ErrorCode.EXPIRED


def _auth_failure(headers: dict[str, str], **kw: Any) -> VerificationError:
    with pytest.raises(VerificationError) as exc:
        verify(headers, **kw)
    assert exc.value.code is ErrorCode.UNAUTHENTICATED
    return exc.value


def test_unknown_key_and_bad_signature_look_the_same() -> None:
    unknown = _auth_failure(signed(), resolve_key=lambda _k: None)
    other = SigningKey(bytes(32)).public
    bad = _auth_failure(signed(), resolve_key=lambda _k: other)
    assert type(unknown) is type(bad)
    assert (unknown.code, unknown.message, str(unknown)) == (bad.code, bad.message, str(bad))
    assert unknown.detail != bad.detail
    assert "unknown keyid" in unknown.detail


def test_resolver_returning_a_bad_key_looks_like_a_bad_signature() -> None:
    err = _auth_failure(signed(), resolve_key=lambda _k: b"short")
    assert err.message == "request signature does not verify"


def test_tampered_method_rejected() -> None:
    _auth_failure(signed(), method="PUT")


def test_tampered_uri_rejected() -> None:
    _auth_failure(signed(), uri="https://relay.example/v1/envelopes?priority=low")


def test_tampered_content_type_rejected() -> None:
    headers = signed()
    headers["Content-Type"] = "text/plain"
    _auth_failure(headers)


def test_tampered_body_rejected_by_digest() -> None:
    with pytest.raises(VerificationError) as exc:
        verify(signed(), body=BODY + b" ")
    assert exc.value.code is ErrorCode.DIGEST_MISMATCH


def test_tampered_body_with_recomputed_digest_rejected_by_signature() -> None:
    headers = signed()
    headers["Content-Digest"] = content_digest(b"evil")
    _auth_failure(headers, body=b"evil")


def test_tampered_signature_bytes_rejected() -> None:
    headers = signed()
    sig = bytearray(base64.b64decode(headers["Signature"][6:-1]))
    sig[0] ^= 1
    headers["Signature"] = f"sig1=:{base64.b64encode(bytes(sig)).decode()}:"
    _auth_failure(headers)


def test_body_added_to_bodiless_signature_rejected() -> None:
    headers = {**CT, **sign_request("POST", URI, CT, b"", key=KEY, keyid=KEYID, now=NOW)}
    with pytest.raises(MalformedError, match="required components"):
        verify(headers, body=BODY)


def test_covered_content_digest_missing_rejected() -> None:
    headers = signed()
    del headers["Content-Digest"]
    with pytest.raises(MalformedError, match="missing"):
        verify(headers)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Signature-Input", "sig1=(garbage"),
        ("Signature-Input", 'sig1="not a list"'),
        ("Signature-Input", f'sig1=(@method);keyid="{KEYID}"'),
        ("Signature-Input", f'sig1=("@method";sf);keyid="{KEYID}"'),
        ("Signature", "sig1=:not base64!:"),
        ("Signature", "sig1=?1"),
        ("Signature", "sig1=:AAAA:, sig1=:AAAA:"),
    ],
)
def test_malformed_structured_fields_rejected(field: str, value: str) -> None:
    headers = signed()
    headers[field] = value
    with pytest.raises(MalformedError):
        verify(headers)


@pytest.mark.parametrize(
    "components",
    [
        ("@method", "@target-uri", "content-digest", "content-type", "@method"),
        ("@method", "@target-uri", "content-digest", "content-type", "@signature-params"),
        ("@method", "@target-uri", "content-digest", "content-type", "@query-param"),
        ("@method", "@target-uri", "content-digest", "Content-Type"),
    ],
)
def test_bad_covered_components_rejected(components: tuple[str, ...]) -> None:
    with pytest.raises(MalformedError):
        crafted(good_params(), components=components)


@settings(max_examples=300)
@given(sig_input=st.text(max_size=60), sig=st.text(max_size=60))
def test_fuzzed_signature_fields_raise_only_peer_errors(sig_input: str, sig: str) -> None:
    with contextlib.suppress(MalformedError, VerificationError):
        verify({**CT, "Signature-Input": sig_input, "Signature": sig})


# --- signature base details ---------------------------------------------------------------


def test_field_values_trimmed_unfolded_and_combined() -> None:
    headers = CIMultiDict([("X-A", "  one "), ("x-a", "two\r\n  three"), ("X-B", "")])
    base = signature_base("GET", "https://h/p", headers, ["x-a", "x-b"], {})
    assert base == b'"x-a": one, two three\n"x-b": \n"@signature-params": ("x-a" "x-b")'
    listed = signature_base("GET", "https://h/p", {"X-A": ["one", "two"]}, ["x-a"], {})
    assert listed.startswith(b'"x-a": one, two\n')


def test_derived_components() -> None:
    comps = ["@authority", "@scheme", "@path", "@query", "@request-target"]
    base = signature_base("GET", "HTTPS://EXAMPLE.com:443/a%2Fb", {}, comps, {})
    assert base.split(b"\n")[:5] == [
        b'"@authority": example.com',
        b'"@scheme": https',
        b'"@path": /a%2Fb',
        b'"@query": ?',
        b'"@request-target": /a%2Fb',
    ]
    base = signature_base("GET", "http://[::1]:8080/x?y=1", {}, comps, {})
    assert base.split(b"\n")[0] == b'"@authority": [::1]:8080'
    assert base.split(b"\n")[3:5] == [b'"@query": ?y=1', b'"@request-target": /x?y=1']


@pytest.mark.parametrize(
    "uri",
    [
        "https://example.com",  # empty path
        "https://example.com/a#frag",
        "https://user@example.com/",
        "ftp://example.com/",
        "https://example.com/a b",
        "https://example.com/a\tb",
        "https://example.com:12x/",
        "https://[::1/",
        "https://[::1]x/",
        "/relative",
        "",
    ],
)
def test_bad_target_uri_rejected(uri: str) -> None:
    with pytest.raises(MalformedError):
        signature_base("GET", uri, {}, ["@target-uri"], {})


@pytest.mark.parametrize("value", ["a\nb", "caf\u00e9", "bell\x07"])
def test_covered_value_with_invalid_characters_rejected(value: str) -> None:
    with pytest.raises(MalformedError):
        signature_base("GET", URI, {"x-a": value}, ["x-a"], {})


@pytest.mark.parametrize("method", ["", "GE T", "GET\n"])
def test_bad_method_rejected(method: str) -> None:
    with pytest.raises(MalformedError):
        signature_base(method, URI, {}, ["@method"], {})


# --- signing errors --------------------------------------------------------------------------


def test_sign_rejects_nonpositive_lifetime() -> None:
    with pytest.raises(ConfigError):
        sign_request("GET", URI, {}, b"", key=KEY, keyid=KEYID, now=NOW, lifetime=0)


def test_sign_body_needs_content_type() -> None:
    with pytest.raises(MalformedError, match="Content-Type"):
        sign_request("POST", URI, {}, BODY, key=KEY, keyid=KEYID, now=NOW)


@pytest.mark.parametrize(("keyid", "nonce"), [("", "n"), ("k", ""), ("k", "x" * 129)])
def test_sign_rejects_bad_keyid_or_nonce(keyid: str, nonce: str) -> None:
    with pytest.raises(MalformedError):
        sign_request("GET", URI, {}, b"", key=KEY, keyid=keyid, now=NOW, nonce=nonce)


# --- Content-Digest (RFC 9530) ---------------------------------------------------------------


def test_content_digest_value() -> None:
    # RFC 9530 Appendix B.1: {"hello": "world"} as the content.
    digest = content_digest(b'{"hello": "world"}')
    assert digest == "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    verify_content_digest(digest, b'{"hello": "world"}')


def test_content_digest_with_matching_sha512_accepted() -> None:
    both = (
        content_digest(BODY)
        + ", sha-512=:"
        + base64.b64encode(hashlib.sha512(BODY).digest()).decode()
        + ":"
    )
    verify_content_digest(both, BODY)


def test_content_digest_mismatch() -> None:
    with pytest.raises(VerificationError) as exc:
        verify_content_digest(content_digest(b"a"), b"b")
    assert exc.value.code is ErrorCode.DIGEST_MISMATCH


def test_content_digest_sha512_mismatch() -> None:
    bad512 = ", sha-512=:" + base64.b64encode(hashlib.sha512(b"x").digest()).decode() + ":"
    with pytest.raises(VerificationError) as exc:
        verify_content_digest(content_digest(BODY) + bad512, BODY)
    assert exc.value.code is ErrorCode.DIGEST_MISMATCH


@pytest.mark.parametrize(
    "value",
    [
        "sha-512=:" + base64.b64encode(hashlib.sha512(BODY).digest()).decode() + ":",  # no sha-256
        "sha-256=:AAAA:",  # wrong length
        'sha-256="not bytes"',
        "sha-256=(:AAAA:)",
        "sha-256=:" + "A" * 43,  # unterminated
        "",
    ],
)
def test_content_digest_malformed(value: str) -> None:
    with pytest.raises(MalformedError):
        verify_content_digest(value, BODY)


# --- NonceCache --------------------------------------------------------------------------------


def test_nonce_cache_rejects_replay() -> None:
    cache = NonceCache()
    cache.check_and_add(KEYID, "n1", NOW + 60, NOW)
    with pytest.raises(ReplayError) as exc:
        cache.check_and_add(KEYID, "n1", NOW + 60, NOW + 1)
    assert exc.value.code is ErrorCode.REPLAY


def test_nonce_cache_scopes_nonces_per_key() -> None:
    cache = NonceCache()
    cache.check_and_add("a", "n1", NOW + 60, NOW)
    cache.check_and_add("b", "n1", NOW + 60, NOW)
    assert len(cache) == 2


def test_nonce_cache_forgets_at_expiry() -> None:
    cache = NonceCache()
    cache.check_and_add(KEYID, "n1", NOW + 60, NOW)
    cache.check_and_add(KEYID, "n1", NOW + 120, NOW + 60)  # a verifier rejects the old one now
    assert len(cache) == 1


def test_nonce_cache_refuses_expired_entries() -> None:
    with pytest.raises(TimeWindowError):
        NonceCache().check_and_add(KEYID, "n1", NOW, NOW)


def test_nonce_cache_full_refuses_without_evicting() -> None:
    cache = NonceCache(max_entries=2, max_per_key=2)  # the whole-cache bound
    cache.check_and_add(KEYID, "n1", NOW + 10, NOW)
    cache.check_and_add(KEYID, "n2", NOW + 20, NOW)
    with pytest.raises(PeerError) as exc:
        cache.check_and_add(KEYID, "n3", NOW + 30, NOW)
    assert exc.value.code is ErrorCode.RATE_LIMITED
    with pytest.raises(ReplayError):  # the live entries are still remembered
        cache.check_and_add(KEYID, "n1", NOW + 10, NOW + 1)
    cache.check_and_add(KEYID, "n3", NOW + 30, NOW + 10)  # n1 expired, room again


def test_nonce_cache_rejects_nonpositive_bound() -> None:
    with pytest.raises(ConfigError):
        NonceCache(max_entries=0)


# --- interop: http-message-signatures (PyPI) and cryptography --------------------------------
# requests is not installed; the package accepts any object with method, url and headers.


@dataclass
class _Message:
    method: str
    url: str
    headers: dict[str, str]


def _their_private() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(KEY.seed)


@pytest.mark.parametrize("include_alg", [True, False])
def test_their_signature_accepted_by_verify_request(include_alg: bool) -> None:
    msg = _Message("POST", URI, dict(CT))
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={KEYID: _their_private()}),
    )
    signer.sign(
        msg,
        key_id=KEYID,
        created=datetime.fromtimestamp(NOW, tz=UTC),
        expires=datetime.fromtimestamp(NOW + 60, tz=UTC),
        nonce="their-nonce",
        label="sig1",
        tag="relay247",
        include_alg=include_alg,
        covered_component_ids=COMPONENTS_WITH_BODY,
        body=BODY,
    )
    assert ('alg="ed25519"' in msg.headers["Signature-Input"]) is include_alg
    got = verify(msg.headers)
    assert (got.keyid, got.nonce, got.created, got.expires) == (KEYID, "their-nonce", NOW, NOW + 60)


def test_their_bodiless_signature_accepted_by_verify_request() -> None:
    msg = _Message("GET", URI, {})
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={KEYID: _their_private()}),
    )
    signer.sign(
        msg,
        key_id=KEYID,
        created=datetime.fromtimestamp(NOW, tz=UTC),
        expires=datetime.fromtimestamp(NOW + 60, tz=UTC),
        nonce="their-nonce",
        label="sig1",
        tag="relay247",
        covered_component_ids=COMPONENTS_WITHOUT_BODY,
    )
    assert verify(msg.headers, body=b"", method="GET").nonce == "their-nonce"


def test_our_signature_accepted_by_their_verifier() -> None:
    # Their verifier reads the wall clock, so sign at the real time (no sleeping involved).
    now = int(time.time())
    headers = dict(CT)
    headers.update(sign_request("POST", URI, headers, BODY, key=KEY, keyid=KEYID, now=now))
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(
            public_keys={KEYID: Ed25519PublicKey.from_public_bytes(KEY.public)}, private_keys={}
        ),
    )
    results = verifier.verify(
        _Message("POST", URI, headers),
        max_age=timedelta(seconds=300),
        expect_tag="relay247",
        require_components=COMPONENTS_WITH_BODY,
        body=BODY,
    )
    assert len(results) == 1
    assert results[0].parameters["keyid"] == KEYID
    assert results[0].body == BODY
    tampered = _Message("POST", URI, {**headers, "Content-Type": "text/plain"})
    with pytest.raises(InvalidSignature):
        verifier.verify(tampered, expect_tag="relay247")


@settings(max_examples=50)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=200))
def test_ed25519_matches_cryptography(seed: bytes, message: bytes) -> None:
    ours = SigningKey(seed)
    theirs = Ed25519PrivateKey.from_private_bytes(seed)
    assert ours.public == theirs.public_key().public_bytes_raw()
    assert ours.sign_raw(message) == theirs.sign(message)  # Ed25519 is deterministic


@settings(max_examples=25)
@given(seed=st.binary(min_size=32, max_size=32), body=st.binary(min_size=1, max_size=200))
def test_cryptography_signed_request_accepted(seed: bytes, body: bytes) -> None:
    theirs = Ed25519PrivateKey.from_private_bytes(seed)
    public = theirs.public_key().public_bytes_raw()
    params = good_params()
    headers = {**CT, "Content-Digest": content_digest(body)}
    base = signature_base("POST", URI, headers, COMPONENTS_WITH_BODY, params)
    sig = base64.b64encode(theirs.sign(base)).decode()
    params_value = base.decode().rsplit('"@signature-params": ', 1)[1]
    headers.update({"Signature-Input": f"sig1={params_value}", "Signature": f"sig1=:{sig}:"})
    got = verify(headers, body=body, resolve_key=lambda k: public if k == KEYID else None)
    assert got.keyid == KEYID


# --- a body not read yet (body=None): steps 1 to 6 on the headers ------------------------


def test_headers_alone_verify_before_the_body_and_the_digest_waits_for_it() -> None:
    headers = signed()
    assert verify(headers, None).keyid == KEYID  # any body may still come
    with pytest.raises(VerificationError) as caught:
        verify(headers, b"other")  # the full check, once it came, compares it
    assert caught.value.code is ErrorCode.DIGEST_MISMATCH


def test_headers_alone_need_the_digest_covered_when_a_body_comes() -> None:
    bodiless = crafted(good_params(), COMPONENTS_WITHOUT_BODY)
    with pytest.raises(MalformedError, match="required components"):
        verify(bodiless, None)


def test_headers_alone_still_fail_a_bad_signature() -> None:
    headers = signed()
    headers["Content-Digest"] = content_digest(b"other")  # covered: the base changes
    with pytest.raises(VerificationError) as caught:
        verify(headers, None)
    assert caught.value.code is ErrorCode.UNAUTHENTICATED
