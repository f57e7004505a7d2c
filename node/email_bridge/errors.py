"""The bridge's one refusal, with a stable reason code (PROTOCOL.md §22.4)."""

from __future__ import annotations

from typing import Final

#: Every reason an inbound e-mail (or a certificate) is refused; stable, documented.
REASONS: Final = frozenset(
    {
        "too_large",
        "bad_header",
        "unknown_sender",
        "not_pgp_mime",
        "mime_too_complex",
        "decrypt_failed",
        "unsigned",
        "bad_signature",
        "unsupported_structure",
        "no_case",
        "other_members_case",
        "body_malformed",
        "bad_certificate",
        "internal_error",
    }
)


class BridgeRefusedError(Exception):
    """An e-mail or certificate the bridge refuses; ``reason`` is one of :data:`REASONS`.

    ``detail`` is private (logs only); it never contains plaintext.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        assert reason in REASONS, reason
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
