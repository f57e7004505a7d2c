"""A member's signed reply re-wrapped in a new envelope is taken once (PROTOCOL.md §22.4 M7).

Anyone who saw a member's reply (a mail server on the way) can send its encrypted part
again with new outer headers: the e-mail's bytes differ, the signed entity does not.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY

import msgspec
import pytest

from node.email_bridge import NodeOpenPgpKey, Reply, accept, armored_payload
from node.storage import Direction, NodeStore
from schemas.examples import EXAMPLES
from tests.integration.test_email_bridge import _member, _reply, gpg, mail
from tests.integration.test_email_bridge_queue import Clock, Sink, _bridge, store
from tests.support.bodies import addressed
from tests.support.mailserver import GpgMember, MailServer, mail_available
from tests.support.network import make_network

pytestmark = pytest.mark.skipif(mail_available() is not None, reason=str(mail_available()))
__all__ = ["gpg", "mail", "store"]  # the fixtures this module uses


def _rewrapped(raw: bytes) -> bytes:
    """The same armored payload in a new outer e-mail, as a replaying server makes it."""
    outer = EmailMessage()
    outer["Received"] = "from mx.evil.test by mx.node.test; Fri, 4 Dec 2026 23:00:00 +0000"
    outer["Message-ID"] = "<replay-1@evil.test>"
    outer["From"] = "mt-247@police.test"
    outer["To"] = "fr-247@node.test"
    outer["Subject"] = "Re: relay247"
    outer.set_type("multipart/encrypted")
    outer.set_param("protocol", "application/pgp-encrypted")
    control = EmailMessage()
    control.set_content(b"Version: 1\r\n", maintype="application", subtype="pgp-encrypted",
                        cte="7bit")  # fmt: skip
    payload = EmailMessage()
    payload.set_content(armored_payload(raw), maintype="application", subtype="octet-stream",
                        cte="7bit")  # fmt: skip
    outer.attach(control)
    outer.attach(payload)
    return outer.as_bytes(policy=SMTP_POLICY)


async def test_a_replayed_reply_in_a_new_envelope_is_taken_before(
    store: NodeStore, mail: MailServer, gpg: GpgMember
) -> None:
    net = make_network(("FR", "MT"))
    member = _member("MT", gpg)
    bridge = _bridge(mail, store, Sink(), Clock(), net.members["FR"].signing,
                     mail.smtp_port)  # fmt: skip
    key: NodeOpenPgpKey = bridge.setup.key
    gpg.import_cert(key.armored_cert())
    answer = addressed(EXAMPLES["preserved"], "MT", "FR")
    inner = EmailMessage()
    inner.set_content(f"Preserved.\n\nrelay247-case: {answer.case_id}\n", charset="utf-8")
    inner.add_attachment(msgspec.json.encode(answer), maintype="application",
                         subtype="json", filename="relay247-body.json")  # fmt: skip
    genuine = _reply(gpg, key, inner)
    replay = _rewrapped(genuine).replace(b"mt-247@police.test", gpg.address.encode(), 1)
    assert replay != genuine

    def check(raw: bytes) -> Reply:
        return accept(raw, members=[member], node_member="FR", node_key=key,
                      case_peer={answer.case_id: "MT"}.get)  # fmt: skip

    first, again = check(genuine), check(replay)
    await bridge.record_reply(first)
    await bridge.record_reply(again)
    taken = await store.messages(case_id=answer.case_id, direction=Direction.IN)
    assert [m.envelope for m in taken] == [genuine]  # the replay was "taken before"
    assert first.sha256 != again.sha256  # other bytes as fetched ...
    assert first.signed_sha256 == again.signed_sha256  # ... the same signed entity
    assert taken[0].msg_id == first.signed_sha256[:32]
