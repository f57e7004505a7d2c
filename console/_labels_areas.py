"""The console's label areas (``console/_labels_<area>.py``, each a ``LABELS`` dict shaped
like ``console._i18n.CATALOGS``), one line per area so that work on two areas does not edit
the same lines. Keys must not repeat across areas."""

from __future__ import annotations

from typing import Final

from console import (
    _labels_actions,
    _labels_admin,
    _labels_attach,
    _labels_auth,
    _labels_codes_es_ar,
    _labels_emergency,
    _labels_es_ar_extra,
    _labels_exhibit,
    _labels_hold,
    _labels_inbox,
    _labels_kinds,
    _labels_links,
    _labels_pages,
    _labels_roster,
    _labels_send,
    _labels_stats,
    _labels_webauthn,
)

PARTS: Final[tuple[dict[str, dict[str, str]], ...]] = (
    _labels_send.LABELS,
    _labels_roster.LABELS,
    _labels_actions.LABELS,
    _labels_admin.LABELS,
    _labels_es_ar_extra.LABELS,
    _labels_inbox.LABELS,
    _labels_auth.LABELS,
    _labels_webauthn.LABELS,
    _labels_emergency.LABELS,
    _labels_links.LABELS,
    _labels_hold.LABELS,
    _labels_pages.LABELS,
    _labels_attach.LABELS,
    _labels_kinds.LABELS,
    _labels_codes_es_ar.LABELS,
    _labels_stats.LABELS,
    _labels_exhibit.LABELS,
)
