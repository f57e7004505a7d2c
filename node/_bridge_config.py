"""The ``[email_bridge]`` section of node.toml (PROTOCOL.md §22, OPERATIONS.md).

The OpenPGP e-mail bridge to members without a node: the SMTP relay host the node
submits through (O5), the IMAP mailbox it fetches replies from (§22.4), the address it
sends from, and where the mailbox password and the node's OpenPGP key are kept. The
password is read from a file (mode 0600) or from the node's OpenPGP key file (the
keystore, ``relay247 node email-password``); it is never written to a log.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Final, Literal

import msgspec

from protocol.errors import ConfigError
from serving.config_file import ConfigPath
from serving.files import read_file

#: an address or "" (unset)
_Address = Annotated[str, msgspec.Meta(pattern=r"^(|[^@\s]{1,64}@[^@\s]{1,255})\Z", max_length=320)]
_Host = Annotated[str, msgspec.Meta(max_length=253, pattern=r"^[A-Za-z0-9.:\[\]-]*\Z")]
_Port = Annotated[int, msgspec.Meta(ge=1, le=65_535)]
TlsMode = Literal["starttls", "implicit"]
#: where the mailbox password comes from
PasswordSource = Literal["file", "keystore"]
#: the default name of the node's OpenPGP key file (encrypted at rest), in data_dir
OPENPGP_KEY_FILE: Final = "openpgp.key"


class EmailBridgeSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[email_bridge]``: off unless ``enabled``; then every server setting is required."""

    enabled: bool = False
    #: the address this node sends from and members reply to (its OpenPGP user id)
    from_address: _Address = ""
    #: the mail relay host for submission (O5), TLS always
    smtp_host: _Host = ""
    smtp_port: _Port = 587
    smtp_tls: TlsMode = "starttls"
    #: log in to the SMTP relay with the mailbox user and password (AUTH)
    smtp_login: bool = True
    #: the IMAP server holding the bridge's mailbox (§22.4), TLS always
    imap_host: _Host = ""
    imap_port: _Port = 143
    imap_tls: TlsMode = "starttls"
    #: the mailbox login (IMAP, and SMTP when smtp_login)
    user: Annotated[str, msgspec.Meta(max_length=320)] = ""
    #: "file": password_file (mode 0600); "keystore": set by `relay247 node email-password`
    password_source: PasswordSource = "file"  # noqa: S105  # a source, not a secret
    password_file: ConfigPath = ""
    #: CA certificates (PEM) the servers' certificates are checked against; empty: the
    #: system's. A private CA, or the tests' self-signed certificate.
    ca_file: ConfigPath = ""
    #: the node's OpenPGP key (encrypted with the node's passphrase), relative to data_dir
    key_file: ConfigPath = OPENPGP_KEY_FILE
    #: seconds one IMAP IDLE waits before the mailbox is searched again (RFC 2177: < 29 min)
    idle_seconds: Annotated[float, msgspec.Meta(ge=1, le=1740)] = 300.0
    #: seconds for one SMTP or IMAP operation
    timeout: Annotated[float, msgspec.Meta(gt=0, le=300)] = 30.0
    #: first retry delay after a failed submission or log write; doubles up to 300 s
    retry_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 5.0


def check_bridge(section: EmailBridgeSection, resolve: Callable[[str], Path]) -> None:
    """Refuse an enabled bridge with a missing setting or an unusable file.

    Raises:
        ConfigError: ``email_bridge.<key>: ...`` naming the first problem.
    """
    if not section.enabled:
        return
    for key in ("from_address", "smtp_host", "imap_host", "user"):
        if not getattr(section, key):
            raise ConfigError(f"email_bridge.{key}: required when enabled")
    from_file = section.password_source == "file"  # noqa: S105  # a source, not a secret
    if from_file and not section.password_file:
        raise ConfigError("email_bridge.password_file: required when password_source is 'file'")
    if not from_file and section.password_file:
        raise ConfigError("email_bridge.password_file: set only with password_source 'file'")
    if from_file:
        read_password_file(resolve(section.password_file))
    if section.ca_file:
        tls_context(resolve(section.ca_file))


def read_password_file(path: Path) -> str:
    """The mailbox password from its file (owner-only, first line, not empty).

    Raises:
        ConfigError: ``email_bridge.password_file: ...``.
    """
    where = "email_bridge.password_file"
    try:
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{where}: {path} must be readable by its owner only")
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {type(exc).__name__}") from None
    try:
        text = read_file(path, 4096).decode("utf-8").strip()
    except ConfigError as exc:  # not a regular file, too large
        raise ConfigError(f"{where}: {exc.message}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {type(exc).__name__}") from None
    if not text or "\n" in text:
        raise ConfigError(f"{where}: {path} must hold the password on one line")
    return text


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Certificates verified and host names checked; ``ca_file``'s CAs, else the system's.

    Raises:
        ConfigError: ``email_bridge.ca_file: ...`` when the file is unreadable or not PEM.
    """
    try:
        return ssl.create_default_context(cafile=None if ca_file is None else str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"email_bridge.ca_file: cannot use {ca_file}: {exc}") from None
