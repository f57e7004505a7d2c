"""The console's side of WebAuthn security keys (PROTOCOL.md §14.5): who the console is
to the browser (RP ID and origin), and the challenges of ceremonies in progress.

A challenge is 32 random bytes, bound to the browser's session and to what it was made
for (registering a key under a name, or logging in as a login name), kept two minutes
(the options' ``timeout``), and taken out at its first use, whatever the outcome: an
answer signed over it is accepted at most once. Challenges live in the serving process's
memory, bounded like the sessions; a restart only makes an officer press the button again.

The RP ID must be a domain (WebAuthn §5.1.4.1 refuses IP addresses), and the origin a
secure context (https, or http://localhost, which browsers treat as secure). On a
loopback listener both default to ``localhost``; elsewhere ``[console] rp_id`` and
``origin`` name the office's host name and https origin. Without a usable pair the
console still serves, and its pages say that security keys are not set up.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

from aiohttp import web

from node.officers import RelyingParty
from node.officers._webauthn import TIMEOUT_MS
from protocol.errors import ConfigError

LIFETIME: Final = timedelta(milliseconds=TIMEOUT_MS)
MAX_PENDING: Final = 10_000  # as many as sessions: an anonymous page must not grow memory
CHALLENGE_BYTES: Final = 32
_LABEL: Final = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN: Final = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*", re.ASCII)


@dataclass(frozen=True)
class Pending:
    """A ceremony waiting for the browser's answer."""

    challenge: bytes
    subject: str  # the key's name (register) or the login name (login)
    expires: datetime


class Ceremonies:
    """Challenges by (session id, purpose): at most one of each per session."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._live: dict[tuple[str, str], Pending] = {}

    def start(self, session_id: str, purpose: str, subject: str) -> bytes:
        """A new challenge for ``purpose`` in this session (replacing an older one)."""
        now = self._clock()
        if len(self._live) >= MAX_PENDING:
            for k in [k for k, p in self._live.items() if p.expires <= now]:
                del self._live[k]
        while len(self._live) >= MAX_PENDING:  # still full: drop the oldest
            del self._live[next(iter(self._live))]
        challenge = secrets.token_bytes(CHALLENGE_BYTES)
        self._live.pop((session_id, purpose), None)  # re-insert: newest last
        self._live[(session_id, purpose)] = Pending(challenge, subject, now + LIFETIME)
        return challenge

    def take(self, session_id: str, purpose: str, subject: str) -> bytes | None:
        """The challenge once, if it is this session's, for this subject, and not expired."""
        pending = self._live.pop((session_id, purpose), None)
        if pending is None or self._clock() >= pending.expires or pending.subject != subject:
            return None
        return pending.challenge


class KeysConfig:
    """The relying party once the console knows its port (set by ``Console.start``)."""

    def __init__(self, host: str, rp_id: str, origin: str, *, tls: bool) -> None:
        self.host, self.rp_id, self.origin, self.tls = host, rp_id, origin, tls
        self.port: int | None = None
        #: derives the imitation credential ids for logins without keys (§14.5)
        self.decoy_secret = secrets.token_bytes(32)

    def relying_party(self) -> RelyingParty | None:
        """The RP ID and origin in force, or None: security keys are not available."""
        if self.rp_id:
            rp_id = self.rp_id
        elif self.origin:  # checked at start: its host is a domain
            rp_id = urlsplit(self.origin).hostname or ""
        else:
            rp_id = _default_rp_id(self.host, tls=self.tls)
        if not rp_id:
            return None
        if self.origin:
            return RelyingParty(rp_id, self.origin)
        if self.port is None:
            return None
        scheme = "https" if self.tls else "http"
        default = 443 if self.tls else 80
        port = "" if self.port == default else f":{self.port}"
        return RelyingParty(rp_id, f"{scheme}://{rp_id}{port}")


def _default_rp_id(host: str, *, tls: bool) -> str:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: itself, once served over TLS (a secure context)
        lowered = host.lower()
        return lowered if lowered == "localhost" or (tls and _DOMAIN.fullmatch(lowered)) else ""
    return "localhost" if loopback else ""


def check(rp_id: str, origin: str) -> None:
    """Refuse a configured RP ID or origin that no browser would accept.

    Raises:
        ConfigError: an RP ID that is not a lower-case domain (or is an IP address); an
            origin that is not ``https://host[:port]`` (``http`` only for localhost), or
            whose host is neither the RP ID nor under it.
    """
    if rp_id and (not _DOMAIN.fullmatch(rp_id) or _is_ip(rp_id)):
        raise ConfigError(f"console: rp_id {rp_id!r} must be a lower-case domain name")
    if not origin:
        return
    parts = urlsplit(origin)
    try:
        port = parts.port
    except ValueError:
        port = -1
    host = parts.hostname or ""
    if (
        origin != origin.strip()
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username is not None
        or port == -1
        or parts.netloc.lower() != (host + ("" if port is None else f":{port}"))
        or not (parts.scheme == "https" or (parts.scheme == "http" and host == "localhost"))
    ):
        raise ConfigError(
            f"console: origin {origin!r} must be https://host[:port] (http only for localhost)"
        )
    if not rp_id and (not _DOMAIN.fullmatch(host) or _is_ip(host)):
        raise ConfigError(f"console: origin {origin!r} needs a domain name, or rp_id")
    if rp_id and host != rp_id and not host.endswith("." + rp_id):
        raise ConfigError(f"console: origin {origin!r} is not on rp_id {rp_id!r}")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return bool(re.fullmatch(r"[0-9.]+", text))  # 10.1 is an IPv4 address to a URL parser
    return True


CEREMONIES: Final = web.AppKey("console_key_ceremonies", Ceremonies)
KEYS: Final = web.AppKey("console_keys_config", KeysConfig)
