"""RFC 9421 §2: component values and the signature base, over plain request data.

The request is described by its method, its absolute target URI and a headers mapping;
no HTTP library object is involved, so the relay (aiohttp), a node client and the tests
all build exactly the same bytes.
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from protocol._sfv import BareItem, serialize_bare_item, serialize_params
from protocol.decimal import parse_decimal
from protocol.errors import MalformedError

Headers = Mapping[str, str] | Mapping[str, Sequence[str]]
"""Field name -> value, or -> the values of repeated field lines in wire order.

A multidict (aiohttp's ``CIMultiDictProxy``) works too: ``items()`` yields every line.
"""

SIGNATURE_PARAMS: Final = "@signature-params"
# RFC 9110 §5.6.2 token characters; the lowercase variant is for field names.
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_LOWER_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]*")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# RFC 9112 §5.2 obs-fold: CRLF followed by whitespace; RFC 9421 §2.1 step 3 turns it into SP.
_OBS_FOLD: Final = re.compile(r"[ \t]*\r\n[ \t]+")


@dataclass(frozen=True, slots=True)
class _Target:
    uri: str
    scheme: str
    authority: str
    path: str
    query: str | None


# A relay sees the same few target URIs again and again; parsing is pure, so cache it.
@functools.lru_cache(maxsize=256)
def _parse_target(uri: str) -> _Target:
    # Only printable ASCII without spaces: urllib silently drops tabs and newlines, and a
    # URI that two parsers read differently must never reach the signature base.
    if not uri or any(not "!" <= ch <= "~" for ch in uri):
        raise MalformedError("invalid target URI", detail="characters outside %x21-7E")
    if "#" in uri:
        raise MalformedError("invalid target URI", detail="fragment present")
    try:
        parts = urllib.parse.urlsplit(uri)
    except ValueError as exc:  # e.g. an unbalanced IPv6 bracket
        raise MalformedError("invalid target URI", detail=str(exc)) from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc or "@" in parts.netloc:
        raise MalformedError("invalid target URI", detail="need http(s)://host without userinfo")
    if not parts.path.startswith("/"):
        raise MalformedError("invalid target URI", detail="path must be absolute and non-empty")
    return _Target(
        uri=uri,
        scheme=scheme,
        authority=_authority(parts.netloc, scheme),
        path=parts.path,
        query=parts.query if "?" in uri else None,
    )


def _authority(netloc: str, scheme: str) -> str:
    # RFC 9421 §2.2.3 -> RFC 9110 §4.2.3: lowercase host, omit the scheme's default port.
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:  # pragma: no cover - urlsplit already refuses an unbalanced bracket
            raise MalformedError("invalid target URI", detail="unterminated IPv6 literal")
        host, rest = netloc[: end + 1], netloc[end + 1 :]
        if rest and not rest.startswith(":"):
            raise MalformedError("invalid target URI", detail="junk after IPv6 literal")
        port = rest[1:]
    else:
        host, _, port = netloc.partition(":")
    if not host:
        raise MalformedError("invalid target URI", detail="bad host or port")
    host = host.lower()
    if not port:
        return host
    number = parse_decimal(port, name="target URI port", high=65535)
    return host if number == _DEFAULT_PORTS[scheme] else f"{host}:{number}"


_FIELD_CHARS = re.compile(r"[\t -~]*")


def collect_fields(headers: Headers) -> dict[str, str]:
    """Return lowercase field name -> combined value per RFC 9421 §2.1.

    Each line is unfolded and trimmed; repeated lines join with ", " in wire order.
    """
    out: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        for v in (value,) if isinstance(value, str) else value:
            # obs-fold is rare: only run the regex on a value that has a line break.
            line = (_OBS_FOLD.sub(" ", v) if "\n" in v or "\r" in v else v).strip(" \t")
            if key in out:
                out[key] = f"{out[key]}, {line}"
            else:
                out[key] = line
    return out


def _component_value(name: str, method: str, target: _Target, fields: Mapping[str, str]) -> str:
    if name.startswith("@"):
        # RFC 9421 §2.2.1-§2.2.7
        if name == "@method":
            return method
        if name == "@target-uri":
            return target.uri
        if name == "@authority":
            return target.authority
        if name == "@scheme":
            return target.scheme
        if name == "@path":
            return target.path
        if name == "@query":
            return "?" + (target.query or "")
        if name == "@request-target":
            return target.path + ("" if target.query is None else "?" + target.query)
        raise MalformedError("unsupported covered component", detail=name)
    if _LOWER_TOKEN.fullmatch(name) is None:
        raise MalformedError("invalid covered component name", detail=name)
    if name not in fields:
        raise MalformedError("covered header field is missing", detail=name)
    value = fields[name]
    # RFC 9421 §2.5: the signature base is US-ASCII with one component per line.
    if _FIELD_CHARS.fullmatch(value) is None:
        raise MalformedError("covered header field has invalid characters", detail=name)
    return value


def signature_params_value(components: Sequence[str], params: Mapping[str, BareItem]) -> str:
    """Serialize the ``@signature-params`` value: an RFC 8941 inner list with parameters."""
    # Written out rather than through InnerList/Item: the same RFC 8941 §4.1.1.1 text.
    inner = " ".join([serialize_bare_item(c) for c in components])
    return f"({inner}){serialize_params(params)}"


def build_signature_base(
    method: str,
    target_uri: str,
    headers: Headers,
    components: Sequence[str],
    params: Mapping[str, BareItem],
) -> bytes:
    """Build the RFC 9421 §2.5 signature base (see :func:`protocol.httpsig.signature_base`)."""
    return base_from_fields(method, target_uri, collect_fields(headers), components, params)


def base_from_fields(
    method: str,
    target_uri: str,
    fields: Mapping[str, str],
    components: Sequence[str],
    params: Mapping[str, BareItem],
) -> bytes:
    """:func:`build_signature_base` over fields already combined by :func:`collect_fields`."""
    if _TOKEN.fullmatch(method) is None:
        raise MalformedError("invalid request method", detail=repr(method))
    target = _parse_target(target_uri)
    lines: list[str] = []
    seen: set[str] = set()
    for name in components:
        if name in seen or name == SIGNATURE_PARAMS:
            raise MalformedError("covered component repeated or reserved", detail=name)
        seen.add(name)
        value = _component_value(name, method, target, fields)
        # _component_value admits only derived names and lowercase tokens: none holds
        # '"' or '\\', so the quoted name is its RFC 8941 serialization.
        lines.append(f'"{name}": {value}')
    inner = " ".join([f'"{name}"' for name in components])
    lines.append(f'"{SIGNATURE_PARAMS}": ({inner}){serialize_params(params)}')
    return "\n".join(lines).encode("ascii")
