"""Labels of the data-protection case actions (console/_actions_kinds.py): the decision on
an onward transfer (CETS 224 Art. 14(10)(a)) and the notice of a security incident (CETS
224 Art. 14(7)(b)). ``console._labels_kinds`` merges them; ``LEGAL``: the keys whose
Spanish and Arabic await a legal translator (docs/OPERATIONS.md lists them)."""

from __future__ import annotations

from typing import Final

EN: Final[dict[str, str]] = {
    "send.kind.onward_transfer_request": "Onward transfer (CETS 224 Art. 14(10)(a))",
    "send.onward": "Onward transfer (CETS 224 Art. 14(10)(a))",
    "send.onward_hint": "For an onward transfer request only: it uses the answer time above"
    " (optional) and none of the offence, identifier, data or custodian"
    " inputs.",
    "send.recipient_kind": "The data would go to",
    "send.recipient": "Recipient (authority or organisation)",
    "send.recipient_country": "Recipient's country (ISO code, for a State)",
    "send.data_description": "Data to transfer",
    "send.purpose": "Purpose of the transfer",
    "send.safeguards": "Safeguards at the recipient",
    "act.onward-answer": "Decision on an onward transfer (CETS 224 Art. 14(10)(a))",
    "act.security-incident": "Security incident notice (CETS 224 Art. 14(7)(b))",
    "act.f.incident": "Type of incident",
    "act.f.discovered_at": "Discovered at",
    "act.f.occurred_at": "Occurred at (if known)",
    "act.f.description": "What happened",
    "act.f.risk": "Risk to the persons concerned",
    "act.f.mitigation": "Measures taken",
    "act.f.individuals_notified": "The persons concerned have been notified",
    "act.f.restrict_further_transmission": "This notice must not be passed on further",
    "act.hint.instant": "Times as 2026-05-20T10:00:00+02:00 (date, time and UTC offset).",
}

FR: Final[dict[str, str]] = {
    "send.kind.onward_transfer_request": "Transfert ultérieur (STCE 224 art. 14(10)(a))",
    "send.onward": "Transfert ultérieur (STCE 224 art. 14(10)(a))",
    "send.onward_hint": "Pour une demande de transfert ultérieur seulement : elle utilise le"
    " délai de réponse ci-dessus (facultatif) et aucune des saisies sur"
    " l'infraction, les identifiants, les données ou le détenteur.",
    "send.recipient_kind": "Les données iraient à",
    "send.recipient": "Destinataire (autorité ou organisation)",
    "send.recipient_country": "Pays du destinataire (code ISO, pour un État)",
    "send.data_description": "Données à transférer",
    "send.purpose": "Finalité du transfert",
    "send.safeguards": "Garanties chez le destinataire",
    "act.onward-answer": "Décision sur un transfert ultérieur (STCE 224 art. 14(10)(a))",
    "act.security-incident": "Notification d'un incident de sécurité (STCE 224 art. 14(7)(b))",
    "act.f.incident": "Type d'incident",
    "act.f.discovered_at": "Découvert le",
    "act.f.occurred_at": "Survenu le (si connu)",
    "act.f.description": "Ce qui s'est passé",
    "act.f.risk": "Risque pour les personnes concernées",
    "act.f.mitigation": "Mesures prises",
    "act.f.individuals_notified": "Les personnes concernées ont été informées",
    "act.f.restrict_further_transmission": "Cette notification ne doit pas être transmise"
    " plus loin",
    "act.hint.instant": "Heures au format 2026-05-20T10:00:00+02:00 (date, heure et décalage UTC).",
}

ES: Final[dict[str, str]] = {
    "send.kind.onward_transfer_request": "Transferencia ulterior (STCE 224 art. 14(10)(a))",
    "send.onward": "Transferencia ulterior (STCE 224 art. 14(10)(a))",
    "send.onward_hint": "Solo para una solicitud de transferencia ulterior: usa el plazo de"
    " respuesta indicado arriba (opcional) y ninguno de los campos sobre el"
    " delito, los identificadores, los datos o el custodio.",
    "send.recipient_kind": "Los datos irían a",
    "send.recipient": "Destinatario (autoridad u organización)",
    "send.recipient_country": "País del destinatario (código ISO, para un Estado)",
    "send.data_description": "Datos que se transferirían",
    "send.purpose": "Finalidad de la transferencia",
    "send.safeguards": "Garantías en el destinatario",
    "act.onward-answer": "Decisión sobre una transferencia ulterior (STCE 224 art. 14(10)(a))",
    "act.security-incident": "Notificación de un incidente de seguridad (STCE 224 art. 14(7)(b))",
    "act.f.incident": "Tipo de incidente",
    "act.f.discovered_at": "Descubierto el",
    "act.f.occurred_at": "Ocurrido el (si se conoce)",
    "act.f.description": "Qué ocurrió",
    "act.f.risk": "Riesgo para las personas afectadas",
    "act.f.mitigation": "Medidas adoptadas",
    "act.f.individuals_notified": "Se ha informado a las personas afectadas",
    "act.f.restrict_further_transmission": "Esta notificación no debe transmitirse a terceros",
    "act.hint.instant": "Horas con el formato 2026-05-20T10:00:00+02:00 (fecha, hora y"
    " desfase UTC).",
}

AR: Final[dict[str, str]] = {
    "send.kind.onward_transfer_request": "النقل اللاحق (الاتفاقية 224، المادة 14(10)(أ))",
    "send.onward": "النقل اللاحق (الاتفاقية 224، المادة 14(10)(أ))",
    "send.onward_hint": "لطلب النقل اللاحق فقط: يستخدم موعد الردّ أعلاه (اختياري) ولا يستخدم"
    " أيًّا من حقول الجريمة أو المعرّفات أو البيانات أو الجهة الحائزة.",
    "send.recipient_kind": "ستُنقل البيانات إلى",
    "send.recipient": "الجهة المتلقية (سلطة أو منظمة)",
    "send.recipient_country": "بلد الجهة المتلقية (رمز ISO، في حالة الدولة)",
    "send.data_description": "البيانات المراد نقلها",
    "send.purpose": "الغرض من النقل",
    "send.safeguards": "الضمانات لدى الجهة المتلقية",
    "act.onward-answer": "القرار بشأن النقل اللاحق (الاتفاقية 224، المادة 14(10)(أ))",
    "act.security-incident": "إشعار بحادث أمني (الاتفاقية 224، المادة 14(7)(ب))",
    "act.f.incident": "نوع الحادث",
    "act.f.discovered_at": "تاريخ الاكتشاف",
    "act.f.occurred_at": "تاريخ الوقوع (إن كان معروفًا)",
    "act.f.description": "ما الذي حدث",
    "act.f.risk": "الخطر على الأشخاص المعنيين",
    "act.f.mitigation": "التدابير المتخذة",
    "act.f.individuals_notified": "أُبلغ الأشخاص المعنيون",
    "act.f.restrict_further_transmission": "لا يجوز نقل هذا الإشعار إلى جهات أخرى",
    "act.hint.instant": "الأوقات بصيغة 2026-05-20T10:00:00+02:00 (التاريخ والوقت وفارق"
    " التوقيت عن UTC).",
}

LEGAL: Final = frozenset(
    {
        "act.onward-answer",
        "act.security-incident",
        "act.f.restrict_further_transmission",
        "send.kind.onward_transfer_request",
        "send.onward",
        "send.safeguards",
    }
)
