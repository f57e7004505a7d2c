"""The per-country preservation periods shipped with the node (a data file, not constants).

``node/data/preservation_periods.json`` is decoded into :class:`protocol.cases.PeriodTable`
(strict: unknown fields, a period under the Art. 29(7) floor of 60 days or a malformed
country key all fail). Operators may point ``load_periods`` at their own file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from protocol.cases import PeriodTable
from protocol.codec import decode_as, shape_text
from protocol.errors import ConfigError, MalformedError
from serving.files import read_file

#: Where the shipped table lives inside the installed ``node`` package.
PACKAGED_FILE = ("data", "preservation_periods.json")
_MAX_BYTES = 1_000_000  # the table is a few KiB; refuse anything absurd before decoding


def decode_periods(data: bytes, *, origin: str = "preservation_periods.json") -> PeriodTable:
    """Decode and validate a period table.

    Args:
        data: the JSON bytes.
        origin: the file name to cite in errors.

    Returns:
        The validated table.

    Raises:
        ConfigError: too large, not JSON, or not the table's shape; the message names
            ``origin`` and the JSON path of the first problem (e.g. ``$.members.US``).
    """
    if len(data) > _MAX_BYTES:
        raise ConfigError(f"{origin}: larger than {_MAX_BYTES} bytes")
    try:
        return decode_as(PeriodTable, data, "period table", limit=_MAX_BYTES)
    except MalformedError as exc:
        if exc.problem:  # the wrong shape
            raise ConfigError(f"{origin}: {shape_text(exc)}") from exc
        # not JSON, not UTF-8, or a repeated key (J1)
        raise ConfigError(f"{origin}: {exc.message} ({exc.detail})") from exc


def load_periods(path: Path | None = None) -> PeriodTable:
    """Load the period table: ``path`` if given, else the file shipped in the package.

    Args:
        path: an operator-supplied table, or ``None`` for the packaged one.

    Returns:
        The validated table.

    Raises:
        ConfigError: the file cannot be read or does not validate (message names the file).
    """
    if path is None:
        resource = resources.files("node").joinpath(*PACKAGED_FILE)
        origin = "node/" + "/".join(PACKAGED_FILE)
        try:
            data = resource.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{origin}: cannot read the packaged table ({exc})") from exc
        return decode_periods(data, origin=origin)
    data = read_file(path, _MAX_BYTES)
    return decode_periods(data, origin=str(path))
