"""`network add-member --email ADDR --openpgp-cert FILE` (issue 18 §2, PROTOCOL.md §22.1)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec

from cli._files import read_user_file
from cli._passphrase import CliUsageError
from protocol.codec import convert
from protocol.errors import MalformedError
from schemas.directory import EmailReach, Member

_MAX_CERT = 65_600
F = TypeVar("F", bound=Callable[..., Any])


def email_options(func: F) -> F:
    """``--email ADDR --openpgp-cert FILE`` for ``network add-member``."""
    func = click.option(
        "--openpgp-cert",
        default=None,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="The member's armored OpenPGP certificate (with --email).",
    )(func)
    return click.option(
        "--email", default=None, help="The member is reached by OpenPGP e-mail at this address."
    )(func)


def with_email(member: Member, opts: dict[str, Any]) -> Member:
    """``member`` with its e-mail entry when the options give one."""
    if opts.get("email") is None and opts.get("openpgp_cert") is None:
        return member
    return msgspec.structs.replace(
        member, email_bridge=email_reach(opts.get("email"), opts.get("openpgp_cert"))
    )


def email_reach(address: str | None, cert_file: Path | None) -> EmailReach:
    """The member's e-mail entry, checked: a public certificate naming the address."""
    from node.email_bridge import BridgeRefusedError, load_cert

    if address is None or cert_file is None:
        raise click.UsageError("--email and --openpgp-cert go together")
    data = read_user_file(cert_file, _MAX_CERT)
    try:
        text = data.decode("ascii")
        reach = convert({"address": address, "openpgp_cert": text}, EmailReach, "member")
        cert = load_cert(reach.openpgp_cert)
    except UnicodeDecodeError:
        raise CliUsageError(f"{cert_file}: not an armored OpenPGP certificate") from None
    except MalformedError as exc:
        raise CliUsageError(f"{cert_file}: {exc.message}") from None
    except BridgeRefusedError as exc:
        raise CliUsageError(f"{cert_file}: unusable certificate ({exc.detail})") from None
    wanted = f"<{address.lower()}>"
    if not any(wanted in str(uid).lower() for uid in cert.user_ids):
        raise CliUsageError(f"{cert_file}: no user id of the certificate names {address}")
    return reach
