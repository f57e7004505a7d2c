"""A body the recipient refuses (E13) leaves none of its text in the recipient's log.

msgspec quotes the offending value (``Invalid enum value 'x'``) in its message, and that
message went into the node's "envelope rejected" warning: a sender's plaintext,
decrypted by the recipient, written to its log (issue 11: no plaintext in logs). The
message now names the field's path only.
"""

from __future__ import annotations

import os
from pathlib import Path

from schemas.envelope import ReceiptStatus
from schemas.errors import ErrorCode
from schemas.messages import encode_body
from tests.integration._node_services import peers
from tests.integration.test_input_body_binding import _receipts, _request, _send
from tests.support.hostile import watch_logs
from tests.support.network import make_network
from tests.support.relay import running_relay


async def test_refused_body_text_is_not_logged(tmp_path: Path) -> None:
    secret = f"PLAINTEXT-{os.urandom(8).hex()}"
    net = make_network()
    with watch_logs() as logs:
        async with (
            running_relay(tmp_path / "relay", net) as relay,
            peers(tmp_path, net, relay, members=("US",)),
        ):
            bad_value = _request("FR", "US")
            raw = encode_body(bad_value)
            spoiled = raw.replace(b'"status":"new"', f'"status":"{secret}"'.encode(), 1)
            assert spoiled != raw
            await _send(relay, net, bad_value, spoiled, 1)
            bad_tag = _request("FR", "US")
            raw = encode_body(bad_tag)
            spoiled = raw.replace(b'"kind":"preservation_request"', f'"kind":"{secret}"'.encode())
            assert spoiled != raw
            await _send(relay, net, bad_tag, spoiled, 2)
            receipts = await _receipts(relay, net, 2)
            for got in receipts:
                assert (got.status, got.reason) == (ReceiptStatus.REJECTED, ErrorCode.MALFORMED)
    rejected = [e for e in logs.events if e.get("event") == "envelope rejected"]
    assert len(rejected) == 2, rejected
    assert "$.status" in repr(rejected)  # the path still says which field
    assert "$.kind" in repr(rejected)
    leaked = [e for e in logs.events if secret in repr(e)]
    assert not leaked, leaked
