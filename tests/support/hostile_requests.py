"""Odd and oversized request lines and headers, each built around a valid request.

Every case takes the request a route needs (method, target, headers that pass its
authentication, body) and spoils one thing: a huge header line, too many headers, a
duplicate Content-Length, a Transfer-Encoding trick, non-ASCII bytes, an unknown method.
The suite sends each case to every route of the relay and of the node API.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Valid:
    """A request that the route would serve (or refuse in the one error shape)."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    host: str = "127.0.0.1"

    def wire(
        self,
        *,
        line: bytes | None = None,
        extra: tuple[tuple[bytes, bytes], ...] = (),
        length: bool = True,
        body: bytes | None = None,
        eol: bytes = b"\r\n",
    ) -> bytes:
        """The request as bytes, with ``line`` instead of its request line, ``extra``
        header fields appended, no Content-Length unless ``length``, another ``body``."""
        start = line or f"{self.method} {self.target} HTTP/1.1".encode()
        fields = [(b"Host", self.host.encode()), (b"Connection", b"close")]
        fields += [(k.encode(), v.encode("utf-8")) for k, v in self.headers]
        payload = self.body if body is None else body
        if length and self.body:
            fields.append((b"Content-Length", str(len(self.body)).encode()))
        fields += list(extra)
        head = start + eol + b"".join(k + b": " + v + eol for k, v in fields)
        return head + eol + payload


def _chunked(body: bytes, size: bytes | None = None) -> bytes:
    size = size if size is not None else f"{len(body):x}".encode()
    return size + b"\r\n" + body + b"\r\n0\r\n\r\n" if body else b"0\r\n\r\n"


def _cl(n: int | str) -> tuple[bytes, bytes]:
    return (b"Content-Length", str(n).encode())


_TE = b"Transfer-Encoding"
Case = Callable[[Valid], bytes]

#: name -> how to spoil a valid request
HEADER_CASES: dict[str, Case] = {
    # sizes
    "header line of 100 KiB": lambda v: v.wire(extra=((b"X-Big", b"a" * 100_000),)),
    "header line just over 8 KiB": lambda v: v.wire(extra=((b"X-Big", b"a" * 8_200),)),
    "200 headers": lambda v: v.wire(extra=tuple((b"X-N%d" % i, b"1") for i in range(200))),
    "5000 headers": lambda v: v.wire(extra=tuple((b"X-N%d" % i, b"1") for i in range(5000))),
    "header name of 10 KiB": lambda v: v.wire(extra=((b"X" * 10_000, b"1"),)),
    "request target of 100 KiB": lambda v: v.wire(
        line=f"{v.method} {v.target}{'&' if '?' in v.target else '?'}x={'a' * 100_000}"
        f" HTTP/1.1".encode()
    ),
    # Content-Length
    "Content-Length twice, equal": lambda v: v.wire(extra=(_cl(len(v.body)), _cl(len(v.body)))),
    "Content-Length twice, different": lambda v: v.wire(
        length=False, extra=(_cl(len(v.body)), _cl(len(v.body) + 1))
    ),
    "Content-Length +N": lambda v: v.wire(length=False, extra=(_cl(f"+{len(v.body)}"),)),
    "Content-Length -1": lambda v: v.wire(length=False, extra=(_cl(-1),)),
    "Content-Length in Arabic-Indic digits": lambda v: v.wire(
        length=False, extra=((b"Content-Length", "٣".encode()),)
    ),
    "Content-Length of 30 digits": lambda v: v.wire(length=False, extra=(_cl("9" * 30),)),
    # Transfer-Encoding
    "chunked and Content-Length": lambda v: v.wire(
        body=_chunked(v.body), extra=((_TE, b"chunked"),)
    ),
    "gzip, chunked": lambda v: v.wire(
        length=False, body=_chunked(v.body), extra=((_TE, b"gzip, chunked"),)
    ),
    "chunked, then identity": lambda v: v.wire(
        length=False, body=_chunked(v.body), extra=((_TE, b"chunked, identity"),)
    ),
    "unknown transfer coding": lambda v: v.wire(length=False, extra=((_TE, b"bogus"),)),
    "chunked twice": lambda v: v.wire(
        length=False, body=_chunked(v.body), extra=((_TE, b"chunked"), (_TE, b"chunked"))
    ),
    "space before the colon": lambda v: v.wire(
        length=False, body=_chunked(v.body), extra=((b"Transfer-Encoding ", b"chunked"),)
    ),
    "chunk size with a sign": lambda v: v.wire(
        length=False, body=_chunked(v.body or b"x", b"+1"), extra=((_TE, b"chunked"),)
    ),
    "chunk size in Arabic-Indic digits": lambda v: v.wire(
        length=False, body=_chunked(v.body or b"x", "١".encode()), extra=((_TE, b"chunked"),)
    ),
    "chunk size of 40 hex digits": lambda v: v.wire(
        length=False, body=_chunked(v.body or b"x", b"f" * 40), extra=((_TE, b"chunked"),)
    ),
    # bytes
    "non-ASCII header value": lambda v: v.wire(extra=((b"X-Note", "é²٣".encode()),)),
    "non-ASCII header name": lambda v: v.wire(extra=(("X-Tést".encode(), b"1"),)),
    "invalid UTF-8 in a header": lambda v: v.wire(extra=((b"X-Note", b"\xff\xfe\xc3"),)),
    "NUL in a header value": lambda v: v.wire(extra=((b"X-Note", b"a\x00b"),)),
    "obsolete line folding": lambda v: v.wire(extra=((b"X-Note", b"a\r\n folded"),)),
    "bare LF line ends": lambda v: v.wire(eol=b"\n"),
    "hostile X-Request-Id": lambda v: v.wire(extra=((b"X-Request-Id", ("²" * 40).encode()),)),
    "Content-Type with a strange charset": lambda v: v.wire(
        extra=((b"Content-Type", b"application/json; charset=\xff"),)
    ),
    # request line
    "unknown method": lambda v: v.wire(line=f"FROB {v.target} HTTP/1.1".encode()),
    "lowercase method": lambda v: v.wire(line=f"{v.method.lower()} {v.target} HTTP/1.1".encode()),
    "non-ASCII method": lambda v: v.wire(line=f"GÉT {v.target} HTTP/1.1".encode()),
    "method of 10 KiB": lambda v: v.wire(line=f"{'A' * 10_000} {v.target} HTTP/1.1".encode()),
    "raw UTF-8 in the path": lambda v: v.wire(
        line=f"{v.method} {v.target.partition('?')[0]}² HTTP/1.1".encode()
    ),
    "raw UTF-8 in the query": lambda v: v.wire(
        line=f"{v.method} {v.target}{'&' if '?' in v.target else '?'}after=² HTTP/1.1".encode()
    ),
    "HTTP/2.0 in the request line": lambda v: v.wire(
        line=f"{v.method} {v.target} HTTP/2.0".encode()
    ),
    "HTTP/1.1x": lambda v: v.wire(line=f"{v.method} {v.target} HTTP/1.1x".encode()),
    "no version": lambda v: v.wire(line=f"{v.method} {v.target}".encode()),
    "absolute-form target": lambda v: v.wire(
        line=f"{v.method} http://{v.host}{v.target} HTTP/1.1".encode()
    ),
    "asterisk target": lambda v: v.wire(line=f"{v.method} * HTTP/1.1".encode()),
    "no Host": lambda v: replace(v, host="").wire().replace(b"Host: \r\n", b""),
    "two Hosts": lambda v: v.wire(extra=((b"Host", b"evil.example"),)),
}


def _sub(headers: dict[str, str], name: str, old: str, new: str) -> dict[str, str]:
    assert old in headers[name], (name, old)
    return {**headers, name: headers[name].replace(old, new, 1)}


def _param(headers: dict[str, str], param: str, value: str) -> dict[str, str]:
    """Signature-Input with one parameter's value replaced."""
    text = headers["Signature-Input"]
    start = text.index(f";{param}=") + len(param) + 2
    end = text.find(";", start)
    end = len(text) if end < 0 else end
    return {**headers, "Signature-Input": text[:start] + value + text[end:]}


def _twice(value: str) -> str:
    return value + ", " + value.replace("sig1", "sig2")


SigCase = Callable[[dict[str, str]], dict[str, str] | list[tuple[str, str]]]
#: name -> how to spoil the RFC 9421 fields of a validly signed request
SIGNATURE_CASES: dict[str, SigCase] = {
    "created in Arabic-Indic digits": lambda h: _param(
        h,
        "created",
        h["Signature-Input"]
        .split("created=")[1][:10]
        .translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),
    ),
    "created with a sign": lambda h: _param(h, "created", "+1"),
    "created negative": lambda h: _param(h, "created", "-1"),
    "created of 20 digits": lambda h: _param(h, "created", "9" * 20),
    "created as a decimal": lambda h: _param(h, "created", "1.5"),
    "expires of 20 digits": lambda h: _param(h, "expires", "9" * 20),
    "expires before created": lambda h: _param(h, "expires", "1"),
    "keyid non-ASCII": lambda h: _param(h, "keyid", '"²٣"'),
    "keyid of 4 KiB": lambda h: _param(h, "keyid", '"' + "a" * 4096 + '"'),
    "nonce non-ASCII": lambda h: _param(h, "nonce", '"²"'),
    "tag of another profile": lambda h: _param(h, "tag", '"other"'),
    "alg RSA": lambda h: _param(h, "tag", '"relay247";alg="rsa-pss-sha512"'),
    "Signature-Input twice": lambda h: [*h.items(), ("Signature-Input", h["Signature-Input"])],
    "Signature twice": lambda h: [*h.items(), ("Signature", h["Signature"])],
    "two labels": lambda h: {
        **h,
        "Signature-Input": h["Signature-Input"]
        + ", "
        + h["Signature-Input"].replace("sig1", "sig2"),
        "Signature": h["Signature"] + ", " + h["Signature"].replace("sig1", "sig2"),
    },
    "label mismatch": lambda h: _sub(h, "Signature", "sig1=", "sig2="),
    "signature not base64": lambda h: {**h, "Signature": "sig1=:!!!!:"},
    "empty signature": lambda h: {**h, "Signature": "sig1=::"},
    "signature of 6 KiB": lambda h: {**h, "Signature": "sig1=:" + "A" * 6000 + ":"},
    "non-ASCII component name": lambda h: _sub(h, "Signature-Input", '"@method"', '"x-²"'),
    "no components": lambda h: {
        **h,
        "Signature-Input": "sig1=()" + h["Signature-Input"][h["Signature-Input"].index(");") + 1 :],
    },
    "Content-Digest sha-512 only": lambda h: {**h, "Content-Digest": "sha-512=:AAAA:"},
    "Content-Digest not base64": lambda h: {**h, "Content-Digest": "sha-256=:!!!:"},
    "Content-Digest twice": lambda h: [*h.items(), ("Content-Digest", "sha-256=:AAAA:")],
    "Content-Digest non-ASCII": lambda h: {**h, "Content-Digest": "sha-256=:²:"},
}


def ws_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """One client WebSocket frame (RFC 6455 §5.2), masked as a client must."""
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = bytes([first, 0x80 | n])
    elif n < 1 << 16:
        head = bytes([first, 0x80 | 126]) + struct.pack(">H", n)
    else:
        head = bytes([first, 0x80 | 127]) + struct.pack(">Q", n)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


#: name -> bytes sent on an open mailbox push socket
WS_CASES: dict[str, bytes] = {
    "silent client": b"",
    "binary frame": ws_frame(2, b"\x00\x01"),
    "text frame over the size limit": ws_frame(1, b"a" * 70_000),
    "invalid UTF-8 text": ws_frame(1, b"\xff\xfe"),
    "reserved opcode": ws_frame(3, b"x"),
    "unmasked frame": bytes([0x81, 1]) + b"a",
    "fragment never finished": ws_frame(1, b"a", fin=False),
    "close with an invalid code": ws_frame(8, struct.pack(">H", 999)),
    "2000 pings": b"".join(ws_frame(9, b"p") for _ in range(2000)),
    "length of 2**62": bytes([0x81, 0x80 | 127]) + struct.pack(">Q", 2**62) + b"abcd",
    "reserved bits set": bytes([0xF1, 0x81]) + b"abcda",
}
