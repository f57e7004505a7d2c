"""A real mail system on loopback for the e-mail bridge tests (issue 18 §2).

SMTP: aiosmtpd with STARTTLS required, delivering into a Maildir. IMAP: Debian's
Dovecot serving that Maildir, STARTTLS required, run as root from a config in a temp
dir on a free port (no systemd). Both use one self-signed certificate made here.
GnuPG (``gpg``, temp ``GNUPGHOME``) plays the e-mail-only member.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import mailbox
import os
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.relay import free_port

MAIL_UID = 65534  # nobody: Dovecot refuses to serve mail as root
USER = "bridge"
PASSWORD = "bridge-test-password"


def make_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Deliver:
    """aiosmtpd handler: every accepted message goes into the Maildir, as received."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir
        self.received: list[bytes] = []
        #: when set, only mail to these addresses goes into the Maildir (the others are
        #: kept in ``received`` only: mail to an e-mail member leaves the node's mailbox)
        self.local: set[str] | None = None
        #: addresses answered 550 at RCPT: a relay host refusing a recipient for good
        self.refuse: set[str] = set()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = bytes(envelope.original_content or envelope.content)
        self.received.append(data)
        if self.local is not None and not self.local & {r.lower() for r in envelope.rcpt_tos}:
            return "250 OK"
        box = mailbox.Maildir(self.maildir, create=False)
        key = box.add(data)
        os.chown(self.maildir / "new" / key, MAIL_UID, MAIL_UID)
        return "250 OK"


_DOVECOT_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = yes
auth_mechanisms = plain
first_valid_uid = 1
mail_location = maildir:{root}/mail
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={uid} home={root}/home
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""


@dataclass
class MailServer:
    """Running SMTP and IMAP servers; ``context`` trusts their certificate."""

    root: Path
    smtp_port: int
    imap_port: int
    context: ssl.SSLContext
    handler: _Deliver
    controller: Controller
    dovecot: subprocess.Popen[bytes]
    login: tuple[str, str] = (USER, PASSWORD)
    extra: dict[str, Any] = field(default_factory=dict)

    def deliver(self, raw: bytes) -> None:
        """Put a message straight into the Maildir (a forged or hostile reply)."""
        box = mailbox.Maildir(self.root / "mail", create=False)
        key = box.add(raw)
        os.chown(self.root / "mail" / "new" / key, MAIL_UID, MAIL_UID)


def _wait_port(port: int, log: Path, deadline: float) -> None:
    import socket

    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"dovecot did not listen: {log.read_text() if log.exists() else ''}")


def mail_available() -> str | None:
    """Why the mail tests cannot run here, or ``None``.

    When ``RELAY247_REQUIRE_TOOLS`` names ``dovecot`` (``.ci/run``), a missing tool fails.
    """
    why = _why_not()
    if why is not None and "dovecot" in os.environ.get("RELAY247_REQUIRE_TOOLS", "").split():
        raise RuntimeError(f"required by RELAY247_REQUIRE_TOOLS: {why}")
    return why


def _why_not() -> str | None:
    if shutil.which("dovecot") is None:
        return "Dovecot is not installed (apt-get install dovecot-imapd)"
    if shutil.which("gpg") is None:
        return "GnuPG is not installed (apt-get install gnupg)"
    if os.geteuid() != 0:
        return "Dovecot is run as root by the fixture"
    return None


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    """The SMTP login (optional: mail without one is taken too): USER and PASSWORD."""
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def raw(x: str | bytes) -> bytes:
        return x if isinstance(x, bytes) else x.encode()

    ok = isinstance(data, LoginPassword) and (raw(data.login), raw(data.password)) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    # handled=False: aiosmtpd answers itself (235, or 535 5.7.8 when refused)
    return AuthResult(success=ok, handled=False)


def start_mail() -> MailServer:
    """Start both servers in a fresh temp dir (stop with :func:`stop_mail`)."""
    root = Path(tempfile.mkdtemp(prefix="relay247-mail-"))
    root.chmod(0o755)
    cert, key = make_cert(root)
    maildir = root / "mail"
    mailbox.Maildir(maildir, create=True)
    (root / "home").mkdir()
    for path in (maildir, maildir / "new", maildir / "cur", maildir / "tmp", root / "home"):
        os.chown(path, MAIL_UID, MAIL_UID)
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    imap_port = free_port()
    conf = root / "dovecot.conf"
    conf.write_text(
        _DOVECOT_CONF.format(root=root, cert=cert, key=key, uid=MAIL_UID, port=imap_port)
    )
    dovecot = subprocess.Popen(
        ["dovecot", "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    handler = _Deliver(maildir)
    smtp_port = free_port()
    controller = Controller(
        handler,
        authenticator=_authenticate,  # AUTH PLAIN/LOGIN after STARTTLS; 535 when wrong
        hostname="127.0.0.1",
        port=smtp_port,
        tls_context=server_ctx,
        require_starttls=True,
        data_size_limit=8 << 20,
    )
    controller.start()
    client_ctx = ssl.create_default_context(cafile=str(cert))
    _wait_port(imap_port, root / "dovecot.log", time.monotonic() + 15)
    return MailServer(root, smtp_port, imap_port, client_ctx, handler, controller, dovecot)


def stop_mail(server: MailServer) -> None:
    server.controller.stop()
    server.dovecot.terminate()
    try:
        server.dovecot.wait(10)
    except subprocess.TimeoutExpired:
        server.dovecot.kill()
        server.dovecot.wait(5)
    shutil.rmtree(server.root, ignore_errors=True)


@dataclass
class GpgMember:
    """GnuPG in a temp home, playing the e-mail-only member."""

    home: Path
    fingerprint: str
    address: str

    def run(self, *args: str, data: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [
                "gpg",
                "--batch",
                "--no-tty",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
                "--trust-model",
                "always",
                *args,
            ],
            input=data,
            env=dict(os.environ, GNUPGHOME=str(self.home)),
            capture_output=True,
            timeout=60,
            check=False,
        )

    def armored_cert(self) -> str:
        return self.run("--armor", "--export", self.fingerprint).stdout.decode("ascii")

    def import_cert(self, armored: str) -> None:
        self.run("--import", data=armored.encode("ascii"))

    def decrypt(self, armored: bytes) -> tuple[bytes, str]:
        """Plaintext and gpg's status lines (GOODSIG/VALIDSIG name the signer)."""
        done = self.run("--status-fd", "2", "--decrypt", data=armored)
        return done.stdout, done.stderr.decode("utf-8", "replace")

    def sign_encrypt(self, data: bytes, recipient: str, *, compress: bool = False) -> bytes:
        extra = () if compress else ("--compress-algo", "none")
        done = self.run(
            "--armor",
            *extra,
            "-u",
            self.fingerprint,
            "--sign",
            "--encrypt",
            "-r",
            recipient,
            data=data,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def encrypt_only(self, data: bytes, recipient: str) -> bytes:
        return self.run(
            "--armor", "--compress-algo", "none", "--encrypt", "-r", recipient, data=data
        ).stdout


def gpg_member(address: str, name: str = "MT 24/7") -> Iterator[GpgMember]:
    """A fresh GnuPG key (Ed25519 signing, Curve25519 encryption) for ``address``."""
    home = Path(tempfile.mkdtemp(prefix="relay247-gpg-"))
    home.chmod(0o700)
    member = GpgMember(home, "", address)
    member.run("--quick-gen-key", f"{name} <{address}>", "ed25519", "sign,cert", "never")
    listing = member.run("--with-colons", "--list-keys").stdout.decode()
    member.fingerprint = next(
        line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr")
    )
    member.run("--quick-add-key", member.fingerprint, "cv25519", "encr", "never")
    try:
        yield member
    finally:
        subprocess.run(
            ["gpgconf", "--kill", "all"],
            env=dict(os.environ, GNUPGHOME=str(home)),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(home, ignore_errors=True)
