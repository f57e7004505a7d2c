"""RFC 9421 HTTP Message Signatures for node -> relay requests, with RFC 9530 Content-Digest.

Sans-I/O: every function takes the method, the absolute target URI, a headers mapping,
the body bytes, keys and ``now`` (Unix seconds). The relay's profile (docs/PROTOCOL.md,
"HTTP request signatures") is ``ed25519`` over ``@method``, ``@target-uri``,
``content-digest`` and ``content-type``, with ``created``, ``expires``, ``keyid``,
``nonce`` and ``tag="relay247"``, under the label ``sig1``. :func:`verify_signature`
checks any ``ed25519`` signature generically (it reproduces RFC 9421 Appendix B.2.6);
:func:`verify_request` adds the profile checks on top. Replay tracking is the caller's
job, with :class:`NonceCache`.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from protocol import keys
from protocol._httpsig_base import (
    Headers,
    base_from_fields,
    build_signature_base,
    collect_fields,
    signature_params_value,
)
from protocol._httpsig_digest import content_digest, verify_content_digest
from protocol._httpsig_nonce import NonceCache
from protocol._httpsig_parse import (
    ALG,
    ParsedSignature,
    int_param,
    parse_label,
    signature_fields,
    str_param,
)
from protocol._sfv import BareItem
from protocol.errors import ConfigError, MalformedError, TimeWindowError, VerificationError
from schemas.errors import ErrorCode

#: seconds ``created`` may lie in the future (PROTOCOL.md §8.5 "max_skew"); the relay
#: passes its ``limits.max_clock_skew``, whose default is this value and E6's skew
MAX_SKEW: Final = 60
#: the largest accepted ``expires - created``, seconds (PROTOCOL.md §8.5 "max_lifetime")
MAX_LIFETIME: Final = 300

__all__ = [
    "ALG",
    "COMPONENTS_WITHOUT_BODY",
    "COMPONENTS_WITH_BODY",
    "LABEL",
    "TAG",
    "Headers",
    "KeyResolver",
    "NonceCache",
    "VerifiedRequest",
    "VerifiedSignature",
    "content_digest",
    "sign_request",
    "signature_base",
    "verify_content_digest",
    "verify_request",
    "verify_signature",
]

LABEL: Final = "sig1"
TAG: Final = "relay247"
COMPONENTS_WITH_BODY: Final = ("@method", "@target-uri", "content-digest", "content-type")
COMPONENTS_WITHOUT_BODY: Final = ("@method", "@target-uri")
MAX_NONCE_LENGTH: Final = 128  # bounds NonceCache memory per entry

KeyResolver = Callable[[str], bytes | None]
"""keyid -> 32-byte Ed25519 public key, or ``None`` if the key is unknown or revoked."""

# Unknown key and bad signature share this public text (STYLE.md rule 6).
_NOT_VERIFIED: Final = "request signature does not verify"


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """A signature that verified, with what it covers (no time or profile checks)."""

    label: str
    components: tuple[str, ...]
    params: Mapping[str, int | str]
    keyid: str
    signature_base: bytes


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    """A request that passed every step of :func:`verify_request`."""

    keyid: str
    nonce: str
    created: int
    expires: int


def signature_base(
    method: str,
    target_uri: str,
    headers: Headers,
    components: Sequence[str],
    params: Mapping[str, BareItem],
) -> bytes:
    """Build the RFC 9421 §2.5 signature base.

    One line per covered component, ``"<name>": <value>``, then the
    ``"@signature-params"`` line; lines joined by LF, no trailing newline. Derived
    components follow §2.2, header fields §2.1 (lowercase names, trimmed values,
    repeated lines joined with ", ").

    Args:
        method: the request method, exactly as sent (case-sensitive).
        target_uri: the absolute ``http(s)`` target URI with a non-empty path.
        headers: the request's header fields.
        components: covered component names (lowercase; no component parameters).
        params: the signature parameters, in the order they are serialized.

    Returns:
        The ASCII signature base.

    Raises:
        MalformedError: a bad method or URI, a missing or repeated component, an
            unsupported derived component, or a value that cannot go in the base.
    """
    return build_signature_base(method, target_uri, headers, components, params)


def sign_request(
    method: str,
    target_uri: str,
    headers: Headers,
    body: bytes,
    *,
    key: keys.SigningKey,
    keyid: str,
    now: int,
    lifetime: int = 60,
    nonce: str | None = None,
    include_alg: bool = False,
) -> dict[str, str]:
    """Sign a request under the relay247 profile.

    Args:
        method: the request method.
        target_uri: the absolute URI the request is sent to.
        headers: the request's headers; must include ``Content-Type`` when ``body``
            is non-empty. Existing Content-Digest/Signature fields are ignored.
        body: the exact body bytes (``b""`` for none).
        key: the node's transport key.
        keyid: the key identifier the relay resolves.
        now: the signing time (Unix seconds), signed as ``created``.
        lifetime: seconds until ``expires``.
        nonce: a fresh nonce; 16 random bytes in base64url when ``None``.
        include_alg: also sign ``alg="ed25519"`` (verifiers accept both forms).

    Returns:
        The headers to set: ``Content-Digest`` (only with a body), ``Signature-Input``
        and ``Signature``; they replace any fields of the same names.

    Raises:
        ConfigError: ``lifetime`` is not positive.
        MalformedError: a body without Content-Type, or a method, URI, keyid or nonce
            that cannot be encoded.
    """
    if lifetime < 1:
        raise ConfigError("signature lifetime must be positive", detail=str(lifetime))
    nonce = secrets.token_urlsafe(16) if nonce is None else nonce
    if not keyid or not 0 < len(nonce) <= MAX_NONCE_LENGTH:
        raise MalformedError("keyid and nonce must be non-empty, nonce at most 128 chars")
    fields = collect_fields(headers)
    for name in ("content-digest", "signature-input", "signature"):
        fields.pop(name, None)
    out: dict[str, str] = {}
    if body:
        if "content-type" not in fields:
            raise MalformedError("a request with a body needs Content-Type to be signed")
        fields["content-digest"] = out["Content-Digest"] = content_digest(body)
    components = COMPONENTS_WITH_BODY if body else COMPONENTS_WITHOUT_BODY
    params: dict[str, BareItem] = {
        "created": now,
        "expires": now + lifetime,
        "keyid": keyid,
        "nonce": nonce,
        "tag": TAG,
    }
    if include_alg:
        params["alg"] = ALG
    base = base_from_fields(method, target_uri, fields, components, params)
    signature = base64.b64encode(key.sign_raw(base)).decode("ascii")
    out["Signature-Input"] = f"{LABEL}={signature_params_value(components, params)}"
    out["Signature"] = f"{LABEL}=:{signature}:"
    return out


def _check_signature(parsed: ParsedSignature, base: bytes, resolve_key: KeyResolver) -> None:
    keyid = str(parsed.params["keyid"])
    public = resolve_key(keyid)
    if public is None:
        raise VerificationError(_NOT_VERIFIED, detail=f"unknown keyid {keyid!r}")
    try:
        keys.verify_raw(public, base, parsed.signature)
    except VerificationError as exc:
        raise VerificationError(_NOT_VERIFIED, detail=f"keyid {keyid!r}: {exc.detail}") from None


def verify_signature(
    method: str,
    target_uri: str,
    headers: Headers,
    label: str,
    resolve_key: KeyResolver,
) -> VerifiedSignature:
    """Verify one ``ed25519`` signature generically (RFC 9421 §3.2), with no profile rules.

    Does not check ``created``/``expires``, the tag, the covered set or the body; the
    caller must. ``alg`` may be absent or ``"ed25519"``; ``keyid`` is required.

    Args:
        method: the request method.
        target_uri: the absolute target URI as the verifier knows it.
        headers: the received header fields.
        label: the Signature-Input/Signature dictionary key to verify.
        resolve_key: keyid -> public key or ``None``.

    Returns:
        The verified signature's label, components, parameters, keyid and base.

    Raises:
        VerificationError: the fields are absent, the key is unknown or the signature
            is bad (the last two with one public message, code ``UNAUTHENTICATED``).
        MalformedError: the fields or the covered components are malformed or unsupported.
    """
    fields = collect_fields(headers)
    inputs, sigs = signature_fields(fields)
    parsed = parse_label(inputs, sigs, label)
    base = base_from_fields(method, target_uri, fields, parsed.components, parsed.params)
    _check_signature(parsed, base, resolve_key)
    keyid = str(parsed.params["keyid"])
    return VerifiedSignature(label, parsed.components, dict(parsed.params), keyid, base)


def verify_request(
    method: str,
    target_uri: str,
    headers: Headers,
    body: bytes | None,
    *,
    resolve_key: KeyResolver,
    now: int,
    max_skew: int = MAX_SKEW,
    max_lifetime: int = MAX_LIFETIME,
    body_sha256: bytes | None = None,
) -> VerifiedRequest:
    """Verify a node's request under the relay247 profile (docs: steps 1 to 7).

    Args:
        method: the request method as received.
        target_uri: the absolute URI the relay serves this request at, built from its
            configured public origin and the received path and query (never from Host).
        headers: the received header fields.
        body: the exact body bytes received; ``None`` for a body not read yet (steps 1
            to 6 only, on the headers: the signature must then cover ``content-digest``,
            and step 7 is for the caller to run again once the body is read).
        resolve_key: keyid -> transport public key, ``None`` if unknown or revoked.
        now: the current time (Unix seconds).
        max_skew: seconds ``created`` may lie in the future.
        max_lifetime: the largest accepted ``expires - created``.
        body_sha256: ``body``'s SHA-256 when the caller computed it already (step 7
            compares the signed Content-Digest with it instead of hashing ``body``).

    Returns:
        The keyid, nonce, created and expires; feed them to :class:`NonceCache`.

    Raises:
        VerificationError: unsigned request, unknown key or bad signature (one public
            message, code ``UNAUTHENTICATED``); body digest mismatch (``DIGEST_MISMATCH``).
        MalformedError: malformed fields or a signature outside the profile.
        TimeWindowError: expired or too long-lived (``EXPIRED``), from the future
            (``CLOCK_SKEW``).
    """
    fields = collect_fields(headers)
    # (1) Exactly one signature, labelled sig1, in both Signature-Input and Signature.
    inputs, sigs = signature_fields(fields)
    if list(inputs) != [LABEL] or list(sigs) != [LABEL]:
        raise MalformedError(
            "expected exactly one signature, labelled sig1",
            detail=f"Signature-Input {list(inputs)!r}, Signature {list(sigs)!r}",
        )
    parsed = parse_label(inputs, sigs, LABEL)  # also: alg absent or ed25519, keyid present
    # (2) The profile's parameters, with their types.
    created = int_param(parsed.params, "created")
    expires = int_param(parsed.params, "expires")
    keyid = str_param(parsed.params, "keyid")
    nonce = str_param(parsed.params, "nonce")
    tag = str_param(parsed.params, "tag")
    if tag != TAG:
        raise MalformedError("signature tag must be relay247", detail=repr(tag))
    if not 0 < len(nonce) <= MAX_NONCE_LENGTH:
        raise MalformedError("signature nonce must be 1 to 128 characters")
    if expires <= created:
        raise MalformedError("signature expires must be after created")
    # (3) The required components are covered; the base is built now, before any key
    # lookup, so a malformed request fails the same way whether or not the key exists.
    required = COMPONENTS_WITHOUT_BODY if body == b"" else COMPONENTS_WITH_BODY
    missing = [c for c in required if c not in parsed.components]
    if missing:
        raise MalformedError(
            "signature does not cover the required components", detail=f"{missing}"
        )
    base = base_from_fields(method, target_uri, fields, parsed.components, parsed.params)
    # (4) Time window.
    if created > now + max_skew:
        raise TimeWindowError(
            "request signature is from the future",
            detail=f"created={created} now={now}",
            code=ErrorCode.CLOCK_SKEW,
        )
    if expires <= now:
        raise TimeWindowError(
            "request signature has expired", detail=f"expires={expires} now={now}"
        )
    if expires - created > max_lifetime:
        raise TimeWindowError(
            "request signature lifetime is too long", detail=f"{expires - created}s"
        )
    # (5) Resolve the key by keyid and (6) verify the signature over the base.
    _check_signature(parsed, base, resolve_key)
    # (7) The covered Content-Digest matches the body.
    if body is not None and "content-digest" in parsed.components:
        verify_content_digest(fields["content-digest"], body, body_sha256=body_sha256)
    return VerifiedRequest(keyid=keyid, nonce=nonce, created=created, expires=expires)
