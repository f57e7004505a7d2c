"""Identical link requests at once store one link (PROTOCOL.md §17, §8.6).

The duplicate check and the insert were two awaits: eight identical
``POST /v1/cases/{a}/links`` at once often all got 201 and stored eight active links.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from protocol.codec import decode_as
from schemas._links import LinkType
from schemas.errors import ErrorBody, ErrorCode
from tests.integration.test_case_links import two_cases
from tests.integration.test_node_api import raw


async def test_identical_link_requests_at_once_store_one_link(tmp_path: Path) -> None:
    async with two_cases(tmp_path) as (fr, _, a, b):
        for kind in LinkType:
            data = json.dumps({"type": kind.value, "case_id": b.case_id}).encode()
            answers = await asyncio.gather(
                *(raw(fr, "POST", f"/v1/cases/{a.case_id}/links", body=data) for _ in range(8))
            )
            statuses = sorted(status for status, _ in answers)
            assert statuses == [201] + [409] * 7, (kind, statuses)
            for status, answer in answers:
                if status == 409:
                    err = decode_as(ErrorBody, answer, "error", limit=len(answer))
                    assert err.code is ErrorCode.CONFLICT
            shown = [x for x in (await fr.api.case(a.case_id)).links if x.type is kind]
            assert len(shown) == 1, kind
        stored = await fr.services.cases.links.of_case(a.case_id, removed=True)
        assert len(stored) == len(LinkType)
