"""Outbound: render a body for an e-mail-only member, sign+encrypt it as PGP/MIME
(RFC 3156 §4 and §6.2) and submit it by SMTP (PROTOCOL.md §22.3, steps O1-O5)."""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING, Literal, NamedTuple

import msgspec

from node.email_bridge.openpgp import load_cert
from node.render import LANGUAGES, load_catalog, render_body
from schemas.messages import Body

if TYPE_CHECKING:
    from datetime import datetime

    from node.email_bridge.openpgp import NodeOpenPgpKey
    from schemas.directory import Member

#: The protected header inside the encrypted part that names the case (M5).
CASE_HEADER = "X-Relay247-Case"
#: The line of the text part a member's reply quotes, naming the case (M5).
CASE_LINE = "relay247-case:"
JSON_NAME = "relay247-body.json"


class Outgoing(NamedTuple):
    """An e-mail as it will be sent: its exact bytes and their SHA-256 (O4)."""

    raw: bytes
    sha256: str
    message_id: str
    to: str


def _language(member: Member) -> str:
    """O1: the first of the member's languages we have labels for, else English."""
    for tag in member.languages:
        base = tag.split("-", 1)[0].lower()
        if base in LANGUAGES:
            return base
    return "en"


def render_text(body: Body, member: Member) -> str:
    """O1: the body as plain text in the member's language, with the case line."""
    lang = _language(member)
    cat = load_catalog(lang)
    lines = [f"{CASE_LINE} {body.case_id}", ""]
    for row in render_body(body, lang):
        lines.append(f"{'  ' * row.depth}{row.label}: {row.value}")
    lines += ["", cat.text("email_bridge_footer")]
    return "\n".join(lines) + "\n"


def build(
    body: Body, *, member: Member, node_key: NodeOpenPgpKey, sender_address: str, now: datetime
) -> Outgoing:
    """O1-O4: the PGP/MIME message for ``member`` carrying ``body``.

    Raises:
        BridgeRefusedError: the member's certificate is unusable (``bad_certificate``).
    """
    reach = member.email_bridge
    if isinstance(reach, msgspec.UnsetType):
        raise ValueError(f"member {member.id} is not reached by e-mail")
    cert = load_cert(reach.openpgp_cert)
    # O2: the inner entity: text in the member's language + the structured body as JSON.
    inner = EmailMessage()
    inner[CASE_HEADER] = str(body.case_id)
    inner.set_content(render_text(body, member), charset="utf-8", cte="quoted-printable")
    inner.add_attachment(
        msgspec.json.encode(body), maintype="application", subtype="json", filename=JSON_NAME
    )
    # O3: one OpenPGP message, signed then encrypted to the member's certificate.
    armored = node_key.sign_and_encrypt(inner.as_bytes(policy=SMTP_POLICY), cert)
    outer = EmailMessage()
    outer["From"] = sender_address
    outer["To"] = reach.address
    outer["Subject"] = "relay247"  # the case id travels inside, encrypted (M5)
    outer["Date"] = format_datetime(now)
    message_id = make_msgid(domain=sender_address.rsplit("@", 1)[-1])
    outer["Message-ID"] = message_id
    outer.set_type("multipart/encrypted")
    outer.set_param("protocol", "application/pgp-encrypted")
    version = EmailMessage()
    version.set_content(
        b"Version: 1\r\n", maintype="application", subtype="pgp-encrypted", cte="7bit"
    )
    data = EmailMessage()
    data.set_content(
        armored,
        maintype="application",
        subtype="octet-stream",
        cte="7bit",
        disposition="inline",
        filename="encrypted.asc",
    )
    outer.attach(version)
    outer.attach(data)
    # O4: the exact bytes that go on the wire, and their hash for the audit log.
    raw = outer.as_bytes(policy=SMTP_POLICY)
    return Outgoing(raw, hashlib.sha256(raw).hexdigest(), message_id, reach.address)


TlsMode = Literal["starttls", "implicit"]


def submit(
    mail: Outgoing,
    *,
    host: str,
    port: int,
    tls: TlsMode,
    sender: str,
    context: ssl.SSLContext,
    login: tuple[str, str] | None = None,
    timeout: float = 30.0,
) -> None:
    """O5: submit ``mail`` to the relay host, TLS always (blocking: run it in a thread).

    Raises:
        smtplib.SMTPException, OSError: the submission failed; nothing was accepted.
    """
    smtp: smtplib.SMTP
    if tls == "implicit":
        smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    with smtp:
        if tls == "starttls":
            smtp.starttls(context=context)  # refuses to go on in clear if it fails
        if login is not None:
            smtp.login(*login)
        refused = smtp.sendmail(sender, [mail.to], mail.raw)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)
