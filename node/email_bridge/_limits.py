"""Bounds on an e-mail's bytes, checked before any parser sees them (PROTOCOL.md §22.4, M1).

The stdlib's ``email.policy.default`` parser costs memory with the square of the
RFC 2047 encoded-words in a header (8,000 in 112 KB: +747 MiB) and CPU with the
parameters of a ``Content-Type`` (200,000: over 120 s) or the empty parts of a multipart
(290,000 in 2 MB: 26 s), all before the signature is checked. So the bridge parses with
``compat32`` (no header is decoded unless asked for) and, before that, refuses an e-mail
(or a decrypted entity) over these bounds; :func:`check_parts` bounds what is parsed
later, the parameters of each part's ``Content-Type``.
"""

from __future__ import annotations

import re
from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from itertools import islice
from typing import Final

from node.email_bridge.errors import BridgeRefusedError

MAX_HEADER: Final = 64 << 10  # bytes of the header block (up to the first empty line)
MAX_LINE: Final = 998  # bytes of one header line (RFC 5322 §2.1.1)
MAX_ENCODED_WORDS: Final = 64  # RFC 2047 encoded-words ("=?") in the header block
MAX_PARAMS: Final = 32  # parameters (";") of one Content-Type
MAX_DELIMITERS: Final = 256  # lines starting "--" in the whole e-mail: its MIME parts
#: The end of the header block: an empty line, whichever line ends the parser accepts.
_EMPTY_LINE: Final = re.compile(rb"\n[\r\n]|\r\r")
_DELIMITER: Final = re.compile(rb"(?:\A|[\r\n])--")


def check_bytes(data: bytes) -> None:
    """Refuse ``data`` (an e-mail or a decrypted entity) over the bounds, unparsed.

    Raises:
        BridgeRefusedError: ``bad_header`` (header block, line, encoded-words) or
            ``mime_too_complex`` (delimiter lines, i.e. MIME parts).
    """
    found = _EMPTY_LINE.search(data)
    head = data if found is None else data[: found.start()]
    if len(head) > MAX_HEADER:
        raise BridgeRefusedError("bad_header", f"header block over {MAX_HEADER} bytes")
    if any(len(line) > MAX_LINE for line in head.splitlines()):
        raise BridgeRefusedError("bad_header", f"header line over {MAX_LINE} bytes")
    if head.count(b"=?") > MAX_ENCODED_WORDS:
        raise BridgeRefusedError("bad_header", "too many encoded-words")
    if sum(1 for _ in islice(_DELIMITER.finditer(data), MAX_DELIMITERS + 1)) > MAX_DELIMITERS:
        raise BridgeRefusedError("mime_too_complex", "too many delimiter lines")


def check_parts(msg: Message) -> None:
    """Refuse a parsed entity any of whose parts has a ``Content-Type`` over the bounds
    (its parameters are parsed when asked for, at a cost that grows faster than them).

    Raises:
        BridgeRefusedError: ``bad_header``.
    """
    for part in msg.walk():
        for value in part.get_all("Content-Type") or ():
            text = str(value)
            if text.count(";") > MAX_PARAMS or len(text) > MAX_HEADER:
                raise BridgeRefusedError("bad_header", "too many Content-Type parameters")


def parse(data: bytes) -> Message:
    """``data`` parsed with ``compat32`` once within the bounds (M1, M3, M5).

    Raises:
        BridgeRefusedError: over a bound; ``mime_too_complex`` when the parser's
            recursion overflows (nested too deep), ``too_large`` when it runs out of memory.
    """
    check_bytes(data)
    try:
        msg = message_from_bytes(data, policy=compat32)
    except RecursionError:
        raise BridgeRefusedError("mime_too_complex", "nested too deep to parse") from None
    except MemoryError:
        raise BridgeRefusedError("too_large", "out of memory while parsing") from None
    check_parts(msg)
    return msg
