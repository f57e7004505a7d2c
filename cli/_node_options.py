"""Options shared by the operator commands.

How the ``reply`` options become body fields (and how dates typed by an officer are
read) is ``node.replies``, shared with the console.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from node.render import LANGUAGES

F = TypeVar("F", bound=Callable[..., Any])

CONFIG: Final = "node.toml"  # a node's config file, in its data directory


def data_options(func: F) -> F:
    """Add ``--data DIR`` / ``--config FILE`` (which node) to a command."""
    func = click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The node's node.toml (instead of --data).",
    )(func)
    return click.option(
        "--data",
        "data_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        envvar="RELAY247_NODE_DATA",
        help="The node's data directory (default: $RELAY247_NODE_DATA, else .).",
    )(func)


def json_option(func: F) -> F:
    """Add ``--json`` (print machine-readable JSON instead of tables)."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)


def lang_option(func: F) -> F:
    """Add ``--lang en|fr`` (labels of fields, coded values and states)."""
    return click.option(
        "--lang",
        type=click.Choice(LANGUAGES),
        default="en",
        show_default=True,
        help="Language of labels (free text is shown as written).",
    )(func)


def dry_run_option(func: F) -> F:
    """Add ``--dry-run`` (print the body that would be sent, send nothing)."""
    return click.option(
        "--dry-run", is_flag=True, help="Print the message as JSON and do not send it."
    )(func)
