"""C2SP tiled-log paths and entry bundles (c2sp.org/tlog-tiles, "Merkle Tree", "Log entries").

Paths are relative to the log prefix: ``tile/<L>/<N>[.p/<W>]`` for hash tiles and
``tile/entries/<N>[.p/<W>]`` for entry bundles. ``<N>`` is written in zero-padded 3-digit
elements, all but the last prefixed with ``x`` (1234067 -> ``x001/x234/067``). Every path
has exactly one accepted spelling. Every failure raises :class:`MalformedError`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from protocol.decimal import parse_decimal
from protocol.errors import MalformedError

TILE_WIDTH: Final = 256  # hashes per full tile, entries per full bundle
MAX_LEVEL: Final = 63  # tlog-tiles: <L> is between 0 and 63
MAX_ENTRY_BYTES: Final = 0xFFFF  # an entry's length is a big-endian uint16
_LIMIT: Final = 2**64  # tree sizes are uint64: a tile starting at or past this cannot exist
_MAX_PATH_CHARS: Final = 128  # longer than any canonical path; bounds the parser's work
_PATH: Final = re.compile(
    r"tile/(?P<level>entries|0|[1-9][0-9]?)/(?P<index>(?:x[0-9]{3}/)*[0-9]{3})"
    r"(?:\.p/(?P<width>[1-9][0-9]{0,2}))?"
)


def _check(level: int, index: int, width: int) -> None:
    if not 0 <= level <= MAX_LEVEL:
        raise MalformedError("tile level out of range", detail=str(level))
    if index < 0 or index * TILE_WIDTH ** (level + 1) >= _LIMIT:
        raise MalformedError("tile index out of range", detail=f"level {level} index {index}")
    if not 1 <= width <= TILE_WIDTH:
        raise MalformedError("tile width out of range", detail=str(width))


def _index_path(index: int) -> str:
    digits = str(index)
    digits = digits.zfill(-(-len(digits) // 3) * 3)
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


def _suffix(width: int) -> str:
    return "" if width == TILE_WIDTH else f".p/{width}"


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """Return the path of a hash tile: ``tile/<L>/<N>`` or ``tile/<L>/<N>.p/<W>``.

    Args:
        level: tile level, 0..63.
        index: tile index within the level; the tile must start below 2^64 entries.
        width: number of hashes, 1..255 for a partial tile, 256 for a full one.

    Raises:
        MalformedError: any argument out of range.
    """
    _check(level, index, width)
    return f"tile/{level}/{_index_path(index)}{_suffix(width)}"


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """Return the path of an entry bundle: ``tile/entries/<N>[.p/<W>]``.

    Raises:
        MalformedError: index or width out of range (as for a level-0 tile).
    """
    _check(0, index, width)
    return f"tile/entries/{_index_path(index)}{_suffix(width)}"


def _parse(path: str) -> tuple[str, int, int]:
    match = _PATH.fullmatch(path) if len(path) <= _MAX_PATH_CHARS else None
    if match is None:
        raise MalformedError("malformed tile path", detail=path[:_MAX_PATH_CHARS])
    # The pattern admits ASCII digits only; parse_decimal is the one integer parser.
    index = int(match["index"].replace("x", "").replace("/", ""))
    width = TILE_WIDTH
    if match["width"]:
        width = parse_decimal(match["width"], name="tile width", low=1)
        # ``.p/256`` would be a second spelling of a full tile.
        if width >= TILE_WIDTH:
            raise MalformedError("malformed tile path", detail="partial width must be 1..255")
    return match["level"], index, width


def parse_tile_path(path: str) -> tuple[int, int, int]:
    """Parse a hash-tile path strictly.

    Args:
        path: e.g. ``tile/1/x001/234.p/17`` (no prefix, no leading or trailing slash).

    Returns:
        ``(level, index, width)``, width 256 for a full tile.

    Raises:
        MalformedError: not a hash-tile path, or not its canonical spelling (leading
            zeros, an ``x000`` element, ``.p/256``, out-of-range level or index).
    """
    level_text, index, width = _parse(path)
    if level_text == "entries":
        raise MalformedError("entry bundle path where a hash tile path was expected")
    level = parse_decimal(level_text, name="tile level", high=99)  # range: _check
    if tile_path(level, index, width) != path:
        raise MalformedError("non-canonical tile path", detail=path)
    return level, index, width


def parse_entries_path(path: str) -> tuple[int, int]:
    """Parse an entry-bundle path strictly.

    Returns:
        ``(index, width)``, width 256 for a full bundle.

    Raises:
        MalformedError: not an entry-bundle path, or not its canonical spelling.
    """
    level_text, index, width = _parse(path)
    if level_text != "entries":
        raise MalformedError("hash tile path where an entry bundle path was expected")
    if entries_path(index, width) != path:
        raise MalformedError("non-canonical entries path", detail=path)
    return index, width


def tile_layout(tree_size: int) -> list[tuple[int, int, int]]:
    """Return ``(level, full tiles, partial width)`` for each level of a tree.

    The partial tile at level l has ``floor(size / 256**l) mod 256`` hashes (0: none).

    Raises:
        MalformedError: the size is outside uint64.
    """
    if not 0 <= tree_size < _LIMIT:
        raise MalformedError("tree size out of range", detail=str(tree_size))
    layout = []
    level = 0
    while tree_size // TILE_WIDTH**level:
        below = tree_size // TILE_WIDTH**level
        layout.append((level, below // TILE_WIDTH, below % TILE_WIDTH))
        level += 1
    return layout


def encode_entry_bundle(entries: Sequence[bytes]) -> bytes:
    """Encode 1..256 entries as big-endian uint16 length-prefixed bytes.

    Raises:
        MalformedError: no entry, more than 256, or an entry over 65535 bytes.
    """
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise MalformedError("an entry bundle holds 1 to 256 entries", detail=str(len(entries)))
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY_BYTES:
            raise MalformedError("entry too long for a bundle", detail=str(len(entry)))
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def decode_entry_bundle(data: bytes, *, count: int | None = None) -> list[bytes]:
    """Decode an entry bundle.

    Args:
        data: the bundle bytes.
        count: if given, the exact number of entries expected (the bundle's width).

    Returns:
        The entries, in order.

    Raises:
        MalformedError: empty bundle, a truncated length or entry, more than 256
            entries, or not ``count`` entries.
    """
    entries: list[bytes] = []
    pos = 0
    while pos < len(data):
        if len(entries) == TILE_WIDTH:
            raise MalformedError("entry bundle holds more than 256 entries")
        if pos + 2 > len(data):
            raise MalformedError("truncated entry bundle", detail=f"length prefix at {pos}")
        size = int.from_bytes(data[pos : pos + 2], "big")
        pos += 2
        if pos + size > len(data):
            raise MalformedError("truncated entry bundle", detail=f"entry at {pos - 2}")
        entries.append(bytes(data[pos : pos + size]))
        pos += size
    if not entries:
        raise MalformedError("empty entry bundle")
    if count is not None and len(entries) != count:
        raise MalformedError("wrong number of entries", detail=f"{len(entries)} != {count}")
    return entries
