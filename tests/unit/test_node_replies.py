"""node/replies.py: the officer's values to body fields, shared by the CLI and the console
(the whole bodies are checked end to end in tests/integration/test_console_actions.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from node import replies

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")


def test_a_date_is_the_end_of_that_day_in_the_node_zone_with_its_own_offset() -> None:
    # 1 March is EST (-05:00), 1 July EDT (-04:00): the offset of that day, not today's
    assert replies.instant("2026-03-01", "--until", NEW_YORK) == "2026-03-01T23:59:59-05:00"
    assert replies.instant("2026-07-01", "--until", NEW_YORK) == "2026-07-01T23:59:59-04:00"
    assert replies.instant("2026-07-01T10:00:00+02:00", "--until", None).endswith("+02:00")


@pytest.mark.parametrize("value", ["2026-07-01T10:00:00", "tomorrow", "2026-13-01", "٢٠٢٦-٠١-٠١"])
def test_a_bad_instant_names_its_option(value: str) -> None:
    with pytest.raises(replies.ReplyError, match="--until"):
        replies.instant(value, "--until", NEW_YORK)


def test_preserved_defaults_to_now_in_the_node_zone() -> None:
    fields = replies.reply_fields("preserved", {"until": "2026-06-01"}, None, NOW, NEW_YORK)
    assert fields == {
        "preserved_until": "2026-06-01T23:59:59-04:00",
        "preserved_at": "2026-03-01T07:00:00-05:00",
    }


def test_an_option_of_another_kind_is_refused() -> None:
    with pytest.raises(replies.ReplyError, match="--ground does not apply to a preserved"):
        replies.reply_fields("preserved", {"ground": "security"}, None, NOW)


def test_taken_in_charge_names_the_officer() -> None:
    opts = {"officer_name": "Duty Officer", "officer_email": "duty@example.org", "note": "x"}
    fields = replies.reply_fields("taken_in_charge", opts, None, NOW)
    assert fields == {"note": "x", "officer": {"name": "Duty Officer", "email": "duty@example.org"}}


def test_follow_up_fields() -> None:
    assert replies.extend_fields(until="2026-09-01", mla_status="submitted", reason="r") == {
        "mla_status": "submitted",
        "reason": "r",
        "requested_until": "2026-09-01",
    }
    assert replies.withdraw_fields(reason="other") == {"reason": "other"}
    mla = replies.mla_fields(
        mla_ref="M-1", sent_to="DOJ", on=None, channel=None, today=date(2026, 3, 2)
    )
    assert mla == {"mla_reference": "M-1", "sent_to": "DOJ", "submitted_on": "2026-03-02"}
    with pytest.raises(replies.ReplyError, match="--on"):
        replies.mla_fields(
            mla_ref="M-1", sent_to="DOJ", on="03/02/2026", channel=None, today=date(2026, 3, 2)
        )
