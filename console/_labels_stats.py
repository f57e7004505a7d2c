"""Spanish and Arabic labels of the statistics' coded values and fields (schemas/_stats.py,
PROTOCOL.md §20; English and French come from the CLI's catalogs, ``node/i18n``, through
:mod:`console._labels_codes_es_ar`), and the statistics page's labels in all four."""

from __future__ import annotations

from typing import Final

ES: Final[dict[str, str]] = {
    "field.RequestCount.kind": "Tipo de solicitud",
    "field.count": "Número",
    "field.emergencies": "Emergencias",
    "field.expired_before_mla": "Vencidas antes de una solicitud de asistencia judicial mutua",
    "field.figures": "Cifras",
    "field.flow": "Sentido",
    "field.measure": "Plazo medido",
    "field.median_s": "Mediana (segundos)",
    "field.p90_s": "Percentil 90 (segundos)",
    "field.peer": "Otro miembro",
    "field.period_from": "Periodo desde",
    "field.period_to": "Periodo hasta",
    "field.refusals": "Denegaciones por motivo",
    "field.requests": "Solicitudes",
    "field.timings": "Plazos de respuesta",
    "code.Flow.sent": "Enviadas",
    "code.Flow.received": "Recibidas",
    "code.RequestKind.preservation_request": "Conservación (art. 29)",
    "code.RequestKind.emergency_disclosure_request": "Revelación de emergencia"
    " (2.º Protocolo, art. 9)",
    "code.RequestKind.assistance_request": "Asistencia (art. 35)",
    "code.RequestKind.onward_transfer_request": "Transferencia ulterior (2.º Protocolo, art. 14)",
    "code.Outcome.rejected": "Rechazada por el nodo destinatario",
    "code.Outcome.refused": "Denegada",
    "code.Outcome.impossible": "Ejecución imposible",
    "code.Outcome.withdrawn": "Retirada",
    "code.Outcome.answered": "Respondida",
    "code.Outcome.expired": "Vencida antes de una solicitud de asistencia judicial mutua",
    "code.Outcome.mla_pending": "Conservada, solicitud de asistencia judicial mutua pendiente",
    "code.Outcome.preserved": "Conservada",
    "code.Outcome.taken_in_charge": "Asumida",
    "code.Outcome.delivered": "Entregada",
    "code.Outcome.pending": "Aún no entregada",
    "code.Measure.delivery_receipt": "Hasta el acuse de entrega",
    "code.Measure.taken_in_charge": "Hasta la asunción",
    "code.Measure.preserved": "Hasta la conservación",
    "code.Measure.emergency_response": "Emergencia: hasta la primera respuesta",
}

AR: Final[dict[str, str]] = {
    "field.RequestCount.kind": "نوع الطلب",
    "field.count": "العدد",
    "field.emergencies": "حالات الطوارئ",
    "field.expired_before_mla": "انتهت قبل طلب المساعدة القانونية المتبادلة",
    "field.figures": "الأرقام",
    "field.flow": "الاتجاه",
    "field.measure": "المهلة المقيسة",
    "field.median_s": "الوسيط (بالثواني)",
    "field.p90_s": "المئين التسعون (بالثواني)",
    "field.peer": "العضو الآخر",
    "field.period_from": "الفترة من",
    "field.period_to": "الفترة إلى",
    "field.refusals": "حالات الرفض حسب السبب",
    "field.requests": "الطلبات",
    "field.timings": "مهل الردّ",
    "code.Flow.sent": "مُرسَلة",
    "code.Flow.received": "مُستلَمة",
    "code.RequestKind.preservation_request": "الحفظ (المادة 29)",
    "code.RequestKind.emergency_disclosure_request": "الكشف في حالة طوارئ"
    " (البروتوكول الثاني، المادة 9)",
    "code.RequestKind.assistance_request": "المساعدة (المادة 35)",
    "code.RequestKind.onward_transfer_request": "النقل اللاحق (البروتوكول الثاني، المادة 14)",
    "code.Outcome.rejected": "رفضتها العقدة المستلمة",
    "code.Outcome.refused": "مرفوضة",
    "code.Outcome.impossible": "التنفيذ مستحيل",
    "code.Outcome.withdrawn": "مسحوبة",
    "code.Outcome.answered": "تمّ الردّ عليها",
    "code.Outcome.expired": "انتهت قبل طلب المساعدة القانونية المتبادلة",
    "code.Outcome.mla_pending": "محفوظة، وطلب المساعدة القانونية المتبادلة قيد النظر",
    "code.Outcome.preserved": "محفوظة",
    "code.Outcome.taken_in_charge": "تم التكفّل بها",
    "code.Outcome.delivered": "مُسلَّمة",
    "code.Outcome.pending": "لم تُسلَّم بعد",
    "code.Measure.delivery_receipt": "حتى إشعار التسليم",
    "code.Measure.taken_in_charge": "حتى التكفّل",
    "code.Measure.preserved": "حتى الحفظ",
    "code.Measure.emergency_response": "الطوارئ: حتى أول ردّ",
}

#: The statistics page (console/_stats.py, templates/stats.html) and its menu entry.
PAGE: Final[dict[str, dict[str, str]]] = {
    "en": {
        "nav.stats": "Statistics",
        "stats.title": "Statistics",
        "stats.intro": "Requests sent and received in the period (UTC days), with their"
        " outcome and delays, counted from signed times only (PROTOCOL.md §20). No person,"
        " account or address appears here.",
        "stats.show": "Show",
        "stats.bad_period": "Give the first and last day as YYYY-MM-DD, the last not before"
        " the first, at most ten years apart.",
        "stats.none": "No request in this period.",
        "stats.all_peers": "All members",
    },
    "fr": {
        "nav.stats": "Statistiques",
        "stats.title": "Statistiques",
        "stats.intro": "Demandes envoyées et reçues pendant la période (jours UTC), avec leur"
        " issue et leurs délais, comptées d'après les seules heures signées (PROTOCOL.md"
        " §20). Aucune personne, aucun compte ni aucune adresse n'y figure.",
        "stats.show": "Afficher",
        "stats.bad_period": "Indiquez le premier et le dernier jour au format AAAA-MM-JJ, le"
        " dernier au plus tôt le premier, à dix ans d'écart au plus.",
        "stats.none": "Aucune demande pendant cette période.",
        "stats.all_peers": "Tous les membres",
    },
    "es": {
        "nav.stats": "Estadísticas",
        "stats.title": "Estadísticas",
        "stats.intro": "Solicitudes enviadas y recibidas en el periodo (días UTC), con su"
        " resultado y sus plazos, contadas solo a partir de horas firmadas (PROTOCOL.md"
        " §20). No figura ninguna persona, cuenta ni dirección.",
        "stats.show": "Mostrar",
        "stats.bad_period": "Indique el primer y el último día como AAAA-MM-DD, el último no"
        " anterior al primero, con diez años de diferencia como máximo.",
        "stats.none": "Ninguna solicitud en este periodo.",
        "stats.all_peers": "Todos los miembros",
    },
    "ar": {
        "nav.stats": "الإحصاءات",
        "stats.title": "الإحصاءات",
        "stats.intro": "الطلبات المرسلة والمستلمة خلال الفترة (أيام بالتوقيت العالمي"
        " المنسق)، مع نتيجتها ومهلها، محسوبة من الأوقات الموقّعة فقط (PROTOCOL.md §20)."
        " لا يظهر هنا أي شخص أو حساب أو عنوان.",
        "stats.show": "عرض",
        "stats.bad_period": "أدخل اليوم الأول والأخير بصيغة YYYY-MM-DD، على ألا يسبق"
        " الأخيرُ الأولَ، وبفارق عشر سنوات على الأكثر.",
        "stats.none": "لا توجد طلبات في هذه الفترة.",
        "stats.all_peers": "جميع الأعضاء",
    },
}

LABELS: Final[dict[str, dict[str, str]]] = {
    "en": PAGE["en"],
    "fr": PAGE["fr"],
    "es": ES | PAGE["es"],
    "ar": AR | PAGE["ar"],
}
