"""Who the network's secretariat is, for statistics reports (PROTOCOL.md §20.5).

The secretariat is every member whose directory entry lists the capability
``statistics_secretariat``: the coordinators name it by signing the directory, so no
member can appoint itself. A ``statistics_report`` goes only to such a member: a node
older than the kind would refuse it as malformed (E13), and nobody else collects them.
"""

from __future__ import annotations

from protocol.errors import MalformedError
from schemas._stats import SECRETARIAT, StatisticsReport
from schemas.directory import Member, supports
from schemas.messages import Body

__all__ = ["SECRETARIAT", "refuse_not_secretariat", "secretariats"]


def secretariats(members: tuple[Member, ...]) -> list[str]:
    """The ids of the members that collect statistics reports, in directory order."""
    return [m.id for m in members if supports(m, SECRETARIAT)]


def refuse_not_secretariat(body: Body, peer: Member | None) -> None:
    """Refuse a statistics report to a member that is not the secretariat (§20.5, ST1).

    ``peer`` None (no directory yet) is left to the sealer, which refuses it.

    Raises:
        MalformedError: naming ``$.kind`` (code ``malformed``).
    """
    if isinstance(body, StatisticsReport) and peer is not None and not supports(peer, SECRETARIAT):
        problem = (
            f"{peer.id}'s directory entry does not list `{SECRETARIAT}`: statistics reports"
            " go only to the network's secretariat"
        )
        raise MalformedError(
            f"invalid body: {problem} - at `$.kind`", field="$.kind", problem=problem
        )
