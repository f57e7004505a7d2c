"""Labels of the security keys (WebAuthn): the officer's security page
(console/_keys_pages.py, templates/security.html) and the login page's key button."""

from __future__ import annotations

from typing import Final

LABELS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "nav.security": "Security keys",
        "keys.title": "Your security keys",
        "keys.intro": "A security key can replace the authenticator code when you log in:"
        " type your login name and password, then touch the key. Your code keeps working.",
        "keys.caption": "Security keys registered to your account",
        "keys.name": "Key name",
        "keys.added_at": "Added",
        "keys.last_used": "Last used",
        "keys.actions": "Actions",
        "keys.never": "never",
        "keys.remove": "Remove",
        "keys.none": "No security key yet.",
        "keys.add": "Add a security key",
        "keys.name_hint": "A name you will recognise, such as “blue key, desk 2”.",
        "keys.register": "Register the key",
        "keys.need_js": "Registering a security key needs JavaScript and a browser that"
        " supports security keys (WebAuthn).",
        "keys.no_webauthn": "This browser cannot use security keys (no WebAuthn). Use your"
        " authenticator code.",
        "keys.wrong_origin": "Security keys only work at this console's own address:",
        "keys.failed": "The security key did not answer (cancelled, timed out or not"
        " recognised). Try again, or use your authenticator code.",
        "keys.unavailable": "Security keys are not set up on this node (ask the operator:"
        " rp_id and origin in node.toml).",
        "keys.login_hint": "Or, instead of the code: type your login name and password,"
        " then use your security key.",
        "keys.login_button": "Log in with a security key",
        "keys.added": "The security key is registered.",
        "keys.removed": "The security key is removed.",
        "keys.error.refused": "The security key's answer could not be verified. Nothing"
        " was registered.",
        "keys.error.exists": "This key, or a key with this name, is registered already.",
        "keys.error.invalid": "Give the key a name of 1 to 64 characters (at most 10 keys).",
        "keys.error.not_found": "You have no security key with this name.",
        "keys.error.expired": "The registration took too long or was already used. Try again.",
        "keys.login_expired": "The security key request expired. Try again.",
        "keys.login_bad": "Wrong login name, password or security key.",
    },
    "fr": {
        "nav.security": "Clés de sécurité",
        "keys.title": "Vos clés de sécurité",
        "keys.intro": "Une clé de sécurité peut remplacer le code de l’application"
        " d’authentification à la connexion : saisissez votre identifiant et votre mot de"
        " passe, puis touchez la clé. Votre code reste valable.",
        "keys.caption": "Clés de sécurité enregistrées sur votre compte",
        "keys.name": "Nom de la clé",
        "keys.added_at": "Ajoutée le",
        "keys.last_used": "Dernière utilisation",
        "keys.actions": "Opérations",
        "keys.never": "jamais",
        "keys.remove": "Retirer",
        "keys.none": "Aucune clé de sécurité pour l’instant.",
        "keys.add": "Ajouter une clé de sécurité",
        "keys.name_hint": "Un nom que vous reconnaîtrez, par exemple « clé bleue, poste 2 ».",
        "keys.register": "Enregistrer la clé",
        "keys.need_js": "L’enregistrement d’une clé de sécurité demande JavaScript et un"
        " navigateur qui prend en charge les clés de sécurité (WebAuthn).",
        "keys.no_webauthn": "Ce navigateur ne peut pas utiliser de clé de sécurité (pas de"
        " WebAuthn). Utilisez votre code d’authentification.",
        "keys.wrong_origin": "Les clés de sécurité ne fonctionnent qu’à l’adresse propre de"
        " cette console :",
        "keys.failed": "La clé de sécurité n’a pas répondu (annulation, délai dépassé ou clé"
        " non reconnue). Réessayez, ou utilisez votre code d’authentification.",
        "keys.unavailable": "Les clés de sécurité ne sont pas configurées sur ce nœud"
        " (voir l’exploitant : rp_id et origin dans node.toml).",
        "keys.login_hint": "Ou, au lieu du code : saisissez votre identifiant et votre mot"
        " de passe, puis utilisez votre clé de sécurité.",
        "keys.login_button": "Se connecter avec une clé de sécurité",
        "keys.added": "La clé de sécurité est enregistrée.",
        "keys.removed": "La clé de sécurité est retirée.",
        "keys.error.refused": "La réponse de la clé de sécurité n’a pas pu être vérifiée."
        " Rien n’a été enregistré.",
        "keys.error.exists": "Cette clé, ou une clé de ce nom, est déjà enregistrée.",
        "keys.error.invalid": "Donnez à la clé un nom de 1 à 64 caractères (10 clés au plus).",
        "keys.error.not_found": "Vous n’avez aucune clé de sécurité de ce nom.",
        "keys.error.expired": "L’enregistrement a pris trop de temps ou a déjà servi. Réessayez.",
        "keys.login_expired": "La demande à la clé de sécurité a expiré. Réessayez.",
        "keys.login_bad": "Identifiant, mot de passe ou clé de sécurité incorrect.",
    },
    "es": {
        "nav.security": "Llaves de seguridad",
        "keys.title": "Sus llaves de seguridad",
        "keys.intro": "Una llave de seguridad puede sustituir al código de la aplicación de"
        " autenticación al iniciar sesión: escriba su usuario y su contraseña y toque la"
        " llave. Su código sigue siendo válido.",
        "keys.caption": "Llaves de seguridad registradas en su cuenta",
        "keys.name": "Nombre de la llave",
        "keys.added_at": "Añadida",
        "keys.last_used": "Último uso",
        "keys.actions": "Acciones",
        "keys.never": "nunca",
        "keys.remove": "Quitar",
        "keys.none": "Todavía no hay ninguna llave de seguridad.",
        "keys.add": "Añadir una llave de seguridad",
        "keys.name_hint": "Un nombre que reconozca, por ejemplo «llave azul, puesto 2».",
        "keys.register": "Registrar la llave",
        "keys.need_js": "Para registrar una llave de seguridad se necesita JavaScript y un"
        " navegador compatible con llaves de seguridad (WebAuthn).",
        "keys.no_webauthn": "Este navegador no puede usar llaves de seguridad (sin WebAuthn)."
        " Use su código de autenticación.",
        "keys.wrong_origin": "Las llaves de seguridad solo funcionan en la dirección propia"
        " de esta consola:",
        "keys.failed": "La llave de seguridad no respondió (cancelada, tiempo agotado o no"
        " reconocida). Inténtelo de nuevo o use su código de autenticación.",
        "keys.unavailable": "Las llaves de seguridad no están configuradas en este nodo"
        " (consulte al operador: rp_id y origin en node.toml).",
        "keys.login_hint": "O, en lugar del código: escriba su usuario y su contraseña y"
        " use su llave de seguridad.",
        "keys.login_button": "Iniciar sesión con una llave de seguridad",
        "keys.added": "La llave de seguridad está registrada.",
        "keys.removed": "La llave de seguridad se ha quitado.",
        "keys.error.refused": "No se pudo verificar la respuesta de la llave de seguridad."
        " No se registró nada.",
        "keys.error.exists": "Esta llave, o una llave con este nombre, ya está registrada.",
        "keys.error.invalid": "Dé a la llave un nombre de 1 a 64 caracteres (10 llaves como"
        " máximo).",
        "keys.error.not_found": "No tiene ninguna llave de seguridad con este nombre.",
        "keys.error.expired": "El registro tardó demasiado o ya se utilizó. Inténtelo de nuevo.",
        "keys.login_expired": "La solicitud a la llave de seguridad caducó. Inténtelo de nuevo.",
        "keys.login_bad": "Usuario, contraseña o llave de seguridad incorrectos.",
    },
    "ar": {
        "nav.security": "مفاتيح الأمان",
        "keys.title": "مفاتيح الأمان الخاصة بك",
        "keys.intro": "يمكن لمفتاح الأمان أن يحل محل رمز تطبيق المصادقة عند تسجيل الدخول:"
        " اكتب اسم المستخدم وكلمة المرور، ثم المس المفتاح. يبقى رمزك صالحًا.",
        "keys.caption": "مفاتيح الأمان المسجلة في حسابك",
        "keys.name": "اسم المفتاح",
        "keys.added_at": "تاريخ الإضافة",
        "keys.last_used": "آخر استخدام",
        "keys.actions": "إجراءات",
        "keys.never": "أبدًا",
        "keys.remove": "إزالة",
        "keys.none": "لا يوجد مفتاح أمان بعد.",
        "keys.add": "إضافة مفتاح أمان",
        "keys.name_hint": "اسم تتعرف عليه، مثل «المفتاح الأزرق، المكتب 2».",
        "keys.register": "تسجيل المفتاح",
        "keys.need_js": "يتطلب تسجيل مفتاح الأمان لغة جافاسكريبت ومتصفحًا يدعم مفاتيح الأمان"
        " (WebAuthn).",
        "keys.no_webauthn": "لا يستطيع هذا المتصفح استخدام مفاتيح الأمان (لا يدعم WebAuthn)."
        " استخدم رمز المصادقة.",
        "keys.wrong_origin": "لا تعمل مفاتيح الأمان إلا على العنوان الخاص بهذه الواجهة:",
        "keys.failed": "لم يستجب مفتاح الأمان (أُلغي الطلب أو انتهت المهلة أو لم يُتعرّف على"
        " المفتاح). حاول مرة أخرى أو استخدم رمز المصادقة.",
        "keys.unavailable": "مفاتيح الأمان غير مهيأة على هذه العقدة (راجع المشغّل: rp_id و"
        " origin في node.toml).",
        "keys.login_hint": "أو بدلًا من الرمز: اكتب اسم المستخدم وكلمة المرور، ثم استخدم مفتاح"
        " الأمان.",
        "keys.login_button": "تسجيل الدخول بمفتاح أمان",
        "keys.added": "تم تسجيل مفتاح الأمان.",
        "keys.removed": "تمت إزالة مفتاح الأمان.",
        "keys.error.refused": "تعذر التحقق من استجابة مفتاح الأمان. لم يُسجَّل شيء.",
        "keys.error.exists": "هذا المفتاح، أو مفتاح بهذا الاسم، مسجل بالفعل.",
        "keys.error.invalid": "أعطِ المفتاح اسمًا من 1 إلى 64 حرفًا (10 مفاتيح على الأكثر).",
        "keys.error.not_found": "ليس لديك مفتاح أمان بهذا الاسم.",
        "keys.error.expired": "استغرق التسجيل وقتًا طويلًا أو استُخدم من قبل. حاول مرة أخرى.",
        "keys.login_expired": "انتهت صلاحية طلب مفتاح الأمان. حاول مرة أخرى.",
        "keys.login_bad": "اسم المستخدم أو كلمة المرور أو مفتاح الأمان غير صحيح.",
    },
}
