"""Inbound: check a member's reply before anything of it reaches a case (PROTOCOL.md
§22.4, steps M1-M7). Nothing inside is parsed before M4 verified the signature."""

from __future__ import annotations

import hashlib
import re
from email.message import Message
from email.utils import getaddresses
from typing import TYPE_CHECKING, Final, NamedTuple

import msgspec

from node.email_bridge._limits import parse
from node.email_bridge.errors import BridgeRefusedError
from node.email_bridge.openpgp import load_cert
from node.email_bridge.outbound import CASE_HEADER, CASE_LINE
from protocol.body import member_binding_errors
from protocol.codec import decode
from protocol.errors import PeerError
from schemas.messages import BODY_DECODER, Body, semantic_errors

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from node.email_bridge.openpgp import NodeOpenPgpKey
    from schemas.directory import Member

MAX_EMAIL: Final = 2 << 20  # M1: bytes of a whole reply as fetched
MAX_PARTS: Final = 16  # M5: MIME parts inside the signed entity
MAX_DEPTH: Final = 4  # M5: nesting of multiparts inside the signed entity
MAX_JSON: Final = 1 << 20  # M6: the returned body
_ARMOR: Final = b"-----BEGIN PGP MESSAGE-----"
#: A case id (32 lowercase hex digits, schemas.types.CaseId) after the case line, quoted or not.
_CASE_RE: Final = re.compile(re.escape(CASE_LINE) + r"[ \t]*([0-9a-f]{32})(?![0-9a-f])", re.ASCII)
_HEADER_RE: Final = re.compile(r"[ \t]*([0-9a-f]{32})[ \t]*", re.ASCII)


class Reply(NamedTuple):
    """An accepted reply: who, which case, the answer, and the hash of the e-mail (M7).

    ``signed_sha256`` is the hash of the signed entity M4 verified: the same reply in
    another envelope (a replay with new outer headers) has the same one.
    """

    member: str
    case_id: str
    body: Body | None
    text: str
    sha256: str
    signed_sha256: str
    raw: bytes = b""  # the e-mail's exact bytes as fetched (kept as its envelope)


def _sender(msg: Message, members: Iterable[Member]) -> Member:
    """M2: exactly one From address, equal to a directory member's bridge address.

    The header is read as it came (``compat32``: no encoded-word is decoded) and its
    address found by :func:`email.utils.getaddresses`, within the bounds of ``_limits``.
    """
    try:
        values = msg.get_all("From") or []
        if len(values) != 1:
            raise BridgeRefusedError("bad_header", f"{len(values)} From headers")
        addresses = getaddresses([str(values[0])])
        if len(addresses) != 1 or "@" not in addresses[0][1]:
            raise BridgeRefusedError("bad_header", "From must name one address")
        got = addresses[0][1].lower()
    except (ValueError, TypeError, IndexError, AttributeError, RecursionError):
        raise BridgeRefusedError("bad_header", "From header unreadable") from None
    for member in members:
        reach = member.email_bridge
        if not isinstance(reach, msgspec.UnsetType) and reach.address.lower() == got:
            return member
    raise BridgeRefusedError("unknown_sender", "no member with this address")


def subparts(msg: Message) -> list[Message]:
    """The parts of a multipart entity (none for a leaf)."""
    payload = msg.get_payload()
    if not isinstance(payload, list):
        return []
    return [part for part in payload if isinstance(part, Message)]


def armored_payload(raw: bytes) -> bytes:
    """The armored OpenPGP message of a PGP/MIME e-mail (M3), e.g. for a member's client."""
    return _armored_part(parse(raw))


def _armored_part(msg: Message) -> bytes:
    """M3: RFC 3156 §4: multipart/encrypted, protocol application/pgp-encrypted, two parts."""
    if msg.get_content_type() != "multipart/encrypted":
        raise BridgeRefusedError("not_pgp_mime", msg.get_content_type())
    protocol = msg.get_param("protocol")
    if not isinstance(protocol, str) or protocol.lower() != "application/pgp-encrypted":
        raise BridgeRefusedError("not_pgp_mime", "protocol parameter")
    parts = subparts(msg)
    if len(parts) != 2:
        raise BridgeRefusedError("not_pgp_mime", "needs exactly two parts")
    control, data = parts
    if control.get_content_type() != "application/pgp-encrypted":
        raise BridgeRefusedError("not_pgp_mime", "first part")
    if data.get_content_type() != "application/octet-stream":
        raise BridgeRefusedError("not_pgp_mime", "second part")
    payload = data.get_payload(decode=True)
    if not isinstance(payload, bytes) or _ARMOR not in payload[:1024]:
        raise BridgeRefusedError("not_pgp_mime", "no armored OpenPGP message")
    return payload


def _walk(entity: Message, depth: int, out: list[Message]) -> None:
    """M5: the leaves of the signed entity, bounded in depth and count."""
    if depth > MAX_DEPTH:
        raise BridgeRefusedError("mime_too_complex", "nested too deep")
    if entity.is_multipart():
        for part in subparts(entity):
            _walk(part, depth + 1, out)
    else:
        out.append(entity)
    if len(out) > MAX_PARTS:
        raise BridgeRefusedError("mime_too_complex", "too many parts")


def _contents(entity: Message) -> tuple[str, bytes | None]:
    """M5: the text of the reply and the returned JSON body, if any."""
    leaves: list[Message] = []
    _walk(entity, 0, leaves)
    texts: list[str] = []
    json_part: bytes | None = None
    for leaf in leaves:
        kind = leaf.get_content_type()
        payload = leaf.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        if kind == "application/json" and json_part is None:
            json_part = payload
        elif kind == "text/plain":
            charset = leaf.get_content_charset() or "utf-8"
            try:
                texts.append(payload.decode(charset, errors="replace"))
            except (LookupError, ValueError):  # unknown, or a codec that fails anyway
                # (idna and undefined refuse "replace"; punycode: UnicodeDecodeError)
                texts.append(payload.decode("utf-8", errors="replace"))
    return "\n".join(texts), json_part


def _case_id(entity: Message, text: str, returned: Body | None) -> str:
    """M7: the case, from the returned body, else the protected header, else the quoted line."""
    if returned is not None:
        return returned.case_id
    header = entity.get(CASE_HEADER)
    found = None if header is None else _HEADER_RE.fullmatch(str(header))
    found = found or _CASE_RE.search(text)
    if found is None:
        raise BridgeRefusedError("no_case", "no case id in the signed content")
    return found.group(1)


def _returned_body(data: bytes, member: Member, node_member: str) -> Body:
    """M6: the JSON attachment, decoded and checked as any body (E13-E14)."""
    try:
        body = decode(BODY_DECODER, data, "body", limit=MAX_JSON)
    except PeerError as exc:
        raise BridgeRefusedError("body_malformed", exc.message) from None
    problems = semantic_errors(body) or member_binding_errors(
        body, sender=member.id, recipient=node_member
    )
    if problems:
        raise BridgeRefusedError("body_malformed", problems[0][0])
    return body


def accept(
    raw: bytes,
    *,
    members: Iterable[Member],
    node_member: str,
    node_key: NodeOpenPgpKey,
    case_peer: Callable[[str], str | None],
) -> Reply:
    """M1-M7: verify ``raw`` (one fetched e-mail) and return the member's answer.

    ``case_peer`` tells which member a case of this node is with (``None``: no such case).

    Raises:
        BridgeRefusedError: with its reason; the caller raises an alert, and nothing of the
            e-mail reaches a case. Running out of memory or recursion while checking the
            e-mail's bytes refuses it too (``too_large``, ``mime_too_complex``,
            ``internal_error`` for another RuntimeError): the same bytes would fail again.
    """
    try:
        member, signed, inner, text, returned = _verified(raw, members, node_member, node_key)
    except MemoryError:
        raise BridgeRefusedError("too_large", "out of memory while checking") from None
    except RecursionError:
        raise BridgeRefusedError("mime_too_complex", "recursion while checking") from None
    except RuntimeError as exc:
        raise BridgeRefusedError("internal_error", type(exc).__name__) from None
    case_id = _case_id(inner, text, returned)  # M7
    peer = case_peer(case_id)
    if peer is None:
        raise BridgeRefusedError("no_case", "unknown case")
    if peer != member.id:
        raise BridgeRefusedError("other_members_case", "the case is with another member")
    digest = hashlib.sha256(raw).hexdigest()
    return Reply(member.id, case_id, returned, text, digest, signed, raw)  # M7


def _verified(
    raw: bytes, members: Iterable[Member], node_member: str, node_key: NodeOpenPgpKey
) -> tuple[Member, str, Message, str, Body | None]:
    """M1-M6: the sender, the signed entity's hash, the entity, its text and body."""
    if len(raw) > MAX_EMAIL:  # M1
        raise BridgeRefusedError("too_large", f"{len(raw)} bytes")
    outer = parse(raw)  # M1's bounds; its headers and RFC 3156 frame only matter until M4
    member = _sender(outer, members)  # M2
    armored = _armored_part(outer)  # M3
    reach = member.email_bridge
    assert not isinstance(reach, msgspec.UnsetType)
    plain = node_key.decrypt_and_verify(armored, load_cert(reach.openpgp_cert))  # M4
    if len(plain) > MAX_EMAIL:
        raise BridgeRefusedError("too_large", "decrypted entity")
    inner = parse(plain)  # the same bounds
    text, json_part = _contents(inner)  # M5
    returned = None if json_part is None else _returned_body(json_part, member, node_member)  # M6
    return member, hashlib.sha256(plain).hexdigest(), inner, text, returned
