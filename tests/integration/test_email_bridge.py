"""The OpenPGP e-mail bridge against a real mail system on loopback (issue 18 §2).

aiosmtpd (STARTTLS required) delivers into a Maildir that Dovecot serves by IMAP
(STARTTLS required); GnuPG plays the e-mail-only member, an OpenPGP implementation
independent of the node's (Sequoia through pysequoia). Every refusal has its test.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.policy import default as default_policy

import msgspec
import pytest

from node.email_bridge import (
    BridgeRefusedError,
    Mailbox,
    NodeOpenPgpKey,
    Reply,
    accept,
    armored_payload,
    build,
    render_text,
    submit,
)
from schemas.directory import EmailReach, KeyAlg, KeyUse, Member, MemberKey
from schemas.examples import EXAMPLES
from tests.support.mailserver import (
    GpgMember,
    MailServer,
    gpg_member,
    mail_available,
    start_mail,
    stop_mail,
)

pytestmark = pytest.mark.skipif(mail_available() is not None, reason=str(mail_available()))

NOW = datetime(2026, 5, 11, 8, 0, tzinfo=UTC)
NODE = "FR-OCLCTIC"
NODE_ADDRESS = "fr-247@node.test"
CASE = EXAMPLES["preserved"].case_id


@pytest.fixture(scope="module")
def mail() -> Iterator[MailServer]:
    server = start_mail()
    try:
        yield server
    finally:
        stop_mail(server)


@pytest.fixture(scope="module")
def gpg() -> Iterator[GpgMember]:
    yield from gpg_member("de-247@bka.test")


@pytest.fixture(scope="module")
def impostor() -> Iterator[GpgMember]:
    yield from gpg_member("de-247@bka.test", name="Impostor")


@pytest.fixture(scope="module")
def node_key(gpg: GpgMember) -> NodeOpenPgpKey:
    key = NodeOpenPgpKey.generate(f"FR 24/7 <{NODE_ADDRESS}>")
    gpg.import_cert(key.armored_cert())
    return key


def _member(member_id: str, gpg: GpgMember, languages: tuple[str, ...] = ("fr",)) -> Member:
    key = MemberKey(
        use=KeyUse.SIGNING,
        alg=KeyAlg.ED25519,
        public=bytes(32),
        not_before=NOW,
        not_after=NOW.replace(year=2030),
    )
    return Member(
        id=member_id,
        authority="BKA SO4",
        languages=languages,
        time_zone="Europe/Berlin",
        keys=(key,),
        email_bridge=EmailReach(address=gpg.address, openpgp_cert=gpg.armored_cert()),
    )


def _fetch_all(mail: MailServer) -> list[bytes]:
    box = Mailbox(
        "127.0.0.1", mail.imap_port, tls="starttls", context=mail.context, login=mail.login
    )
    try:
        found = [(uid, box.fetch(uid)) for uid in box.unseen()]
        for uid, _ in found:
            box.mark_seen(uid)
        return [raw for _, raw in found if raw is not None]
    finally:
        box.close()


def _reply(
    gpg: GpgMember,
    node_key: NodeOpenPgpKey,
    inner: EmailMessage,
    *,
    sender: str | None = None,
    signer: GpgMember | None = None,
    compress: bool = False,
    sign: bool = True,
) -> bytes:
    """A PGP/MIME reply as a member's mail client makes it (RFC 3156 §6.2)."""
    data = inner.as_bytes(policy=SMTP_POLICY)
    who = signer or gpg
    if sign:
        armored = who.sign_encrypt(data, node_key.fingerprint, compress=compress)
    else:
        armored = who.encrypt_only(data, node_key.fingerprint)
    outer = EmailMessage()
    outer["From"] = sender or gpg.address
    outer["To"] = NODE_ADDRESS
    outer["Subject"] = "Re: relay247"
    outer.set_type("multipart/encrypted")
    outer.set_param("protocol", "application/pgp-encrypted")
    control = EmailMessage()
    control.set_content(
        b"Version: 1\r\n", maintype="application", subtype="pgp-encrypted", cte="7bit"
    )
    payload = EmailMessage()
    payload.set_content(armored, maintype="application", subtype="octet-stream", cte="7bit")
    outer.attach(control)
    outer.attach(payload)
    return outer.as_bytes(policy=SMTP_POLICY)


def _text_reply(text: str) -> EmailMessage:
    inner = EmailMessage()
    inner.set_content(text, charset="utf-8")
    return inner


def _accept(
    raw: bytes, member: Member, node_key: NodeOpenPgpKey, peers: dict[str, str] | None = None
) -> Reply:
    table = {CASE: member.id} if peers is None else peers
    return accept(raw, members=[member], node_member=NODE, node_key=node_key, case_peer=table.get)


def test_outbound_is_read_and_verified_by_gnupg(
    mail: MailServer, gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    member = _member("DE-BKA", gpg)
    body = EXAMPLES["preservation_extension"]
    out = build(body, member=member, node_key=node_key, sender_address=NODE_ADDRESS, now=NOW)
    submit(
        out,
        host="127.0.0.1",
        port=mail.smtp_port,
        tls="starttls",
        sender=NODE_ADDRESS,
        context=mail.context,
    )
    (raw,) = _fetch_all(mail)
    # The hash logged is the hash of the bytes the SMTP server received.
    assert hashlib.sha256(mail.handler.received[-1]).hexdigest() == out.sha256
    outer = message_from_bytes(raw, policy=default_policy)
    assert outer.get_content_type() == "multipart/encrypted"
    assert outer.get_param("protocol") == "application/pgp-encrypted"
    control = next(outer.iter_parts())
    assert control["Content-Transfer-Encoding"] == "7bit"
    assert control.get_content().strip() == b"Version: 1"  # RFC 3156 §4
    plain, status = gpg.decrypt(armored_payload(raw))
    assert "VALIDSIG" in status
    assert node_key.fingerprint.upper() in status
    assert "DECRYPTION_OKAY" in status
    inner = message_from_bytes(plain, policy=default_policy)
    assert inner["X-Relay247-Case"] == str(body.case_id)
    parts = list(inner.iter_parts())
    text = parts[0].get_content()
    assert f"relay247-case: {body.case_id}" in text
    assert "Prolongation" in text or "prolongation" in text  # French labels
    assert parts[1].get_filename() == "relay247-body.json"
    assert parts[1].get_payload(decode=True) == msgspec.json.encode(body)


def test_structured_reply_through_smtp_and_imap_is_accepted(
    mail: MailServer, gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    member = _member("DE-BKA", gpg)
    answer = EXAMPLES["preserved"]
    inner = _text_reply("Preserved, see attachment.")
    inner.add_attachment(
        msgspec.json.encode(answer),
        maintype="application",
        subtype="json",
        filename="relay247-body.json",
    )
    raw = _reply(gpg, node_key, inner)
    import smtplib

    with smtplib.SMTP("127.0.0.1", mail.smtp_port) as smtp:
        smtp.starttls(context=mail.context)
        smtp.sendmail(gpg.address, [NODE_ADDRESS], raw)
    (fetched,) = _fetch_all(mail)
    reply = _accept(fetched, member, node_key)
    assert reply.member == "DE-BKA"
    assert reply.case_id == CASE
    assert reply.body == answer
    assert reply.sha256 == hashlib.sha256(fetched).hexdigest()


def test_free_text_reply_names_the_case_by_the_quoted_line(
    gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    member = _member("DE-BKA", gpg)
    # The member's client quotes what the node sent (O1's text), then answers above it.
    sent = render_text(EXAMPLES["preservation_extension"], member)
    quoted = "\n".join(f"> {line}" for line in sent.splitlines())
    text = f"Daten gesichert bis 10.08.2026. — Ü\n\n{quoted}\n"
    reply = _accept(_reply(gpg, node_key, _text_reply(text)), member, node_key)
    assert reply.body is None
    assert reply.case_id == CASE
    assert "gesichert" in reply.text


def _refused(
    reason: str,
    raw: bytes,
    member: Member,
    node_key: NodeOpenPgpKey,
    peers: dict[str, str] | None = None,
) -> None:
    with pytest.raises(BridgeRefusedError) as caught:
        _accept(raw, member, node_key, peers)
    assert caught.value.reason == reason, caught.value.detail


CASE_TEXT = f"relay247-case: {CASE}\nok"


def test_forged_reply_signed_by_another_key_is_refused(
    gpg: GpgMember, impostor: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    impostor.import_cert(node_key.armored_cert())
    raw = _reply(gpg, node_key, _text_reply(CASE_TEXT), signer=impostor)
    _refused("bad_signature", raw, _member("DE-BKA", gpg), node_key)


def test_unsigned_reply_is_refused(gpg: GpgMember, node_key: NodeOpenPgpKey) -> None:
    raw = _reply(gpg, node_key, _text_reply(CASE_TEXT), sign=False)
    _refused("unsigned", raw, _member("DE-BKA", gpg), node_key)


def test_plain_unencrypted_mail_is_refused(gpg: GpgMember, node_key: NodeOpenPgpKey) -> None:
    msg = _text_reply(CASE_TEXT)
    msg["From"] = gpg.address
    _refused("not_pgp_mime", msg.as_bytes(), _member("DE-BKA", gpg), node_key)


def test_reply_from_another_address_is_refused(gpg: GpgMember, node_key: NodeOpenPgpKey) -> None:
    raw = _reply(gpg, node_key, _text_reply(CASE_TEXT), sender="someone@else.test")
    _refused("unknown_sender", raw, _member("DE-BKA", gpg), node_key)


def test_reply_from_another_members_address_is_refused(
    gpg: GpgMember, impostor: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    """Signed by MT's key but sent as another member: that member's certificate fails."""
    other = msgspec.structs.replace(
        _member("IT-POLPOSTA", impostor),
        email_bridge=EmailReach(
            address="it-247@poliziadistato.test", openpgp_cert=impostor.armored_cert()
        ),
    )
    raw = _reply(gpg, node_key, _text_reply(CASE_TEXT), sender="it-247@poliziadistato.test")
    with pytest.raises(BridgeRefusedError) as caught:
        accept(
            raw,
            members=[_member("DE-BKA", gpg), other],
            node_member=NODE,
            node_key=node_key,
            case_peer={CASE: "IT-POLPOSTA"}.get,
        )
    assert caught.value.reason == "bad_signature"


def test_compressed_reply_is_refused_not_taken_unverified(
    gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    """pysequoia 0.1.35 cannot verify inside a compressed packet (GnuPG's default)."""
    raw = _reply(gpg, node_key, _text_reply(CASE_TEXT), compress=True)
    _refused("unsupported_structure", raw, _member("DE-BKA", gpg), node_key)


# --- hostile --------------------------------------------------------------------------


def test_reply_for_another_members_case_is_refused(
    gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    raw = _reply(gpg, node_key, _text_reply(CASE_TEXT))
    _refused("other_members_case", raw, _member("DE-BKA", gpg), node_key, {CASE: "US-FBI"})
    _refused("no_case", raw, _member("DE-BKA", gpg), node_key, {})


def test_oversized_mail_is_refused_before_parsing(
    mail: MailServer, gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    big = b"From: " + gpg.address.encode() + b"\r\n\r\n" + b"x" * (3 << 20)
    _refused("too_large", big, _member("DE-BKA", gpg), node_key)
    mail.deliver(big)
    assert _fetch_all(mail) == []  # over the bound: not even fetched, and marked seen


def test_nested_mime_bomb_inside_the_signed_entity_is_refused(
    gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    inner = _text_reply(CASE_TEXT)
    for _ in range(8):
        outer = EmailMessage()
        outer.make_mixed()
        outer.attach(inner)
        inner = outer
    _refused("mime_too_complex", _reply(gpg, node_key, inner), _member("DE-BKA", gpg), node_key)
    wide = _text_reply(CASE_TEXT)
    for i in range(40):
        wide.add_attachment(
            b"x", maintype="application", subtype="octet-stream", filename=f"{i}.bin"
        )
    _refused("mime_too_complex", _reply(gpg, node_key, wide), _member("DE-BKA", gpg), node_key)


def test_non_utf8_and_repeated_from_headers_are_refused(
    gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    good = _reply(gpg, node_key, _text_reply(CASE_TEXT))
    _, rest = good.split(b"\r\n", 1)
    # A From with raw 8-bit bytes parses to a defective header: never matched as the member.
    with pytest.raises(BridgeRefusedError) as caught:
        _accept(b"From: \xff\xfe@\xe9.test\r\n" + rest, _member("DE-BKA", gpg), node_key)
    assert caught.value.reason in {"bad_header", "unknown_sender"}
    twice = b"From: " + gpg.address.encode() + b"\r\n" + good
    _refused("bad_header", twice, _member("DE-BKA", gpg), node_key)


def test_returned_body_naming_another_member_is_refused(
    gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    """The JSON attachment is checked as any body (E13-E14): it must not speak for FR."""
    wrong = EXAMPLES["preservation_request"]  # names FR as the requesting member
    inner = _text_reply(CASE_TEXT)
    inner.add_attachment(
        msgspec.json.encode(wrong),
        maintype="application",
        subtype="json",
        filename="relay247-body.json",
    )
    _refused("body_malformed", _reply(gpg, node_key, inner), _member("DE-BKA", gpg), node_key)
    dup = _text_reply(CASE_TEXT)
    dup.add_attachment(
        b'{"kind": "preserved", "kind": "refusal"}',
        maintype="application",
        subtype="json",
        filename="relay247-body.json",
    )
    _refused("body_malformed", _reply(gpg, node_key, dup), _member("DE-BKA", gpg), node_key)


def test_reply_encrypted_to_another_key_is_refused(
    gpg: GpgMember, impostor: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    """Not encrypted to this node (e.g. to the member's own key only): decrypt_failed."""
    inner = _text_reply(CASE_TEXT).as_bytes(policy=SMTP_POLICY)
    armored = gpg.run(
        "--armor", "--compress-algo", "none", "-u", gpg.fingerprint, "--sign", "--encrypt",
        "-r", gpg.fingerprint, data=inner,
    ).stdout  # fmt: skip
    outer = message_from_bytes(_reply(gpg, node_key, _text_reply(CASE_TEXT)), policy=default_policy)
    raw = outer.as_bytes(policy=SMTP_POLICY)
    old = armored_payload(raw)
    raw = raw.replace(old.strip(), armored.strip())
    _refused("decrypt_failed", raw, _member("DE-BKA", gpg), node_key)
    del impostor


def test_unusable_directory_certificate_is_refused_before_sending(
    gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    armor = (
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot base64 at all\n"
        "-----END PGP PUBLIC KEY BLOCK-----\n"
    )
    member = msgspec.structs.replace(
        _member("DE-BKA", gpg), email_bridge=EmailReach(address=gpg.address, openpgp_cert=armor)
    )
    with pytest.raises(BridgeRefusedError) as caught:
        build(EXAMPLES["preservation_extension"], member=member, node_key=node_key,
              sender_address=NODE_ADDRESS, now=NOW)  # fmt: skip
    assert caught.value.reason == "bad_certificate"


def test_language_falls_back_to_english(gpg: GpgMember) -> None:
    text = render_text(EXAMPLES["preservation_extension"], _member("MT", gpg, ("mt", "de")))
    assert text.startswith(f"relay247-case: {EXAMPLES['preservation_extension'].case_id}")
    assert "Sent by relay247 over OpenPGP e-mail" in text


def test_submission_never_goes_in_clear_or_to_an_unverified_server(
    mail: MailServer, gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    import smtplib
    import ssl

    out = build(EXAMPLES["preservation_extension"], member=_member("DE-BKA", gpg),
                node_key=node_key, sender_address=NODE_ADDRESS, now=NOW)  # fmt: skip
    untrusting = ssl.create_default_context()  # the system CAs: not the test's certificate
    with pytest.raises(ssl.SSLCertVerificationError):
        submit(out, host="127.0.0.1", port=mail.smtp_port, tls="starttls",
               sender=NODE_ADDRESS, context=untrusting)  # fmt: skip
    # Implicit TLS against a server that speaks plain SMTP first: the handshake fails.
    with pytest.raises((ssl.SSLError, smtplib.SMTPServerDisconnected, OSError)):
        submit(out, host="127.0.0.1", port=mail.smtp_port, tls="implicit",
               sender=NODE_ADDRESS, context=mail.context, timeout=5)  # fmt: skip
    assert all(hashlib.sha256(r).hexdigest() != out.sha256 for r in mail.handler.received)


def test_display_name_in_raw_latin1_does_not_change_who_sent_it(
    gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    """8-bit bytes in a header are never decoded as trusted text; the address still decides."""
    good = _reply(gpg, node_key, _text_reply(CASE_TEXT))
    _, rest = good.split(b"\r\n", 1)
    latin = b"From: D\xe9sir\xe9 <" + gpg.address.encode() + b">\r\n" + rest
    reply = _accept(latin, _member("DE-BKA", gpg), node_key)
    assert reply.member == "DE-BKA"  # the signature, not the name, made it the member's
    forged = b"From: D\xe9sir\xe9 <someone@else.test>\r\n" + rest
    _refused("unknown_sender", forged, _member("DE-BKA", gpg), node_key)


def test_compression_bomb_is_opened_only_within_a_memory_bound(
    gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    """357 KB of armor inflate to 200 MB: refused, and this process's memory never grows."""
    import resource
    import subprocess

    bomb = subprocess.run(
        f"head -c 200M /dev/zero | gpg --batch --no-tty --armor --trust-model always"
        f" --compress-algo zlib -z 9 -u {gpg.fingerprint} --sign --encrypt"
        f" -r {node_key.fingerprint}",
        shell=True,
        env={**__import__("os").environ, "GNUPGHOME": str(gpg.home)},
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    assert len(bomb) < 1 << 20
    raw = _reply(gpg, node_key, _text_reply(CASE_TEXT))
    raw = raw.replace(armored_payload(raw).strip(), bomb.strip())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _refused("too_large", raw, _member("DE-BKA", gpg), node_key)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 32 << 10  # KiB


def test_deeply_nested_outer_mime_is_refused_before_decrypting(
    gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    """5,000 nested multiparts in 300 KB overflow the parser's recursion: refused, no crash."""
    body = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(5000)
    )
    raw = b"From: " + gpg.address.encode() + b"\r\n" + body
    _refused("mime_too_complex", raw, _member("DE-BKA", gpg), node_key)
