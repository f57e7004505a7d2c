"""Labels of the attachments on the case page (console/_attach.py, templates/case.html)."""

from __future__ import annotations

from typing import Final

LABELS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "attach.title": "Attachments",
        "attach.caption": "Files carried by the messages, encrypted end to end",
        "attach.name": "File",
        "attach.type": "Type",
        "attach.size": "Size (bytes)",
        "attach.direction": "Direction",
        "attach.in": "received",
        "attach.out": "sent",
        "attach.download": "Download",
        "attach.not_kept": "not kept on this node",
    },
    "fr": {
        "attach.title": "Pièces jointes",
        "attach.caption": "Fichiers portés par les messages, chiffrés de bout en bout",
        "attach.name": "Fichier",
        "attach.type": "Nature",
        "attach.size": "Taille (octets)",
        "attach.direction": "Sens",
        "attach.in": "reçue",
        "attach.out": "envoyée",
        "attach.download": "Télécharger",
        "attach.not_kept": "non conservée sur ce nœud",
    },
    "es": {
        "attach.title": "Archivos adjuntos",
        "attach.caption": "Archivos que llevan los mensajes, cifrados de extremo a extremo",
        "attach.name": "Archivo",
        "attach.type": "Formato",
        "attach.size": "Tamaño (bytes)",
        "attach.direction": "Sentido",
        "attach.in": "recibido",
        "attach.out": "enviado",
        "attach.download": "Descargar",
        "attach.not_kept": "no conservado en este nodo",
    },
    "ar": {
        "attach.title": "المرفقات",
        "attach.caption": "ملفات تحملها الرسائل، مشفرة من طرف إلى طرف",
        "attach.name": "الملف",
        "attach.type": "النوع",
        "attach.size": "الحجم (بايت)",
        "attach.direction": "الاتجاه",
        "attach.in": "مستلم",
        "attach.out": "مرسل",
        "attach.download": "تنزيل",
        "attach.not_kept": "غير محفوظ على هذه العقدة",
    },
}
