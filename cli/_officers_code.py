"""``relay247 node officer code``: print the current TOTP code of a secret.

For the demo and for testing a node: ``relay247 demo --keep`` prints each country's
officer login with its TOTP secret, and this prints the code an authenticator app would
show now, so the console can be tried without a phone. It reads no node data and
changes nothing; a real officer's secret belongs in an authenticator app, not a shell.
"""

from __future__ import annotations

import binascii

import click

from cli._passphrase import CliUsageError


@click.command("code")
@click.option("--secret", required=True, help="The base32 TOTP secret (as in the otpauth:// URI).")
def code(*, secret: str) -> None:
    """Print the current 6-digit TOTP code (RFC 6238) of --secret."""
    from node._wallclock import system_clock
    from node.officers import code_at

    try:
        click.echo(code_at(secret.strip().replace(" ", "").upper(), system_clock()))
    except (ValueError, binascii.Error):
        raise CliUsageError(
            "invalid: --secret is not a base32 TOTP secret of 112 bits or more"
        ) from None
