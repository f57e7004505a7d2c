"""RFC 9530 Content-Digest with SHA-256 (and SHA-512 when a sender adds it)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from protocol._sfv import Item, parse_dictionary
from protocol.errors import MalformedError, VerificationError
from schemas.errors import ErrorCode


def content_digest(body: bytes) -> str:
    """Return the RFC 9530 ``Content-Digest`` value ``sha-256=:<base64>:`` for ``body``."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii") + ":"


def verify_content_digest(
    header_value: str, body: bytes, *, body_sha256: bytes | None = None
) -> None:
    """Check a ``Content-Digest`` field value (RFC 9530 §2) against the body.

    A ``sha-256`` member is required; a ``sha-512`` member, if present, must match too;
    other algorithms are ignored.

    Args:
        header_value: the field value, an RFC 8941 Dictionary.
        body: the exact body bytes received.
        body_sha256: ``body``'s SHA-256, when the caller computed it already (a 4 MiB
            blob chunk is hashed in a worker thread, off the relay's event loop).

    Raises:
        MalformedError: not a Dictionary, no ``sha-256`` member, or a member that is not
            a byte sequence of the algorithm's digest length.
        VerificationError: a digest does not match (code ``DIGEST_MISMATCH``).
    """
    members = parse_dictionary(header_value)
    if "sha-256" not in members:
        raise MalformedError("Content-Digest needs a sha-256 member", detail=header_value[:80])
    for name, algorithm in (("sha-256", hashlib.sha256), ("sha-512", hashlib.sha512)):
        member = members.get(name)
        if member is None:
            continue
        if name == "sha-256" and body_sha256 is not None:
            expected = body_sha256
        else:
            expected = algorithm(body).digest()
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            raise MalformedError("Content-Digest member must be a byte sequence", detail=name)
        if len(member.value) != len(expected):
            raise MalformedError("Content-Digest member has the wrong length", detail=name)
        if not hmac.compare_digest(member.value, expected):
            raise VerificationError(
                "Content-Digest does not match the body",
                detail=name,
                code=ErrorCode.DIGEST_MISMATCH,
            )
