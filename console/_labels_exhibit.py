"""Labels of the court exhibit (issue 18 §1, PROTOCOL.md §21), in the console's four
languages: the PDF that ``relay247 node export-case --pdf`` and the case page's
"Court exhibit (PDF)" button produce."""

from __future__ import annotations

from typing import Final

LABELS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "exhibit.title": "Court exhibit: case",
        "exhibit.button": "Court exhibit (PDF)",
        "exhibit.button_hint": "A PDF/A document of the whole case for a court, with the"
        " signed evidence bundle embedded in it.",
        "exhibit.intro": "This document reproduces a case exchanged between 24/7 points of"
        " contact through relay247. Every message below was signed by its sender and"
        " recorded in a public, tamper-evident log. The complete evidence bundle is"
        " embedded in this PDF as the file relay247-evidence.json.",
        "exhibit.as_of": "Latest log entry of the case",
        "exhibit.zone": "Node's time zone",
        "exhibit.messages": "Messages",
        "exhibit.from": "From",
        "exhibit.to": "To",
        "exhibit.created": "Written by the sender",
        "exhibit.signed_by": "Signed with the key",
        "exhibit.sealed_to": "Encrypted to the key",
        "exhibit.body_sha256": "Body SHA-256",
        "exhibit.accepted": "Accepted by the relay, log entry",
        "exhibit.acked": "Delivery acknowledged, log entry",
        "exhibit.receipts": "Signed receipts",
        "exhibit.signed_by_member": "signed by",
        "exhibit.content": "Content",
        "exhibit.linked": "Linked case",
        "exhibit.checkpoint": "Log checkpoint",
        "exhibit.log": "Log",
        "exhibit.log_key": "Log key",
        "exhibit.tree_size": "Tree size (entries)",
        "exhibit.root": "Root hash",
        "exhibit.witnesses": "Witnesses that cosigned it",
        "exhibit.note": "The signed checkpoint as published, with the witnesses' cosignatures",
        "exhibit.directories": "Directory versions used",
        "exhibit.check_title": "How to check this document",
        "exhibit.check_1": "This PDF carries the complete evidence bundle as an embedded"
        " file: every message as signed and encrypted, the receipts, and the proofs that"
        " the public log holds each of them.",
        "exhibit.check_2": "Anyone can check it with the free relay247 software, without"
        " access to the network. Obtain the network's trust file (trust.json) and the log"
        " key from the network's coordinators, not from this document, then run:",
        "exhibit.check_3": "The command takes the bundle out of the PDF and checks every"
        " signature and every log proof. A single changed byte makes it fail.",
        "exhibit.check_4": "It then produces this document again from the bundle and"
        " compares it with this one, page by page. If any visible text was changed, it"
        " names the page.",
        "exhibit.check_5": "The witnesses named above cosigned the checkpoint: they confirm"
        " that the log showed the same history to everyone.",
        "exhibit.check_6": "Free text is reproduced exactly as the sender wrote it. Coded"
        " values are shown in the reader's language; the value as sent is beside it.",
        "exhibit.emails": "Exchanged by e-mail",
        "exhibit.emails_intro": "These messages went to or came from a member that has no"
        " node, as e-mail signed and encrypted with OpenPGP. The node checked the member's"
        " signature on each reply it accepted. For each e-mail the node signed a record of"
        " the e-mail's SHA-256, which the public log holds; the e-mail itself is encrypted"
        " and is not in this document. The content shown is the one the node states it"
        " sent or received: the log proves the e-mail's hash, not its content.",
        "exhibit.email": "E-mail",
        "exhibit.email_sent": "sent by e-mail",
        "exhibit.email_received": "received by e-mail",
        "exhibit.email_at": "Recorded by the node",
        "exhibit.email_sha256": "E-mail SHA-256",
        "exhibit.email_signed": "Record signed by the node",
        "exhibit.email_logged": "Record logged by the relay, log entry",
        "exhibit.email_content": "Content, as stated by the node",
        "exhibit.failed": "The court exhibit could not be produced:",
    },
    "fr": {
        "exhibit.title": "Pièce pour le tribunal : dossier",
        "exhibit.button": "Pièce pour le tribunal (PDF)",
        "exhibit.button_hint": "Un document PDF/A de tout le dossier pour un tribunal, avec"
        " le paquet de preuves signé intégré.",
        "exhibit.intro": "Ce document reproduit un dossier échangé entre points de contact"
        " 24/7 par relay247. Chaque message ci-dessous a été signé par son expéditeur et"
        " inscrit dans un journal public infalsifiable. Le paquet de preuves complet est"
        " intégré à ce PDF sous le nom relay247-evidence.json.",
        "exhibit.as_of": "Dernière inscription du dossier au journal",
        "exhibit.zone": "Fuseau horaire du nœud",
        "exhibit.messages": "Messages échangés",
        "exhibit.from": "De",
        "exhibit.to": "À",
        "exhibit.created": "Rédigé par l'expéditeur",
        "exhibit.signed_by": "Signé avec la clé",
        "exhibit.sealed_to": "Chiffré pour la clé",
        "exhibit.body_sha256": "SHA-256 du contenu",
        "exhibit.accepted": "Accepté par le relais, entrée du journal",
        "exhibit.acked": "Remise confirmée, entrée du journal",
        "exhibit.receipts": "Accusés de réception signés",
        "exhibit.signed_by_member": "signé par",
        "exhibit.content": "Contenu",
        "exhibit.linked": "Dossier lié",
        "exhibit.checkpoint": "Point de contrôle du journal",
        "exhibit.log": "Journal",
        "exhibit.log_key": "Clé du journal",
        "exhibit.tree_size": "Taille de l'arbre (entrées)",
        "exhibit.root": "Empreinte racine",
        "exhibit.witnesses": "Témoins qui l'ont contresigné",
        "exhibit.note": "Le point de contrôle signé tel que publié, avec les contresignatures"
        " des témoins",
        "exhibit.directories": "Versions de l'annuaire utilisées",
        "exhibit.check_title": "Comment vérifier ce document",
        "exhibit.check_1": "Ce PDF contient le paquet de preuves complet en fichier intégré :"
        " chaque message tel que signé et chiffré, les accusés de réception et les preuves"
        " que le journal public contient chacun d'eux.",
        "exhibit.check_2": "Chacun peut le vérifier avec le logiciel libre relay247, sans"
        " accès au réseau. Obtenez le fichier de confiance du réseau (trust.json) et la clé"
        " du journal auprès des coordinateurs du réseau, et non de ce document, puis lancez :",
        "exhibit.check_3": "La commande extrait le paquet du PDF et vérifie chaque signature"
        " et chaque preuve du journal. Un seul octet modifié la fait échouer.",
        "exhibit.check_4": "Elle produit ensuite de nouveau ce document à partir du paquet"
        " et le compare à celui-ci, page par page. Si un texte visible a été modifié, elle"
        " indique la page.",
        "exhibit.check_5": "Les témoins cités ci-dessus ont contresigné le point de contrôle :"
        " ils confirment que le journal a montré le même historique à tous.",
        "exhibit.check_6": "Le texte libre est reproduit exactement tel que l'expéditeur l'a"
        " écrit. Les valeurs codées sont données dans la langue du lecteur, à côté de la"
        " valeur envoyée.",
        "exhibit.emails": "Échangés par courriel",
        "exhibit.emails_intro": "Ces messages sont partis vers un membre sans nœud, ou"
        " venus de lui, par courriel signé et chiffré avec OpenPGP. Le nœud a vérifié la"
        " signature du membre sur chaque réponse acceptée. Pour chaque courriel, le nœud a"
        " signé une inscription de son empreinte SHA-256, que le journal public conserve ;"
        " le courriel lui-même est chiffré et ne figure pas dans ce document. Le contenu"
        " affiché est celui que le nœud déclare avoir envoyé ou reçu : le journal prouve"
        " l'empreinte du courriel, pas son contenu.",
        "exhibit.email": "Courriel",
        "exhibit.email_sent": "envoyé par courriel",
        "exhibit.email_received": "reçu par courriel",
        "exhibit.email_at": "Inscrit par le nœud",
        "exhibit.email_sha256": "SHA-256 du courriel",
        "exhibit.email_signed": "Inscription signée par le nœud",
        "exhibit.email_logged": "Inscription au journal du relais, entrée",
        "exhibit.email_content": "Contenu, tel que le nœud le déclare",
        "exhibit.failed": "La pièce pour le tribunal n'a pas pu être produite :",
    },
    "es": {
        "exhibit.title": "Prueba documental: caso",
        "exhibit.button": "Prueba documental (PDF)",
        "exhibit.button_hint": "Un documento PDF/A de todo el caso para un tribunal, con el"
        " paquete de pruebas firmado incorporado.",
        "exhibit.intro": "Este documento reproduce un caso intercambiado entre puntos de"
        " contacto 24/7 a través de relay247. Cada mensaje fue firmado por su remitente y"
        " registrado en un registro público a prueba de manipulaciones. El paquete de"
        " pruebas completo está incorporado en este PDF como el archivo"
        " relay247-evidence.json.",
        "exhibit.as_of": "Última entrada del caso en el registro",
        "exhibit.zone": "Zona horaria del nodo",
        "exhibit.messages": "Mensajes",
        "exhibit.from": "De",
        "exhibit.to": "Para",
        "exhibit.created": "Redactado por el remitente",
        "exhibit.signed_by": "Firmado con la clave",
        "exhibit.sealed_to": "Cifrado para la clave",
        "exhibit.body_sha256": "SHA-256 del contenido",
        "exhibit.accepted": "Aceptado por el relé, entrada del registro",
        "exhibit.acked": "Entrega confirmada, entrada del registro",
        "exhibit.receipts": "Acuses de recibo firmados",
        "exhibit.signed_by_member": "firmado por",
        "exhibit.content": "Contenido",
        "exhibit.linked": "Caso vinculado",
        "exhibit.checkpoint": "Punto de control del registro",
        "exhibit.log": "Registro",
        "exhibit.log_key": "Clave del registro",
        "exhibit.tree_size": "Tamaño del árbol (entradas)",
        "exhibit.root": "Hash raíz",
        "exhibit.witnesses": "Testigos que lo refrendaron",
        "exhibit.note": "El punto de control firmado tal como se publicó, con las firmas de"
        " los testigos",
        "exhibit.directories": "Versiones del directorio utilizadas",
        "exhibit.check_title": "Cómo comprobar este documento",
        "exhibit.check_1": "Este PDF contiene el paquete de pruebas completo como archivo"
        " incorporado: cada mensaje tal como se firmó y cifró, los acuses de recibo y las"
        " pruebas de que el registro público contiene cada uno.",
        "exhibit.check_2": "Cualquiera puede comprobarlo con el programa libre relay247, sin"
        " acceso a la red. Obtenga el archivo de confianza de la red (trust.json) y la clave"
        " del registro de los coordinadores de la red, no de este documento, y ejecute:",
        "exhibit.check_3": "La orden extrae el paquete del PDF y comprueba cada firma y cada"
        " prueba del registro. Un solo byte modificado la hace fallar.",
        "exhibit.check_4": "Después vuelve a producir este documento a partir del paquete y"
        " lo compara con este, página por página. Si se modificó algún texto visible, indica"
        " la página.",
        "exhibit.check_5": "Los testigos citados refrendaron el punto de control: confirman"
        " que el registro mostró la misma historia a todos.",
        "exhibit.check_6": "El texto libre se reproduce exactamente como lo escribió el"
        " remitente. Los valores codificados se muestran en el idioma del lector, junto al"
        " valor enviado.",
        "exhibit.emails": "Intercambiados por correo electrónico",
        "exhibit.emails_intro": "Estos mensajes se enviaron a un miembro sin nodo, o se"
        " recibieron de él, por correo electrónico firmado y cifrado con OpenPGP. El nodo"
        " comprobó la firma del miembro en cada respuesta que aceptó. Para cada correo, el"
        " nodo firmó un registro de su SHA-256, que el registro público conserva; el correo"
        " en sí está cifrado y no figura en este documento. El contenido mostrado es el que"
        " el nodo declara haber enviado o recibido: el registro prueba el hash del correo,"
        " no su contenido.",
        "exhibit.email": "Correo electrónico",
        "exhibit.email_sent": "enviado por correo electrónico",
        "exhibit.email_received": "recibido por correo electrónico",
        "exhibit.email_at": "Registrado por el nodo",
        "exhibit.email_sha256": "SHA-256 del correo",
        "exhibit.email_signed": "Registro firmado por el nodo",
        "exhibit.email_logged": "Registro anotado por el relé, entrada",
        "exhibit.email_content": "Contenido, según declara el nodo",
        "exhibit.failed": "No se pudo producir la prueba documental:",
    },
    "ar": {
        "exhibit.title": "مستند للمحكمة: القضية",
        "exhibit.button": "مستند للمحكمة (PDF)",
        "exhibit.button_hint": "مستند PDF/A للقضية كاملة موجّه إلى المحكمة، تُدمج فيه حزمة"
        " الأدلة الموقّعة.",
        "exhibit.intro": "يعرض هذا المستند قضية جرى تبادلها بين نقاط الاتصال العاملة على"
        " مدار الساعة عبر relay247. وقّع المرسل كل رسالة أدناه، وسُجّلت في سجل عام يكشف أي"
        " تلاعب. حزمة الأدلة الكاملة مدمجة في هذا الملف باسم relay247-evidence.json.",
        "exhibit.as_of": "آخر قيد للقضية في السجل",
        "exhibit.zone": "المنطقة الزمنية للعقدة",
        "exhibit.messages": "الرسائل",
        "exhibit.from": "من",
        "exhibit.to": "إلى",
        "exhibit.created": "كتبها المرسل",
        "exhibit.signed_by": "موقّعة بالمفتاح",
        "exhibit.sealed_to": "مشفّرة للمفتاح",
        "exhibit.body_sha256": "بصمة SHA-256 للمحتوى",
        "exhibit.accepted": "قبلها المُرحِّل، قيد السجل",
        "exhibit.acked": "أُكّد التسليم، قيد السجل",
        "exhibit.receipts": "إيصالات الاستلام الموقّعة",
        "exhibit.signed_by_member": "وقّعه",
        "exhibit.content": "المحتوى",
        "exhibit.linked": "قضية مرتبطة",
        "exhibit.checkpoint": "نقطة تحقق السجل",
        "exhibit.log": "السجل",
        "exhibit.log_key": "مفتاح السجل",
        "exhibit.tree_size": "حجم الشجرة (القيود)",
        "exhibit.root": "بصمة الجذر",
        "exhibit.witnesses": "الشهود الذين وقّعوها",
        "exhibit.note": "نقطة التحقق الموقّعة كما نُشرت، مع تواقيع الشهود",
        "exhibit.directories": "إصدارات الدليل المستخدمة",
        "exhibit.check_title": "كيف تتحقق من هذا المستند",
        "exhibit.check_1": "يحمل هذا الملف حزمة الأدلة كاملة كملف مدمج: كل رسالة كما وُقّعت"
        " وشُفّرت، وإيصالات الاستلام، والبراهين على أن السجل العام يتضمن كلاً منها.",
        "exhibit.check_2": "يمكن لأي شخص التحقق منه ببرنامج relay247 الحر، دون الاتصال"
        " بالشبكة. احصل على ملف الثقة للشبكة (trust.json) ومفتاح السجل من منسّقي الشبكة، لا"
        " من هذا المستند، ثم نفّذ:",
        "exhibit.check_3": "يستخرج الأمر الحزمة من الملف ويتحقق من كل توقيع وكل برهان في"
        " السجل. يكفي تغيير بايت واحد لفشل التحقق.",
        "exhibit.check_4": "ثم يُنتج هذا المستند من جديد انطلاقاً من الحزمة ويقارنه بهذا"
        " المستند صفحةً صفحة. إذا غُيّر أي نص ظاهر، يذكر الصفحة.",
        "exhibit.check_5": "وقّع الشهود المذكورون أعلاه نقطة التحقق: يؤكدون أن السجل عرض"
        " التاريخ نفسه على الجميع.",
        "exhibit.check_6": "يُنقل النص الحر تماماً كما كتبه المرسل. وتُعرض القيم المرمّزة"
        " بلغة القارئ، بجانب القيمة المرسلة.",
        "exhibit.emails": "المتبادلة بالبريد الإلكتروني",
        "exhibit.emails_intro": "أُرسلت هذه الرسائل إلى عضو ليست لديه عقدة أو وردت منه، بالبريد"
        " الإلكتروني الموقّع والمشفّر بـ OpenPGP. وقد تحققت العقدة من توقيع العضو على كل رد"
        " قبلته. ولكل رسالة بريد وقّعت العقدة قيداً يتضمن بصمة SHA-256 للرسالة، يحفظه السجل"
        " العام؛ أما الرسالة نفسها فمشفّرة وليست في هذا المستند. والمحتوى المعروض هو ما تصرّح"
        " العقدة بأنها أرسلته أو تلقّته: يثبت السجل بصمة الرسالة لا محتواها.",
        "exhibit.email": "بريد إلكتروني",
        "exhibit.email_sent": "أُرسل بالبريد الإلكتروني",
        "exhibit.email_received": "ورد بالبريد الإلكتروني",
        "exhibit.email_at": "سجّلته العقدة",
        "exhibit.email_sha256": "بصمة SHA-256 للرسالة",
        "exhibit.email_signed": "القيد موقّع من العقدة",
        "exhibit.email_logged": "قيد سجّله المرحّل، رقم القيد",
        "exhibit.email_content": "المحتوى كما تصرّح به العقدة",
        "exhibit.failed": "تعذّر إنتاج المستند للمحكمة:",
    },
}
