"""Retention of a case exchanged by e-mail (PROTOCOL.md §19, §22): the bodies and the
e-mails' exact bytes go (an inbound e-mail opens with the node's own OpenPGP key, so it
holds the member's plaintext), each leaving a signed tombstone whose ciphertext hash is
the e-mail's, the one its logged record states; the case's bundle still verifies."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.email_bridge import armored_payload
from node.storage import Direction
from protocol.evidence import verify_bundle
from schemas.examples import EXAMPLES
from tests.integration._retention_support import DAYS, found_in, moved
from tests.integration.test_email_bridge import _reply, gpg, mail
from tests.integration.test_email_bridge_network import _logged, _preserved, _until, bridged
from tests.support.bodies import addressed
from tests.support.mailserver import GpgMember, MailServer, mail_available
from tests.support.relay import signed

pytestmark = pytest.mark.skipif(mail_available() is not None, reason=str(mail_available()))
__all__ = ["gpg", "mail"]  # the fixtures this module uses


async def test_a_closed_email_case_loses_its_bodies_and_emails_not_its_proofs(
    tmp_path: Path, mail: MailServer, gpg: GpgMember
) -> None:
    async with bridged(tmp_path, mail, gpg) as net:
        fr = net.peers["FR"]
        request = addressed(EXAMPLES["preservation_request"], "FR", "MT")
        case_id = request.case_id
        sent = await fr.api.send("MT", request)
        mail.deliver(_reply(gpg, net.key, _preserved(case_id, sent.msg_id, kind="refusal")))

        async def refused() -> bool:
            return (await fr.api.case(case_id)).summary.state == "refused"

        await _until(refused)
        entries = await _logged(net, case_id, 2)
        stored = await fr.node.store.messages(case_id=case_id)
        assert [m.direction for m in stored] == [Direction.OUT, Direction.IN]
        # Needles: a slice of each e-mail's OpenPGP message, as node.db holds it.
        needles = [armored_payload(m.envelope)[200:264] for m in stored]
        assert found_in(fr.data, needles)  # the scan finds them while they are there
        moved(fr.services.retention, DAYS + 10)
        done = await fr.api.retention_pass(dry_run=False)
        assert (done.cases, done.bodies) == (1, 2)
        assert found_in(fr.data, needles) == []
        after = await fr.node.store.messages(case_id=case_id)
        assert [(m.body, m.envelope) for m in after] == [(None, b""), (None, b"")]
        view = await fr.api.retention(case_id)
        assert {(r.msg_id, r.direction) for r in view.removed} == {
            (m.msg_id, m.direction.value) for m in stored
        }
        # The case keeps its state and timeline, and its bundle still proves both e-mails.
        await fr.services.cases.refresh(case_id, full=True)
        detail = await fr.api.case(case_id)
        assert detail.summary.state == "refused"
        assert [t.kind for t in detail.timeline] == ["preservation_request", "refusal"]
        await signed(net.relay)
        bundle = await fr.api.export_case(case_id)
        report = await asyncio.to_thread(
            verify_bundle, bundle, trust_root=net.root, now=datetime.now(UTC),
            log_key=net.relay.state.keys.log_key,
        )  # fmt: skip
        assert [e.sha256 for e in report.emails] == [e.sha256 for e in entries]
