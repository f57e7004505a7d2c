"""Labels of the case actions beyond the preservation flow (console/_actions_kinds.py):
impossible to execute, Art. 30(1) traffic data, the answer to a CETS 224 Art. 9 emergency
request, and follow-ups. ``LEGAL_REVIEW``: legal terms whose Spanish and Arabic await a
legal translator (docs/OPERATIONS.md lists them)."""

from __future__ import annotations

from typing import Final

LABELS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "act.impossible": "Impossible to execute",
        "act.traffic-data": "Disclosure of traffic data (Art. 30(1))",
        "act.emergency-answer": "Answer to the emergency request (Art. 9)",
        "act.follow-up": "Follow-up (question or answer)",
        "act.f.redirect_country": "Country that holds the data (ISO code, e.g. DE)",
        "act.f.provider": "Provider in the other State",
        "act.f.provider_country": "Provider's country (ISO code)",
        "act.f.path": "Path of the communication",
        "act.f.traffic_data": "Other traffic data",
        "act.f.data_disclosed": "Data disclosed",
        "act.f.conditions": "Conditions of use",
        "act.f.refusal_ground": "Ground of refusal (if refused)",
        "act.f.formalisation_required": "A formal request must follow (Art. 9(5))",
        "act.f.formalisation_instructions": "How to submit the formal request",
        "act.f.role": "Question or answer",
        "act.f.topic": "Topic",
        "act.f.text": "Text",
        "act.hint.path": "One hop a line, in transmission order:"
        " provider; country; IP address; time seen (2026-01-05T10:00:00+00:00); port.",
        "act.hint.conditions": "One condition a line.",
    },
    "fr": {
        "act.impossible": "Exécution impossible",
        "act.traffic-data": "Divulgation de données relatives au trafic (art. 30(1))",
        "act.emergency-answer": "Réponse à la demande urgente (art. 9)",
        "act.follow-up": "Suivi (question ou réponse)",
        "act.f.redirect_country": "Pays qui détient les données (code ISO, p. ex. DE)",
        "act.f.provider": "Fournisseur dans l'autre État",
        "act.f.provider_country": "Pays du fournisseur (code ISO)",
        "act.f.path": "Voie de la communication",
        "act.f.traffic_data": "Autres données relatives au trafic",
        "act.f.data_disclosed": "Données divulguées",
        "act.f.conditions": "Conditions d'utilisation",
        "act.f.refusal_ground": "Motif du refus (en cas de refus)",
        "act.f.formalisation_required": "Une demande formelle doit suivre (art. 9(5))",
        "act.f.formalisation_instructions": "Comment présenter la demande formelle",
        "act.f.role": "Question ou réponse",
        "act.f.topic": "Objet",
        "act.f.text": "Texte",
        "act.hint.path": "Un nœud par ligne, dans l'ordre de transmission :"
        " fournisseur ; pays ; adresse IP ; heure (2026-01-05T10:00:00+00:00) ; port.",
        "act.hint.conditions": "Une condition par ligne.",
    },
    "es": {
        "act.impossible": "Imposible de ejecutar",
        "act.traffic-data": "Revelación de datos relativos al tráfico (art. 30(1))",
        "act.emergency-answer": "Respuesta a la solicitud de emergencia (art. 9)",
        "act.follow-up": "Seguimiento (pregunta o respuesta)",
        "act.f.redirect_country": "País que tiene los datos (código ISO, p. ej. DE)",
        "act.f.provider": "Proveedor en el otro Estado",
        "act.f.provider_country": "País del proveedor (código ISO)",
        "act.f.path": "Vía de la comunicación",
        "act.f.traffic_data": "Otros datos relativos al tráfico",
        "act.f.data_disclosed": "Datos revelados",
        "act.f.conditions": "Condiciones de uso",
        "act.f.refusal_ground": "Motivo de la denegación (si se deniega)",
        "act.f.formalisation_required": "Debe seguir una solicitud formal (art. 9(5))",
        "act.f.formalisation_instructions": "Cómo presentar la solicitud formal",
        "act.f.role": "Pregunta o respuesta",
        "act.f.topic": "Asunto",
        "act.f.text": "Texto",
        "act.hint.path": "Un salto por línea, en el orden de transmisión:"
        " proveedor; país; dirección IP; hora (2026-01-05T10:00:00+00:00); puerto.",
        "act.hint.conditions": "Una condición por línea.",
    },
    "ar": {
        "act.impossible": "يتعذر التنفيذ",
        "act.traffic-data": "الكشف عن بيانات الحركة (المادة 30(1))",
        "act.emergency-answer": "الرد على الطلب العاجل (المادة 9)",
        "act.follow-up": "متابعة (سؤال أو جواب)",
        "act.f.redirect_country": "البلد الذي يحوز البيانات (رمز ISO، مثلاً DE)",
        "act.f.provider": "مقدم الخدمة في الدولة الأخرى",
        "act.f.provider_country": "بلد مقدم الخدمة (رمز ISO)",
        "act.f.path": "مسار الاتصال",
        "act.f.traffic_data": "بيانات حركة أخرى",
        "act.f.data_disclosed": "البيانات المكشوف عنها",
        "act.f.conditions": "شروط الاستخدام",
        "act.f.refusal_ground": "سبب الرفض (في حال الرفض)",
        "act.f.formalisation_required": "يجب أن يتبعه طلب رسمي (المادة 9(5))",
        "act.f.formalisation_instructions": "كيفية تقديم الطلب الرسمي",
        "act.f.role": "سؤال أو جواب",
        "act.f.topic": "الموضوع",
        "act.f.text": "النص",
        "act.hint.path": "قفزة واحدة في كل سطر، بترتيب الإرسال:"
        " مقدم الخدمة؛ البلد؛ عنوان IP؛ الوقت (2026-01-05T10:00:00+00:00)؛ المنفذ.",
        "act.hint.conditions": "شرط واحد في كل سطر.",
    },
}

_LEGAL: Final = frozenset(
    {
        "act.impossible",
        "act.traffic-data",
        "act.emergency-answer",
        "act.f.traffic_data",
        "act.f.data_disclosed",
        "act.f.refusal_ground",
        "act.f.formalisation_required",
        "act.f.formalisation_instructions",
    }
)
#: legal terms translated without a legal translator (issue 13 §3), per language
LEGAL_REVIEW: Final[dict[str, frozenset[str]]] = {"es": _LEGAL, "ar": _LEGAL}
