"""The console's labels in each language it speaks (issue 13 §3 "Languages").

A plain dict per language: there is no build step, so no compiled gettext catalogs.
tests/unit/test_console_i18n.py fails on any label missing in any language, and on
any label a template uses that the catalog lacks. Coded values (states, deadline
kinds) are shown as their codes in this slice; free text is shown as written.
"""

from __future__ import annotations

from typing import Final

from console import _labels_actions, _labels_roster, _labels_send

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
        "error.back": "Retour à la boîte de réception",
    },
}

# Each page area may keep its labels in its own module (``console/_labels_<area>.py``,
# a ``LABELS`` dict shaped like CATALOGS) and list it here: one line per area, so that
# work on two areas does not edit the same lines. Keys must not repeat across parts.
_PARTS: Final[tuple[dict[str, dict[str, str]], ...]] = (
    _labels_send.LABELS,
    _labels_roster.LABELS,
    _labels_actions.LABELS,
)


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
    """The catalog for an officer's account language (English until es/ar exist)."""
    return language if language in CATALOGS else DEFAULT
