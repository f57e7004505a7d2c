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
from serving.files import read_file_or_pipe

ENV_VAR = "RELAY247_PASSPHRASE"
EXIT_RUNTIME = 1
EXIT_USAGE = 2
_MAX_FILE = 4096  # bytes: a passphrase file holds one line

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """A runtime failure, reported as ``Error: <message>``, exit 1."""

    exit_code = EXIT_RUNTIME


class CliUsageError(CliError):
    """A usage or configuration error (bad file, wrong passphrase, ...), exit 2."""

    exit_code = EXIT_USAGE


def fail_from(exc: Relay247Error) -> CliError:
    """Map one of our errors to a CLI failure: configuration errors exit 2, others 1.

    Args:
        exc: the error raised by the relay, node or protocol packages.

    Returns:
        The :class:`CliError` to raise (its message is the public message, never key material).
    """
    if isinstance(exc, ConfigError):
        return CliUsageError(exc.message)
    return CliError(exc.message)


def passphrase_option(func: F) -> F:
    """Add ``--passphrase-file`` to a command (the value arrives as ``passphrase_file``)."""
    return click.option(
        "--passphrase-file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help=f"Read the keystore passphrase from this file (else ${ENV_VAR}, else a prompt).",
    )(func)


def config_option(what: str) -> Callable[[F], F]:
    """``--config`` of a server's commands (the value arrives as ``config_path``).

    Args:
        what: ``relay`` or ``node``: names the file and the command that writes it.
    """
    return click.option(
        "--config",
        "config_path",
        required=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help=f"{what}.toml written by `relay247 {what} init`.",
    )


def read_passphrase(path: Path | None, *, confirm: bool) -> bytes:
    """Return the passphrase from the file, the environment or a hidden prompt.

    Args:
        path: the ``--passphrase-file`` value, or None.
        confirm: ask twice at the prompt (when a keystore is being created).

    Returns:
        The passphrase as UTF-8 bytes, never empty.

    Raises:
        CliUsageError: the file is unreadable or any source gives an empty passphrase (exit 2).
    """
    if path is not None:
        try:  # a pipe too (`<(...)`), its writer given PIPE_WAIT seconds
            raw = read_file_or_pipe(path, _MAX_FILE, what="passphrase file")
        except ConfigError as exc:
            raise CliUsageError(exc.message) from None
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
        raise CliUsageError(f"{source}: the passphrase is empty")
    return value
