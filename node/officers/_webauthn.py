"""The WebAuthn ceremonies (W3C Web Authentication Level 2, Level 3 where it is settled)
for officers' security keys, through py_webauthn (PROTOCOL.md §14.5).

py_webauthn checks what the specification asks of a relying party (§7.1 registration,
§7.2 authentication: type, challenge, origin, RP ID hash, user presence, the signature).
This module reads the browser's JSON strictly before it does, as everything the node
reads: a size limit, no repeated member name (step J1, for the credential and for its
clientDataJSON, which the browser signs and the library reads with ``json.loads``),
the base64url alphabet only (py_webauthn's decoder skips stray characters), no unknown
member. The signature counter is checked here, after the signature: only a correctly
signed assertion whose counter did not move forward is a sign of a cloned key (§6.1.1).

Policy: attestation ``none`` (the node trusts the officer who registers while logged
in, not a vendor's certificate), non-discoverable credentials (``residentKey``
discouraged: the key keeps nothing, the node holds the credential id), and user
verification ``discouraged``: the key is the second factor after the password, so
touching it (user presence, always required) is enough; no PIN prompt at the desk.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Final, Literal, TypeVar

import msgspec
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AttestationFormat,
    AuthenticationCredential,
    AuthenticatorAssertionResponse,
    AuthenticatorAttestationResponse,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from protocol.codec import decode_as, reject_duplicate_keys
from protocol.errors import MalformedError, TooLargeError

RP_NAME: Final = "relay247"
TIMEOUT_MS: Final = 120_000  # the browser's hint; the node's challenge lives as long
MAX_JSON: Final = 8 * 1024  # a "none" attestation is under 1 KiB; an assertion less
MAX_CREDENTIAL_ID: Final = 1023  # bytes (WebAuthn L3 §7.1 step 21)
ALGORITHMS: Final = [  # what security keys sign with: Ed25519, P-256, RSA
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]
_TRANSPORTS: Final = frozenset(t.value for t in AuthenticatorTransport)
_B64U = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]*\Z", max_length=MAX_JSON)]
_Transport = Annotated[str, msgspec.Meta(pattern=r"^[a-z-]{1,16}\Z")]


@dataclass(frozen=True)
class RelyingParty:
    """Who the node is to the browser: the RP ID (a domain, never an IP address) and the
    one origin the console is served from (``https://``, or ``http://localhost``)."""

    rp_id: str
    origin: str
    name: str = RP_NAME


@dataclass(frozen=True)
class NewKey:
    """A verified registration, ready to store."""

    credential_id: bytes
    public_key: bytes  # COSE_Key (RFC 9052 §7), as the authenticator made it
    sign_count: int
    transports: tuple[str, ...]


class KeyRefused(Exception):  # noqa: N818  # named for what happened: the key was refused
    """A registration or assertion that does not verify (the message says why, for the
    node's log only). ``counter``: the signature was right but the counter went back."""

    def __init__(self, why: str, *, counter: bool = False) -> None:
        super().__init__(why)
        self.counter = counter


class _AttestationJSON(msgspec.Struct, forbid_unknown_fields=True):
    client_data_json: _B64U = msgspec.field(name="clientDataJSON")
    attestation_object: _B64U = msgspec.field(name="attestationObject")
    transports: Annotated[list[_Transport], msgspec.Meta(max_length=8)] = []


class _AssertionJSON(msgspec.Struct, forbid_unknown_fields=True):
    client_data_json: _B64U = msgspec.field(name="clientDataJSON")
    authenticator_data: _B64U = msgspec.field(name="authenticatorData")
    signature: _B64U
    user_handle: _B64U | None = msgspec.field(name="userHandle", default=None)


class _Registration(msgspec.Struct, forbid_unknown_fields=True):
    id: _B64U
    raw_id: _B64U = msgspec.field(name="rawId")
    type: Literal["public-key"]
    response: _AttestationJSON


class _Assertion(msgspec.Struct, forbid_unknown_fields=True):
    id: _B64U
    raw_id: _B64U = msgspec.field(name="rawId")
    type: Literal["public-key"]
    response: _AssertionJSON


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 4648 §5), as WebAuthn's JSON forms write bytes."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """Strict base64url: the alphabet only, no padding.

    Raises:
        KeyRefused: anything else.
    """
    if not text.isascii() or any(c not in _ALPHABET for c in text) or len(text) % 4 == 1:
        raise KeyRefused("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise KeyRefused("not base64url") from None


_ALPHABET: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


_Answer = TypeVar("_Answer", _Registration, _Assertion)


def _read(kind: type[_Answer], text: str) -> _Answer:
    try:
        parsed = decode_as(kind, text.encode("utf-8"), "credential", limit=MAX_JSON)
    except (MalformedError, TooLargeError) as exc:
        raise KeyRefused(f"credential JSON: {exc.message}") from None
    except UnicodeEncodeError:
        raise KeyRefused("credential JSON: not UTF-8") from None
    try:
        reject_duplicate_keys(unb64url(parsed.response.client_data_json), "clientDataJSON")
    except MalformedError as exc:
        raise KeyRefused(exc.message) from None
    return parsed


def registration_options(
    rp: RelyingParty,
    *,
    user_handle: bytes,
    login: str,
    display_name: str,
    exclude: Sequence[tuple[bytes, Sequence[str]]],
    challenge: bytes,
) -> str:
    """The JSON the browser turns into ``navigator.credentials.create()`` options;
    ``exclude`` (the officer's keys) stops one key being registered twice."""
    options = generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=rp.name,
        user_name=login,
        user_id=user_handle,
        user_display_name=display_name,
        challenge=challenge,
        timeout=TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.DISCOURAGED,
            user_verification=UserVerificationRequirement.DISCOURAGED,
        ),
        exclude_credentials=[_descriptor(c, t) for c, t in exclude],
        supported_pub_key_algs=ALGORITHMS,
    )
    return options_to_json(options)


def authentication_options(
    rp: RelyingParty, *, allow: Sequence[tuple[bytes, Sequence[str]]], challenge: bytes
) -> str:
    """The JSON for ``navigator.credentials.get()``: the officer's keys, by credential id."""
    options = generate_authentication_options(
        rp_id=rp.rp_id,
        challenge=challenge,
        timeout=TIMEOUT_MS,
        allow_credentials=[_descriptor(c, t) for c, t in allow],
        user_verification=UserVerificationRequirement.DISCOURAGED,
    )
    return options_to_json(options)


def _descriptor(credential_id: bytes, transports: Sequence[str]) -> PublicKeyCredentialDescriptor:
    known = [AuthenticatorTransport(t) for t in transports if t in _TRANSPORTS]
    return PublicKeyCredentialDescriptor(id=credential_id, transports=known or None)


def verify_registration(rp: RelyingParty, text: str, *, challenge: bytes) -> NewKey:
    """Check ``navigator.credentials.create()``'s answer (WebAuthn §7.1).

    Raises:
        KeyRefused: malformed, another challenge, origin or RP ID, no user presence, an
            algorithm not in :data:`ALGORITHMS`, an attestation other than ``none``.
    """
    parsed = _read(_Registration, text)
    transports = tuple(t for t in parsed.response.transports if t in _TRANSPORTS)
    credential = RegistrationCredential(
        id=parsed.id,
        raw_id=unb64url(parsed.raw_id),
        response=AuthenticatorAttestationResponse(
            client_data_json=unb64url(parsed.response.client_data_json),
            attestation_object=unb64url(parsed.response.attestation_object),
            transports=[AuthenticatorTransport(t) for t in transports],
        ),
    )
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=rp.origin,
            require_user_presence=True,
            require_user_verification=False,
            supported_pub_key_algs=ALGORITHMS,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise KeyRefused(f"registration: {exc}") from None
    if verified.fmt != AttestationFormat.NONE:  # asked for none; a browser may pass one on
        raise KeyRefused(f"registration: attestation {verified.fmt!s} not accepted")
    if not 0 < len(verified.credential_id) <= MAX_CREDENTIAL_ID:
        raise KeyRefused("registration: credential id length")
    return NewKey(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=transports,
    )


def assertion_id(text: str) -> bytes:
    """The credential id an assertion names (to find its stored key).

    Raises:
        KeyRefused: the JSON is malformed.
    """
    parsed = _read(_Assertion, text)
    return unb64url(parsed.raw_id)


def verify_assertion(
    rp: RelyingParty, text: str, *, challenge: bytes, public_key: bytes, sign_count: int
) -> int:
    """Check ``navigator.credentials.get()``'s answer against one stored key (§7.2).

    Returns:
        The new signature counter, to store.

    Raises:
        KeyRefused: malformed, another challenge, origin or RP ID, no user presence, a
            bad signature; ``counter`` set when only the counter is wrong (it did not
            grow past ``sign_count``, and the key or the node counts: §6.1.1).
    """
    parsed = _read(_Assertion, text)
    r = parsed.response
    credential = AuthenticationCredential(
        id=parsed.id,
        raw_id=unb64url(parsed.raw_id),
        response=AuthenticatorAssertionResponse(
            client_data_json=unb64url(r.client_data_json),
            authenticator_data=unb64url(r.authenticator_data),
            signature=unb64url(r.signature),
            user_handle=None if r.user_handle is None else unb64url(r.user_handle),
        ),
    )
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=rp.origin,
            credential_public_key=public_key,
            credential_current_sign_count=0,  # the counter is checked below, once signed
            require_user_verification=False,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise KeyRefused(f"assertion: {exc}") from None
    new = verified.new_sign_count
    if (new > 0 or sign_count > 0) and new <= sign_count:
        raise KeyRefused(f"assertion: counter {new} not above {sign_count}", counter=True)
    return new
