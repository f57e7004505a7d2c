"""Labels of the case actions beyond the preservation flow (console/_actions_kinds.py):
impossible to execute, Art. 30(1) traffic data, the answer to a CETS 224 Art. 9 emergency
request, and follow-ups; and the new-request form's choice of kind (an emergency
request, console/_send_emergency.py). ``LEGAL_REVIEW``: legal terms whose Spanish and Arabic await a
legal translator (docs/OPERATIONS.md lists them)."""

from __future__ import annotations

from typing import Final

from console import _labels_dataprot as _dataprot

LABELS: Final[dict[str, dict[str, str]]] = {
    "en": {
        **_dataprot.EN,
        "send.kind.assistance_request": "Assistance (ETS 185 Art. 35)",
        "send.assistance": "Assistance (ETS 185 Art. 35)",
        "send.assistance_hint": "For a request for assistance only: it uses the identifiers"
        " above (optional) and none of the offence, data or custodian inputs.",
        "send.assistance_type": "Kind of assistance",
        "send.subject": "Subject",
        "send.details": "Details",
        "send.answer_needed_by": "Answer needed by",
        "act.assistance-answer": "Answer to the request for assistance (Art. 35)",
        "act.f.outcome": "Outcome",
        "act.f.answer": "Answer",
        "act.f.redirect_to": "Redirected to (if redirected)",
        "send.kind": "Kind of request",
        "send.kind.preservation_request": "Preservation (ETS 185 Art. 29)",
        "send.kind.emergency_disclosure_request": "Emergency disclosure (CETS 224 Art. 9)",
        "send.kind_hint": "An emergency: a significant and imminent risk to the life or"
        " safety of a person (CETS 224 Art. 3(2)(c)).",
        "send.offence_penalty": "Applicable penalty (required in an emergency)",
        "send.emergency": "Emergency (CETS 224 Art. 9(3))",
        "send.emergency_hint": "For an emergency request only. The provider above is the"
        " one asked to disclose (required); legal provisions and penalty are required.",
        "send.emergency_facts": "Facts showing the emergency",
        "send.procedural_instructions": "Procedural instructions",
        "send.protocol_statement": "This request is issued under the Second Additional"
        " Protocol (CETS 224)",
        "send.preservation_only": "For a preservation request only.",
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
        **_dataprot.FR,
        "send.kind.assistance_request": "Assistance (STE 185 art. 35)",
        "send.assistance": "Assistance (STE 185 art. 35)",
        "send.assistance_hint": "Pour une demande d'assistance seulement : elle reprend les"
        " identifiants ci-dessus (facultatifs) et aucun champ d'infraction, de données ou de"
        " détenteur.",
        "send.assistance_type": "Nature de l'assistance",
        "send.subject": "Objet",
        "send.details": "Précisions",
        "send.answer_needed_by": "Réponse attendue avant le",
        "act.assistance-answer": "Réponse à la demande d'assistance (art. 35)",
        "act.f.outcome": "Résultat",
        "act.f.answer": "Réponse",
        "act.f.redirect_to": "Réorientée vers (le cas échéant)",
        "send.kind": "Type de demande",
        "send.kind.preservation_request": "Conservation (STE 185 art. 29)",
        "send.kind.emergency_disclosure_request": "Divulgation d'urgence (STCE 224 art. 9)",
        "send.kind_hint": "Une urgence : un risque important et imminent pour la vie ou"
        " la sécurité d'une personne (STCE 224 art. 3(2)(c)).",
        "send.offence_penalty": "Peine encourue (obligatoire en cas d'urgence)",
        "send.emergency": "Urgence (STCE 224 art. 9(3))",
        "send.emergency_hint": "Pour une demande d'urgence seulement. Le fournisseur"
        " ci-dessus est celui qui doit divulguer (obligatoire) ; dispositions légales et"
        " peine obligatoires.",
        "send.emergency_facts": "Faits établissant l'urgence",
        "send.procedural_instructions": "Instructions de procédure",
        "send.protocol_statement": "Cette demande est émise au titre du deuxième Protocole"
        " additionnel (STCE 224)",
        "send.preservation_only": "Pour une demande de conservation seulement.",
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
        **_dataprot.ES,
        "send.kind.assistance_request": "Asistencia (STE 185 art. 35)",
        "send.assistance": "Asistencia (STE 185 art. 35)",
        "send.assistance_hint": "Solo para una solicitud de asistencia: usa los"
        " identificadores de arriba (opcionales) y ningún campo de delito, datos o custodio.",
        "send.assistance_type": "Tipo de asistencia",
        "send.subject": "Asunto",
        "send.details": "Detalles",
        "send.answer_needed_by": "Respuesta necesaria antes de",
        "act.assistance-answer": "Respuesta a la solicitud de asistencia (art. 35)",
        "act.f.outcome": "Resultado",
        "act.f.answer": "Respuesta",
        "act.f.redirect_to": "Remitida a (si se remite)",
        "send.kind": "Tipo de solicitud",
        "send.kind.preservation_request": "Conservación (STE 185 art. 29)",
        "send.kind.emergency_disclosure_request": "Revelación de emergencia (STCE 224 art. 9)",
        "send.kind_hint": "Una emergencia: un riesgo significativo e inminente para la vida"
        " o la seguridad de una persona (STCE 224 art. 3(2)(c)).",
        "send.offence_penalty": "Pena aplicable (obligatoria en una emergencia)",
        "send.emergency": "Emergencia (STCE 224 art. 9(3))",
        "send.emergency_hint": "Solo para una solicitud de emergencia. El proveedor de"
        " arriba es el que debe revelar (obligatorio); disposiciones legales y pena"
        " obligatorias.",
        "send.emergency_facts": "Hechos que muestran la emergencia",
        "send.procedural_instructions": "Instrucciones de procedimiento",
        "send.protocol_statement": "Esta solicitud se emite en virtud del Segundo Protocolo"
        " Adicional (STCE 224)",
        "send.preservation_only": "Solo para una solicitud de conservación.",
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
        **_dataprot.AR,
        "send.kind.assistance_request": "المساعدة (الاتفاقية 185، المادة 35)",
        "send.assistance": "المساعدة (الاتفاقية 185، المادة 35)",
        "send.assistance_hint": "لطلب المساعدة فقط: يستخدم المعرّفات أعلاه (اختيارية) ولا"
        " يستخدم حقول الجريمة أو البيانات أو الجهة الحائزة.",
        "send.assistance_type": "نوع المساعدة",
        "send.subject": "الموضوع",
        "send.details": "التفاصيل",
        "send.answer_needed_by": "الجواب مطلوب قبل",
        "act.assistance-answer": "الرد على طلب المساعدة (المادة 35)",
        "act.f.outcome": "النتيجة",
        "act.f.answer": "الجواب",
        "act.f.redirect_to": "أُحيل إلى (في حال الإحالة)",
        "send.kind": "نوع الطلب",
        "send.kind.preservation_request": "التحفظ (الاتفاقية 185، المادة 29)",
        "send.kind.emergency_disclosure_request": "الكشف العاجل (البروتوكول 224، المادة 9)",
        "send.kind_hint": "حالة طوارئ: خطر جسيم ووشيك على حياة شخص أو سلامته"
        " (البروتوكول 224، المادة 3(2)(ج)).",
        "send.offence_penalty": "العقوبة المقررة (إلزامية في حالة الطوارئ)",
        "send.emergency": "حالة طوارئ (البروتوكول 224، المادة 9(3))",
        "send.emergency_hint": "لطلب الطوارئ فقط. مقدم الخدمة أعلاه هو المطلوب منه الكشف"
        " (إلزامي)؛ الأحكام القانونية والعقوبة إلزامية.",
        "send.emergency_facts": "الوقائع التي تثبت حالة الطوارئ",
        "send.procedural_instructions": "تعليمات إجرائية",
        "send.protocol_statement": "هذا الطلب صادر بموجب البروتوكول الإضافي الثاني"
        " (البروتوكول 224)",
        "send.preservation_only": "لطلب التحفظ فقط.",
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
        "act.assistance-answer",
        "act.f.traffic_data",
        "act.f.data_disclosed",
        "act.f.refusal_ground",
        "act.f.formalisation_required",
        "act.f.formalisation_instructions",
        "send.kind.emergency_disclosure_request",
        "send.offence_penalty",
        "send.emergency",
        "send.emergency_facts",
        "send.protocol_statement",
        "send.kind.assistance_request",
        "send.assistance",
        *_dataprot.LEGAL,
    }
)
#: legal terms translated without a legal translator (issue 13 §3), per language
LEGAL_REVIEW: Final[dict[str, frozenset[str]]] = {"es": _LEGAL, "ar": _LEGAL}
