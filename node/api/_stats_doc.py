"""The statistics routes' part of the OpenAPI document (``node.api.stats``, §20)."""

from __future__ import annotations

from typing import Any, Final

from schemas._stats import ReceivedReports, Statistics

#: The answers' types, added to the document's components.
STATS_TYPES: Final = (Statistics, ReceivedReports)


def stats_paths(op: Any, json: Any) -> dict[str, Any]:
    """``/v1/stats`` and ``/v1/stats/reports``, built with the document's own helpers."""
    day = {
        "type": "string",
        "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
        "description": "a calendar day from 1970-01-01 to 9998-12-31 (protocol.days)",
    }
    figures = op("This member's statistics for whole UTC days", 200, json(Statistics), 400)
    figures["parameters"] = [
        {"name": "from", "in": "query", "required": True, "schema": day},
        {"name": "to", "in": "query", "required": True, "schema": day},
    ]
    reports = op("Statistics reports received (secretariat)", 200, json(ReceivedReports))
    return {"/v1/stats": {"get": figures}, "/v1/stats/reports": {"get": reports}}
