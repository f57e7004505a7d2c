"""Labels of the console's refusals for limits (console/_limits.py, console/_ratelimit.py).

None is a legal term: nothing here awaits a legal translator.
"""

from __future__ import annotations

from typing import Final

LABELS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "error.rate_limited": "Too many failed logins from this address. Try again later.",
        "error.timeout": "The form took too long to arrive. Send it again.",
        "error.code": "Error code",
    },
    "fr": {
        "error.rate_limited": "Trop de connexions échouées depuis cette adresse. Réessayez"
        " plus tard.",
        "error.timeout": "Le formulaire a mis trop longtemps à arriver. Envoyez-le à nouveau.",
        "error.code": "Code d'erreur",
    },
    "es": {
        "error.rate_limited": "Demasiados inicios de sesión fallidos desde esta dirección."
        " Inténtelo de nuevo más tarde.",
        "error.timeout": "El formulario tardó demasiado en llegar. Envíelo de nuevo.",
        "error.code": "Código de error",
    },
    "ar": {
        "error.rate_limited": "محاولات دخول فاشلة كثيرة من هذا العنوان. حاول مرة أخرى لاحقًا.",
        "error.timeout": "استغرق وصول النموذج وقتًا طويلاً. أرسله مرة أخرى.",
        "error.code": "رمز الخطأ",
    },
}
