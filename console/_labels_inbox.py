"""Labels of the inbox's pages (open cases, closed cases; console/_pages.py inbox)."""

from __future__ import annotations

from typing import Final

LABELS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "inbox.open": "Open cases",
        "inbox.closed": "Closed cases",
        "inbox.closed_title": "Closed cases",
        "inbox.closed_caption": "Closed cases, most recent activity first",
        "inbox.closed_empty": "No closed case.",
        "inbox.pages": "Pages",
        "inbox.page": "Page {page} of {pages}",
        "inbox.previous": "Previous page",
        "inbox.next": "Next page",
        "inbox.counts": "{open} open, {closed} closed",
    },
    "fr": {
        "inbox.open": "Dossiers ouverts",
        "inbox.closed": "Dossiers clos",
        "inbox.closed_title": "Dossiers clos",
        "inbox.closed_caption": "Dossiers clos, activité la plus récente d'abord",
        "inbox.closed_empty": "Aucun dossier clos.",
        "inbox.pages": "Navigation entre les pages",
        "inbox.page": "Page {page} sur {pages}",
        "inbox.previous": "Page précédente",
        "inbox.next": "Page suivante",
        "inbox.counts": "{open} ouverts, {closed} clos",
    },
    "es": {
        "inbox.open": "Expedientes abiertos",
        "inbox.closed": "Expedientes cerrados",
        "inbox.closed_title": "Expedientes cerrados",
        "inbox.closed_caption": "Expedientes cerrados, actividad más reciente primero",
        "inbox.closed_empty": "Ningún expediente cerrado.",
        "inbox.pages": "Páginas",
        "inbox.page": "Página {page} de {pages}",
        "inbox.previous": "Página anterior",
        "inbox.next": "Página siguiente",
        "inbox.counts": "{open} abiertos, {closed} cerrados",
    },
    "ar": {
        "inbox.open": "الملفات المفتوحة",
        "inbox.closed": "الملفات المغلقة",
        "inbox.closed_title": "الملفات المغلقة",
        "inbox.closed_caption": "الملفات المغلقة، الأحدث نشاطاً أولاً",
        "inbox.closed_empty": "لا يوجد ملف مغلق.",
        "inbox.pages": "الصفحات",
        "inbox.page": "الصفحة {page} من {pages}",
        "inbox.previous": "الصفحة السابقة",
        "inbox.next": "الصفحة التالية",
        "inbox.counts": "{open} مفتوحة، {closed} مغلقة",
    },
}
