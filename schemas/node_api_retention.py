"""Local-API bodies of legal hold and retention (PROTOCOL.md §8.6 and §19)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from schemas.types import CaseId, MsgId, Sha256Hex, Timestamp

Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class _Body(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class HoldRequest(_Body, frozen=True):
    """``POST /v1/cases/{case_id}/hold``: why the case must be kept."""

    reason: Reason


class HoldEventView(_Body, frozen=True):
    """A hold put (``held``) or lifted (``released``)."""

    action: Literal["held", "released"]
    reason: str | None
    officer: str | None
    at: Timestamp


class RemovalView(_Body, frozen=True):
    """A message whose body the node removed, as its signed tombstone says."""

    msg_id: MsgId
    direction: Literal["in", "out"]
    removed_at: Timestamp
    policy: str
    policy_days: int
    body_sha256: Sha256Hex


class RetentionView(_Body, frozen=True):
    """A case's legal hold, its hold history and the bodies removed."""

    case_id: CaseId
    held: bool
    hold: HoldEventView | None
    history: tuple[HoldEventView, ...]
    removed: tuple[RemovalView, ...]
    #: true when the call changed the hold (put or lifted); absent on a read
    changed: bool | msgspec.UnsetType = msgspec.UNSET


class DueView(_Body, frozen=True):
    """A case a retention pass removes (or would remove) the bodies of."""

    case_id: CaseId
    closed: Timestamp
    bodies: int


class RemovedCaseView(_Body, frozen=True):
    """A case a retention pass removes (or would remove) whole (PROTOCOL.md §19.6)."""

    case_id: CaseId
    closed: Timestamp
    messages: int


class PassView(_Body, frozen=True):
    """A retention pass: ``dry_run`` true lists what would go and removes nothing."""

    dry_run: bool
    policy: str
    policy_days: int
    cutoff: Timestamp | None
    cases: int
    bodies: int
    files: int
    wal_truncated: bool
    #: the cases (oldest closure first), at most ``limit`` of them
    due: tuple[DueView, ...]
    #: ``closed_case_metadata`` (§19.6): its period, cutoff, how many cases and which
    metadata_years: int = 0
    metadata_cutoff: Timestamp | None = None
    removed_cases: int = 0
    removed_due: tuple[RemovedCaseView, ...] = ()
    #: ``access_log`` (§14.6): its period, cutoff and how many entries
    access_log_days: int = 0
    access_log_cutoff: Timestamp | None = None
    log_entries: int = 0
