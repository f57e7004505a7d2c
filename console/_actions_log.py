"""Which officer sent which message (the table is node.db's, shared with the local API:
``node.officers`` keeps it, so a per-officer API token's send is attributed too)."""

from __future__ import annotations

from node.officers import attribute as record
from node.officers import attributed_officers as officers_of

__all__ = ["officers_of", "record"]
