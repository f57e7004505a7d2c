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
    from node.cases.emergency import (
        Difference,
        Ladder,
        build_ladder,
        candidates,
        candidates_since,
        confirmation_due,
        level_at,
        reached_levels,
        reconcile,
        record_clocks,
        written_request,
    )
    from node.cases.emergency_watch import EmergencyWatch
    from node.cases.export import NOT_COSIGNED, export_case
    from node.cases.hold import MAX_REASON, HoldEvent, RetainedReseal, Retention, check_reason
    from node.cases.links_view import (
        Sent,
        add_local_link,
        link_views,
        linked_case_ids,
        plan_links,
    )
    from node.cases.periods import decode_periods, load_periods
    from node.cases.procedures import (
        DueClock,
        Procedure,
        ProcedureTable,
        decode_procedures,
        due_clocks,
        in_zone,
        load_procedures,
    )
    from node.cases.retention import PassResult, RetentionPolicy
    from node.cases.retention_service import RetentionService
    from node.cases.secretariat import SECRETARIAT, refuse_not_secretariat, secretariats
    from node.cases.service import CasesService, body_of
    from node.cases.stats import MAX_PERIOD_DAYS, signed_header, statistics
    from node.cases.store import CaseRow, CaseStore

__all__ = [
    "MAX_PERIOD_DAYS",
    "MAX_REASON",
    "NOT_COSIGNED",
    "SECRETARIAT",
    "CaseRow",
    "CaseStore",
    "CasesService",
    "ClockSettings",
    "Clocks",
    "Difference",
    "DueClock",
    "DutyAlerts",
    "DutySettings",
    "EmergencyWatch",
    "HoldEvent",
    "Ladder",
    "PassResult",
    "Procedure",
    "ProcedureTable",
    "RetainedReseal",
    "Retention",
    "RetentionPolicy",
    "RetentionService",
    "Sent",
    "add_local_link",
    "body_of",
    "build_ladder",
    "candidates",
    "candidates_since",
    "check_reason",
    "clock_rows",
    "confirmation_due",
    "decode_periods",
    "decode_procedures",
    "due_clocks",
    "due_levels",
    "export_case",
    "in_zone",
    "level_at",
    "link_views",
    "linked_case_ids",
    "load_periods",
    "load_procedures",
    "plan_links",
    "reached_levels",
    "reconcile",
    "record_clocks",
    "refuse_not_secretariat",
    "secretariats",
    "signed_header",
    "statistics",
    "written_request",
]
__getattr__ = lazy_face(
    __name__,
    {
        "ClockSettings": "clocks",
        "Clocks": "clocks",
        "DutyAlerts": "duty",
        "DutySettings": "duty",
        "due_levels": "duty",
        "Difference": "emergency",
        "clock_rows": "emergency",
        "Ladder": "emergency",
        "build_ladder": "emergency",
        "candidates": "emergency",
        "candidates_since": "emergency",
        "confirmation_due": "emergency",
        "reconcile": "emergency",
        "record_clocks": "emergency",
        "reached_levels": "emergency",
        "level_at": "emergency",
        "written_request": "emergency",
        "EmergencyWatch": "emergency_watch",
        "DueClock": "procedures",
        "Procedure": "procedures",
        "ProcedureTable": "procedures",
        "decode_procedures": "procedures",
        "due_clocks": "procedures",
        "in_zone": "procedures",
        "load_procedures": "procedures",
        "NOT_COSIGNED": "export",
        "export_case": "export",
        "MAX_REASON": "hold",
        "HoldEvent": "hold",
        "RetainedReseal": "hold",
        "Retention": "hold",
        "check_reason": "hold",
        "PassResult": "retention",
        "RetentionPolicy": "retention",
        "RetentionService": "retention_service",
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
        "MAX_PERIOD_DAYS": "stats",
        "SECRETARIAT": "secretariat",
        "refuse_not_secretariat": "secretariat",
        "secretariats": "secretariat",
        "signed_header": "stats",
        "statistics": "stats",
        "CaseStore": "store",
    },
)
