"""One member cannot fill the relay's shared nonce cache and lock the others out (H8).

Every signed request records its nonce until the signature expires, 429 answers
included. A member signing fresh requests as fast as it can (ignoring 429) used to fill
the one cache all members share, after which every member's every request was refused
``rate_limited`` until the entries expired. Each key now has a share of the cache.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from node.messaging.transport import RelayRejectedError
from protocol.httpsig import NonceCache
from schemas.errors import ErrorCode
from tests.support.relay import running_relay

CACHE = 40  # a quarter, 10, is each key's share


async def test_one_member_cannot_fill_the_nonce_cache(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        relay.state.nonces = NonceCache(max_entries=CACHE)
        hostile = relay.client("FR")
        for _ in range(CACHE // 4):
            await hostile.mailbox()
        for _ in range(CACHE - CACHE // 4):  # FR ran out of its own share...
            with pytest.raises(RelayRejectedError) as refused:
                await hostile.mailbox()
            assert refused.value.status == 429
            assert refused.value.code is ErrorCode.RATE_LIMITED
        for member in ("US", "DE"):  # ...and the other members are still served
            page = await relay.client(member).mailbox()
            assert page.next >= 0


def test_share_must_fit_the_cache() -> None:
    from protocol.errors import ConfigError

    with pytest.raises(ConfigError):
        NonceCache(max_entries=10, max_per_key=11)
    with pytest.raises(ConfigError):
        NonceCache(max_entries=10, max_per_key=0)
