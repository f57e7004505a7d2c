"""Shared CLI input: the keystore passphrase and the exit-code convention.

Exit codes of every ``relay247`` command: 0 success, 1 runtime failure (a peer or the
network failed), 2 usage or configuration error (bad option, bad file, wrong passphrase).

The passphrase comes from, in order: ``--passphrase-file`` (first line, newline
stripped), the ``RELAY247_PASSPHRASE`` environment variable, or an interactive prompt
that never echoes (with confirmation when a new keystore is created). It is never
printed, logged or put in an exception message.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from protocol.errors import ConfigError, Relay247Error

ENV_VAR = "RELAY247_PASSPHRASE"
EXIT_RUNTIME = 1
EXIT_USAGE = 2
_MAX_FILE = 4096  # bytes: a passphrase file holds one line

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """A failure reported as ``Error: <message>`` with an explicit exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_RUNTIME) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def fail_from(exc: Relay247Error) -> CliError:
    """Map one of our errors to a CLI failure: configuration errors exit 2, others 1.

    Args:
        exc: the error raised by the relay, node or protocol packages.

    Returns:
        The :class:`CliError` to raise (its message is the public message, never key material).
    """
    code = EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_RUNTIME
    return CliError(exc.message, code)


def passphrase_option(func: F) -> F:
    """Add ``--passphrase-file`` to a command (the value arrives as ``passphrase_file``)."""
    return click.option(
        "--passphrase-file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help=f"Read the keystore passphrase from this file (else ${ENV_VAR}, else a prompt).",
    )(func)


def read_passphrase(path: Path | None, *, confirm: bool) -> bytes:
    """Return the passphrase from the file, the environment or a hidden prompt.

    Args:
        path: the ``--passphrase-file`` value, or None.
        confirm: ask twice at the prompt (when a keystore is being created).

    Returns:
        The passphrase as UTF-8 bytes, never empty.

    Raises:
        CliError: the file is unreadable or any source gives an empty passphrase (exit 2).
    """
    if path is not None:
        try:
            with path.open("rb") as f:
                raw = f.read(_MAX_FILE + 1)
        except OSError as exc:
            raise CliError(f"{path}: cannot read passphrase file: {exc.strerror}", 2) from None
        if len(raw) > _MAX_FILE:
            raise CliError(f"{path}: passphrase file is larger than {_MAX_FILE} bytes", 2)
        value = raw.split(b"\n", 1)[0].rstrip(b"\r")
        source = str(path)
    elif os.environ.get(ENV_VAR):
        value = os.environ[ENV_VAR].encode()
        source = ENV_VAR
    else:
        prompt: str = click.prompt(
            "Keystore passphrase", hide_input=True, confirmation_prompt=confirm, err=True
        )
        value = prompt.encode()
        source = "prompt"
    if not value:
        raise CliError(f"{source}: the passphrase is empty", EXIT_USAGE)
    return value
