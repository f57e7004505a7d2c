"""Numbers and URLs typed by an operator are read the one way the protocol writes them.

An outside probe found ``relay247 relay init --port ٨٠٨٠`` writing ``port = 8080``
(click converts with ``int()``, which takes any script's digits), ``network init
--coordinators ٣`` accepted, and ``--public-url https://r.example.org:٨٠`` served; and
config patterns anchored with ``$``, which also matches before a final newline, so a
relay ``id`` or URL ending in ``\\n`` passed. Now every numeric CLI parameter is
``cli._numbers.AsciiIntRange`` / ``AsciiFloatRange``, URLs are printable ASCII, and no
pattern ends in ``$``.
"""

from __future__ import annotations

import pathlib
import re

import click
import msgspec
import pytest
from click.testing import CliRunner

from cli._numbers import AsciiFloatRange, AsciiIntRange
from cli.main import cli
from node.config import _Url
from relay.config import RelaySection
from schemas.directory import Url

NOT_ASCII = ["٨٠٨٠", "８０８０", "8_080", " 8080", "8080 ", "+8080", "0x1f", "8080\n", ""]


@pytest.mark.parametrize("typed", NOT_ASCII)
def test_an_integer_option_takes_ascii_digits_only(typed: str) -> None:
    with pytest.raises(click.BadParameter, match="ASCII digits"):
        AsciiIntRange(0, 65535).convert(typed, None, None)


@pytest.mark.parametrize("typed", [*NOT_ASCII, "1e3", "inf", "nan", "1.", ".5", "１.5"])
def test_a_number_option_takes_ascii_digits_only(typed: str) -> None:
    with pytest.raises(click.BadParameter, match="ASCII digits"):
        AsciiFloatRange(0.1, 86400).convert(typed, None, None)


def test_ascii_numbers_and_defaults_still_convert() -> None:
    assert AsciiIntRange(0, 65535).convert("8080", None, None) == 8080
    assert AsciiIntRange(0, 65535).convert(8080, None, None) == 8080  # a default
    assert AsciiFloatRange(0.1, 86400).convert("2.5", None, None) == 2.5
    with pytest.raises(click.BadParameter):
        AsciiIntRange(0, 65535).convert("65536", None, None)  # the range still holds


@pytest.mark.parametrize(
    "args",
    [
        ["relay", "init", "--port", "٨٠٨٠"],
        ["network", "init", "--coordinators", "٣", "--threshold", "2"],
        ["network", "init", "--coordinators", "3", "--threshold", "２"],
    ],
)
def test_commands_refuse_other_digits_before_doing_anything(
    args: list[str], tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "ASCII digits" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_every_numeric_cli_parameter_uses_the_ascii_types() -> None:
    def walk(command: click.Command) -> list[click.Parameter]:
        found = list(command.params)
        if isinstance(command, click.Group):  # the program's groups load lazily
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                found += walk(sub) if sub is not None else []
        return found

    numeric = [p for p in walk(cli) if isinstance(p.type, click.IntRange | click.FloatRange)]
    assert numeric, "no numeric parameter found: the walk is broken"
    loose = [p.name for p in numeric if not isinstance(p.type, AsciiIntRange | AsciiFloatRange)]
    assert loose == []
    assert not [p.name for p in walk(cli) if p.type in (click.INT, click.FLOAT)]


@pytest.mark.parametrize(
    "url",
    [
        "https://r.example.org:٨٠",
        "https://ré.example.org",
        "https://r.example.org\n",
        "https://r x",
    ],
)
def test_urls_are_printable_ascii(url: str) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"id": "r1", "public_url": url}, RelaySection)
    for kind in (_Url, Url):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(url, kind)


def test_a_relay_id_ending_in_a_newline_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"id": "r1\n", "public_url": "https://x"}, RelaySection)


def test_no_pattern_of_the_product_ends_in_a_dollar() -> None:
    """``$`` also matches before a final newline (Python ``re``, which msgspec uses)."""
    root = pathlib.Path(__file__).resolve().parents[2]
    found = re.compile(r"""(?:pattern=|re\.(?:compile|match|search)\()\s*r?(['"])(.*?)\1""")
    bad = []
    for package in ("audit", "cli", "client", "console", "node", "protocol", "relay", "schemas"):
        for path in (root / package).rglob("*.py"):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                bad += [
                    f"{path.relative_to(root)}:{number}"
                    for m in found.finditer(line)
                    if m.group(2).endswith("$")
                ]
    assert bad == []
