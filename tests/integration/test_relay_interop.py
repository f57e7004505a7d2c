"""A third-party RFC 9421 client (PyPI ``http-message-signatures``) talks to the real relay.

The requests are signed by that package alone, with an enrolled member's transport key
(keyid = the key's fingerprint, tag "relay247"), and sent with aiohttp: the relay must
accept a submit (202) and a mailbox pull (200) signed that way (PROTOCOL.md §8.2).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

from protocol.keys import SigningKey
from schemas.relay_api import MailboxPage, SubmitResult
from tests.support.relay import RunningRelay, envelope, running_relay


@dataclass
class _Request:
    # The package signs any object with method, url and a mutable headers mapping.
    method: str
    url: str
    headers: dict[str, str]


def _their_signature(key: SigningKey, request: _Request, body: bytes | None) -> None:
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(
            public_keys={},
            private_keys={key.fingerprint: Ed25519PrivateKey.from_private_bytes(key.seed)},
        ),
    )
    now = datetime.now(UTC)
    components = ("@method", "@target-uri") + (("content-digest", "content-type") if body else ())
    signer.sign(
        request,
        key_id=key.fingerprint,
        created=now,
        expires=now + timedelta(seconds=60),
        nonce=os.urandom(16).hex(),
        label="sig1",
        tag="relay247",
        covered_component_ids=components,
        body=body,
    )


async def _send(relay: RunningRelay, request: _Request, body: bytes | None) -> tuple[int, bytes]:
    async with relay.session.request(
        request.method, request.url, data=body, headers=request.headers
    ) as r:
        return r.status, await r.read()


async def test_third_party_signed_submit_and_pull(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        data = envelope(relay.net, "FR", "US")
        post = _Request("POST", relay.url + "/v1/envelopes", {"Content-Type": "application/json"})
        _their_signature(relay.net.members["FR"].transport, post, data)
        # The package computed the RFC 9530 digest itself; ours is not involved.
        assert post.headers["Content-Digest"].startswith("sha-256=:")
        status, raw = await _send(relay, post, data)
        assert status == 202, raw
        accepted = msgspec.json.decode(raw, type=SubmitResult)
        assert not accepted.duplicate

        get = _Request("GET", relay.url + "/v1/mailbox?after=0&limit=10", {})
        _their_signature(relay.net.members["US"].transport, get, None)
        status, raw = await _send(relay, get, None)
        assert status == 200, raw
        page = msgspec.json.decode(raw, type=MailboxPage)
        assert [(m.envelope, m.leaf_index) for m in page.messages] == [(data, accepted.leaf_index)]


async def test_third_party_signature_with_the_wrong_key_is_refused(tmp_path: Path) -> None:
    # The same client, signing US's mailbox pull with FR's key under US's keyid: refused,
    # so the acceptance above is not the relay ignoring the signature.
    async with running_relay(tmp_path) as relay:
        get = _Request("GET", relay.url + "/v1/mailbox", {})
        _their_signature(relay.net.members["FR"].transport, get, None)
        fr_id = relay.net.members["FR"].transport.fingerprint
        us_id = relay.net.members["US"].transport.fingerprint
        get.headers["Signature-Input"] = get.headers["Signature-Input"].replace(fr_id, us_id)
        status, raw = await _send(relay, get, None)
        assert status == 401, raw
