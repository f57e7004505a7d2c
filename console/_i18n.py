"""The console's labels in each language it speaks (issue 13 §3 "Languages"): a plain
dict per language (no gettext catalogs). tests/unit/test_console_i18n.py fails on any
label missing in any language, any coded value without a label, any unknown label used."""

from __future__ import annotations

from typing import Final

from console import (
    _labels_codes_es_ar,
    _labels_kinds,
    _labels_pages,
)
from console._labels_areas import PARTS

DEFAULT: Final = "en"

CATALOGS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "app.title": "relay247 console",
        "nav.inbox": "Inbox",
        "nav.logout": "Log out",
        "nav.signed_in_as": "Signed in as",
        "login.title": "Officer login",
        "login.login": "Login name",
        "login.password": "Password",
        "login.code": "Authenticator code (6 digits)",
        "login.submit": "Log in",
        "login.bad": "Wrong login name, password or code.",
        "login.locked": "This account is locked after too many failed logins. Try again later"
        " or ask an administrator.",
        "login.disabled": "This account is disabled. Ask an administrator.",
        "login.expired": "Your session ended. Please log in again.",
        "inbox.title": "Inbox",
        "inbox.empty": "No cases yet.",
        "inbox.caption": "Cases, urgent first, then by next deadline",
        "case.id": "Case",
        "case.peer": "Peer",
        "case.role": "Our side",
        "case.state": "State",
        "case.priority": "Priority",
        "case.next_deadline": "Next deadline",
        "case.opened": "Opened",
        "case.last_activity": "Last activity",
        "case.anomalies": "Anomalies",
        "case.title": "Case",
        "case.summary": "Summary",
        "case.deadlines": "Deadlines",
        "case.no_deadlines": "No open deadline.",
        "case.timeline": "Timeline",
        "case.no_messages": "No messages.",
        "deadline.kind": "Deadline",
        "deadline.due_local": "Due (node time)",
        "deadline.due_utc": "Due (UTC)",
        "deadline.source": "Source",
        "deadline.confirmed": "Confirmed",
        "deadline.overdue": "Overdue",
        "msg.at": "Time",
        "msg.direction": "Direction",
        "msg.kind": "Kind",
        "msg.status": "Status",
        "msg.leaf": "Log position",
        "msg.receipt": "Receipt",
        "msg.body": "Body",
        "msg.read_body": "Read the message",
        "msg.title": "Message",
        "msg.field": "Field",
        "msg.value": "Value",
        "msg.back": "Back to the case",
        "anomaly.title": "Anomalies",
        "anomaly.code": "Code",
        "yes": "yes",
        "no": "no",
        "none": "none",
        "error.title": "Error",
        "error.forbidden": "Your role does not allow this.",
        "error.csrf": "This form has expired or did not come from this console. Reload the"
        " page and try again.",
        "error.not_found": "This page does not exist.",
        "error.too_large": "The form sent was too large.",
        "error.bad_form": "The form sent was malformed.",
        "error.method": "This method is not allowed here.",
        "error.refused": "This request was refused.",
        "error.coding": "The form sent was compressed: send it as it is, uncompressed.",
        "error.back": "Back to the inbox",
    },
    "fr": {
        "app.title": "Console relay247",
        "nav.inbox": "Boîte de réception",
        "nav.logout": "Se déconnecter",
        "nav.signed_in_as": "Connecté en tant que",
        "login.title": "Connexion de l'agent",
        "login.login": "Identifiant",
        "login.password": "Mot de passe",
        "login.code": "Code de l'authentificateur (6 chiffres)",
        "login.submit": "Se connecter",
        "login.bad": "Identifiant, mot de passe ou code incorrect.",
        "login.locked": "Ce compte est verrouillé après trop d'échecs de connexion. Réessayez"
        " plus tard ou adressez-vous à un administrateur.",
        "login.disabled": "Ce compte est désactivé. Adressez-vous à un administrateur.",
        "login.expired": "Votre session a pris fin. Veuillez vous reconnecter.",
        "inbox.title": "Boîte de réception",
        "inbox.empty": "Aucun dossier pour l'instant.",
        "inbox.caption": "Dossiers, urgents d'abord, puis par prochaine échéance",
        "case.id": "Dossier",
        "case.peer": "Correspondant",
        "case.role": "Notre rôle",
        "case.state": "État",
        "case.priority": "Priorité",
        "case.next_deadline": "Prochaine échéance",
        "case.opened": "Ouvert le",
        "case.last_activity": "Dernière activité",
        "case.anomalies": "Anomalies",
        "case.title": "Dossier",
        "case.summary": "Résumé",
        "case.deadlines": "Échéances",
        "case.no_deadlines": "Aucune échéance ouverte.",
        "case.timeline": "Chronologie",
        "case.no_messages": "Aucun message.",
        "deadline.kind": "Échéance",
        "deadline.due_local": "Date limite (heure du nœud)",
        "deadline.due_utc": "Date limite (UTC)",
        "deadline.source": "Origine",
        "deadline.confirmed": "Confirmée",
        "deadline.overdue": "Dépassée",
        "msg.at": "Heure",
        "msg.direction": "Sens",
        "msg.kind": "Type",
        "msg.status": "Statut",
        "msg.leaf": "Position dans le journal",
        "msg.receipt": "Accusé de réception",
        "msg.body": "Contenu",
        "msg.read_body": "Lire le message",
        "msg.title": "Message",
        "msg.field": "Champ",
        "msg.value": "Valeur",
        "msg.back": "Retour au dossier",
        "anomaly.title": "Anomalies",
        "anomaly.code": "Code",
        "yes": "oui",
        "no": "non",
        "none": "aucune",
        "error.title": "Erreur",
        "error.forbidden": "Votre rôle ne le permet pas.",
        "error.csrf": "Ce formulaire a expiré ou ne vient pas de cette console. Rechargez la"
        " page et réessayez.",
        "error.not_found": "Cette page n'existe pas.",
        "error.too_large": "Le formulaire envoyé est trop volumineux.",
        "error.bad_form": "Le formulaire envoyé est mal formé.",
        "error.method": "Cette méthode n'est pas permise ici.",
        "error.refused": "Cette requête a été refusée.",
        "error.coding": "Le formulaire envoyé est compressé : envoyez-le tel quel.",
        "error.back": "Retour à la boîte de réception",
    },
    "es": {
        "app.title": "Consola relay247",
        "nav.inbox": "Bandeja de entrada",
        "nav.logout": "Cerrar sesión",
        "nav.signed_in_as": "Sesión iniciada como",
        "login.title": "Inicio de sesión del agente",
        "login.login": "Nombre de usuario",
        "login.password": "Contraseña",
        "login.code": "Código del autenticador (6 cifras)",
        "login.submit": "Iniciar sesión",
        "login.bad": "Nombre de usuario, contraseña o código incorrectos.",
        "login.locked": "Esta cuenta está bloqueada tras demasiados intentos fallidos. Vuelva a"
        " intentarlo más tarde o consulte a un administrador.",
        "login.disabled": "Esta cuenta está desactivada. Consulte a un administrador.",
        "login.expired": "Su sesión ha terminado. Vuelva a iniciar sesión.",
        "inbox.title": "Bandeja de entrada",
        "inbox.empty": "Todavía no hay expedientes.",
        "inbox.caption": "Expedientes, urgentes primero, luego por próximo plazo",
        "case.id": "Expediente",
        "case.peer": "Contraparte",
        "case.role": "Nuestra posición",
        "case.state": "Estado",
        "case.priority": "Prioridad",
        "case.next_deadline": "Próximo plazo",
        "case.opened": "Abierto",
        "case.last_activity": "Última actividad",
        "case.anomalies": "Anomalías",
        "case.title": "Expediente",
        "case.summary": "Resumen",
        "case.deadlines": "Plazos",
        "case.no_deadlines": "Ningún plazo abierto.",
        "case.timeline": "Cronología",
        "case.no_messages": "Ningún mensaje.",
        "deadline.kind": "Plazo",
        "deadline.due_local": "Vencimiento (hora del nodo)",
        "deadline.due_utc": "Vencimiento (UTC)",
        "deadline.source": "Origen",
        "deadline.confirmed": "Confirmado",
        "deadline.overdue": "Vencido",
        "msg.at": "Hora",
        "msg.direction": "Sentido",
        "msg.kind": "Tipo",
        "msg.status": "Situación",
        "msg.leaf": "Posición en el registro",
        "msg.receipt": "Acuse de recibo",
        "msg.body": "Contenido",
        "msg.read_body": "Leer el mensaje",
        "msg.title": "Mensaje",
        "msg.field": "Campo",
        "msg.value": "Valor",
        "msg.back": "Volver al expediente",
        "anomaly.title": "Anomalías",
        "anomaly.code": "Código",
        "yes": "sí",
        "no": "no",
        "none": "ninguno",
        "error.title": "Error",
        "error.forbidden": "Su función no lo permite.",
        "error.csrf": "Este formulario ha caducado o no procede de esta consola. Recargue la"
        " página e inténtelo de nuevo.",
        "error.not_found": "Esta página no existe.",
        "error.too_large": "El formulario enviado es demasiado grande.",
        "error.bad_form": "El formulario enviado está mal formado.",
        "error.method": "Este método no está permitido aquí.",
        "error.refused": "Esta solicitud fue rechazada.",
        "error.coding": "El formulario enviado está comprimido: envíelo tal cual.",
        "error.back": "Volver a la bandeja de entrada",
    },
    "ar": {
        "app.title": "وحدة تحكم relay247",
        "nav.inbox": "صندوق الوارد",
        "nav.logout": "تسجيل الخروج",
        "nav.signed_in_as": "تم تسجيل الدخول باسم",
        "login.title": "تسجيل دخول الموظف",
        "login.login": "اسم الدخول",
        "login.password": "كلمة المرور",
        "login.code": "رمز المصادِق (6 أرقام)",
        "login.submit": "تسجيل الدخول",
        "login.bad": "اسم الدخول أو كلمة المرور أو الرمز غير صحيح.",
        "login.locked": "هذا الحساب مقفل بعد محاولات دخول فاشلة كثيرة. حاول لاحقًا أو اطلب"
        " المساعدة من مسؤول.",
        "login.disabled": "هذا الحساب معطَّل. اطلب المساعدة من مسؤول.",
        "login.expired": "انتهت جلستك. يرجى تسجيل الدخول مرة أخرى.",
        "inbox.title": "صندوق الوارد",
        "inbox.empty": "لا توجد ملفات بعد.",
        "inbox.caption": "الملفات، العاجلة أولاً، ثم حسب الموعد النهائي التالي",
        "case.id": "الملف",
        "case.peer": "الطرف المقابل",
        "case.role": "صفتنا",
        "case.state": "الحالة",
        "case.priority": "الأولوية",
        "case.next_deadline": "الموعد النهائي التالي",
        "case.opened": "تاريخ الفتح",
        "case.last_activity": "آخر نشاط",
        "case.anomalies": "حالات شاذة",
        "case.title": "الملف",
        "case.summary": "ملخص",
        "case.deadlines": "المواعيد النهائية",
        "case.no_deadlines": "لا يوجد موعد نهائي مفتوح.",
        "case.timeline": "التسلسل الزمني",
        "case.no_messages": "لا توجد رسائل.",
        "deadline.kind": "الموعد النهائي",
        "deadline.due_local": "الاستحقاق (توقيت العقدة)",
        "deadline.due_utc": "الاستحقاق (UTC)",
        "deadline.source": "المصدر",
        "deadline.confirmed": "مؤكَّد",
        "deadline.overdue": "متأخر",
        "msg.at": "الوقت",
        "msg.direction": "الاتجاه",
        "msg.kind": "النوع",
        "msg.status": "الوضع",
        "msg.leaf": "الموضع في السجل",
        "msg.receipt": "إشعار الاستلام",
        "msg.body": "المحتوى",
        "msg.read_body": "قراءة الرسالة",
        "msg.title": "رسالة",
        "msg.field": "الحقل",
        "msg.value": "القيمة",
        "msg.back": "العودة إلى الملف",
        "anomaly.title": "حالات شاذة",
        "anomaly.code": "الرمز",
        "yes": "نعم",
        "no": "لا",
        "none": "لا شيء",
        "error.title": "خطأ",
        "error.forbidden": "دورك لا يسمح بذلك.",
        "error.csrf": "انتهت صلاحية هذا النموذج أو لم يصدر عن وحدة التحكم هذه. أعد تحميل"
        " الصفحة وحاول مرة أخرى.",
        "error.not_found": "هذه الصفحة غير موجودة.",
        "error.too_large": "النموذج المرسل كبير جدًا.",
        "error.bad_form": "النموذج المرسل غير سليم.",
        "error.method": "هذه الطريقة غير مسموح بها هنا.",
        "error.refused": "رُفض هذا الطلب.",
        "error.coding": "النموذج المرسل مضغوط: أرسله كما هو دون ضغط.",
        "error.back": "العودة إلى صندوق الوارد",
    },
}

# The page areas' labels (console/_labels_areas.py).
_PARTS: Final = PARTS


#: Legal terms whose translation awaits a legal translator's review (issue 13 §3), per
#: language: never shown to users; tests/unit/test_console_i18n.py reads it and
#: docs/OPERATIONS.md lists the keys. A key leaves the set once a translator confirms it.
LEGAL_REVIEW: Final[dict[str, frozenset[str]]] = {
    "es": frozenset(
        {
            "case.role",
            "case.deadlines",
            "deadline.kind",
            "deadline.due_local",
            "deadline.due_utc",
            "deadline.overdue",
            "msg.receipt",
            "case.next_deadline",
            *_labels_pages.LEGAL,
            *_labels_kinds.LEGAL_REVIEW["es"],
            *_labels_codes_es_ar.LEGAL,
        }
    ),
    "ar": frozenset(
        {
            "case.role",
            "case.deadlines",
            "deadline.kind",
            "deadline.due_local",
            "deadline.due_utc",
            "deadline.overdue",
            "msg.receipt",
            "case.next_deadline",
            *_labels_pages.LEGAL,
            *_labels_kinds.LEGAL_REVIEW["ar"],
            *_labels_codes_es_ar.LEGAL,
        }
    ),
}


def _merge() -> None:
    for part in _PARTS:
        for language, labels in part.items():
            catalog = CATALOGS.setdefault(language, {})
            repeated = catalog.keys() & labels.keys()
            if repeated:
                raise RuntimeError(f"console labels defined twice: {sorted(repeated)}")
            catalog.update(labels)


_merge()


def label(language: str, key: str) -> str:
    """The label ``key`` in ``language`` (English for a language without a catalog).

    Raises:
        KeyError: an unknown key (a template bug the catalog test catches first).
    """
    return CATALOGS.get(language, CATALOGS[DEFAULT])[key]


def pick_language(accept_language: str) -> str:
    """The best catalog for an ``Accept-Language`` header (before login); English if none.

    Quality values order the choices; a malformed entry is skipped, never an error.
    """
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        primary = tag.strip().split("-")[0].lower()
        if primary in CATALOGS and quality > 0:
            choices.append((-quality, position, primary))
    return min(choices)[2] if choices else DEFAULT


def account_language(language: str) -> str:
    """The catalog for an officer's account language (en, fr, es or ar; else English)."""
    return language if language in CATALOGS else DEFAULT
