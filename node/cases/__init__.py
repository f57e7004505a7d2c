"""Cases: the derived case state, its legal clocks and periods, views and evidence export.

Fed by the node's events (never by messaging directly); read by the local API.
It never imports the local API server or messaging.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from node._faces import lazy_face

if TYPE_CHECKING:
    from node.cases.clocks import Clocks, ClockSettings
    from node.cases.duty import DutyAlerts, DutySettings, due_levels
    from node.cases.export import NOT_COSIGNED, export_case
    from node.cases.links_view import (
        Sent,
        add_local_link,
        link_views,
        linked_case_ids,
        plan_links,
    )
    from node.cases.periods import decode_periods, load_periods
    from node.cases.service import CasesService, body_of
    from node.cases.store import CaseRow, CaseStore

__all__ = [
    "NOT_COSIGNED",
    "CaseRow",
    "CaseStore",
    "CasesService",
    "ClockSettings",
    "Clocks",
    "DutyAlerts",
    "DutySettings",
    "Sent",
    "add_local_link",
    "body_of",
    "decode_periods",
    "due_levels",
    "export_case",
    "link_views",
    "linked_case_ids",
    "load_periods",
    "plan_links",
]
__getattr__ = lazy_face(
    __name__,
    {
        "ClockSettings": "clocks",
        "Clocks": "clocks",
        "DutyAlerts": "duty",
        "DutySettings": "duty",
        "due_levels": "duty",
        "NOT_COSIGNED": "export",
        "export_case": "export",
        "Sent": "links_view",
        "add_local_link": "links_view",
        "link_views": "links_view",
        "linked_case_ids": "links_view",
        "plan_links": "links_view",
        "decode_periods": "periods",
        "load_periods": "periods",
        "CasesService": "service",
        "body_of": "service",
        "CaseRow": "store",
        "CaseStore": "store",
    },
)
